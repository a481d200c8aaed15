"""sFlow-RT's paths added for parity (issue 11) over real HTTP, with the state fed as the topic
reader feeds it: flow metrics in /metric /dump /table, every aggregation prefix, /flows/json,
/flowkeys/json, /analyzer/json, /prometheus/analyzer/txt, /license/json, /topology/json, the
prometheus app's export.js paths on the API port, whole-set /group/json and /agents/json counters."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.state import ApiState
from api.topiclog import position_id as flow_id
from tests.api.test_server import _client, _feed, _settings


def _flow_log(name: str, key: str, start: int, bytes_: int = 15000, frames: int = 10, agent: str = "10.0.0.1") -> dict:
    return {"flow": name, "flowKeys": key, "keys": key.split(","), "agent": agent, "dataSource": "3",
            "bytes": bytes_, "frames": frames, "start": start, "end": start + 900, "reason": "end",
            "timestamp": start + 1000}


@pytest.mark.asyncio
async def test_flow_metrics_answer_metric_value_and_top_keys():
    """A DDoS script's path: event -> /metric/{agent}/{ds}.{flow}/json -> topKeys[0].key."""
    client, state, _ = await _client(_settings())
    try:
        _feed(state)
        now_ms = int(time.time() * 1000)
        state.add("active_flows", {"flow": "pair", "agent": "10.0.0.1", "timestamp": now_ms, "value": "bytes",
                                   "flows": [{"dataSource": "1", "key": "10.1.1.1,10.2.2.2", "value": 3000.0},
                                             {"dataSource": "1", "key": "10.1.1.5,10.2.2.6", "value": 700.0},
                                             {"dataSource": "2", "key": "10.1.1.3,10.2.2.4", "value": 10.0}]})
        [m] = await (await client.get("/metric/10.0.0.1/1.pair/json")).json()
        assert m["metricName"] == "1.pair" and m["metricN"] == 1 and m["dataSource"] == "1"
        assert m["metricValue"] == 3000.0 and m["agent"] == "10.0.0.1"  # the largest flow's value
        assert [(k["key"], k["value"]) for k in m["topKeys"]] == [("10.1.1.1,10.2.2.2", 3000.0),
                                                                   ("10.1.1.5,10.2.2.6", 700.0)]
        assert all(0 <= k["lastUpdate"] < 5000 for k in m["topKeys"]) and 0 <= m["lastUpdate"] < 5000
        [m] = await (await client.get("/metric/ALL/pair/json")).json()
        assert m["metricN"] == 3 and m["metricValue"] == 3000.0 and m["topKeys"][0]["key"] == "10.1.1.1,10.2.2.2"
        [m] = await (await client.get("/metric/10.0.0.2/pair/json")).json()
        assert m["agent"] == "10.0.0.2" and m["dataSource"] == "7" and m["metricValue"] == 1000.0
        [s, one] = await (await client.get("/metric/10.0.0.1;10.0.0.2/sum:pair,2.ifinoctets/json")).json()
        assert s["metricValue"] == 4010.0 and "agent" not in s and s["metricN"] == 3
        assert one["metricValue"] == 300.0 and one["dataSource"] == "2" and one["metricN"] == 1
        dump = await (await client.get("/dump/10.0.0.1/pair/json")).json()
        assert [(d["dataSource"], d["metricValue"], len(d["topKeys"])) for d in dump] == [("1", 3000.0, 2),
                                                                                           ("2", 10.0, 1)]
        per_agent = await (await client.get("/metric/10.0.0.1/json")).json()
        assert per_agent["1.pair"] == 3000.0 and per_agent["2.ifinoctets"] == 300.0
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_every_aggregation_prefix():
    client, state, _ = await _client(_settings())
    try:
        _feed(state)  # ifinoctets: 10.0.0.1/1 = 100, 10.0.0.1/2 = 300, 10.0.0.2/3 = 50
        specs = "max:ifinoctets,min:ifinoctets,sum:ifinoctets,avg:ifinoctets,var:ifinoctets,sdev:ifinoctets," \
                "med:ifinoctets,q1:ifinoctets,q2:ifinoctets,q3:ifinoctets,iqr:ifinoctets,any:ifinoctets"
        got = {m["metricName"].split(":")[0]: m for m in await (await client.get(f"/metric/ALL/{specs}/json")).json()}
        v = {k: m["metricValue"] for k, m in got.items()}
        assert v["max"] == 300 and v["min"] == 50 and v["sum"] == 450 and v["avg"] == 150
        assert v["var"] == pytest.approx(35000 / 3) and v["sdev"] == pytest.approx(math.sqrt(35000 / 3))
        assert v["med"] == v["q2"] == 100 and v["q1"] == 75 and v["q3"] == 200 and v["iqr"] == 125
        assert (got["min"]["agent"], got["min"]["dataSource"]) == ("10.0.0.2", "3")
        assert all(m["metricN"] == 3 for m in got.values())
        assert all("agent" not in got[k] for k in ("sum", "avg", "var", "sdev", "med", "q1", "q2", "q3", "iqr"))
        # any: names the reading whose value it reports
        dump = await (await client.get("/dump/ALL/ifinoctets/json")).json()
        a = got["any"]
        assert any((d["agent"], d["dataSource"], d["metricValue"]) == (a["agent"], a["dataSource"], a["metricValue"])
                   for d in dump)
        r = await client.get("/metric/ALL/ifinoctets,median:ifinoctets/json")
        assert r.status == 400 and "median" in await r.text()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_table_rows_sort_and_text_columns():
    """The prometheus.php client of sFlow-RT's Prometheus blog: /table/ALL/host-like,value/json."""
    client, state, _ = await _client(_settings())
    try:
        _feed(state)
        state.exporter.names[("10.0.0.1", "1", "ifname")] = ("eth0", time.time())
        rows = await (await client.get("/table/ALL/sort:ifinoctets:-2/json")).json()
        assert [[(c["agent"], c["dataSource"], c["metricValue"]) for c in row] for row in rows] == \
            [[("10.0.0.1", "2", 300.0)], [("10.0.0.1", "1", 100.0)]]
        rows = await (await client.get("/table/ALL/sort:ifinoctets:2/json")).json()
        assert [row[0]["metricValue"] for row in rows] == [50.0, 100.0]
        rows = await (await client.get("/table/ALL/ifname,ifinoctets,ifinutilization/json")).json()
        assert len(rows) == 1  # only 10.0.0.1/1 has all three
        assert [(c["metricName"], c["metricValue"]) for c in rows[0]] == [("ifname", "eth0"), ("ifinoctets", 100.0),
                                                                           ("ifinutilization", 1.5)]
        assert set(rows[0][0]) == {"agent", "dataSource", "metricName", "metricValue", "lastUpdate"}
        assert (await client.get("/table/ALL/sort:ifinoctets:x/json")).status == 400
    finally:
        await client.close()


