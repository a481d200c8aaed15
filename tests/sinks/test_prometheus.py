"""The Prometheus exporter against the real broker: produce, scrape over HTTP, parse."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import AvroCodec
from sflowpipe.config_plane import startup_definitions
from sflowpipe.kafka import ensure_topics, wiring
from sflowpipe.settings import Settings
from sflowpipe.names import split_keys
from sflowpipe.readmodels.exporter import ExporterState
from sinks.prometheus import PrometheusExporter
from tests.waiting import until

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
FLOWS_URL = "/app/prometheus/scripts/export.js/flows/ALL/txt"


def _exporter(settings: Settings) -> PrometheusExporter:
    """The exporter as `sflowpipe prometheus` builds it from the settings."""
    return PrometheusExporter(settings.sinks.prometheus, settings.kafka, settings.topics, settings.limits,
                              *wiring(settings), startup_definitions(settings))


def _settings(bootstrap: str, prefix: str) -> Settings:
    return Settings(kafka={"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 1},
                    processors={"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes"}}},
                    sinks={"prometheus": {"listen": "127.0.0.1:0", "consumer_group": prefix + "prom"}})


def _counter_batch(agent: str, index: int, ifname: str) -> dict:
    batch = json.loads((EXAMPLES / "counter_sample_batch.v1.json").read_text())
    batch["agent_address"] = agent
    sample = batch["samples"][0]
    sample["source_id_type"], sample["source_id_index"] = 0, index
    sample["records"] = [("sflowpipe.PortName", {"name": ifname})]
    batch["samples"] = [sample]
    return batch


def _scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out




@pytest.fixture
def exporter(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    t = settings.topics
    topics = {"metrics": settings.kafka.topic(t.metrics), "flows": settings.kafka.topic(t.flows),
              "counter_samples": settings.kafka.topic(t.counter_samples)}
    ensure_topics(settings.kafka, list(topics.values()))
    now_ms = int(time.time() * 1000)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    metrics = AvroCodec("metrics")
    p.produce(topics["metrics"], metrics.encode({"agent": "192.0.2.1", "timestamp": now_ms, "metrics": [
        {"dataSource": "3", "name": "ifinoctets", "value": 12345.5},
        {"dataSource": "3", "name": "ifoutoctets", "value": 100.0},
        {"dataSource": "2.1", "name": "load_one", "value": 0.75}]}))
    # a series last updated an hour ago has expired
    p.produce(topics["metrics"], metrics.encode({"agent": "192.0.2.9", "timestamp": now_ms - 3_600_000, "metrics": [
        {"dataSource": "1", "name": "ifinoctets", "value": 1.0}]}))
    p.produce(topics["counter_samples"],
              AvroCodec("counter_sample_batch").encode(_counter_batch("192.0.2.1", 3, "eth0")))
    flows = AvroCodec("active_flows")
    p.produce(topics["flows"], flows.encode({"flow": "pair", "agent": "192.0.2.1", "timestamp": now_ms, "value": "bytes",
                                             "flows": [{"dataSource": "3", "key": "10.0.0.1,10.0.0.2", "value": 1000.0},
                                                       {"dataSource": "4", "key": "10.0.0.3,10.0.0.4", "value": 300.0},
                                                       {"dataSource": "5", "key": "10.0.0.5,10.0.0.6", "value": 0.05}]}))
    p.produce(topics["flows"], flows.encode({"flow": "pair", "agent": "192.0.2.2", "timestamp": now_ms, "value": "bytes",
                                             "flows": [{"dataSource": "7", "key": "10.0.0.1,10.0.0.2", "value": 500.0},
                                                       {"dataSource": "7", "key": "10.0.0.7,10.0.0.8", "value": 200.0}]}))
    assert p.flush(30) == 0
    exp = _exporter(settings)
    exp.start()
    try:
        until(lambda: 'ifname="eth0"' in _scrape(exp.port, "/metrics")[1]
               and exp.state.flows.latest.get(("pair", "192.0.2.2")))
        yield exp
    finally:
        exp.stop()


def test_counter_metrics(exporter):
    status, text = _scrape(exporter.port, "/metrics")
    assert status == 200
    samples = _samples(text)
    assert samples[("ifinoctets", (("agent", "192.0.2.1"), ("datasource", "3"), ("ifname", "eth0")))] == 12345.5
    assert samples[("ifoutoctets", (("agent", "192.0.2.1"), ("datasource", "3"), ("ifname", "eth0")))] == 100.0
    # no name known for the host data source: no ifname label
    assert samples[("load_one", (("agent", "192.0.2.1"), ("datasource", "2.1")))] == 0.75
    assert not any(labels and ("agent", "192.0.2.9") in labels for _, labels in samples)  # stale
    assert "# TYPE ifinoctets gauge" in text

    # sFlow-RT's /prometheus/metrics/{agents}/{names}/txt selects agents and names
    status, text = _scrape(exporter.port, "/prometheus/metrics/192.0.2.1/ifinoctets,load_one/txt")
    assert status == 200
    assert {name for name, _ in _samples(text)} == {"ifinoctets", "load_one"}


def test_flows_with_sflow_rt_params(exporter):
    query = ("metric=sflow_pair_bps&key=ipsource,ipdestination&label=src,dst&value=bytes&scale=8"
             "&aggMode=sum&maxFlows=3&minValue=1")
    status, text = _scrape(exporter.port, f"{FLOWS_URL}?{query}")
    assert status == 200, text
    samples = _samples(text)
    assert samples == {
        ("sflow_pair_bps", (("dst", "10.0.0.2"), ("src", "10.0.0.1"))): 12000.0,  # (1000 + 500) * 8
        ("sflow_pair_bps", (("dst", "10.0.0.4"), ("src", "10.0.0.3"))): 2400.0,
        ("sflow_pair_bps", (("dst", "10.0.0.8"), ("src", "10.0.0.7"))): 1600.0,
    }
    # Prometheus sends repeated params (key: [a, b]) as key=a&key=b; max is the default aggMode
    status, text = _scrape(exporter.port, f"{FLOWS_URL}?metric=pair_bytes&key=ipsource&key=ipdestination"
                                          "&label=src&value=bytes&maxFlows=1")
    assert _samples(text) == {("pair_bytes", (("ipdestination", "10.0.0.2"), ("src", "10.0.0.1"))): 1000.0}
    # minValue default 0.1 drops the 0.05 flow; only agent 192.0.2.2 from the path
    status, text = _scrape(exporter.port, "/app/prometheus/scripts/export.js/flows/192.0.2.2/txt"
                                          "?metric=f&flow=pair&maxFlows=10")
    assert set(_samples(text).values()) == {500.0, 200.0}
    status, text = _scrape(exporter.port, "/flows?metric=f&flow=pair&maxFlows=10&minValue=0")
    assert len(_samples(text)) == 4  # four distinct keys, the 0.05 one included
    status, _ = _scrape(exporter.port, "/metrics?metric=pair&maxFlows=10")
    assert status == 200


def test_scrape_of_an_undefined_flow_defines_it_on_the_config_topic(exporter):
    """As sFlow-RT does: the scrape's key/value/filter define the flow (for every worker)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    status, text = _scrape(exporter.port, f"{FLOWS_URL}?metric=x&key=macsource&value=frames&filter=vlan=10")
    assert status == 200 and text == ""  # values from the processors' next report on
    topic = exporter.watcher.topic  # the config topic
    c = Consumer({"bootstrap.servers": exporter.runner.clients.bootstrap, "group.id": "t",
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
              for p in c.list_topics(topic, timeout=10).topics[topic].partitions])
    seen = {}
    deadline = time.monotonic() + 20
    while "flow:prometheus_x" not in seen and time.monotonic() < deadline:
        for m in c.consume(10, 0.5):
            if m.error() is None:
                seen[m.key().decode()] = json.loads(m.value())
    c.close()
    assert seen["flow:prometheus_x"] == {"keys": "macsource", "value": "frames", "filter": "vlan=10"}


