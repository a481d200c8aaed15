from __future__ import annotations

from pathlib import Path

import pytest

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


def _hypothesis_profiles() -> None:
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_hypothesis_profiles()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """A real Kafka-protocol broker: $KAFKA_BOOTSTRAP_SERVERS if set, else a Tansu started here."""
    import os

    from sflowpipe.broker import EmbeddedBroker

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = EmbeddedBroker(log_path=str(log))
    broker.start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def topic_prefix(request):
    """A topic prefix unique to the test, so tests sharing a broker never see each other's data."""
    import re
    import time

    return f"t{time.monotonic_ns() % 10**9}-{re.sub(r'[^a-zA-Z0-9]', '', request.node.name)[:30]}."
