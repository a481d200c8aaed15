"""Flow logs (sFlow-RT ``log: true``): FlowLog end/start/active-timeout records and memory cap, the
engine feeding it from batches, the settings' sFlow-RT names, the flow_log schema and the syslog
rendering."""

from __future__ import annotations

import json

import pytest

from processors.engine import Engine
from processors.flowlog import FlowLog, idle_timeout
from schemas.codec import AvroCodec
from sflowpipe.settings import FlowDefinition, SyslogSettings
from sinks.siem import FlowKeyNames
from sinks.syslog import SD_ID, Formatter
from tests.sinks.rsyslog import rsyslog  # noqa: F401  (fixture)

NOW = 1_700_000_000.0
A = "192.0.2.200"


def fl(**kw) -> FlowLog:
    return FlowLog("pair", ",", **{"idle_timeout_s": 10.0, "active_timeout_s": 60.0, **kw})


def feed(log: FlowLog, now: float, rows, agent: str = A) -> None:
    """rows: (dataSource, key values, frame_length, sampling_rate)"""
    log.add(now, agent, [r[0] for r in rows], [r[1] for r in rows], [r[2] * r[3] for r in rows],
            [r[3] for r in rows])


def test_idle_timeout_default():
    assert idle_timeout(2.0) == 10.0 and idle_timeout(20) == 40.0


def test_end_by_idle_emits_one_record_with_scaled_totals():
    log = fl()
    k = ("10.0.0.1", "10.0.0.2")
    feed(log, NOW, [("3", k, 100, 10), ("3", k, 200, 10), ("4", k, 50, 2)])
    feed(log, NOW + 5, [("3", k, 1000, 10)])
    assert log.due(NOW + 6) == []  # still active
    [r4] = log.due(NOW + 10)  # dataSource 4: 10 s idle
    assert (r4["dataSource"], r4["bytes"], r4["frames"], r4["end"]) == ("4", 100, 2, int(NOW * 1000))
    assert log.due(NOW + 14.9) == []  # 9.9 s idle
    [r] = log.due(NOW + 15)
    assert len(log) == 0
    assert r == {"flow": "pair", "flowKeys": "10.0.0.1,10.0.0.2", "keys": ["10.0.0.1", "10.0.0.2"], "agent": A,
                 "dataSource": "3", "bytes": 13000, "frames": 30, "start": int(NOW * 1000),
                 "end": int((NOW + 5) * 1000), "reason": "end", "timestamp": int((NOW + 15) * 1000)}
    assert log.due(NOW + 100) == []
    AvroCodec("flow_log").decode(AvroCodec("flow_log").encode(r))  # fits the schema


def test_flow_start_emits_once_at_start():
    log = fl(flow_start=True)
    k = ("10.0.0.1",)
    feed(log, NOW, [("3", k, 100, 10), ("3", k, 100, 10)])
    recs = log.due(NOW)
    assert [(r["reason"], r["bytes"], r["frames"], r["flowKeys"]) for r in recs] == [("start", 2000, 20, "10.0.0.1")]
    for i in range(1, 200):  # a long flow: no more records, neither active-timeout nor end
        feed(log, NOW + i, [("3", k, 100, 10)])
        assert log.due(NOW + i) == []
    assert log.due(NOW + 500) == []  # ended, silently
    feed(log, NOW + 600, [("3", k, 100, 10)])  # starts anew
    assert [r["reason"] for r in log.due(NOW + 600)] == ["start"]


def test_active_timeout_flushes_a_long_flow_in_intervals():
    log = fl(active_timeout_s=20.0)
    k = ("a", "b")
    out = []
    for i in range(50):  # one sample a second for 50 s
        feed(log, NOW + i, [("3", k, 100, 1)])
        out += log.due(NOW + i + 0.5)
    out += log.due(NOW + 100)
    assert [r["reason"] for r in out] == ["active", "active", "end"]
    assert [r["frames"] for r in out] == [21, 21, 8]
    assert sum(r["bytes"] for r in out) == 50 * 100
    assert [(r["start"], r["end"]) for r in out] == [(int((NOW + a) * 1000), int((NOW + b) * 1000))
                                                     for a, b in ((0, 20), (21, 41), (42, 49))]
    # a flow flushed by the active timeout that then goes quiet ends without an empty record
    log = fl(active_timeout_s=5.0)
    feed(log, NOW, [("3", k, 100, 1)])
    feed(log, NOW + 5, [("3", k, 100, 1)])
    assert [r["reason"] for r in log.due(NOW + 5)] == ["active"]
    assert log.due(NOW + 30) == [] and len(log) == 0