def test_flow_errors(exporter):
    exporter.state.publish_definition = None  # without a config topic, an undefined flow is an error
    status, text = _scrape(exporter.port, f"{FLOWS_URL}?metric=y&key=macsource&value=bytes")
    assert status == 404 and "no flow definition" in text
    assert _scrape(exporter.port, f"{FLOWS_URL}?key=ipsource")[0] == 400
    assert _scrape(exporter.port, f"{FLOWS_URL}?metric=x&flow=pair&aggMode=avg")[0] == 400
    assert _scrape(exporter.port, "/nothing")[0] == 404


def test_expiry_and_names_offline():
    state = ExporterState(stale_seconds=5)
    now = int(time.time() * 1000)
    state.add("metrics", {"agent": "a", "timestamp": now, "metrics": [
        {"dataSource": "1", "name": "if-in.octets", "value": float("nan")}]})
    text = state.render_metrics()
    assert 'if_in_octets{agent="a",datasource="1"} NaN' in text
    list(text_string_to_metric_families(text))
    state.add("metrics", {"agent": "a", "timestamp": now - 10_000, "metrics": [
        {"dataSource": "2", "name": "ifinoctets", "value": 1.0}]})
    assert 'datasource="2"' not in state.render_metrics()
    assert split_keys("null:[asn:ipsource:both]:unknown,ipdestination") == [
        "null:[asn:ipsource:both]:unknown", "ipdestination"]