def _reader_order(state: ApiState, records: list[tuple[int, int, dict]]) -> None:
    for partition, offset, r in records:
        state.add("flow_log", r, partition, offset)


@pytest.mark.asyncio
async def test_logged_flows_newest_first_long_polled_and_the_same_ids_everywhere():
    client, state, _ = await _client(_settings())
    try:
        assert (await client.put("/flow/web/json", json={"keys": "ipsource", "value": "frames", "log": True})).status \
            == 204
        t = int(time.time() * 1000)
        records = [(0, 0, _flow_log("pair", "10.0.0.5,10.0.0.6", t)), (1, 0, _flow_log("web", "10.0.0.7", t + 1)),
                   (0, 1, _flow_log("pair", "10.0.0.8,10.0.0.9", t + 2))]
        _reader_order(state, records)
        _reader_order(state, records[:1])  # read again (a re-assigned partition): shown once
        _reader_order(state, [(0, 7, records[0][2])])  # published again by a worker taking over: shown once
        flows = await (await client.get("/flows/json?maxFlows=10")).json()
        assert [f["flowID"] for f in flows] == [flow_id(0, 1), flow_id(1, 0), flow_id(0, 0)] == [1024, 1, 0]
        f = flows[0]
        assert set(f) == {"flowID", "name", "agent", "dataSource", "flowKeys", "value", "start", "end"}
        assert (f["name"], f["flowKeys"], f["value"], f["start"], f["end"]) == ("pair", "10.0.0.8,10.0.0.9", 15000,
                                                                                 t + 2, t + 902)
        web = await (await client.get("/flows/json?name=web")).json()
        assert [(w["flowKeys"], w["value"]) for w in web] == [("10.0.0.7", 10)]  # value: frames, its unit
        assert len(await (await client.get("/flows/json?maxFlows=1")).json()) == 1
        # another API instance reading the partitions in another order gives every flow the same id
        other = ApiState(_settings().api)
        _reader_order(other, [records[1], records[2], records[0]])
        assert {(f["flowID"], f["flowKeys"]) for f in other.flows_after(-1, 10, None)} == \
            {(f["flowID"], f["flowKeys"]) for f in flows}
        # after = a flow read here: the ones read after it, whatever their ids
        assert [f["flowID"] for f in other.flows_after(flow_id(0, 1), 10, None)] == [0]
        # long-poll: waits for the next flow after the newest id
        t0 = time.monotonic()
        poll = asyncio.create_task(client.get("/flows/json?flowID=1024&timeout=10"))
        await asyncio.sleep(0.5)  # waiting this out is the check: with nothing newer, the poll stays open
        assert not poll.done()
        state.add("flow_log", _flow_log("pair", "10.0.0.1,10.0.0.2", t + 3), 1, 1)
        got = await (await poll).json()
        assert [(g["flowID"], g["flowKeys"]) for g in got] == [(1025, "10.0.0.1,10.0.0.2")]
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        assert await (await client.get("/flows/json?flowID=1025&timeout=0.5")).json() == []
        assert time.monotonic() - t0 >= 0.45
        assert state.analyzer()["flowsGenerated"] == 4
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_flowkeys_merge_workers_and_status_kinds():
    client, state, _ = await _client(_settings())
    try:
        now = int(time.time() * 1000)
        state.status_message({"kind": "flowkeys", "worker": "w1", "time": now,
                              "keys": {"ipsource": now - 1000, "tcpsourceport": now - 9000, "old": now - 900_000}})
        state.status_message({"kind": "flowkeys", "worker": "w2", "time": now,
                              "keys": {"ipsource": now - 4000, "tcpsourceport": now - 2000}})
        state.status_message({"kind": "flowkeys", "worker": "w2", "time": now - 60_000, "keys": {"stale": now}})
        state.status_message({"ingester": "h:1:0", "time": now, "datagrams": 5, "samples": {}, "agents": {}})
        keys = await (await client.get("/flowkeys/json")).json()
        assert set(keys) == {"ipsource", "tcpsourceport"}  # "old" is not active; the older w2 message is ignored
        assert 900 <= keys["ipsource"] < 3000 and 1900 <= keys["tcpsourceport"] < 4000
        assert state.analyzer()["sFlowDatagramsReceived"] == 5  # no kind: an ingester's status
    finally:
        await client.close()