def test_memory_cap_counts_drops():
    log = fl(max_entries=10, max_pending=3, flow_start=True)
    feed(log, NOW, [("3", (str(i),), 100, 1) for i in range(25)])
    assert len(log) == 10 and log.dropped == 15
    assert len(log.due(NOW)) == 3 and log.dropped_records == 7
    feed(log, NOW + 1, [("3", ("0",), 100, 1)])  # tracked flows keep counting
    assert len(log) == 10 and log.dropped == 15
    log.forget(A)
    assert len(log) == 0
    feed(log, NOW + 2, [("3", ("new",), 100, 1)])
    assert len(log) == 1


def test_snapshot_restore_forget():
    log = fl()
    feed(log, NOW, [("3", ("x", "y"), 100, 10)])
    feed(log, NOW, [("3", ("z", "y"), 100, 10)], agent="192.0.2.1")
    snap = json.loads(json.dumps(log.snapshot(A)))
    other = fl()
    other.restore(A, snap)
    assert len(other) == 1 and other.agents() == [A]
    [r] = other.due(NOW + 20)
    assert (r["flowKeys"], r["bytes"], r["start"]) == ("x,y", 1000, int(NOW * 1000))
    log.forget(A)
    assert log.agents() == ["192.0.2.1"] and len(log) == 1


# ---------------------------------------------------------------- the engine


class _NoEnrich:
    def enrich_batch(self, batch):
        return {}


def batch(*samples, agent=A):
    """samples: (src, dst, frame_length, sampling_rate, ifIndex)"""
    return {"agent_address": agent, "source_id_type": [0] * len(samples),
            "source_id_index": [s[4] for s in samples], "sampling_rate": [s[3] for s in samples],
            "frame_length": [s[2] for s in samples], "ip_version": [4] * len(samples),
            "src_ip": [s[0] for s in samples], "dst_ip": [s[1] for s in samples],
            "ip_protocol": [6] * len(samples)}


def test_definition_keeps_sflow_rt_names():
    d = FlowDefinition.model_validate({"keys": "ipsource", "log": True, "flowStart": True, "activeTimeout": 5})
    assert (d.log, d.flow_start, d.active_timeout) == (True, True, 5.0)
    body = d.model_dump(by_alias=True, exclude_none=True)
    assert body["flowStart"] is True and body["activeTimeout"] == 5.0 and body["log"] is True
    assert FlowDefinition.model_validate(body) == d
    assert FlowDefinition(keys="ipsource", flow_start=True).flow_start  # by field name too


def test_engine_logs_flows_of_log_definitions_only():
    e = Engine(_NoEnrich(), clock=lambda: NOW)
    e.apply("flow", "pair", FlowDefinition(keys="ipsource,ipdestination", fs="|", log=True, t=2))
    e.apply("flow", "plain", FlowDefinition(keys="ipsource"))
    e.on_flow_batch(batch(("10.0.0.1", "10.0.0.2", 100, 10, 3), ("10.0.0.1", "10.0.0.2", 300, 10, 3),
                          ("10.0.0.5", "10.0.0.2", 64, 100, 4), (None, None, 64, 100, 4)), NOW)
    e.on_flow_batch(batch(("10.0.0.1", "10.0.0.2", 100, 10, 3)), NOW + 2)
    assert e.flow_logs(NOW + 3) == []
    recs = sorted(e.flow_logs(NOW + 12), key=lambda r: r["dataSource"])  # idle 10 s (max(2 * t, 10))
    assert [(r["flow"], r["flowKeys"], r["keys"], r["dataSource"], r["bytes"], r["frames"]) for r in recs] == [
        ("pair", "10.0.0.1|10.0.0.2", ["10.0.0.1", "10.0.0.2"], "3", 5000, 30),
        ("pair", "10.0.0.5|10.0.0.2", ["10.0.0.5", "10.0.0.2"], "4", 6400, 100)]
    assert recs[0]["end"] == int((NOW + 2) * 1000)
    # checkpoints carry open flows; a redefinition ends them
    e.on_flow_batch(batch(("10.0.0.7", "10.0.0.8", 100, 10, 3)), NOW + 20)
    state = json.loads(json.dumps(e.snapshot(A)))
    e2 = Engine(_NoEnrich(), clock=lambda: NOW + 21)
    e2.apply("flow", "pair", FlowDefinition(keys="ipsource,ipdestination", fs="|", log=True, t=2))
    e2.restore(A, state)
    e.apply("flow", "pair", FlowDefinition(keys="ipsource,ipdestination", fs="|", log=True, t=5))
    assert [r["flowKeys"] for r in e.flow_logs(NOW + 21)] == ["10.0.0.7|10.0.0.8"]
    assert [r["bytes"] for r in e2.flow_logs(NOW + 40)] == [1000]
    e2.forget(A)
    assert e2.flow_logs(NOW + 100) == []