def _scrape_as(port: int, path: str, authorization: str | None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_exporter_auth_and_read_only(kafka_bootstrap, topic_prefix, caplog):
    """Issue 12: the exporter had no auth setting and defined flows from any scrape, read-only or
    not. Now it takes the API's token / basic credentials and read-only setting: refusals are
    401 and logged with the address, and a read-only exporter defines nothing."""
    import base64
    import logging

    base = _settings(kafka_bootstrap, topic_prefix)
    prom = base.sinks.prometheus.model_validate({**base.sinks.prometheus.model_dump(), "token": "s3cret",
                                                 "basic_user": "prom", "basic_password": "pw", "read_only": True})
    settings = base.model_copy(update={"sinks": base.sinks.model_copy(update={"prometheus": prom})})
    ensure_topics(settings.kafka, [settings.kafka.topic(n) for n in ("metrics", "flows", "counter-samples")])
    caplog.set_level(logging.WARNING, logger="sinks.prometheus")
    exp = _exporter(settings)
    exp.start()
    try:
        assert exp.state.publish_definition is None  # read-only: no scrape path can define a flow
        status, _ = _scrape_as(exp.port, "/metrics", None)
        assert status == 401
        assert _scrape_as(exp.port, "/metrics", "Bearer nope")[0] == 401
        assert _scrape_as(exp.port, "/metrics", "Bearer s3cret")[0] == 200
        basic = "Basic " + base64.b64encode(b"prom:pw").decode()
        assert _scrape_as(exp.port, "/metrics", basic)[0] == 200
        assert _scrape_as(exp.port, "/metrics", "Basic " + base64.b64encode(b"prom:").decode())[0] == 401
        status, text = _scrape_as(exp.port, f"{FLOWS_URL}?metric=x&key=ipprotocol&value=frames", basic)
        assert status == 404 and "scrapes define no flow here" in text
        assert "prometheus_x" not in exp.state.definitions
        refused = [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
        assert refused == ["prometheus: failed login from 127.0.0.1: no credentials (1 from this address in 10 s)"]
    finally:
        exp.stop()


def test_a_scrape_cannot_define_an_unbounded_filter_or_pass_non_finite_numbers(exporter):
    """Issue 12: the exporter defines flows from a scrape; a pattern RE2 cannot run in linear time is
    refused with 400 naming it (the issue's pattern is accepted: RE2 runs it at once), and so are NaN
    and infinite scale / minValue."""
    from urllib.parse import quote

    status, text = _scrape(exporter.port, f"{FLOWS_URL}?metric=la&key=ipsource&filter={quote('ipsource~(?=1).*')}")
    assert status == 400 and "(?=" in text and "linear time" in text
    issue = quote("ipsource~" + ".*" * 40 + "x")
    assert _scrape(exporter.port, f"{FLOWS_URL}?metric=issue&key=ipsource&filter={issue}")[0] == 200
    for param in ("scale=nan", "minValue=inf", "minValue=1e999", "scale=-Infinity"):
        status, text = _scrape(exporter.port, f"{FLOWS_URL}?metric=issue&key=ipsource&filter={issue}&{param}")
        assert status == 400 and "finite" in text, param
