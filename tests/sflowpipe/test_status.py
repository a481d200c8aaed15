"""Status messages built from a component's registry (sflowpipe/status.py): sums, label filters
and label groupings read the same numbers /metrics serves; the ingester's message keeps the shape
the API's /agents/json, /analyzer/json and status page read."""

from __future__ import annotations

import time

from ingest.service import Ingester
from ingest.sflow import encode_datagram
from ingest.sflow.model import Datagram
from sflowpipe.kafka import KafkaClients, make_codec
from sflowpipe.metrics import Metrics
from sflowpipe.settings import load_settings
from sflowpipe.status import CONTROL_FIELDS, Series, component_status, per_label
from tests.ingest.sflow.test_datagram import sample_datagram


def test_fields_sum_filter_and_group_a_registry_series():
    m = Metrics()
    m.counter("x_total", "", ("kind", "topic"))
    m.histogram("x_seconds", "")
    m.inc("x_total", 3, (("kind", "flow"), ("topic", "a")))
    m.inc("x_total", 4, (("kind", "flow"), ("topic", "b")))
    m.inc("x_total", 5, (("kind", "counters"), ("topic", "a")))
    m.observe("x_seconds", 0.25)
    m.observe("x_seconds", 0.5)
    before = int(time.time() * 1000)
    msg = component_status("k", "comp", "h:1:comp", m, {
        "all": "x_total", "flows": Series("x_total", (("kind", "flow"),)),
        "flow_on_a": Series("x_total", (("kind", "flow"), ("topic", "a"))),
        "by_kind": Series("x_total", by="kind"), "on_a_by_kind": Series("x_total", (("topic", "a"),), by="kind"),
        "none": Series("x_total", (("kind", "discards"),)), "missing": "y_total", "empty": Series("y_total", by="kind"),
        "observed": "x_seconds_count", "observed_seconds": "x_seconds_sum"}, extra=[1])
    assert before <= msg.pop("time") <= int(time.time() * 1000)
    assert msg == {"kind": "k", "component": "comp", "instance": "h:1:comp", "all": 12, "flows": 7, "flow_on_a": 3,
                   "by_kind": {"flow": 7, "counters": 5}, "on_a_by_kind": {"flow": 3, "counters": 5}, "none": 0,
                   "missing": 0, "empty": {}, "observed": 2, "observed_seconds": 0.75, "extra": [1]}
    assert per_label(m, "topic", {"n": "x_total", "seen": "x_seconds_count"}) == {"a": {"n": 5}, "b": {"n": 4}, "": {"seen": 2}}


def control_registry(counts: dict[str, int], active: int, shared: int, dead: int) -> Metrics:
    """A registry with sflowpipe control's series (outcomes, active, group shared, dead letters)."""
    m = Metrics()
    m.observed("sflowpipe_control_actions_total", "counter", "", lambda: {(k,): v for k, v in counts.items()},
               ("outcome",))
    m.observed("sflowpipe_control_active", "gauge", "", lambda: active)
    m.observed("sflowpipe_control_group_shared", "gauge", "", lambda: shared)
    m.observed("sflowpipe_dead_letters_total", "counter", "", lambda: {("control:dns:apply", "action_failed"): dead},
               ("stage", "reason"))
    return m


def test_control_fields_read_the_outcomes_of_one_counter():
    """sflowpipe control counts every outcome on one labelled counter; its message splits them."""
    m = control_registry({"apply": 3, "release": 2, "refused": 1, "failed": 4}, active=1, shared=0, dead=4)
    msg = component_status("control", "sflowpipe-control", "h:1:sflowpipe-control", m, CONTROL_FIELDS)
    assert {k: msg[k] for k in CONTROL_FIELDS} == {"active": 1, "applied": 3, "released": 2, "refused": 1,
                                                   "failed": 4, "dead_letters": 4, "group_shared": 0}


def test_the_ingester_status_keeps_the_shape_the_api_reads(tmp_path):
    """Built by component_status now, by hand before: the same fields and values (the API reads
    ``ingester``, ``listen``, the counters, ``samples`` by kind and ``agents`` with the per-agent
    session counters), plus the ``component`` and ``instance`` every status message has."""
    s = load_settings(**{"ingest.spill_dir": str(tmp_path), "ingest.listen": "127.0.0.1:0"})
    ing = Ingester(s.ingest, s.kafka, s.topics, KafkaClients(s.kafka), make_codec(s.kafka, s.topics))
    p = ing.pipeline
    p.publisher.publish = lambda topic, key, value: None  # no broker: only the registry matters here
    p.handle(encode_datagram(sample_datagram()), "192.0.2.1", 5000, 1)
    for seq in (1, 2, 5):  # 3 and 4 never arrived
        p.handle(encode_datagram(Datagram(5, "10.0.0.1", 0, seq, 1, ())), "10.0.0.1", 1, 1)
    p.handle(b"\x00\x00\x00\x04garbage", "192.0.2.9", 5001, 2)  # sFlow version 4
    p.handle(b"\x00\x00\x00\x05", "192.0.2.9", 5001, 3)  # truncated
    p.drain()
    ing.metrics.set("sflowpipe_ingest_kernel_drops", 7)
    m = ing.metrics
    msg = ing.status()
    assert msg.pop("time") > 0
    agents = msg.pop("agents")
    assert msg == {
        "kind": "ingester", "component": "sflowpipe-ingest", "instance": ing.ident, "ingester": ing.ident,
        "listen": "127.0.0.1:0", "datagrams": 6, "bytes": int(m.total("sflowpipe_ingest_bytes_received_total")),
        "unsupported_version": 1, "malformed": 2,
        "samples": {dict(k)["kind"]: int(v) for k, v in m.series("sflowpipe_ingest_samples_total").items()},
        "kernel_drops": 7, "kafka_dropped": 0, "spill_pending": 0}
    assert msg["bytes"] > 0 and set(msg["samples"]) == {"flow", "counters", "discards"}
    assert sum(msg["samples"].values()) == m.total("sflowpipe_ingest_samples_total") > 0
    assert set(agents) == {"192.0.2.10", "10.0.0.1"}
    assert agents["10.0.0.1"]["datagrams"] == 3 and agents["10.0.0.1"]["lost"] == 2
    assert agents["10.0.0.1"]["sFlowDatagramsReceived"] == 3 and agents["10.0.0.1"]["sFlowDatagramsLost"] == 2
    assert agents["192.0.2.10"]["sFlowFlowSamples"] > 0 and agents["192.0.2.10"]["sFlowDatagramSource"] == ["192.0.2.1"]
