"""ICMP destination-unreachable keys (icmpunreachable{net,host,protocol,port}) and the scan detector, over
flow batches built through the real decode, batching and Avro path."""

from __future__ import annotations


import pytest

from ingest.batches import AgentBatches
from ingest.sflow import decode_datagram, encode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import Datagram, FlowSample
from processors.engine import Engine
from sflowpipe.flowspec import EvalContext, compile_key
from processors.scans import ScanDetector
from schemas.codec import AvroCodec
from schemas.definitions import hot_field_count
from sflowpipe.settings import ScanSettings
from tests.icmp_frames import echo4, unreach4, unreach6

AGENT = "192.0.2.200"


def flow_batch(frames: list[bytes], agent: str = AGENT) -> dict:
    """The frames as one flow-sample batch, encoded and read back as the processors read it."""
    samples = tuple(FlowSample(False, i + 1, 0, 3, 100, 100 * (i + 1), 0, 0, 3, 0, 7,
                               (SampledHeader.of(1, len(f) + 4, 4, f),)) for i, f in enumerate(frames))
    dg = decode_datagram(encode_datagram(Datagram(5, agent, 0, 1, 1000, samples)))
    b = AgentBatches(10_000, 1e9)
    b.add(dg, agent, 1_763_683_200_000_000)
    (batch,) = [x for x in b.drain() if x.kind == "flow"]
    codec = AvroCodec("flow_sample_batch")
    return codec.decode_prefix(codec.encode(batch.datum), hot_field_count())


def key(name: str, batch: dict) -> list:
    return compile_key(name).col(EvalContext(batch))


# ---------------------------------------------------------------- keys


def test_unreachable_keys_over_a_batch():
    b = flow_batch([
        unreach4(3, "192.0.2.66", "10.0.0.9"),                        # port unreachable, UDP
        unreach4(3, "192.0.2.66", "10.0.0.9", proto=6, dport=8080),   # port unreachable, TCP
        unreach4(1, "192.0.2.66", "10.0.0.10"),                       # host unreachable
        unreach4(0, "192.0.2.66", "10.9.0.1"),                        # net unreachable
        unreach4(13, "192.0.2.66", "10.0.0.11"),                      # administratively prohibited
        echo4("10.0.0.1", "10.0.0.2"),
        unreach6(4, "2001:db8::66", "2001:db8:9::1"),                 # v6 port unreachable
        unreach6(3, "2001:db8::66", "2001:db8:9::2"),                 # v6 address unreachable
        unreach6(0, "2001:db8::66", "2001:db8:a::1"),                 # v6 no route
    ])
    assert b["icmp_quoted_dst_ip"][:6] == ["10.0.0.9", "10.0.0.9", "10.0.0.10", "10.9.0.1", "10.0.0.11", None]
    assert key("icmpunreachableport", b) == ["udp_1434", "tcp_8080", None, None, None, None, "tcp_22", None, None]
    assert key("icmpunreachablehost", b) == [None, None, "10.0.0.10", None, None, None, None, "2001:db8:9::2", None]
    assert key("icmpunreachablenet", b) == [None, None, None, "10.9.0.1", None, None, None, None, "2001:db8:a::1"]
    assert key("icmptype", b)[:6] == ["3", "3", "3", "3", "3", "8"]
    assert key("ipdestination", b)[0] == "192.0.2.66"


def test_protocol_unreachable_key():
    b = flow_batch([
        unreach4(2, "192.0.2.66", "10.0.0.9", proto=47),              # protocol unreachable: GRE
        unreach4(2, "192.0.2.66", "10.0.0.9", proto=17),              # protocol unreachable: UDP
        unreach4(3, "192.0.2.66", "10.0.0.9"),                        # port unreachable: not this key
        unreach6(1, "2001:db8::66", "2001:db8:9::1", icmp_type=4, nh=17),  # v6 unrecognized next header
        unreach6(0, "2001:db8::66", "2001:db8:9::1", icmp_type=4),    # v6 erroneous header field: not it
    ])
    assert key("icmpunreachableprotocol", b) == ["47", "udp", None, "udp", None]
    assert key("icmpunreachableport", b) == [None, None, "udp_1434", None, None]


