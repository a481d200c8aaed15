"""Published sFlow-RT clients, replayed against `sflowpipe up --demo`.

Each test makes the requests one published client makes, in its order, with `requests` as those
scripts do (``data=json.dumps(...)``, no Content-Type), and checks the fields that client reads.
The client replayed is named in each test (repository and file). Their code is not copied: the
tests are written from what the clients send and read. InMon's apps are embedded JavaScript; for
those the tests make the REST calls that stand for the functions they call (setFlow -> PUT
/flow, activeFlows -> /activeflows, metric -> /metric, dump -> /dump, agents -> /agents,
flowKeys -> /flowkeys, setFlowHandler -> /flows long-poll).

The last test measures: flow values, /metric topKeys and logged-flow values against ClickHouse
ground truth (frame_length x sampling_rate of the same samples), within 5 %.

`up --demo` traffic (ingest/generate.py): two agents 192.0.2.200/.201, eight interfaces each,
sampling rate 1000, 100 datagrams/s of 6 samples, three elephant TCP flows
10.1.i.10 -> 192.0.2.1i:443 (1500-byte frames, 3/8 of all samples) among 200 mice, counters every
5 s. An elephant flow enters an agent on one interface (that interface is the flow sample's data
source), so a key of one agent is on one data source.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.up_helpers import ELEPHANT_SOURCES, sql_rows, wait_for

pytestmark = pytest.mark.kafka

AGENTS = {"192.0.2.200", "192.0.2.201"}
ELEPHANT_PAIRS = {f"10.1.{i}.10": f"192.0.2.{10 + i}" for i in range(3)}  # source -> destination
SEP = "_SEP_"  # the field separator InMon's apps put in their flow definitions (fs)


def _put(url: str, body: dict) -> requests.Response:
    # as the scripts do it: a JSON string as the body, no Content-Type header
    return requests.put(url, data=json.dumps(body), timeout=10)


def _poll_events(rt: str, query: str, want, deadline_s: float) -> list[dict]:
    """The scripts' event loop: eventID=-1, then the newest id seen; events newest first."""
    event_id = -1
    seen: list[dict] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = requests.get(rt + "/events/json?" + query + "&eventID=" + str(event_id), timeout=70)
        assert r.status_code == 200, r.text
        events = r.json()
        if len(events) == 0:
            continue
        event_id = events[0]["eventID"]
        events.reverse()
        seen += events
        if any(want(e) for e in events):
            break
    return seen


# ---------------------------------------------------------------- RESTflow: logged flows