def _ingester_status(now: int) -> dict:
    return {"kind": "ingester", "ingester": "h:1:0", "listen": "[::]:6343", "time": now, "datagrams": 300,
            "bytes": 420000, "malformed": 3, "unsupported_version": 1, "samples": {"flow": 1800, "counters": 40},
            "kernel_drops": 2, "kafka_dropped": 1, "spill_pending": 0,
            "agents": {"10.0.0.1": {"datagrams": 300, "lost": 3, "sFlowDatagramsReceived": 300,
                                    "sFlowDatagramsLost": 3, "sFlowFlowSamples": 1800, "sFlowCounterSamples": 40,
                                    "sFlowFlowDuplicateSamples": 1, "sFlowFlowOutOfOrderSamples": 2,
                                    "sFlowDatagramSource": ["192.0.2.1"], "firstSeen": 60000, "lastSeen": 20,
                                    "sFlowFlowDatasources": 2, "sFlowCounterDatasources": 3,
                                    "uptime": 123456}}}


@pytest.mark.asyncio
async def test_analyzer_json_prometheus_text_license_and_agents():
    client, state, _ = await _client(_settings())
    try:
        state.status_message(_ingester_status(int(time.time() * 1000)))
        a = await (await client.get("/analyzer/json")).json()
        assert (a["sFlowDatagramsReceived"], a["sFlowBytesReceived"], a["sFlowFlowSamples"],
                a["sFlowCounterSamples"], a["sFlowAgents"]) == (300, 420000, 1800, 40, 1)
        assert a["sFlowDatagramsDiscarded"] == 3 and a["sFlowParseErrors"] == 2 and a["sFlowUnsupportedVersion"] == 1
        assert a["uptime"] >= 0 and a["version"]
        r = await client.get("/prometheus/analyzer/txt")
        assert r.headers["Content-Type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(await r.text())}
        assert families["sflow_analyzer_datagrams_received"].type == "counter"
        assert families["sflow_analyzer_datagrams_received"].samples[0].value == 300
        assert families["sflow_analyzer_received_bytes"].samples[0].value == 420000
        assert families["sflow_analyzer_agents"].type == "gauge" and families["sflow_analyzer_agents"].samples[0].value == 1
        lic = await (await client.get("/license/json")).json()
        assert lic["license"]["product"] == "sflowpipe" and lic["analyzer"]["host"]
        agent = (await (await client.get("/agents/json?agent=10.0.0.1")).json())["10.0.0.1"]
        assert agent["sFlowFlowSamples"] == 1800 and agent["sFlowCounterSamples"] == 40
        assert agent["sFlowFlowDuplicateSamples"] == 1 and agent["sFlowFlowOutOfOrderSamples"] == 2
        assert agent["sFlowDatagramsDuplicates"] == 0 and agent["sFlowDatagramsLost"] == 3
        assert agent["sFlowDatagramSource"] == ["192.0.2.1"] and agent["uptime"] == 123456
        assert agent["sFlowFlowDatasources"] == 2 and agent["sFlowCounterDatasources"] == 3
        assert 20 <= agent["lastSeen"] < 5000 and agent["firstSeen"] >= 60000
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_topology_get_put():
    client, state, rec = await _client(_settings())
    try:
        assert await (await client.get("/topology/json")).json() == {}
        topo = {"nodes": {"leaf1": {"agent": "10.0.0.1", "ports": {"eth1": {"ifindex": "2"}}},
                          "spine1": {"agent": "10.0.0.2", "ports": {"eth2": {"ifindex": "3"}}}},
                "links": {"link1": {"node1": "leaf1", "port1": "eth1", "node2": "spine1", "port2": "eth2"}}}
        assert (await client.put("/topology/json", json=topo)).status == 204
        assert rec.calls == [("topology", "topology", topo)]
        got = await (await client.get("/topology/json")).json()
        assert got["links"]["link1"]["node2"] == "spine1"
        r = await client.put("/topology/json", json={"nodes": ["leaf1"]})
        assert r.status == 400 and (await r.json())["kind"] == "topology" and len(rec.calls) == 1
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_export_js_flows_on_the_api_port():
    """The flow-metrics blog's scrape job, against the API port."""
    client, state, rec = await _client(_settings())
    try:
        assert (await client.put("/flow/pair/json", json={"keys": "ipsource,ipdestination", "value": "bytes"})).status \
            == 204
        _feed(state)
        r = await client.get("/app/prometheus/scripts/export.js/flows/ALL/txt",
                             params=[("metric", "ip_src_dst_bps"), ("key", "ipsource"), ("key", "ipdestination"),
                                     ("label", "src"), ("label", "dst"), ("value", "bytes"), ("scale", "8"),
                                     ("minValue", "1000"), ("maxFlows", "100")])
        assert r.status == 200
        [family] = list(text_string_to_metric_families(await r.text()))
        assert [(s.labels, s.value) for s in family.samples] == [({"src": "10.1.1.1", "dst": "10.2.2.2"}, 24000.0)]
        # keys no definition has: defined on the config topic, as sFlow-RT's app does
        r = await client.get("/app/prometheus/scripts/export.js/flows/ALL/txt",
                             params={"metric": "proto", "key": "ipprotocol", "value": "frames"})
        assert r.status == 200 and rec.calls[-1] == ("flow", "prometheus_proto", {"keys": "ipprotocol",
                                                                                  "value": "frames"})
        text = await (await client.get("/app/prometheus/scripts/export.js/dump/ALL/ifinoctets/txt")).text()
        assert 'ifinoctets{agent="10.0.0.2",datasource="3"} 50' in text
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_group_json_put_replaces_every_set():
    client, state, rec = await _client(_settings())
    try:
        assert (await client.put("/group/old/json", json={"x": ["192.0.2.0/24"]})).status == 204
        r = await client.put("/group/json", data='{"site": {"lan": ["10.0.0.0/8"]}, "dc": {"web": ["10.1.0.0/16"]}}')
        assert r.status == 204
        assert await (await client.get("/group/json")).json() == {"dc": {"web": ["10.1.0.0/16"]},
                                                                   "site": {"lan": ["10.0.0.0/8"]}}
        assert ("group", "old", None) in rec.calls and ("group", "dc", {"web": ["10.1.0.0/16"]}) in rec.calls
        n = len(rec.calls)
        r = await client.put("/group/json", json={"ok": {"a": ["10.0.0.0/8"]}, "bad": {"b": ["10.0.0.300/24"]}})
        assert r.status == 400 and (await r.json())["name"] == "bad" and len(rec.calls) == n
        assert "ok" not in await (await client.get("/group/json")).json()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_openapi_lists_the_new_routes_with_their_parameters():
    client, _, _ = await _client(_settings())
    try:
        doc = await (await client.get("/openapi.json")).json()
        for path, method in (("/flows/json", "get"), ("/flowkeys/json", "get"), ("/analyzer/json", "get"),
                             ("/prometheus/analyzer/txt", "get"), ("/license/json", "get"),
                             ("/topology/json", "get"), ("/topology/json", "put"), ("/group/json", "put"),
                             ("/table/{agent}/{metric}/json", "get"),
                             ("/app/prometheus/scripts/export.js/flows/{agent}/txt", "get")):
            assert method in doc["paths"][path], (path, method)
        params = {p["name"] for p in doc["paths"]["/flows/json"]["get"]["parameters"]}
        assert params == {"flowID", "name", "maxFlows", "timeout"}
        export = {p["name"] for p in doc["paths"]["/app/prometheus/scripts/export.js/flows/{agent}/txt"]["get"]
                  ["parameters"]}
        assert {"agent", "metric", "key", "value", "label", "scale", "minValue", "maxFlows", "aggMode"} <= export
        assert "iqr:" in doc["paths"]["/metric/{agent}/{metric}/json"]["get"]["summary"]
    finally:
        await client.close()