def test_syslog_renders_flow_log_records():
    r = {"flow": "pair", "flowKeys": "10.1.0.10,192.0.2.10", "keys": ["10.1.0.10", "192.0.2.10"],
         "agent": "192.0.2.200", "dataSource": "3", "bytes": 1500000, "frames": 1000, "start": 1763683140000,
         "end": 1763683190000, "reason": "end", "timestamp": 1763683200000}
    keys = FlowKeyNames({"pair": ["ipsource", "ipdestination"]})
    f = Formatter(SyslogSettings(), keys, hostname="h", procid="1")
    [m] = f.messages("flow_log", r)
    m = m.decode()
    assert m.startswith(f'<134>1 2025-11-21T00:00:00.000Z h sflowpipe 1 flowlog [{SD_ID} flow="pair" '
                        'agent="192.0.2.200" dataSource="3" flowKeys="10.1.0.10,192.0.2.10" bytes="1500000" '
                        'frames="1000" start="1763683140000" end="1763683190000" reason="end"] ')
    assert m.endswith("flow pair 10.1.0.10,192.0.2.10 on 192.0.2.200/3: 1500000 bytes 1000 frames "
                      "2025-11-20T23:59:00.000Z - 2025-11-20T23:59:50.000Z (end)")
    cef = Formatter(SyslogSettings(format="cef"), keys, framed=False).messages("flow_log", r)[0].decode()
    assert cef.startswith("CEF:0|sflowpipe|sflowpipe|") and "|flowlog:pair|flow log pair|1|" in cef
    assert " src=10.1.0.10 dst=192.0.2.10 " in cef and " cn1=1500000 cn1Label=bytes " in cef
    leef = Formatter(SyslogSettings(format="leef"), keys, framed=False).messages("flow_log", r)[0].decode()
    assert "\tsrc=10.1.0.10\tdst=192.0.2.10\t" in leef and "\tbytes=1500000\t" in leef
    assert Formatter(SyslogSettings(format="rfc3164"), keys).messages("flow_log", r)[0].startswith(b"<134>")


def test_flow_log_records_through_rsyslog(rsyslog):  # noqa: F811
    from sinks.syslog import SyslogSink

    r = {"flow": "pair", "flowKeys": "10.1.0.10,192.0.2.10", "keys": ["10.1.0.10", "192.0.2.10"],
         "agent": "192.0.2.200", "dataSource": "3", "bytes": 1500000, "frames": 1000, "start": 1763683140000,
         "end": 1763683190000, "reason": "active", "timestamp": 1763683200000}
    sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{rsyslog.tcp}", transport="tcp", topics=["flow-logs"]))
    assert sink.add("sflow.flow-logs", "flow_log", None, r, b"") == 1
    sink.flush()
    sink.close()
    [got] = rsyslog.wait_for(1)
    assert got["msgid"] == "flowlog" and got["severity"] == "6"
    assert got["rfc5424-sd"][SD_ID] == {"flow": "pair", "agent": "192.0.2.200", "dataSource": "3",
                                        "flowKeys": "10.1.0.10,192.0.2.10", "bytes": "1500000", "frames": "1000",
                                        "start": "1763683140000", "end": "1763683190000", "reason": "active"}


