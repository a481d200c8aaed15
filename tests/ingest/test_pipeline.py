"""The ingest path without a broker: what it publishes for good and malformed datagrams, and its
bounded per-agent state."""

from __future__ import annotations

from ingest import pipeline
from ingest.metrics import Metrics
from ingest.pipeline import IngestPipeline
from ingest.sflow import encode_datagram
from ingest.sflow.model import Datagram
from schemas.codec import decode_any
from sflowpipe.settings import load_settings
from tests.ingest.sflow.test_datagram import sample_datagram


class RecordingPublisher:
    def __init__(self):
        self.messages = []

    def publish(self, topic, key, value):
        self.messages.append((topic, key, value))

    def service(self):
        pass


def make():
    pub, m = RecordingPublisher(), Metrics()
    return IngestPipeline(load_settings(), pub, m), pub, m


def test_raw_batches_and_deadletter():
    p, pub, m = make()
    p.handle(encode_datagram(sample_datagram()), "192.0.2.1", 5000, 1)
    p.handle(b"\x00\x00\x00\x04garbage", "192.0.2.9", 5001, 2)
    p.drain()
    topics = [t for t, _, _ in pub.messages]
    assert topics.count("sflow.raw") == 2 and topics.count("sflow.deadletter") == 1
    assert {"sflow.flow-samples", "sflow.counter-samples", "sflow.discard-samples"} <= set(topics)
    dead = [decode_any(v)[1] for t, _, v in pub.messages if t == "sflow.deadletter"][0]
    assert "version 4" in dead["error"] and dead["offset"] == 0 and dead["exporter_port"] == 5001
    assert m.get("sflowpipe_ingest_datagrams_malformed_total", (("reason", "unsupported_version"),)) == 1
    keys = {t: k for t, k, _ in pub.messages}
    assert keys["sflow.flow-samples"] == b"192.0.2.10"  # samples keyed by agent address


def test_sequence_gaps_and_bounded_agents(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_TRACKED_AGENTS", 3)
    p, _, m = make()
    for seq in (1, 2, 5):  # 3 and 4 never arrived
        p.handle(encode_datagram(Datagram(5, "10.0.0.1", 0, seq, 1, ())), "10.0.0.1", 1, 1)
    assert m.get("sflowpipe_ingest_agent_sequence_lost_total", (("agent", "10.0.0.1"),)) == 2
    for i in range(2, 8):
        p.handle(encode_datagram(Datagram(5, f"10.0.0.{i}", 0, 1, 1, ())), "10.0.0.1", 1, 1)
    assert len(p.last_sequence) == 3
    assert m.get("sflowpipe_ingest_agent_datagrams_total", (("agent", "other"),)) == 4