def test_unreachable_keys_absent_columns_are_none():
    b = flow_batch([unreach4(3, "192.0.2.66", "10.0.0.9")])
    for c in ("icmp_quoted_protocol", "icmp_quoted_dst_ip", "icmp_quoted_dst_port"):
        b[c] = []  # what an older (v1) message reads as with the newest reader
    assert key("icmpunreachableport", b) == [None]
    assert key("icmpunreachablehost", b) == [None]


def test_old_schema_version_message_reads_with_empty_new_columns():
    old = AvroCodec("flow_sample_batch").schemas.by_stem["flow_sample_batch"][0]
    assert old.version == 1
    example = (AvroCodec("flow_sample_batch").schemas.by_stem["flow_sample_batch"][0].path.parent
               / "examples" / "flow_sample_batch.v1.avro").read_bytes()
    b = AvroCodec("flow_sample_batch").decode(example)
    assert b["icmp_quoted_dst_ip"] == [] and len(b["sampling_rate"]) > 0
    assert key("icmpunreachableport", b) == [None] * len(b["sampling_rate"])
    assert ScanDetector(ScanSettings(enabled=True, threshold=1)).match_batch(b, 0.0) == []


# ---------------------------------------------------------------- the detector


def scan_frames(scanner: str, n: int, start: int = 1) -> list[bytes]:
    return [unreach4(3, scanner, f"10.0.1.{i}") for i in range(start, start + n)]


def test_threshold_reached_raises_one_event_per_interval():
    d = ScanDetector(ScanSettings(enabled=True, threshold=5, interval_s=60))
    events = d.match_batch(flow_batch(scan_frames("192.0.2.66", 8)), 120.0)
    assert len(events) == 1
    e = events[0]
    assert (e.thresholdID, e.metric, e.flowKey, e.value, e.threshold) == ("scan", "icmpunreachable", "192.0.2.66",
                                                                          5.0, 5.0)
    assert (e.agent, e.dataSource, e.timestamp) == (AGENT, "3", 120_000)
    # more targets within the same interval: no second event
    assert d.match_batch(flow_batch(scan_frames("192.0.2.66", 8, start=50)), 150.0) == []


def test_below_threshold_and_repeated_targets_raise_nothing():
    d = ScanDetector(ScanSettings(enabled=True, threshold=5, interval_s=60))
    frames = scan_frames("192.0.2.66", 4) * 3 + [echo4("192.0.2.66", "10.0.1.99")]
    frames += scan_frames("192.0.2.67", 4, start=10)  # another scanner, counted apart
    assert d.match_batch(flow_batch(frames), 0.0) == []


def test_counting_accumulates_across_batches_and_resets_each_interval():
    d = ScanDetector(ScanSettings(enabled=True, threshold=5, interval_s=60))
    assert d.match_batch(flow_batch(scan_frames("192.0.2.66", 3)), 10.0) == []
    assert d.match_batch(flow_batch(scan_frames("192.0.2.66", 3, start=3)), 20.0)[0].value == 5.0
    # next interval: the count starts again
    assert d.match_batch(flow_batch(scan_frames("192.0.2.66", 4, start=20)), 61.0) == []
    assert len(d.match_batch(flow_batch(scan_frames("192.0.2.66", 1, start=30)), 62.0)) == 1
    assert d.match_batch(flow_batch(scan_frames("192.0.2.66", 4, start=40)), 125.0) == []


def test_ports_of_one_host_and_ipv6_count_as_targets():
    d = ScanDetector(ScanSettings(enabled=True, threshold=3, interval_s=60))
    frames = [unreach4(3, "192.0.2.66", "10.0.0.9", dport=p) for p in (1, 2, 3)]
    frames += [unreach6(4, "2001:db8::66", f"2001:db8:9::{i}") for i in (1, 2, 3)]
    assert sorted(e.flowKey for e in d.match_batch(flow_batch(frames), 0.0)) == ["192.0.2.66", "2001:db8::66"]


class _NoEnrich:
    def enrich_batch(self, batch):
        return {}


