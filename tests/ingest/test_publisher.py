"""The publisher with the broker away: messages go to disk at once, and when the spill queue is
full the drops are counted and logged, once per interval rather than once per message."""

from __future__ import annotations

import logging

from sflowpipe.metrics import Metrics
from ingest.publisher import Publisher
from ingest.spill import SpillQueue
from sflowpipe.broker import free_port
from sflowpipe.kafka import KafkaClients, KafkaUnreachable
from sflowpipe.settings import KafkaSettings


def _down() -> None:
    raise KafkaUnreachable("127.0.0.1:1", 0)


def test_broker_away_spills_then_drops_are_counted_and_logged(tmp_path, caplog):
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    metrics = Metrics()
    pub = Publisher(KafkaClients(kafka), SpillQueue(tmp_path, 10 * 120), metrics, ensure_topics=_down)
    pub.start()
    try:
        with caplog.at_level(logging.WARNING, logger="ingest.publisher"):
            for _ in range(100):
                pub.publish("t", b"k", b"x" * 100)
            pub.service()
        assert pub.in_flight() == 0  # none held in memory: a kill now loses nothing
        assert metrics.total("sflowpipe_kafka_messages_spilled_total") == pub.spill.pending > 0
        dropped = metrics.get("sflowpipe_kafka_messages_dropped_total", (("topic", "t"), ("reason", "spill_full")))
        assert dropped == 100 - pub.spill.pending
        full = [r.getMessage() for r in caplog.records if "spill queue full" in r.getMessage()]
        assert len(full) == 1 and "messages dropped" in full[0], full
    finally:
        pub.stop(timeout=0)
