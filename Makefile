# The two commands a newcomer needs: `make demo` (or `make run` for real agents) and `make test`;
# each sets everything up first (virtual environment, Python packages, the web UI's bundle).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UP_ARGS ?=

.PHONY: setup run demo test test-unit bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed
	bash scripts/build-ui.sh

# the whole pipeline on this machine, web UI on http://127.0.0.1:8008/, sFlow on UDP 6343
run: setup
	$(VENV)/bin/sflowpipe up $(UP_ARGS)

# the same with generated traffic (elephant flows included): no network devices needed
demo: setup
	$(VENV)/bin/sflowpipe up --demo $(UP_ARGS)

test: setup
	bash scripts/system-deps.sh
	$(PY) -m tests.apache_kafka resolve  # Apache Kafka's jars from Maven Central, once (.cache/)
	$(VENV)/bin/ruff check --select F,E9 --ignore F811 .  # errors, unused names (F811: fixture imports)
	$(PY) -m pytest -q

# the unit tier, for the development loop (a minute or so): no broker, no ClickHouse, no process
# started (tests/conftest.py gives each test its tier from what it uses). `make test` runs everything.
test-unit: setup
	$(VENV)/bin/ruff check --select F,E9 --ignore F811 .
	$(PY) -m pytest -q -m unit

bench: setup
	$(VENV)/bin/sflowpipe bench decode

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis ui/node_modules api/static/vendor