def test_engine_publishes_scan_events_with_report():
    engine = Engine(_NoEnrich(), clock=lambda: 0.0,
                    scans=ScanDetector(ScanSettings(enabled=True, threshold=2, interval_s=60)))
    engine.on_flow_batch(flow_batch(scan_frames("192.0.2.66", 3)), 1.0)
    assert [e.thresholdID for e in engine.pending_events] == ["scan"]
    _, _, events = engine.report(1.0)
    assert [e.flowKey for e in events if e.thresholdID == "scan"] == ["192.0.2.66"]
    assert engine.pending_events == []


@pytest.mark.kafka
def test_icmp_unreachable_logger_to_loggly(kafka_bootstrap, topic_prefix, tmp_path):
    """The field's ICMP-unreachable logger, configured rather than scripted: a log: true,
    flowStart: true flow over (source MAC, source IP, destination MAC, destination IP,
    unreachable port) sends each new flow once, through the flow-logs topic and the
    `sflowpipe http-events` Loggly sink, to a (local, recording) Loggly bulk endpoint."""
    import json
    import signal
    import subprocess
    import sys
    import time

    from ingest.pcap import UdpDatagram
    from ingest.replay import publish_kafka
    from tests.processors.processor_harness import ProcessorProcess
    from tests.processors.test_app_integration import ingest_settings
    from tests.sinks.http_server import RecordingServer

    keys = "macsource,ipsource,macdestination,ipdestination,icmpunreachableport"
    defs = {"flows": {"unreach": {"keys": keys, "value": "frames", "log": True, "flowStart": True,
                                  "filter": "icmptype=3"}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    frames = [unreach4(3, "198.51.100.7", f"10.9.0.{i % 3 + 1}", dport=1434 + i % 3, router=f"10.9.0.{i % 3 + 1}")
              for i in range(30)] + [echo4("10.0.0.1", "10.0.0.2")] * 5
    now = time.time()
    datagrams = []
    for i in range(0, len(frames), 5):
        samples = tuple(FlowSample(False, i + j + 1, 0, 3, 10, 10 * (i + j + 1), 0, 0, 3, 0, 7,
                                   (SampledHeader.of(1, len(f) + 4, 4, f),)) for j, f in enumerate(frames[i:i + 5]))
        payload = encode_datagram(Datagram(5, AGENT, 0, i // 5 + 1, 1000 + i, samples))
        ts = now + i / 50
        datagrams.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), AGENT, 6343, "", 0, payload))
    with RecordingServer() as loggly:
        env = {**worker.env, "SFLOWPIPE_SINKS__HTTP": json.dumps(
            {"loggly": {"type": "loggly", "url": loggly.url + "/", "token": "t0ken", "topics": ["flow-logs"],
                        "batch_seconds": 0.5}})}
        sink = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "http-events", "loggly"], env=env,
                                stdout=open(tmp_path / "sink.log", "wb"), stderr=subprocess.STDOUT)
        try:
            publish_kafka(datagrams, ingest_settings(kafka_bootstrap, topic_prefix, tmp_path), speed=1)
            deadline = time.monotonic() + 60
            records: list[dict] = []
            while time.monotonic() < deadline:
                records = [json.loads(line) for r in loggly.requests for line in r.body.splitlines() if line]
                if len(records) >= 3:
                    break
                time.sleep(0.5)
            time.sleep(3)  # a repeated flow would arrive now
            records = [json.loads(line) for r in loggly.requests for line in r.body.splitlines() if line]
        finally:
            sink.send_signal(signal.SIGTERM)
            sink.wait(30)
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
    assert loggly.requests and all(r.path.startswith("/bulk/t0ken/") for r in loggly.requests)
    # each new flow once (30 unreachables over 3 flows; the echo requests are filtered out):
    # router/target -> scanner, with the port the scanner's probe could not reach
    keys = sorted(tuple(r["keys"]) for r in records)
    assert len(keys) == 3, keys
    assert [(k[1], k[3], k[4]) for k in keys] == [(f"10.9.0.{n + 1}", "198.51.100.7", f"udp_{1434 + n}")
                                                  for n in range(3)]
    assert all(k[0] and k[2] for k in keys)  # both MACs present
    assert all(r["flow"] == "unreach" and r["reason"] == "start" and r["agent"] == AGENT for r in records)
