"""The REST API's paths and JSON shapes (sFlow-RT's), auth and read-only mode, over real HTTP
(aiohttp's test server on a local port), with the state fed as the topic reader would."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.server import Api
from api.state import ApiState
from sflowpipe.settings import Settings


def _settings(**api) -> Settings:
    s = Settings()
    return s.model_copy(update={"api": s.api.model_copy(update=api)})


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, kind, name, body) -> None:
        self.calls.append((kind, name, body))


async def _client(settings: Settings, state: ApiState | None = None):
    state = state or ApiState(settings.api)
    rec = Recorder()
    api = Api(settings.api, settings.limits, state, rec)
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    return client, state, rec


def _feed(state: ApiState, now_ms: int | None = None) -> None:
    now_ms = now_ms or int(time.time() * 1000)
    state.add("active_flows", {"flow": "pair", "agent": "10.0.0.1", "timestamp": now_ms, "value": "bytes",
                               "flows": [{"dataSource": "1", "key": "10.1.1.1,10.2.2.2", "value": 3000.0},
                                         {"dataSource": "2", "key": "10.1.1.3,10.2.2.4", "value": 10.0}]})
    state.add("active_flows", {"flow": "pair", "agent": "10.0.0.2", "timestamp": now_ms, "value": "bytes",
                               "flows": [{"dataSource": "7", "key": "10.1.1.1,10.2.2.2", "value": 1000.0}]})
    state.add("metrics", {"agent": "10.0.0.1", "timestamp": now_ms, "metrics": [
        {"dataSource": "1", "name": "ifinoctets", "value": 100.0},
        {"dataSource": "2", "name": "ifinoctets", "value": 300.0},
        {"dataSource": "1", "name": "ifinutilization", "value": 1.5}]})
    state.add("metrics", {"agent": "10.0.0.2", "timestamp": now_ms, "metrics": [
        {"dataSource": "3", "name": "ifinoctets", "value": 50.0}]})


@pytest.mark.asyncio
async def test_activeflows_merge_agents_like_sflow_rt():
    client, state, _ = await _client(_settings())
    try:
        _feed(state)
        r = await client.get("/activeflows/ALL/pair/json?maxFlows=5")
        rows = await r.json()
        assert rows[0] == {"key": "10.1.1.1,10.2.2.2", "value": 3000.0, "agent": "10.0.0.1", "dataSource": "1"}
        r = await client.get("/activeflows/ALL/pair/json?aggMode=sum&minValue=20")
        assert await r.json() == [{"key": "10.1.1.1,10.2.2.2", "value": 4000.0, "agent": "10.0.0.1",
                                   "dataSource": "1"}]
        r = await client.get("/activeflows/10.0.0.2/pair/json")
        assert [x["agent"] for x in await r.json()] == ["10.0.0.2"]
        assert (await client.get("/activeflows/ALL/pair/json?aggMode=avg")).status == 400
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_stale_top_flows_are_not_shown():
    client, state, _ = await _client(_settings(stale_s=5))
    try:
        _feed(state, int((time.time() - 30) * 1000))
        assert await (await client.get("/activeflows/ALL/pair/json")).json() == []
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_metric_dump_metrics_and_prometheus_paths():
    client, state, _ = await _client(_settings())
    try:
        _feed(state)
        m = await (await client.get("/metric/ALL/ifinoctets,sum:ifinoctets,min:ifinoctets/json")).json()
        assert [x["metricName"] for x in m] == ["ifinoctets", "sum:ifinoctets", "min:ifinoctets"]
        assert m[0]["metricValue"] == 300.0 and m[0]["agent"] == "10.0.0.1" and m[0]["dataSource"] == "2"
        assert m[0]["metricN"] == 3 and "lastUpdate" in m[0]
        assert m[1]["metricValue"] == 450.0 and m[2]["metricValue"] == 50.0
        dump = await (await client.get("/dump/10.0.0.1/ifinoctets/json")).json()
        assert [(d["dataSource"], d["metricValue"]) for d in dump] == [("1", 100.0), ("2", 300.0)]
        assert set(dump[0]) >= {"agent", "dataSource", "metricName", "metricValue", "lastUpdate"}
        names = await (await client.get("/metrics/json")).json()
        assert set(names) == {"ifinoctets", "ifinutilization", "pair"}  # flow metrics are metrics too
        per_agent = await (await client.get("/metric/10.0.0.1/json")).json()
        assert per_agent == {"1.ifinoctets": 100.0, "1.ifinutilization": 1.5, "2.ifinoctets": 300.0,
                             "1.pair": 3000.0, "2.pair": 10.0}
        text = await (await client.get("/prometheus/metrics/10.0.0.1/ifinoctets/txt")).text()
        assert 'ifinoctets{agent="10.0.0.1",datasource="2"} 300' in text and "10.0.0.2" not in text
        assert (await client.get("/metric/ALL/median:ifinoctets/json")).status == 400
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_definitions_put_get_delete_go_to_the_config_topic():
    client, state, rec = await _client(_settings())
    try:
        # sFlow-RT scripts send JSON without a Content-Type
        r = await client.put("/flow/pair/json", data='{"keys":"ipsource,ipdestination","value":"bytes"}')
        assert r.status == 204
        assert rec.calls == [("flow", "pair", {"keys": "ipsource,ipdestination", "value": "bytes"})]
        got = await (await client.get("/flow/pair/json")).json()
        assert got["keys"] == "ipsource,ipdestination" and got["value"] == "bytes" and got["t"] == 2.0
        assert "pair" in await (await client.get("/flow/json")).json()
        r = await client.put("/threshold/elephant/json", json={"metric": "pair", "value": 125000, "byFlow": True,
                                                               "timeout": 1})
        assert r.status == 204
        th = await (await client.get("/threshold/elephant/json")).json()
        assert th["byFlow"] is True and th["value"] == 125000
        assert (await client.put("/group/site/json", json={"lan": ["10.0.0.0/8"]})).status == 204
        assert await (await client.get("/group/site/json")).json() == {"lan": ["10.0.0.0/8"]}
        assert (await client.put("/forwarding/c1/json", json={"address": "127.0.0.1", "port": 7343})).status == 204
        assert await (await client.get("/forwarding/json")).json() == {"c1": {"address": "127.0.0.1", "port": 7343}}
        bad = await client.put("/flow/bad/json", json={"keys": "ipsource", "value": "bytes", "bogus": 1})
        assert bad.status == 400 and "bogus" in await bad.text()
        assert (await client.put("/flow/bad/json", data="{not json")).status == 400
        assert (await client.delete("/flow/pair/json")).status == 204
        assert rec.calls[-1] == ("flow", "pair", None)
        assert (await client.get("/flow/pair/json")).status == 404
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_events_newest_first_filtered_and_long_polled():
    client, state, _ = await _client(_settings())
    try:
        def event(pid, tid, key):
            return {"eventID": pid, "thresholdID": tid, "agent": "10.0.0.1", "dataSource": "1", "metric": "pair",
                    "value": 2e6, "threshold": 1.25e6, "flowKey": key, "timestamp": int(time.time() * 1000)}

        # ids are topic positions (offset * 1024 + partition), the same in every API instance
        state.add("event", event(900, "elephant", "a,b"), 0, 5)
        state.add("event", event(900, "elephant", "a,b"), 0, 6)  # redelivered: shown once, with its first id
        state.add("event", event(5, "other", "c,d"), 1, 2)  # another worker's partition
        all_events = await (await client.get("/events/json?eventID=-1&maxEvents=10")).json()
        assert [(e["eventID"], e["thresholdID"]) for e in all_events] == [(2049, "other"), (5120, "elephant")]
        assert all_events[1]["processorEventID"] == 900
        only = await (await client.get("/events/json?thresholdID=elephant")).json()
        assert [e["flowKey"] for e in only] == ["a,b"]
        # after the newest one read here: nothing, though an older id (2049) came after it
        assert await (await client.get("/events/json?eventID=2049")).json() == []
        assert [e["eventID"] for e in await (await client.get("/events/json?eventID=5120")).json()] == [2049]
        t0 = time.monotonic()
        poll = asyncio.create_task(client.get("/events/json?eventID=2049&timeout=10"))
        await asyncio.sleep(0.5)  # waiting this out is the check: with nothing newer, the poll stays open
        assert not poll.done()
        state.add("event", event(901, "elephant", "e,f"), 0, 7)
        got = await (await poll).json()
        assert [e["flowKey"] for e in got] == ["e,f"] and got[0]["eventID"] == 7 * 1024
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        assert await (await client.get("/events/json?eventID=7168&timeout=0.5")).json() == []
        assert time.monotonic() - t0 >= 0.45
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_status_and_agents_from_ingester_status_messages():
    client, state, _ = await _client(_settings())
    try:
        now = int(time.time() * 1000)
        for t, dg, fs in ((now - 2000, 100, 600), (now, 300, 1800)):
            state.add_status({"ingester": "h:1:0", "listen": "[::]:6343", "time": t, "datagrams": dg, "malformed": 2,
                              "samples": {"flow": fs, "counter": 0}, "kernel_drops": 1, "kafka_dropped": 0,
                              "spill_pending": 0, "agents": {"10.0.0.1": {"datagrams": dg, "lost": 3}}})
        state.set_lag({"sflowpipe-clickhouse": 12})
        st = await (await client.get("/sflowpipe/status/json")).json()
        ing = st["ingesters"][0]
        assert ing["datagrams_per_s"] == pytest.approx(100.0) and ing["samples_per_s"] == pytest.approx(600.0)
        assert st["totals"]["malformed"] == 2 and st["totals"]["kernel_drops"] == 1
        assert st["sinks"] == {"sflowpipe-clickhouse": 12}
        agents = await (await client.get("/agents/json")).json()
        assert agents["10.0.0.1"]["sFlowDatagramsReceived"] == 300 and agents["10.0.0.1"]["sFlowDatagramsLost"] == 3
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_processor_and_sink_status_messages_reach_the_status_page_and_analyzer():
    """Processor workers and sinks publish their registry's numbers (sflowpipe/status.py): the
    status page shows each instance with its rate, /analyzer/json sums the live ones under
    sflowpipe's own field names, a silent instance is forgotten, other kinds are not mixed in."""
    from sflowpipe.metrics import Metrics
    from sflowpipe.status import PROCESSOR_FIELDS, SINK_FIELDS, component_status

    proc, sink = Metrics(), Metrics()
    proc.counter("sflowpipe_processors_samples_total", "", ("kind",))
    proc.counter("sflowpipe_processors_undecodable_total", "", ("kind",))
    proc.counter("sflowpipe_processors_definitions_rejected_total", "")
    proc.histogram("sflowpipe_processors_checkpoint_seconds", "")
    sink.observed("sflowpipe_sink_records_written_total", "counter", "", lambda: written[0])
    sink.histogram("sflowpipe_sink_flush_seconds", "")
    sink.observed("sflowpipe_sink_lag_messages", "gauge", "", lambda: {("t", 0): 4, ("t", 1): 3}, ("topic", "partition"))
    sink.observed("sflowpipe_dead_letters_total", "counter", "", lambda: {("http:x", "delivery_failed"): 2},
                  ("stage", "reason"))
    written = [100]
    client, state, _ = await _client(_settings())
    try:
        now = int(time.time() * 1000)
        proc.inc("sflowpipe_processors_samples_total", 1000, (("kind", "flow"),))
        proc.inc("sflowpipe_processors_samples_total", 10, (("kind", "counter"),))
        proc.inc("sflowpipe_processors_undecodable_total", 1, (("kind", "flow"),))
        proc.inc("sflowpipe_processors_definitions_rejected_total", 2)
        proc.observe("sflowpipe_processors_checkpoint_seconds", 0.004)
        sink.observe("sflowpipe_sink_flush_seconds", 0.02)
        first = component_status("processor", "sflowpipe-processors", "h:app:0", proc, PROCESSOR_FIELDS)
        state.status_message({**first, "time": now - 2000})
        state.status_message({**component_status("sink", "sflowpipe-syslog", "h:9:sflowpipe-syslog", sink, SINK_FIELDS),
                              "time": now - 2000})
        proc.inc("sflowpipe_processors_samples_total", 2000, (("kind", "flow"),))
        written[0] = 300
        state.status_message(component_status("processor", "sflowpipe-processors", "h:app:0", proc, PROCESSOR_FIELDS))
        state.status_message(component_status("sink", "sflowpipe-syslog", "h:9:sflowpipe-syslog", sink, SINK_FIELDS))
        # a sink that went silent long ago (restarted: a new pid), and a kind the API does not keep
        state.status_message({"kind": "sink", "component": "sflowpipe-syslog", "instance": "h:8:sflowpipe-syslog",
                              "time": now - 400_000, "records_written": 5})
        state.status_message({"kind": "evaluation", "worker": "h:app:0", "time": now})
        st = await (await client.get("/sflowpipe/status/json")).json()
        [p] = st["processors"]
        assert p["instance"] == "h:app:0" and p["alive"] and p["samples"] == 3010
        assert p["per_s"] == pytest.approx(1000.0, rel=0.05) and p["checkpoint_ms"] == pytest.approx(4.0)
        assert p["undecodable"] == 1 and p["definitions_rejected"] == 2
        [s] = st["sink_instances"]  # the silent one forgotten
        assert s["component"] == "sflowpipe-syslog" and s["records_written"] == 300 and s["lag"] == 7
        assert s["per_s"] == pytest.approx(100.0, rel=0.05) and s["flush_ms"] == pytest.approx(20.0)
        assert s["dead_letters"] == 2
        a = await (await client.get("/analyzer/json")).json()
        assert a["processorWorkers"] == 1 and a["processorSamples"] == 3010 and a["processorDefinitionsRejected"] == 2
        assert a["sinkInstances"] == 1 and a["sinkRecordsWritten"] == 300 and a["sinkLag"] == 7
        assert a["sinkDeadLetters"] == 2 and a["sFlowDatagramsReceived"] == 0  # sFlow-RT's fields unchanged
        text = await (await client.get("/prometheus/analyzer/txt")).text()
        assert "sflow_analyzer_sink_records_written_total 300\n" in text
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_control_status_and_the_apis_own_numbers_on_the_status_page_and_analyzer():
    """`sflowpipe control` publishes its registry's numbers (kind control): a table of their own on
    the status page, control* fields in /analyzer/json. The API's own numbers come from its own
    registry: requests, refused logins, long-polls open (api, api* fields)."""
    from pydantic import SecretStr

    from sflowpipe.status import CONTROL_FIELDS, component_status
    from tests.sflowpipe.test_status import control_registry

    ctl = control_registry({"apply": 3, "release": 1, "refused": 2, "failed": 1}, active=2, shared=1, dead=1)
    client, state, _ = await _client(_settings(token=SecretStr("s3cret")))
    auth = {"Authorization": "Bearer s3cret"}
    try:
        state.status_message(component_status("control", "sflowpipe-control", "h:5:sflowpipe-control", ctl,
                                               CONTROL_FIELDS))
        assert (await client.get("/flow/json")).status == 401
        assert (await client.get("/flow/json", headers=auth)).status == 200
        st = await (await client.get("/sflowpipe/status/json", headers=auth)).json()
        [c] = st["controls"]
        assert c["component"] == "sflowpipe-control" and c["alive"] and "per_s" not in c
        assert (c["active"], c["applied"], c["released"], c["refused"], c["failed"]) == (2, 3, 1, 2, 1)
        assert c["dead_letters"] == 1 and c["group_shared"] == 1
        assert st["processors"] == [] and st["sink_instances"] == []
        [own] = st["api"]  # kept at start, then every 2 s
        assert own["component"] == "sflowpipe-api" and own["alive"] and own["long_polls_open"] == 0
        a = await (await client.get("/analyzer/json", headers=auth)).json()
        assert (a["controlInstances"], a["controlActive"], a["controlApplied"], a["controlReleased"],
                a["controlRefused"], a["controlFailed"]) == (1, 2, 3, 1, 2, 1)
        # read now: the three requests before this one, one of them refused
        assert (a["apiRequests"], a["apiUnauthorized"], a["apiLongPollsOpen"]) == (3, 1, 0)
        text = await (await client.get("/prometheus/analyzer/txt", headers=auth)).text()
        assert "sflow_analyzer_control_failed_total 1\n" in text and "sflow_analyzer_api_requests_total 4\n" in text
        # a control that went silent long ago is forgotten; other API instances never appear
        state.status_message({"kind": "control", "component": "sflowpipe-control", "instance": "h:4:sflowpipe-control",
                              "time": int(time.time() * 1000) - 400_000, "applied": 9})
        state.status_message({"kind": "api", "component": "sflowpipe-api", "instance": "h:1:api",
                              "time": int(time.time() * 1000), "requests": 9})
        st = await (await client.get("/sflowpipe/status/json", headers=auth)).json()
        assert [c["instance"] for c in st["controls"]] == ["h:5:sflowpipe-control"]
        assert [r["instance"] for r in st["api"]] == [own["instance"]]
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_bearer_and_basic_auth_and_read_only():
    from sflowpipe.typed import SecretStr

    client, _, rec = await _client(_settings(token=SecretStr("s3cret"), basic_user="ops",
                                             basic_password=SecretStr("pw")))
    try:
        assert (await client.get("/flow/json")).status == 401
        assert (await client.get("/flow/json", headers={"Authorization": "Bearer nope"})).status == 401
        assert (await client.get("/flow/json", headers={"Authorization": "Bearer s3cret"})).status == 200
        basic = "Basic " + base64.b64encode(b"ops:pw").decode()
        assert (await client.get("/flow/json", headers={"Authorization": basic})).status == 200
        wrong = "Basic " + base64.b64encode(b"ops:x").decode()
        assert (await client.get("/flow/json", headers={"Authorization": wrong})).status == 401
    finally:
        await client.close()
    client, _, rec = await _client(_settings(read_only=True))
    try:
        r = await client.put("/flow/x/json", json={"keys": "ipsource", "value": "bytes"})
        assert r.status == 403 and rec.calls == []
        assert (await client.delete("/flow/x/json")).status == 403
        assert (await client.get("/flow/json")).status == 200
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_failed_logins_are_logged_with_the_address_at_most_once_per_10_s(caplog):
    """Issue 12: failed logins were never logged. Each refusal names the client address and why,
    never the secret tried; one line per address per 10 s, the next one carrying the count."""
    from sflowpipe.typed import SecretStr

    settings = _settings(token=SecretStr("s3cret"), basic_user="ops", basic_password=SecretStr("pw"))
    rec = Recorder()
    api = Api(settings.api, settings.limits, ApiState(settings.api), rec)
    now = [1000.0]
    api.auth.failures.clock = lambda: now[0]
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    caplog.set_level(logging.WARNING, logger="api.server")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
    try:
        wrong = "Basic " + base64.b64encode(b"admin:guess1").decode()
        assert (await client.get("/flow/json", headers={"Authorization": wrong})).status == 401
        assert lines() == ["api: failed login from 127.0.0.1: wrong basic credentials for user 'admin' "
                           "(1 from this address in 10 s)"]
        for guess in (b"guess2", b"guess3"):  # within 10 s: counted, not logged
            hdr = "Basic " + base64.b64encode(b"admin:" + guess).decode()
            assert (await client.put("/flow/x/json", json={"keys": "ipsource"}, headers={"Authorization": hdr})
                    ).status == 401
        assert (await client.get("/flow/json", headers={"Authorization": "Bearer guess4"})).status == 401
        assert (await client.get("/flow/json", headers={"Authorization": "Bearer s3cret"})).status == 200  # not logged
        assert len(lines()) == 1 and rec.calls == []
        now[0] += 10
        api.auth.failures.flush()  # the timer's call, 10 s after the first line
        assert lines()[1:] == ["api: failed login from 127.0.0.1: wrong bearer token (3 from this address in 10 s)"]
        assert (await client.get("/flow/json")).status == 401  # within 10 s of that line: counted
        assert len(lines()) == 2
        now[0] += 10.5
        assert (await client.get("/flow/json")).status == 401
        assert lines()[2:] == ["api: failed login from 127.0.0.1: no credentials (2 from this address in 10 s)"]
        assert not any(g in "".join(lines()) for g in ("guess1", "guess2", "guess3", "guess4", "s3cret"))
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_read_only_api_defines_nothing_by_any_path():
    """A read-only API refuses every write and its export.js path (sFlow-RT's prometheus app)
    defines no flow from a scrape; with scrape_defines_flows off, only the scrape is refused."""
    flows = "/app/prometheus/scripts/export.js/flows/ALL/txt"
    client, state, rec = await _client(_settings(read_only=True))
    try:
        for method, path, body in (("PUT", "/flow/x/json", {"keys": "ipsource"}),
                                   ("PUT", "/threshold/t/json", {"metric": "x", "value": 1}),
                                   ("PUT", "/group/json", {"g": {"a": ["10.0.0.0/8"]}}),
                                   ("PUT", "/group/g/json", {"a": ["10.0.0.0/8"]}),
                                   ("PUT", "/forwarding/f/json", {"address": "192.0.2.1"}),
                                   ("PUT", "/topology/json", {"nodes": {}}), ("DELETE", "/flow/pair/json", None),
                                   ("POST", "/flow/x/json", {"keys": "ipsource"})):
            r = await client.request(method, path, json=body)
            assert r.status in (403, 405), (method, path, r.status)
        r = await client.get(flows, params={"metric": "proto", "key": "ipprotocol", "value": "frames"})
        assert r.status == 404 and "scrapes define no flow here" in await r.text()
        assert rec.calls == [] and state.get_definitions("flow") == {}
    finally:
        await client.close()
    client, state, rec = await _client(_settings(scrape_defines_flows=False))
    try:
        r = await client.get(flows, params={"metric": "proto", "key": "ipprotocol", "value": "frames"})
        assert r.status == 404 and rec.calls == []
        assert (await client.put("/flow/x/json", json={"keys": "ipsource"})).status == 204 and len(rec.calls) == 1
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_openapi_document_lists_every_route_and_ui_is_served():
    client, _, _ = await _client(_settings())
    try:
        doc = await (await client.get("/api-docs")).json()
        assert doc["openapi"].startswith("3.")
        for path, method in (("/flow/{name}/json", "put"), ("/events/json", "get"),
                             ("/activeflows/{agent}/{name}/json", "get"), ("/forwarding/{name}/json", "delete"),
                             ("/prometheus/metrics/{agent}/{metric}/txt", "get"), ("/dump/{agent}/{metric}/json", "get")):
            assert method in doc["paths"][path], path
        ev = {p["name"] for p in doc["paths"]["/events/json"]["get"]["parameters"]}
        assert ev == {"eventID", "maxEvents", "timeout", "thresholdID"}
        r = await client.get("/", allow_redirects=True)
        assert r.status == 200 and "sflowpipe" in await r.text()
    finally:
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("body, field, token, position", [
    ({"keys": "ipsource,nosuchkey"}, "keys", "nosuchkey", 9),
    ({"keys": "memcachekey.1"}, "keys", "memcachekey.1", 0),  # application records have no tunnel level
    ({"keys": "ipsource", "filter": "ipprotocol=6&&"}, "filter", None, 13),
    ({"keys": "ipsource", "filter": "ipprotocol=6&nosuch=1"}, "filter", "nosuch", 13),
    ({"keys": "ipsource", "value": "packets"}, "value", "packets", 0),
])
async def test_uncomputable_flow_is_refused_where_it_is_made(body, field, token, position):
    """The workers' compiler runs at the PUT: a flow they cannot compute is refused with a JSON body
    naming the fault and its place, and is never published, stored or listed."""
    client, state, rec = await _client(_settings())
    try:
        r = await client.put("/flow/bad/json", json=body)
        assert r.status == 400
        got = await r.json()
        assert got["field"] == field and got["position"] == position and got["kind"] == "flow"
        assert got.get("token") == token and "flow bad" in got["error"]
        assert rec.calls == [] and "bad" not in await (await client.get("/flow/json")).json()
        assert (await client.get("/flow/bad/json")).status == 404
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_group_with_a_bad_cidr_is_refused():
    client, _, rec = await _client(_settings())
    try:
        r = await client.put("/group/site/json", json={"lan": ["10.0.0.0/8", "10.0.0.300/24"]})
        assert r.status == 400 and (await r.json())["token"] == "10.0.0.300/24" and rec.calls == []
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_requests_and_open_long_polls_on_the_api_metrics():
    """The API's own /metrics, scraped over HTTP: each request counted by its route template and
    status, and a long-poll counted as open while it waits."""
    from sflowpipe.metrics import MetricsServer
    from tests.scrape import scrape

    settings = _settings()
    state = ApiState(settings.api)
    api = Api(settings.api, settings.limits, state, Recorder())
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    server = MetricsServer("127.0.0.1:0", api.metrics).start()
    try:
        assert (await client.get("/version")).status == 200
        assert (await client.get("/flow/nothing/json")).status == 404
        poll = asyncio.create_task(client.get("/events/json?eventID=-1&timeout=10"))
        deadline = time.monotonic() + 5
        while scrape(server.url).value("sflowpipe_api_long_polls_open") != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert scrape(server.url).value("sflowpipe_api_long_polls_open") == 1
        state.add("event", {"eventID": 1, "thresholdID": "t", "agent": "10.0.0.1", "dataSource": "1", "metric": "m",
                            "value": 2.0, "threshold": 1.0, "flowKey": "a", "timestamp": int(time.time() * 1000)}, 0, 1)
        assert len(await (await poll).json()) == 1
        m = scrape(server.url)
    finally:
        server.stop()
        await client.close()
    assert m.value("sflowpipe_api_long_polls_open") == 0
    assert m.value("sflowpipe_api_requests_total", route="/version", status="200", method="GET") == 1
    assert m.value("sflowpipe_api_requests_total", route="/flow/{name}/json", status="404") == 1
    assert m.value("sflowpipe_api_requests_total", route="/events/json", status="200") == 1
    assert m.value("sflowpipe_api_request_seconds_count", route="/events/json") == 1
