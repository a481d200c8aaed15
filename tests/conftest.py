from __future__ import annotations

import importlib.abc
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.up_helpers import up  # noqa: F401  (one `sflowpipe up --demo` per run, shared by every module)

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT.parent / "shared" / "captures"


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """../shared/captures: real captures and sflowtool's output for each (the interop set)."""
    if not CAPTURES.is_dir():
        pytest.skip("interop captures (../shared/captures) are not beside this checkout")
    return CAPTURES


def capture_files() -> list[Path]:
    return sorted(CAPTURES.glob("*.pcap")) if CAPTURES.is_dir() else []


# ------------------------------------------------------------------ tiers
# `make test-unit` runs the tests marked `unit`: those that need no broker, no ClickHouse and start no
# process, for the development loop. The tier marks are given here, from what a test uses, so a new
# test cannot be put in the wrong tier by forgetting a mark; a module that starts processes itself
# (the CLI, rsyslogd, BIRD...) says `pytestmark = pytest.mark.e2e`, and a test left `unit` that starts
# one anyway fails, naming the mark (see _unit_tests_stay_in_process).
SLOW_TIERS = ("kafka", "clickhouse", "e2e", "slow")  # `slow`: in-process but long by design (fuzzing)
FIXTURE_TIERS = {  # a fixture -> the tier of every test that uses it (directly or through other fixtures)
    "kafka_bootstrap": "kafka",
    "apache_kafka": "kafka",  # tests/apache_kafka.py, started by the fixtures below
    "apache_kafka_secure": "kafka",
    "clickhouse": "clickhouse",  # tests/test_examples.py: chDB with the migrations applied
    "up": "e2e",  # a whole `sflowpipe up --demo` (tests/up_helpers.py)
    "rsyslog": "e2e",  # a real rsyslogd (tests/sinks/rsyslog.py)
    "bird_factory": "e2e",  # a real BIRD router (tests/sinks/control/test_bgp.py)
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, tier in FIXTURE_TIERS.items():
            if fixture in names:
                item.add_marker(tier)
        if not any(item.get_closest_marker(t) for t in SLOW_TIERS):
            item.add_marker("unit")
    # the tests on the shared `up --demo` run last, one after another: it starts with the first of
    # them and runs (demo traffic, every stage) until the session ends, and no other test should
    # run beside it (timing-sensitive tests would share the cores with it)
    items.sort(key=lambda item: "up" in getattr(item, "fixturenames", ()))


_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_FAILED = pytest.StashKey[bool]()


def _started_by_this_project() -> bool:
    """Whether the process being started is asked for by the tests or the project's code (the first
    caller outside the standard library is under ROOT), not by a library for its own ends
    (platform.architecture runs `file`, geoip2fast runs `ps`: incidental, and cheap)."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_absolute() and not path.is_relative_to(_STDLIB) and path != Path(__file__):
            return path.is_relative_to(ROOT) and ".venv" not in path.parts
        frame = frame.f_back
    return False


class _UnitGuard(importlib.abc.MetaPathFinder):
    """Refuses, inside a `unit` test, what belongs to another tier: starting a process (asyncio's
    subprocesses go through Popen too) and loading chDB. Each refusal is remembered, so the test
    fails even if it caught the exception."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def refuse(self, what: str, tier: str) -> None:
        self.refused.append(f"{what}: mark it `pytest.mark.{tier}` (or use a fixture of tests/conftest.py's "
                            "FIXTURE_TIERS)")
        raise AssertionError(f"a unit test {self.refused[-1]}")

    def find_spec(self, name, path=None, target=None):
        if name == "chdb" or name.startswith("chdb."):
            self.refuse("loaded chDB", "clickhouse")
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.failed:
        item.stash[_FAILED] = True


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request, monkeypatch):
    """A `unit` test that starts a process or opens ClickHouse fails: its tier is wrong (the unit tier
    must stay fast and independent of the machine's load)."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    guard = _UnitGuard()
    execute_child = subprocess.Popen._execute_child

    def checked(self, args, *rest, **kw):
        if _started_by_this_project():
            guard.refuse(f"started {str(args if isinstance(args, str) else args[0])!r}", "e2e")
        return execute_child(self, args, *rest, **kw)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", checked)
    sys.meta_path.insert(0, guard)  # only reached by a module not loaded yet (chDB, in the unit tier)
    try:
        yield
    finally:
        sys.meta_path.remove(guard)
    if guard.refused and not request.node.stash.get(_FAILED, False):  # it caught the refusal
        pytest.fail("a unit test " + "; ".join(guard.refused))


def _hypothesis_profiles() -> None:
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_hypothesis_profiles()


# The broker of the kafka tier: $KAFKA_BOOTSTRAP_SERVERS (any broker, started elsewhere), else the
# one $TEST_BROKER names (not an SFLOWPIPE_ name: the settings refuse unknown SFLOWPIPE_ variables):
# `apache` (the default: Apache Kafka, the broker production runs, tests/apache_kafka.py, resolved
# from Maven Central on first use) or `tansu` (as `sflowpipe up` embeds it; the tests of `up` run on
# Tansu whatever this says).
@pytest.fixture(scope="session")
def kafka_bootstrap(request, tmp_path_factory):
    """A real Kafka-protocol broker: $KAFKA_BOOTSTRAP_SERVERS if set, else the one $TEST_BROKER
    names (apache by default, or tansu), started here."""
    import os

    from tests.kafka_helpers import broker_kind

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    try:
        kind = broker_kind()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    if kind == "apache":
        yield request.getfixturevalue("apache_kafka").bootstrap
        return
    from sflowpipe.broker import EmbeddedBroker

    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = EmbeddedBroker(log_path=str(log))
    broker.start()
    yield broker.bootstrap
    broker.stop()


def _apache_kafka(workdir, secure: bool):
    from tests.apache_kafka import ApacheKafka

    broker = ApacheKafka(workdir, secure=secure)
    broker.start()
    yield broker
    broker.stop()
    # a broker that needed SIGKILL would hide a shutdown fault (and leave its log dir unclean)
    assert not broker.killed, f"Apache Kafka did not stop on SIGTERM; its log ends:\n{broker.log_tail()}"


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory):
    """An Apache Kafka broker (tests/apache_kafka.py) on a PLAINTEXT loopback listener."""
    yield from _apache_kafka(tmp_path_factory.mktemp("apache-kafka"), secure=False)


@pytest.fixture(scope="session")
def apache_kafka_secure(tmp_path_factory):
    """An Apache Kafka broker with a SASL_SSL listener too (SCRAM-SHA-512 users, a CA made here):
    ``secure_bootstrap`` and ``client_settings(user)`` for the secured clients."""
    yield from _apache_kafka(tmp_path_factory.mktemp("apache-kafka-secure"), secure=True)


@pytest.fixture
def topic_prefix(request):
    """A topic prefix unique to the test, so tests sharing a broker never see each other's data."""
    import re
    import time

    return f"t{time.monotonic_ns() % 10**9}-{re.sub(r'[^a-zA-Z0-9]', '', request.node.name)[:30]}."