def test_flow_log_records_as_http_json():
    from sflowpipe.settings import HttpSinkSettings
    from sinks.http_events import HttpEventSink
    from tests.sinks.http_server import RecordingServer
    from tests.sinks.test_http_events import FakeDeadLetters

    codec = AvroCodec("flow_log")
    r = {"flow": "pair", "flowKeys": "10.1.0.10,192.0.2.10", "keys": ["10.1.0.10", "192.0.2.10"],
         "agent": "192.0.2.200", "dataSource": "3", "bytes": 1500000, "frames": 1000, "start": 1763683140000,
         "end": 1763683190000, "reason": "end", "timestamp": 1763683200000}
    raw = codec.encode(r)
    with RecordingServer() as srv:
        for kind in ("webhook", "splunk"):
            sink = HttpEventSink("t", HttpSinkSettings(type=kind, url=srv.url + "/x", token="tok",
                                                       topics=["flow-logs"]), FakeDeadLetters())
            sink.add("sflow.flow-logs", "flow_log", b"192.0.2.200", codec.decode(raw), raw)
            sink.flush()
    hook, hec = srv.requests
    assert json.loads(hook.body) == [r]
    doc = json.loads(hec.body)
    assert doc["event"] == r and doc["time"] == 1763683200.0 and doc["host"] == "192.0.2.200"


# ---------------------------------------------------------------- on the real broker


@pytest.mark.kafka
def test_log_flows_on_the_real_broker(kafka_bootstrap, topic_prefix, tmp_path):
    """Generated traffic through the ingest path to a Faust worker: log: true flows end (idle 10 s)
    with the brute-force byte totals; a flowStart flow logs each flow once when it starts."""
    import time
    from collections import defaultdict

    from ingest.replay import publish_kafka
    from tests.kafka_helpers import read_topic
    from tests.processors.processor_harness import ProcessorProcess
    from tests.processors.test_app_integration import brute_force_pairs, generated, ingest_settings

    defs = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes", "log": True},
                      "src": {"keys": "ipsource", "value": "frames", "log": True, "flowStart": True},
                      "quiet": {"keys": "ipsource"}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    datagrams = generated(3, 20, time.time())
    want = brute_force_pairs([d.payload for d in datagrams])  # (agent, ds) -> {"src,dst": bytes}
    want_pairs = {(a, ds, k): v for (a, ds), flows in want.items() for k, v in flows.items()}
    want_srcs = {(a, ds, k.split(",")[0]) for (a, ds, k) in want_pairs}
    try:
        t0 = time.time()
        publish_kafka(datagrams, ingest_settings(kafka_bootstrap, topic_prefix, tmp_path), speed=1)

        def ended(msgs):
            seen = {(m["agent"], m["dataSource"], m["flowKeys"]) for m in msgs if m["flow"] == "pair"}
            return seen >= set(want_pairs)

        msgs = read_topic(kafka_bootstrap, topic_prefix + "flow-logs", ended, timeout=60)
        msgs = read_topic(kafka_bootstrap, topic_prefix + "flow-logs", lambda m: False, timeout=3)  # nothing more
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    pairs = [m for m in msgs if m["flow"] == "pair"]
    srcs = [m for m in msgs if m["flow"] == "src"]
    assert {m["flow"] for m in msgs} == {"pair", "src"}
    got: dict = defaultdict(int)
    for m in pairs:
        assert m["reason"] == "end" and m["keys"] == m["flowKeys"].split(",")
        assert t0 * 1000 - 1000 <= m["start"] <= m["end"] <= m["timestamp"] - 10_000  # ended after 10 s idle
        got[(m["agent"], m["dataSource"], m["flowKeys"])] += m["bytes"]
    assert len(pairs) == len(want_pairs)  # one record per flow
    assert dict(got) == {k: int(v) for k, v in want_pairs.items()}
    assert all(m["reason"] == "start" for m in srcs)
    assert sorted((m["agent"], m["dataSource"], m["flowKeys"]) for m in srcs) == sorted(want_srcs)