def test_restflow_script_logs_flows(up):
    """slicknfv/slick mininet_scripts/sflow-rt/extras/tcp_flows.py (the RESTflow article's
    script, blog.sflow.com/2013/08/restflow.html): PUT a log:true flow, long-poll /flows/json
    with name, maxFlows, timeout and flowID; print flowKeys, value, end-start, agent, dataSource;
    DELETE the flow on exit. darcyfdu/self-adaptive_IP_mutation newflow.py polls the same
    without a name. The demo's sparse mice end (idle) within seconds; its elephants never end,
    so their first records come at sFlow-RT's default activeTimeout (60 s)."""
    rt, name = up["url"], "tcp"
    flow = {"keys": "ipsource,ipdestination,tcpsourceport,tcpdestinationport", "value": "frames", "log": True}
    r = _put(rt + "/flow/" + name + "/json", flow)
    assert r.status_code in (200, 204), r.text
    flowurl = rt + "/flows/json?name=" + name + "&maxFlows=100&timeout=60"
    flow_id = -1
    got: list[dict] = []

    def elephant(f: dict) -> bool:
        src, _, _, dport = str(f["flowKeys"]).split(",")
        return src in ELEPHANT_SOURCES and dport == "443"

    # the script loops for ever; mice end (idle) within seconds, the elephants' first records
    # come at the active timeout
    deadline = time.monotonic() + 150
    while not any(elephant(f) for f in got) and time.monotonic() < deadline:
        r = requests.get(flowurl + "&flowID=" + str(flow_id), timeout=70)
        assert r.status_code == 200, f"the script stops here: {r.status_code} {r.text[:200]}"
        flows = r.json()
        if len(flows) == 0:
            continue
        flow_id = flows[0]["flowID"]  # the newest: the script's cursor
        flows.reverse()
        got += flows
    assert any(elephant(f) for f in got), f"no elephant's record within 150 s ({len(got)} records)"
    for f in got:
        assert len(str(f["flowKeys"]).split(",")) == 4
        assert int(f["value"]) > 0 and f["end"] - f["start"] >= 0
        assert f["agent"] in AGENTS and str(f["dataSource"]).isdigit() and f["name"] == name
    # what the script gets wrong if the cursor is: a record printed twice (ids need not grow
    # with time across partitions; the cursor is a position, see api/topiclog.py)
    ids = [f["flowID"] for f in got]
    assert len(ids) == len(set(ids)), "a record came twice"
    r = requests.get(flowurl + "&flowID=" + str(flow_id) + "&timeout=1", timeout=10)
    assert r.status_code == 200 and not {f["flowID"] for f in r.json()} & set(ids)
    # newflow.py: no name, maxFlows=10, every field printed with json.dumps
    r = requests.get(rt + "/flows/json?maxFlows=10&timeout=60&flowID=-1", timeout=70)
    assert r.status_code == 200 and 0 < len(r.json()) <= 10
    assert all(json.dumps(f) for f in r.json())
    assert requests.delete(rt + "/flow/" + name + "/json", timeout=10).status_code in (200, 204)


# ---------------------------------------------------------------- event -> metric -> topKeys


def test_ddos_script_finds_the_top_key_behind_an_event(up):
    """The Mininet/Ryu DDoS mitigation script of the sFlow-RT + Ryu articles (a public copy is in
    the code index; the search does not name its repository): PUT a group set, a log:true flow
    keyed inputifindex,ipsource,ipdestination filtered by group:...=external/internal, a
    threshold without byFlow; long-poll /events/json; for each event of its metric GET
    /metric/{agent}/{dataSource}.{metric}/json and block metric[0]['topKeys'][0]['key']
    (split into ifindex, source, destination)."""
    rt = up["url"]
    groups = {"external": ["0.0.0.0/0"], "internal": ["192.0.2.0/24"]}  # the demo's servers
    assert _put(rt + "/group/groupddos/json", groups).status_code in (200, 204)
    flows = {"keys": "inputifindex,ipsource,ipdestination", "value": "bytes",
             "filter": "group:ipsource:groupddos=external&group:ipdestination:groupddos=internal", "log": True}
    r = _put(rt + "/flow/incoming/json", flows)
    assert r.status_code in (200, 204), r.text
    r = _put(rt + "/threshold/incoming/json", {"metric": "incoming", "value": 1000000 / 3})
    assert r.status_code in (200, 204), r.text
    events = _poll_events(rt, "maxEvents=10&timeout=60", lambda e: e["metric"] == "incoming", 120)
    mine = [e for e in events if "incoming" == e["metric"]]
    assert mine, "no event of the incoming threshold within 120 s"
    checked = 0
    for e in mine[-3:]:
        r = requests.get(rt + "/metric/" + e["agent"] + "/" + str(e["dataSource"]) + "." + e["metric"] + "/json",
                         timeout=10)
        assert r.status_code == 200, r.text
        metric = r.json()
        assert len(metric) > 0
        assert "topKeys" in metric[0], f"no topKeys: {metric}"
        snmp_index, src_ip, dst_ip = metric[0]["topKeys"][0]["key"].split(",")
        # the key behind the event: an elephant, entering on the event's interface
        assert src_ip in ELEPHANT_SOURCES and dst_ip == ELEPHANT_PAIRS[src_ip]
        assert snmp_index == str(e["dataSource"])
        assert metric[0]["metricValue"] >= 1000000 / 3
        checked += 1
    assert checked


