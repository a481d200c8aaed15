# The two commands a newcomer needs: `make run` and `make test` (both set everything up first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SFLOW_PORT ?= 6343

.PHONY: setup run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	SFLOW_PORT=$(SFLOW_PORT) $(PY) scripts/run_embedded.py

test: setup
	bash scripts/system-deps.sh
	$(PY) -m pytest -q

bench: setup
	$(VENV)/bin/sflowpipe bench decode

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
