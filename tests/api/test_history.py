"""/history/*/json against a real chDB: known rows written into an embedded directory through the
project's migrations (the rollups filled by their materialized views), served by the ClickHouse
sink's own SQL port (sinks/clickhouse/sql.py) as `sflowpipe clickhouse` serves it, read by the API
through that port. Every number is checked exactly."""

from __future__ import annotations

import threading
import time

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from api.history import ClickHouseReader, History
from api.server import Api
from api.state import ApiState
from sflowpipe.broker import free_port
from sflowpipe.settings import ClickHouseSettings, Settings
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.sink import connect
from sinks.clickhouse.sql import SqlServer

pytestmark = [pytest.mark.clickhouse, pytest.mark.asyncio]

# yesterday at 00:00 UTC: every row inside the TTLs, every rollup bucket whole
T0 = (int(time.time()) // 86400) * 86400 - 86400
A1, A2, A3, B1, B2 = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.1.2"
AGENT = "192.0.2.1"
# (seconds after T0, src, dst, protocol, dst port, bytes, sampling rate, dst country)
FLOWS = [
    (10, A1, B1, 6, 443, 150_000, 100, "DE"),
    (20, A1, B1, 6, 443, 150_000, 100, "DE"),
    (70, A2, B2, 17, 53, 60_000, 100, "FR"),
    (130, A3, B1, 6, 80, 30_000, 100, "DE"),
    (3700, A1, B1, 6, 443, 300_000, 200, "DE"),
]
# (seconds after T0, event id, threshold, agent, data source, metric, value, threshold value, flow key)
EVENTS = [
    (15, 1, "elephant", AGENT, "3", "pair", 2e6, 1e6, f"{A1},{B1}"),
    (75, 2, "elephant", AGENT, "4", "pair", 3e6, 1e6, f"{A2},{B2}"),
    (90, 3, "utilisation", AGENT, "3", "ifoututilization", 95.0, 80.0, ""),
    (4000, 4, "elephant", "192.0.2.9", "3", "pair", 5e6, 1e6, f"{A3},{B1}"),
]
SPEED = 10_000_000  # bit/s
IN_PER_30S, OUT_PER_30S = 3_750_000, 7_500_000  # octets: 1 Mbit/s in, 2 Mbit/s out


def _mapped(ip: str) -> str:
    return "::ffff:" + ip


def _write(client, recent: list[tuple[int, str]]) -> None:
    rows = []
    for off, src, dst, proto, dport, nbytes, rate, country in FLOWS:
        rows.append(f"(toDateTime64({T0 + off}, 6, 'UTC'), '{_mapped(AGENT)}', 3, 4, '{_mapped(src)}', "
                    f"'{_mapped(dst)}', {proto}, 50000, {dport}, {nbytes}, {rate}, '{country}', 'US')")
    for at, src in recent:
        rows.append(f"(toDateTime64({at}, 6, 'UTC'), '{_mapped(AGENT)}', 3, 4, '{_mapped(src)}', "
                    f"'{_mapped(B1)}', 6, 50000, 22, 5000, 10, 'DE', 'US')")
    client.command("INSERT INTO sflow.flow_samples (time, agent, in_if, out_if, src_ip, dst_ip, protocol, src_port, "
                   "dst_port, bytes, sampling_rate, dst_country, src_country) VALUES " + ", ".join(rows))
    counters = []
    for k in range(21):  # every 30 s for 10 minutes; ifIndex 3's counters restart at 300 s
        t = T0 + 30 * k
        base = k if k < 10 else k - 10
        values = {"if_in_octets": base * IN_PER_30S, "if_out_octets": base * OUT_PER_30S, "if_in_errors": base * 3,
                  "if_out_errors": 0, "if_in_discards": 0, "if_out_discards": base * 30, "if_speed": SPEED}
        for name, v in values.items():
            counters.append(f"(toDateTime64({t}, 6, 'UTC'), '{_mapped(AGENT)}', 0, 0, 3, {k}, 'IfCounters', "
                            f"'{name}', {v})")
    counters.append(f"(toDateTime64({T0}, 6, 'UTC'), '{_mapped(AGENT)}', 0, 0, 4, 1, 'IfCounters', 'if_speed', 1)")
    client.command("INSERT INTO sflow.counters (time, agent, sub_agent_id, source_id_type, source_id_index, "
                   "sequence_number, record, name, value) VALUES " + ", ".join(counters))
    events = [f"(toDateTime64({T0 + off}, 3, 'UTC'), {eid}, '{tid}', '{_mapped(agent)}', '{ds}', '{metric}', {v}, "
              f"{thr}, '{key}')" for off, eid, tid, agent, ds, metric, v, thr, key in EVENTS]
    client.command("INSERT INTO sflow.events (time, event_id, threshold_id, agent, data_source, metric, value, "
                   "threshold, flow_key) VALUES " + ", ".join(events))


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    """An embedded directory with the rows, owned by a running sink SQL server (the sink's code)."""
    data = tmp_path_factory.mktemp("ch")
    client = connect(f"chdb://{data}")
    migrate(client, ClickHouseSettings())
    now = int(time.time())
    recent = [(now - 200, "10.9.9.9")]
    _write(client, recent)
    server = SqlServer(client, threading.Lock(), str(data), "sflow")
    server.start()
    yield {"dir": data, "recent": recent}
    server.stop()
    client.close()


async def _client(dsn: str, timeout: float = 20.0) -> tuple[TestClient, ClickHouseReader]:
    s = Settings()
    reader = ClickHouseReader(ClickHouseSettings(dsn=dsn), timeout=timeout)
    api = Api(s.api, s.limits, ApiState(s.api), lambda *a: None, History(reader))
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    return client, reader


@pytest_asyncio.fixture
async def api(clickhouse):
    client, reader = await _client(f"chdb://{clickhouse['dir']}")
    yield client
    await client.close()
    reader.close()


async def _get(api, path: str, status: int = 200, **params) -> dict:
    r = await api.get(path, params={k: str(v) for k, v in params.items()})
    body = await r.json()
    assert r.status == status, body
    return body


def _at(body: dict, offset: int) -> int:
    return body["times"].index(T0 + offset)


async def test_top_flows_per_step_from_raw_samples(api):
    b = await _get(api, "/history/flows/json", dimensions="src_ip,dst_ip", n=2, value="bytes",
                   **{"from": T0, "to": T0 + 3600})
    assert (b["from"], b["to"], b["step"], b["table_used"], b["unit"]) == (T0, T0 + 3600, 15, "flow_samples", "bytes/s")
    assert b["times"] == list(range(T0, T0 + 3600, 15)) and len(b["times"]) == 240
    assert [s["key"] for s in b["series"]] == [[A1, B1], [A2, B2]]
    assert [s["label"] for s in b["series"]] == [f"{A1} → {B1}", f"{A2} → {B2}"]
    a1 = b["series"][0]["values"]
    assert a1[_at(b, 0)] == 150_000 / 15 and a1[_at(b, 15)] == 150_000 / 15
    assert sum(v is not None for v in a1) == 2  # null where no sample; the 2nd hour is outside
    assert b["series"][1]["values"][_at(b, 60)] == 60_000 / 15
    # A3 -> B1 is third: it is "other"
    assert b["other"][_at(b, 120)] == 30_000 / 15 and b["other"][_at(b, 0)] == 0.0
    assert b["other"][_at(b, 300)] is None
    assert b["totals"] == [
        {"key": [A1, B1], "label": f"{A1} → {B1}", "total": 300_000, "avg_rate": 300_000 / 3600},
        {"key": [A2, B2], "label": f"{A2} → {B2}", "total": 60_000, "avg_rate": 60_000 / 3600}]
    bits = await _get(api, "/history/flows/json", dimensions="src_ip,dst_ip", n=2, value="bits",
                      **{"from": T0, "to": T0 + 3600})
    assert bits["unit"] == "bits/s" and bits["series"][0]["values"][_at(bits, 0)] == 150_000 * 8 / 15
    assert bits["totals"][0]["total"] == 300_000 * 8
    frames = await _get(api, "/history/flows/json", dimensions="src_ip,dst_ip", n=2, value="frames",
                        **{"from": T0, "to": T0 + 3600})
    assert frames["unit"] == "frames/s" and frames["series"][0]["values"][_at(frames, 0)] == 100 / 15


async def test_rollups_when_they_suffice(api):
    six = {"from": T0, "to": T0 + 6 * 3600}
    b = await _get(api, "/history/flows/json", dimensions="src_ip,dst_ip", **six)
    assert (b["step"], b["table_used"]) == (120, "flows_1m")
    assert b["series"][0]["key"] == [A1, B1]
    assert b["series"][0]["values"][_at(b, 0)] == 300_000 / 120
    assert b["series"][0]["values"][_at(b, 3600)] == 300_000 / 120
    assert b["series"][2]["values"][_at(b, 120)] == 30_000 / 120
    assert b["totals"][0]["total"] == 600_000
    frames = await _get(api, "/history/flows/json", dimensions="src_ip", value="frames", **six)
    assert frames["series"][0]["values"][_at(frames, 3600)] == 200 / 120  # the rollup's frames
    # ports are not in the rollups: the raw samples, same numbers
    ports = await _get(api, "/history/flows/json", dimensions="dst_port", **six)
    assert ports["table_used"] == "flow_samples" and ports["series"][0]["key"] == [443]
    assert ports["series"][0]["values"][_at(ports, 3600)] == 300_000 / 120
    week = {"from": T0, "to": T0 + 7 * 86400}
    p = await _get(api, "/history/flows/json", dimensions="protocol", value="bits", **week)
    assert (p["step"], p["table_used"]) == (3600, "flows_1h")
    assert [s["key"] for s in p["series"]] == [[6], [17]] and [s["label"] for s in p["series"]] == ["TCP", "UDP"]
    assert p["series"][0]["values"][:2] == [330_000 * 8 / 3600, 300_000 * 8 / 3600]
    assert p["series"][1]["values"][0] == 60_000 * 8 / 3600
    # an address in the filter: the 1-minute rollup; a port: the raw samples
    f = await _get(api, "/history/flows/json", dimensions="protocol", filter="src_ip = 10.0.0.0/30", **week)
    assert f["table_used"] == "flows_1m" and f["step"] == 3600
    assert [t["total"] for t in f["totals"]] == [630_000, 60_000]
    f = await _get(api, "/history/flows/json", dimensions="protocol", filter="dst_port in (80, 53)", **week)
    assert f["table_used"] == "flow_samples" and [t["total"] for t in f["totals"]] == [60_000, 30_000]
    countries = await _get(api, "/history/flows/json", dimensions="dst_country,agent", **week)
    assert countries["table_used"] == "flows_1h"
    assert [t["key"] for t in countries["totals"]] == [["DE", AGENT], ["FR", AGENT]]


async def test_filters(api):
    hour = {"from": T0, "to": T0 + 3600}

    async def totals(flt: str) -> list:
        b = await _get(api, "/history/flows/json", dimensions="src_ip", filter=flt, **hour)
        return [(t["key"][0], t["total"]) for t in b["totals"]]

    assert await totals("protocol = 17") == [(A2, 60_000)]
    assert await totals("dst_ip = 10.0.1.1 and not dst_port in (80)") == [(A1, 300_000)]
    assert await totals("dst_port in (80, 53) or src_ip = 10.0.0.1") == [(A1, 300_000), (A2, 60_000), (A3, 30_000)]
    assert await totals("(protocol=6 && dst_port<100) | dst_country = 'FR'") == [(A2, 60_000), (A3, 30_000)]
    assert await totals('dst_country = "DE" and src_ip != 10.0.0.1') == [(A3, 30_000)]
    assert await totals("src_ip not in (10.0.0.1, 10.0.0.2/32)") == [(A3, 30_000)]
    # a quote in a value is the value's: no SQL gets through
    assert await totals("dst_country = \"DE' OR '1'='1\"") == []
    assert await totals("dst_country = 'x\\' OR 1=1 --'") == []


async def test_last_15_minutes_and_sankey(api, clickhouse):
    b = await _get(api, "/history/flows/json", dimensions="src_ip", range="15m")
    assert b["step"] == 5 and len(b["times"]) == 180 and b["to"] - b["from"] == 900
    at, src = clickhouse["recent"][0]
    assert b["series"][0]["key"] == [src]
    assert b["series"][0]["values"][b["times"].index(at // 5 * 5)] == 5000 / 5
    assert b["totals"][0]["total"] == 5000
    s = await _get(api, "/history/sankey/json", dimensions="src_ip,dst_ip", **{"from": T0, "to": T0 + 3600})
    names = [(n["dimension"], n["name"]) for n in s["nodes"]]
    assert names == [("src_ip", A1), ("dst_ip", B1), ("src_ip", A2), ("dst_ip", B2), ("src_ip", A3)]
    assert s["links"] == [{"source": 0, "target": 1, "value": 300_000}, {"source": 2, "target": 3, "value": 60_000},
                          {"source": 4, "target": 1, "value": 30_000}]
    s3 = await _get(api, "/history/sankey/json", dimensions="src_ip,protocol,dst_ip", n=1,
                    **{"from": T0, "to": T0 + 3600})
    assert [n["name"] for n in s3["nodes"]] == [A1, "TCP", B1]
    assert [(x["source"], x["target"]) for x in s3["links"]] == [(0, 1), (1, 2)]


async def test_interface_counters(api):
    b = await _get(api, "/history/counters/json", agent=AGENT, ifindex=3, **{"from": T0, "to": T0 + 900})
    assert (b["from"], b["to"], b["step"]) == (T0, T0 + 900, 10)
    assert b["units"] == {"in_bps": "bits/s", "out_bps": "bits/s", "in_utilization": "%", "out_utilization": "%",
                          "in_errors": "/s", "out_errors": "/s", "in_discards": "/s", "out_discards": "/s"}
    s = b["series"]
    assert s["in_bps"][_at(b, 0)] is None  # nothing before the window's first sample
    assert s["in_bps"][_at(b, 10)] is None and s["in_bps"][_at(b, 20)] is None
    for off in (30, 60, 270, 330, 600):
        k = _at(b, off)
        assert s["in_bps"][k] == 1_000_000 and s["out_bps"][k] == 2_000_000
        assert s["in_utilization"][k] == 10.0 and s["out_utilization"][k] == 20.0
        assert s["in_errors"][k] == 0.1 and s["out_errors"][k] == 0.0
        assert s["in_discards"][k] == 0.0 and s["out_discards"][k] == 1.0
    assert s["in_bps"][_at(b, 300)] is None  # the counters restarted: no rate, not a negative one
    assert s["in_bps"][_at(b, 630)] is None  # no sample after 600 s
    # an IPv6-mapped spelling of the same agent, another interface
    other = await _get(api, "/history/counters/json", agent="::ffff:192.0.2.1", ifindex=4,
                       **{"from": T0, "to": T0 + 900})
    assert all(v is None for v in other["series"]["in_bps"])


async def test_events_of_a_range_newest_first(api):
    window = {"from": T0, "to": T0 + 3600}
    b = await _get(api, "/history/events/json", **window)
    assert (b["from"], b["to"]) == (T0, T0 + 3600)
    assert [e["eventID"] for e in b["events"]] == [3, 2, 1]  # the 4th is outside the range
    assert b["events"][2] == {"eventID": 1, "thresholdID": "elephant", "agent": AGENT, "dataSource": "3",
                              "metric": "pair", "value": 2e6, "threshold": 1e6, "flowKey": f"{A1},{B1}",
                              "timestamp": (T0 + 15) * 1000}
    assert b["events"][0]["flowKey"] is None
    one_if = await _get(api, "/history/events/json", agent=AGENT, dataSource="3", **window)
    assert [e["eventID"] for e in one_if["events"]] == [3, 1]
    host = await _get(api, "/history/events/json", address=B1, **{"from": T0, "to": T0 + 7200})
    assert [e["eventID"] for e in host["events"]] == [4, 1]  # B1 in their flow keys; not 10.0.1.12 or the like
    assert [e["eventID"] for e in (await _get(api, "/history/events/json", thresholdID="utilisation",
                                              maxEvents=1, **window))["events"]] == [3]
    assert (await _get(api, "/history/events/json", 400, agent="not-an-ip", **window))["field"] == "agent"
    assert (await _get(api, "/history/events/json", 400, maxEvents=0, **window))["field"] == "maxEvents"


async def test_samples_per_agent(api):
    b = await _get(api, "/history/status/json", **{"from": T0, "to": T0 + 600})
    assert (b["step"], b["table_used"]) == (10, "flow_samples")
    [a] = b["series"]
    assert a["agent"] == AGENT
    assert [a["flow_samples_per_s"][_at(b, off)] for off in (0, 10, 20, 70, 130)] == [None, 0.1, 0.1, 0.1, 0.1]
    assert a["counter_samples_per_s"][_at(b, 0)] == 0.2  # ifIndex 3 and 4
    assert a["counter_samples_per_s"][_at(b, 30)] == 0.1 and a["counter_samples_per_s"][_at(b, 40)] is None
    week = await _get(api, "/history/status/json", **{"from": T0, "to": T0 + 7 * 86400})
    assert (week["step"], week["table_used"]) == (3600, "flows_1h")
    assert week["series"][0]["flow_samples_per_s"][:2] == [4 / 3600, 1 / 3600]
    assert week["series"][0]["counter_samples_per_s"][0] == 22 / 3600


@pytest.mark.parametrize("path, params, field, words", [
    ("flows", {"dimensions": "src_ip,color"}, "dimensions", "unknown dimension 'color'"),
    ("flows", {"dimensions": ""}, "dimensions", "at least 1"),
    ("flows", {"range": "2w"}, "range", "range must be one of 15m, 1h"),
    ("flows", {"from": "yesterday", "to": "1"}, "from", "epoch seconds"),
    ("flows", {"from": "200", "to": "100"}, "to", "after from"),
    ("flows", {"n": "0"}, "n", "between 1 and 50"),
    ("flows", {"n": "ten"}, "n", "integer"),
    ("flows", {"value": "packets"}, "value", "bytes, bits or frames"),
    ("flows", {"filter": "src_ip = banana"}, "filter", "'banana' is not an IP address"),
    ("flows", {"filter": "colour = 1"}, "filter", "'colour' is not a dimension"),
    ("flows", {"filter": "protocol = 6 and"}, "filter", "ends too early"),
    ("flows", {"filter": "src_country > 'DE'"}, "filter", "takes = or !="),
    ("flows", {"filter": "dst_port = 99999999999"}, "filter", "whole number"),
    ("flows", {"filter": "(protocol = 6"}, "filter", "missing ')'"),
    ("flows", {"filter": "protocol = 6; DROP TABLE x"}, "filter", "'6;' is not a whole number"),
    ("flows", {"filter": "protocol = 6 DROP TABLE x"}, "filter", "unexpected 'DROP'"),
    ("sankey", {"dimensions": "src_ip"}, "dimensions", "at least 2"),
    ("counters", {"ifindex": "3"}, "agent", "agent is missing"),
    ("counters", {"agent": "router1", "ifindex": "3"}, "agent", "IP address"),
    ("counters", {"agent": AGENT}, "ifindex", "ifindex is missing"),
    ("counters", {"agent": AGENT, "ifindex": "-1"}, "ifindex", "whole number"),
    ("status", {"range": "1y"}, "range", "range must be"),
])
async def test_bad_parameters_are_400_naming_the_fault(api, path, params, field, words):
    b = await _get(api, f"/history/{path}/json", status=400, **params)
    assert b["field"] == field and words in b["error"], b


async def test_filter_error_points_at_the_token(api):
    b = await _get(api, "/history/flows/json", status=400, filter="protocol = 6 and src_ip = x.y")
    assert b["position"] == len("protocol = 6 and src_ip = ") and b["token"] == "x.y"


async def test_clickhouse_away_is_503_naming_the_cause(tmp_path):
    client, reader = await _client(f"chdb://{tmp_path}/nobody")  # no sink owns it: the API never opens it
    try:
        b = await _get(client, "/history/flows/json", status=503)
        assert "no ClickHouse sink is running on" in b["error"] and str(tmp_path / "nobody") in b["error"]
        assert not (tmp_path / "nobody").exists()  # looking for its owner made no empty directory
    finally:
        await client.close()
        reader.close()
    port = free_port()  # nothing listens there
    client, reader = await _client(f"http://127.0.0.1:{port}", timeout=5)
    try:
        t0 = time.monotonic()
        b = await _get(client, "/history/counters/json", status=503, agent=AGENT, ifindex=1)
        assert "ClickHouse unavailable at http://127.0.0.1" in b["error"] and time.monotonic() - t0 < 10
    finally:
        await client.close()
        reader.close()


async def test_without_clickhouse_settings_history_is_503():
    s = Settings()
    client = TestClient(TestServer(Api(s.api, s.limits, ApiState(s.api), lambda *a: None).app()))
    await client.start_server()
    try:
        b = await _get(client, "/history/status/json", status=503)
        assert "history needs ClickHouse" in b["error"]
    finally:
        await client.close()


@pytest.mark.parametrize("rng, step, table", [("15m", 5, "flow_samples"), ("1h", 15, "flow_samples"),
                                              ("6h", 120, "flows_1m"), ("24h", 300, "flows_1m"),
                                              ("7d", 3600, "flows_1h"), ("30d", 10800, "flows_1h")])
async def test_each_range_gets_100_to_300_points_from_the_smallest_table_that_suffices(rng, step, table):
    from api.history import RANGES, window

    now = 1_796_000_007.5
    w = window({"range": rng}, now=now, lag=10)
    assert w.step == step and 100 <= len(w.times) <= 300
    assert w.end == (now - 10) // step * step and w.end - w.start >= RANGES[rng]  # whole steps, none filling
    table_for = {"flows_1h": "agent", "flows_1m": "src_ip"}.get(table, "dst_port")
    assert History.choose_table({table_for}, step) == table
    assert History.choose_table({"dst_port"}, step) == "flow_samples"