def test_script_reads_the_top_tcp_flow_of_all_agents(up):
    """The OVS mirroring script in the code index (repository not named by the search) that
    reads GET /metric/ALL/tcp/json and, if 'topKeys' in data[0], splits
    data[0]['topKeys'][0]['key'] into destination, source, destination port, source port
    (its flow 'tcp' was defined beforehand, so the test defines it as such a user would)."""
    rt = up["url"]
    flow = {"keys": "ipdestination,ipsource,tcpdestinationport,tcpsourceport", "value": "bytes",
            "filter": "ipprotocol=6"}
    assert _put(rt + "/flow/tcp_top/json", flow).status_code in (200, 204)

    def top():
        data = requests.get(rt + "/metric/ALL/tcp_top/json", timeout=10).json()
        return data if "topKeys" in data[0] else None

    data = wait_for(top, 30, 1.0)
    assert data and "topKeys" in data[0], data
    dst, src, dst_port, src_port = data[0]["topKeys"][0]["key"].split(",")
    assert src in ELEPHANT_SOURCES and dst == ELEPHANT_PAIRS[src] and dst_port == "443"
    assert data[0]["agent"] in AGENTS and data[0]["metricValue"] > 0


# ---------------------------------------------------------------- Prometheus scrape jobs


def _scrape(url: str, params=None) -> list:
    """What Prometheus does with a scrape: GET, then parse the text format (a parse error is a
    failed scrape)."""
    r = requests.get(url, params=params, timeout=10)
    assert r.status_code == 200, f"{r.url}: {r.status_code} {r.text[:200]}"
    assert r.headers["Content-Type"].startswith("text/plain")
    return list(text_string_to_metric_families(r.text))


def test_prometheus_grafana_scrape_jobs(up):
    """sflow-rt/prometheus-grafana prometheus/prometheus.yml: job sflow-rt-analyzer scrapes
    /prometheus/analyzer/txt; job sflow-rt-interfaces scrapes
    /prometheus/metrics/ALL/ifinutilization,...,ifoutdiscards/txt and relabels each series by
    its 'agent' and 'datasource' labels."""
    rt = up["url"]
    interfaces = "ifinutilization,ifoututilization,ifinerrors,ifouterrors,ifindiscards,ifoutdiscards"

    def scraped():
        fams = _scrape(rt + "/prometheus/metrics/ALL/" + interfaces + "/txt")
        got = {f.name: f.samples for f in fams}
        return got if len(got.get("ifinutilization", [])) == 16 else None

    got = wait_for(scraped, 60, 2.0)
    assert got and set(got) == set(interfaces.split(",")), got
    for name, samples in got.items():
        assert len(samples) == 16, name  # 2 agents x 8 interfaces
        for s in samples:
            assert s.labels["agent"] in AGENTS and s.labels["datasource"].isdigit()  # the relabel's source labels
    assert any(s.value > 0 for s in got["ifinutilization"])
    analyzer = _scrape(rt + "/prometheus/analyzer/txt")
    assert analyzer and all(f.samples for f in analyzer)


def test_influxdb_scraper_of_all_metrics(up):
    """An InfluxDB 2 scraper (or Telegraf's inputs.prometheus) pointed at sFlow-RT as the
    issue's seed configures it: one URL, /prometheus/metrics/ALL/ALL/txt, every metric of every
    agent and data source, parsed as the Prometheus text format, series told apart by their
    agent and datasource labels; plus the analyzer's own health, /prometheus/analyzer/txt."""
    rt = up["url"]
    fams = {f.name: f for f in _scrape(rt + "/prometheus/metrics/ALL/ALL/txt")}
    assert {"ifinoctets", "ifoutoctets", "ifinutilization"} <= set(fams), sorted(fams)
    assert {(s.labels["agent"], s.labels["datasource"]) for s in fams["ifinoctets"].samples} == \
        {(a, str(i)) for a in AGENTS for i in range(1, 9)}
    analyzer = _scrape(rt + "/prometheus/analyzer/txt")
    assert analyzer and all(f.samples for f in analyzer)


