"""The ingest path without a broker: what it publishes for good and malformed datagrams, and its
bounded per-agent state."""

from __future__ import annotations

from ingest import pipeline
from sflowpipe.kafka import make_codec
from sflowpipe.metrics import Metrics
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
    s = load_settings()
    return IngestPipeline(s.ingest, s.kafka, s.topics, pub, m, make_codec(s.kafka, s.topics)), pub, m


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
    assert dead["stage"] == "decode" and dead["reason"] == "unsupported_version"  # the DecodeError's code
    assert m.get("sflowpipe_dead_letters_total", (("stage", "decode"), ("reason", "unsupported_version"))) == 1
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


def _dg(seq: int, flow_seqs=(), counter_seqs=(), drops: int = 0, agent: str = "10.0.0.1") -> bytes:
    from ingest.sflow.model import CounterSample, FlowSample
    samples = tuple(FlowSample(False, s, 0, 3, 100, 100 * s, drops, 0, 3, 0, 4, ()) for s in flow_seqs)
    samples += tuple(CounterSample(False, s, 0, 3, ()) for s in counter_seqs)
    return encode_datagram(Datagram(5, agent, 0, seq, 5000, samples))


def test_sflow_rt_agent_counters_from_sequence_numbers():
    """/agents/json's counters: datagrams and samples received, and what their sequence numbers say
    (duplicate, out of order, lost) per agent, datagram stream and data source."""
    p, _, _ = make()
    sent = [_dg(1, flow_seqs=[1], counter_seqs=[1]),
            _dg(2, flow_seqs=[2], drops=5),
            _dg(2, flow_seqs=[2], drops=5),      # the same datagram again
            _dg(5, flow_seqs=[6], drops=9),      # datagrams 3, 4 and flow samples 3..5 lost
            _dg(4, flow_seqs=[4], counter_seqs=[2]),  # late
            _dg(6, counter_seqs=[4])]           # counter sample 3 lost
    for data in sent:
        p.handle(data, "192.0.2.7", 6343, 1)
    c = p.agents.snapshot()["10.0.0.1"]
    assert c["sFlowDatagramsReceived"] == 6 and c["sFlowBytesReceived"] == sum(len(d) for d in sent)
    assert c["sFlowDatagramsDuplicates"] == 1 and c["sFlowDatagramsOutOfOrder"] == 1
    assert c["sFlowDatagramsLost"] == 2
    assert c["sFlowFlowSamples"] == 5 and c["sFlowFlowDuplicateSamples"] == 1
    assert c["sFlowFlowLostSamples"] == 3 and c["sFlowFlowOutOfOrderSamples"] == 1
    assert c["sFlowFlowDrops"] == 9  # the running drops total went 0 -> 5 -> 9
    assert c["sFlowCounterSamples"] == 3 and c["sFlowCounterLostSamples"] == 1
    assert c["sFlowCounterDuplicateSamples"] == 0 and c["sFlowCounterOutOfOrderSamples"] == 0
    assert c["sFlowFlowDatasources"] == 1 and c["sFlowCounterDatasources"] == 1
    assert c["sFlowDatagramSource"] == ["192.0.2.7"] and c["uptime"] == 5000
    assert 0 <= c["lastSeen"] <= c["firstSeen"] < 5000


def test_agent_counters_are_bounded(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_TRACKED_AGENTS", 2)
    p, _, _ = make()
    for i in range(5):
        p.handle(_dg(1, agent=f"10.0.0.{i}"), "10.0.0.1", 1, 1)
    assert sorted(p.agents.snapshot()) == ["10.0.0.0", "10.0.0.1"]


def test_a_sampled_header_that_fails_to_parse_is_counted(monkeypatch):
    """decode_header never fails a datagram, but a header whose parse raised is counted on the
    ingester's metrics (issue 13: it was swallowed without a trace)."""
    from ingest.sflow import header

    data = encode_datagram(sample_datagram())
    from ingest.sflow.datagram import decode_datagram
    headers = sum(1 for s in decode_datagram(data).samples for r in getattr(s, "records", ()) if hasattr(r, "header_protocol"))

    def broken(*args):
        raise IndexError("a parser bug")

    monkeypatch.setattr(header, "_decode", broken)
    # the ingester reads common headers itself (ingest/rows.py) and hands a datagram it cannot read
    # to the model's decode, whose parse is the one counted: here it hands over every datagram
    monkeypatch.setattr(pipeline, "decode_rows", broken)
    monkeypatch.setattr(header, "HEADER_FAILURES", {})
    monkeypatch.setattr(pipeline, "HEADER_FAILURES", header.HEADER_FAILURES)
    p, pub, m = make()
    p.handle(data, "192.0.2.1", 5000, 1)
    assert headers > 0
    assert m.get("sflowpipe_ingest_header_decode_failures_total", (("error", "IndexError"),)) == headers
    assert "sflowpipe_ingest_header_decode_failures_total{error=\"IndexError\"}" in m.text()
    assert m.total("sflowpipe_ingest_datagrams_malformed_total") == 0  # the datagram itself decoded