@pytest.mark.parametrize("params, labels", [
    # blog.sflow.com/2019/10/flow-metrics-with-prometheus-and-grafana.html, job
    # 'sflow-rt-src-dst-bps': params as Prometheus sends them, a repeated query parameter per value
    ([("metric", "ip_src_dst_bps"), ("key", "ipsource"), ("key", "ipdestination"), ("label", "src"),
      ("label", "dst"), ("value", "bytes"), ("scale", "8")], ("src", "dst")),
    # a public runbook (wirt.ee) using the same exporter with comma lists and maxFlows
    ([("metric", "sflow_flows_bps"), ("key", "ipsource,ipdestination,vlan,agent,tcpsourceport,tcpdestinationport"),
      ("label", "src,dst,vlan,agent,sport,dport"), ("value", "bytes"), ("scale", "8"), ("maxFlows", "100")],
     ("src", "dst", "vlan", "agent", "sport", "dport")),
], ids=["flow-metrics-blog", "comma-lists"])
def test_prometheus_exporter_flow_jobs(up, params, labels):
    """sflow-rt/prometheus scripts/export.js, path flows/{agents}/txt on sFlow-RT's own port: a
    flow defined from key/value/filter, its top flows as one series per flow named by
    'metric', labelled by 'label' (else the key names), value x scale."""
    rt = up["url"]
    path = rt + "/app/prometheus/scripts/export.js/flows/ALL/txt"

    def elephants():
        fams = _scrape(path, params)
        samples = [s for f in fams for s in f.samples]
        top = {s.labels.get("src") for s in samples if s.value > 10_000_000}
        return samples if ELEPHANT_SOURCES <= top else None

    samples = wait_for(elephants, 60, 2.0)
    assert samples, f"no elephant series from {path}"
    metric = dict(params)["metric"]
    assert {s.name for s in samples} == {metric}
    for s in samples:
        assert set(s.labels) == set(labels)
        if s.labels["src"] in ELEPHANT_SOURCES:
            assert s.labels["dst"] == ELEPHANT_PAIRS[s.labels["src"]]


# ---------------------------------------------------------------- InMon's apps


def test_sflow_test_app(up):
    """sflow-rt/sflow-test scripts/test.js: its flows (two without keys, filtered
    direction=ingress, t:1; a log:true ports flow with activeTimeout 10), then each second
    agents() (sFlowFlowSamples, sFlowDatagramsReceived, the duplicate/out-of-order counters,
    firstSeen), metric(agent,'sum:ifinoctets,sum:sflow-test-bytes,sum:ifinpkts,sum:sflow-test-frames')
    (metricValue, bytes and frames from flows within 40 % of the counters: its pass test),
    dump(agent,'ifinpkts,sflow-test-frames') (dataSource) and the ports flow's records."""
    rt = up["url"]
    defs = {
        "sflow-test-bytes": {"value": "bytes", "filter": "direction=ingress", "t": 1},
        "sflow-test-frames": {"value": "frames", "filter": "direction=ingress", "t": 1},
        "sflow-test-ports": {"keys": "inputifindex,outputifindex", "value": "frames", "filter": "direction=ingress",
                             "log": True, "activeTimeout": 10},
    }
    for name, spec in defs.items():
        r = _put(rt + "/flow/" + name + "/json", spec)
        assert r.status_code in (200, 204), f"{name}: {r.status_code} {r.text}"
    agent = sorted(AGENTS)[0]  # the agent the user picks from its list (agents())
    info = wait_for(lambda: requests.get(rt + "/agents/json", params={"agent": agent}, timeout=10).json().get(agent),
                    60, 1.0)
    assert info, f"{agent} not in /agents/json"
    for counter in ("sFlowDatagramsReceived", "sFlowFlowSamples", "sFlowDatagramsDuplicates",
                    "sFlowDatagramsOutOfOrder", "sFlowCounterDuplicateSamples", "sFlowCounterOutOfOrderSamples",
                    "sFlowFlowDuplicateSamples", "sFlowFlowOutOfOrderSamples", "firstSeen"):
        assert isinstance(info.get(counter), (int, float)), f"/agents/json lacks {counter}: {info}"
    time.sleep(10)  # the flows' values settle (t = 1 s); counter rates need two counter samples
    points: dict[str, list[float]] = {"bps-counters": [], "bps-flows": [], "pps-counters": [], "pps-flows": []}
    samples = []
    for _ in range(10):
        res = requests.get(rt + "/metric/" + agent + "/sum:ifinoctets,sum:sflow-test-bytes,sum:ifinpkts,"
                           "sum:sflow-test-frames/json", timeout=10).json()
        points["bps-counters"].append((res[0].get("metricValue") or 0) * 8)
        points["bps-flows"].append((res[1].get("metricValue") or 0) * 8)
        points["pps-counters"].append(res[2].get("metricValue") or 0)
        points["pps-flows"].append(res[3].get("metricValue") or 0)
        samples.append(requests.get(rt + "/agents/json", params={"agent": agent}, timeout=10).json()[agent]
                       ["sFlowFlowSamples"])
        time.sleep(1)  # one reading a second: the mean is over time
    assert samples[-1] > samples[0]  # its sample-rate trend
    mean = {k: sum(v) / len(v) for k, v in points.items()}
    for what in ("bps", "pps"):
        assert mean[f"{what}-counters"] > 0
        diff = 100 * abs(mean[f"{what}-counters"] - mean[f"{what}-flows"]) / mean[f"{what}-counters"]
        assert diff < 40, f"{what}: flows {mean[what + '-flows']} vs counters {mean[what + '-counters']}"
    dumped = requests.get(rt + "/dump/" + agent + "/ifinpkts,sflow-test-frames/json", timeout=10).json()
    assert {m["metricName"] for m in dumped} == {"ifinpkts", "sflow-test-frames"}
    assert all(str(m["dataSource"]).isdigit() for m in dumped)
    # setFlowHandler over the ports flow: ingress ports other than 0/internal/multiple -> pass
    r = requests.get(rt + "/flows/json?name=sflow-test-ports&maxFlows=100&timeout=30&flowID=-1", timeout=40)
    assert r.status_code == 200, r.text
    inputs = {str(f["flowKeys"]).split(",")[0] for f in r.json() if f["agent"] == agent}
    assert inputs - {"internal", "multiple", "0"}


def test_browse_flows_app(up):
    """sflow-rt/browse-flows scripts/top.js and html/js/app.js: flowkeys (search by prefix) for
    the key and filter suggestions; a flow {keys, value, filter: null, t: 2, n: 10, fs: '_SEP_',
    aggMode: 'AGENT'}; each second activeFlows('ALL', name, 10, 0.01, 'max'), each key split at
    fs; the flow cleared when the page stops asking."""
    rt = up["url"]
    keys = requests.get(rt + "/flowkeys/json", timeout=10)
    assert keys.status_code == 200, keys.text
    assert {"ipsource", "ipdestination", "tcpdestinationport"} <= set(keys.json())
    assert [k for k in keys.json() if k.lower().startswith("ipso")]  # its typeahead's search
    spec = {"keys": "ipsource,ipdestination", "value": "bytes", "filter": None, "t": 2, "n": 10, "fs": SEP,
            "aggMode": "AGENT"}
    r = _put(rt + "/flow/browse_flows0/json", spec)
    assert r.status_code in (200, 204), r.text

    def top():
        rows = requests.get(rt + "/activeflows/ALL/browse_flows0/json?maxFlows=10&minValue=0.01&aggMode=max",
                            timeout=10).json()
        return rows if {row["key"].split(SEP)[0] for row in rows[:3]} == ELEPHANT_SOURCES else None

    rows = wait_for(top, 30, 1.0)
    assert rows, "the elephants are not the top 3"
    for row in rows:
        src, dst = row["key"].split(SEP)
        assert row["value"] >= 0.01
    assert requests.delete(rt + "/flow/browse_flows0/json", timeout=10).status_code in (200, 204)


# flow-trend's default shortcuts (sflow-rt/flow-trend scripts/top.js): what a user of the app
# clicks; each becomes setFlow(name, {keys, value, filter, t: 2, n: 10, fs: '_SEP_'}), and one
# sFlow-RT refuses shows nothing. Values as browse-flows' valueToKey maps them.
FLOW_TREND_SHORTCUTS = [
    ("ip-sources", "ipsource", "bps", ""),
    ("ip-destinations", "ipdestination", "bps", ""),
    ("ip-pairs", "ipsource,ipdestination", "bps", ""),
    ("ip6-sources", "ip6source", "bps", ""),
    ("ip6-destinations", "ip6destination", "bps", ""),
    ("ip6-pairs", "ip6source,ip6destination", "bps", ""),
    ("mac-sources", "macsource,oui:macsource:name", "frames", ""),
    ("mac-broadcasts", "macsource,oui:macsource:name", "frames", "macdestination=FFFFFFFFFFFF"),
    ("tcp-connection-attempts", "ipsource,ipdestination,tcpdestinationport", "frames", "tcpflags~.......1."),
    ("arp-requests", "arpipsender", "requests", "arpoperation=1"),
    ("dns-domains", "dnsqname", "requests", ""),
    ("dns-clients", "or:ipsource:ip6source", "requests", "dnsqr=false"),
    ("dns-servers", "or:ipsource:ip6source", "requests", "dnsqr=true"),
    ("icmp-unreachable-ports", "ipdestination,icmpunreachableport", "fps", ""),
    ("icmp-unreachable-protocols", "ipdestination,icmpunreachableprotocol", "fps", ""),
    ("icmp-unreachable-hosts", "ipdestination,icmpunreachablehost", "fps", ""),
    ("icmp-unreachable-networks", "ipdestination,icmpunreachablenet", "fps", ""),
    ("vxlan-vni", "vxlanvni", "bps", ""),
    ("nvgre-vsid", "grevsid", "bps", ""),
    ("geneve-vni", "genevevni", "bps", ""),
]


@pytest.mark.parametrize("keys, value, filter_", [s[1:] for s in FLOW_TREND_SHORTCUTS],
                         ids=[s[0] for s in FLOW_TREND_SHORTCUTS])
def test_flow_trend_shortcut_is_accepted(up, keys, value, filter_):
    rt = up["url"]
    value = {"bps": "bytes", "Bps": "bytes", "fps": "frames"}.get(value, value)
    spec = {"keys": keys, "value": value, "filter": filter_ or None, "t": 2, "n": 10, "fs": SEP}
    r = _put(rt + "/flow/flow_trend_0/json", spec)
    assert r.status_code in (200, 204), f"{r.status_code} {r.text}"
    assert requests.get(rt + "/flow/flow_trend_0/json", timeout=10).json()["keys"] == keys
    assert requests.delete(rt + "/flow/flow_trend_0/json", timeout=10).status_code in (200, 204)


def test_browse_metrics_app(up):
    """sflow-rt/browse-metrics html/js/app.js: /agents/json for the agent list; /metrics/json
    (agent ALL) or /metric/{agent}/json (keys 'dataSource.metric', split at the last dot) for
    the metric and data-source lists; then each second
    /metric/{agent}/{aggregation}:[{dataSource}.]{metric}/json reading data[0]'s metricValue,
    agent, dataSource and metricN."""
    rt = up["url"]
    # the page polls; the first counters of both agents take a few seconds after a start
    agents = wait_for(lambda: requests.get(rt + "/agents/json", timeout=10).json(), 60, 1.0)
    assert set(agents) == AGENTS
    assert wait_for(lambda: requests.get(rt + "/metric/ALL/max:ifinoctets/json", timeout=10).json()[0]
                    .get("metricN") == 16, 60, 1.0)
    metrics = requests.get(rt + "/metrics/json", timeout=10).json()
    assert "ifinoctets" in metrics and all(isinstance(v, (int, float)) for v in metrics.values())
    agent = sorted(agents)[0]
    per_ds = requests.get(rt + "/metric/" + agent + "/json", timeout=10).json()
    names: dict[str, set[str]] = {}
    for k in per_ds:
        ds, _, name = k.rpartition(".")
        names.setdefault(name, set()).add(ds)
    assert names["ifinoctets"] == {str(i) for i in range(1, 9)}
    for aggregation in ("max", "min", "sum", "avg"):
        data = requests.get(rt + "/metric/ALL/" + aggregation + ":ifinoctets/json", timeout=10).json()
        assert isinstance(data[0]["metricValue"], (int, float)) and data[0]["metricN"] == 16, (aggregation, data)
    ds = sorted(names["ifinoctets"])[0]
    data = requests.get(rt + "/metric/" + agent + "/max:" + ds + ".ifinoctets/json", timeout=10).json()
    assert isinstance(data[0].get("metricValue"), (int, float)) and data[0]["metricN"] == 1, data
    assert data[0]["agent"] == agent and str(data[0]["dataSource"]) == ds


# ---------------------------------------------------------------- ground truth


GT_T = 2.0  # sFlow-RT's default smoothing time constant t
GT_WINDOW = 90.0  # s of readings; >> t, so the smoothed values' mean is the window's mean rate
GT_LAG = 1.0  # s from a sample's arrival to its effect on a reported value (one report interval)


def _truth(data, start: float, end: float) -> dict[tuple[str, str, str], float]:
    """ClickHouse ground truth: bytes (frame_length x sampling_rate) per (agent, dataSource,
    'source,destination') of the elephant flows, over [start, end) (s since the epoch)."""
    sources = ",".join(f"'{s}'" for s in ELEPHANT_SOURCES)
    rows = sql_rows(data, f"""
        SELECT replaceOne(toString(agent), '::ffff:', ''), source_id_index,
               replaceOne(toString(src_ip), '::ffff:', ''), replaceOne(toString(dst_ip), '::ffff:', ''),
               sum(frame_length * sampling_rate)
        FROM flow_samples
        WHERE time >= toDateTime64({start:.6f}, 6, 'UTC') AND time < toDateTime64({end:.6f}, 6, 'UTC')
          AND replaceOne(toString(src_ip), '::ffff:', '') IN ({sources})
        GROUP BY 1, 2, 3, 4""")
    assert rows is not None, "sflowpipe sql failed"
    return {(a, ds, f"{src},{dst}"): float(b) for a, ds, src, dst, b in rows}


def _newest_sample(data) -> float:
    rows = sql_rows(data, "SELECT toUnixTimestamp64Micro(max(time)) FROM flow_samples")
    return int(rows[-1][0]) / 1e6 if rows else 0.0


def test_flow_values_top_keys_and_logged_flows_match_clickhouse(up):
    """Flow values (/activeflows), the /metric topKeys values and the logged flows (/flows/json)
    of the elephants agree with ClickHouse ground truth within 5 %.

    A flow value is a rate smoothed exponentially with time constant t, so one reading holds
    the last ~t seconds of samples. The demo's traffic is steady, so the test reads each
    second for a window W >> t and compares the mean reading with the mean rate over the
    same window moved back by t and by the report lag (the mean of an exponentially smoothed
    series over W is the mean of its input over W moved back by t, edges aside): both sides
    count the same samples, so what is left is the edges (~t/W) and not sampling noise.
    Logged flows are totals over [start, end] of each record; several consecutive records of a
    key are compared with the samples of that key between the first start and the last end."""
    rt, data = up["url"], up["data"]
    spec = {"keys": "ipsource,ipdestination", "value": "bytes", "t": GT_T}
    assert _put(rt + "/flow/gt_pair/json", spec).status_code in (200, 204)
    logged = {"keys": "ipsource,ipdestination", "value": "bytes", "log": True, "activeTimeout": 20,
              "filter": "ipsource=" + ",".join(sorted(ELEPHANT_SOURCES))}
    log_defined = _put(rt + "/flow/gt_log/json", logged).status_code in (200, 204)

    def elephants():
        rows = requests.get(rt + "/activeflows/ALL/gt_pair/json?maxFlows=3", timeout=10).json()
        return rows if {row["key"].split(",")[0] for row in rows} == ELEPHANT_SOURCES else None

    assert wait_for(elephants, 60, 1.0), "the elephants are not the top flows of gt_pair"
    time.sleep(6 * GT_T)  # the smoothed values start from 0: e^-6 of that start is left

    flow_sums: dict[tuple[str, str, str], float] = {}  # (agent, dataSource, key) -> sum of readings
    topkey_sums: dict[tuple[str, str, str], float] = {}
    where: dict[tuple[str, str], str] = {}  # (agent, key) -> dataSource
    n = 0
    t0 = time.time()
    while time.time() - t0 < GT_WINDOW:
        tick = time.monotonic()
        for agent in sorted(AGENTS):
            rows = requests.get(rt + f"/activeflows/{agent}/gt_pair/json?maxFlows=20&aggMode=sum", timeout=10).json()
            for row in rows:
                if row["key"].split(",")[0] in ELEPHANT_SOURCES:
                    where[(agent, row["key"])] = str(row["dataSource"])
                    k = (agent, str(row["dataSource"]), row["key"])
                    flow_sums[k] = flow_sums.get(k, 0.0) + row["value"]
        for (agent, key), ds in sorted(where.items()):
            m = requests.get(rt + f"/metric/{agent}/{ds}.gt_pair/json", timeout=10).json()
            for tk in (m[0].get("topKeys") or []) if m else []:
                if tk["key"] == key:
                    k = (agent, ds, key)
                    topkey_sums[k] = topkey_sums.get(k, 0.0) + tk["value"]
        n += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))  # one reading a second: the sums are over time
    t1 = time.time()

    # the ClickHouse sink writes in batches: wait until it holds samples past the window
    assert wait_for(lambda: _newest_sample(data) > t1 + 2, 60, 2.0), "ClickHouse lags the window"
    shift = GT_T + GT_LAG
    truth = _truth(data, t0 - shift, t1 - shift)
    rate = {k: v / (t1 - t0) for k, v in truth.items()}
    assert len(rate) == 6, rate  # 3 elephants x 2 agents, each agent on one data source

    failures, report = [], []

    def compare(what: str, got: float, want: float) -> None:
        line = f"{what}: {got:.0f} vs ClickHouse {want:.0f} ({100 * (got - want) / want:+.1f} %)"
        report.append(line)
        if abs(got - want) > 0.05 * want:
            failures.append(line)

    for k, r_true in sorted(rate.items()):
        compare(f"flow value {k} B/s", flow_sums.get(k, 0.0) / n, r_true)
        compare(f"/metric topKeys {k} B/s", topkey_sums.get(k, 0.0) / n, r_true)

    # logged flows: the records so far (definition + warm-up + window > 3 x activeTimeout)
    r = requests.get(rt + "/flows/json?name=gt_log&maxFlows=1000&timeout=1&flowID=-1", timeout=10)
    if not log_defined:
        failures.append(f"log:true flow refused: {logged}")
    elif r.status_code != 200:
        failures.append(f"/flows/json: {r.status_code} {r.text[:200]}")
    else:
        records: dict[tuple[str, str, str], list[dict]] = {}
        for f in r.json():
            records.setdefault((f["agent"], str(f["dataSource"]), f["flowKeys"]), []).append(f)
        for k in sorted(rate):
            recs = sorted(records.get(k, []), key=lambda f: f["start"])
            if len(recs) < 2:
                failures.append(f"logged flows {k}: {len(recs)} records")
                continue
            start, end = recs[0]["start"] / 1000, recs[-1]["end"] / 1000
            # the records' times are the processor's clock at a batch, the samples' their arrival
            true_total = _truth(data, start - GT_LAG / 2, end - GT_LAG / 2 + 0.001).get(k, 0.0)
            compare(f"logged flows {k} B over {end - start:.0f} s", sum(f["value"] for f in recs), true_total)
    print("\n".join(report))  # the margins, shown by pytest -rP
    assert not failures, "\n".join(failures + ["all comparisons:"] + report)
