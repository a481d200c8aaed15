"""The Faust workers on the real broker: top flows against a brute-force computation, elephant
events (one per flow, re-armed after the timeout), counter metrics, enrichment, live config."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import pytest
from confluent_kafka import Producer

from ingest.generate import Generator
from ingest.pcap import UdpDatagram, read_udp_payloads
from ingest.replay import publish_kafka
from ingest.sflow.encode import encode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import Datagram, FlowSample
from sflowpipe.config_plane import DefinitionError, publish
from sflowpipe.settings import load_settings
from tests.kafka_helpers import group_lag, read_topic
from tests.processors.discard_data import discard_datagram, tcp_frame
from tests.sflowpipe.test_flowspec_parity import TOPO
from tests.processors.processor_harness import ProcessorProcess
from tests.sflow_data import decodable
from tests.waiting import until

pytestmark = pytest.mark.kafka


def ingest_settings(bootstrap, prefix, tmp_path):
    return load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.topic_prefix": prefix,
                            "kafka.partitions": 3, "ingest.spill_dir": str(tmp_path / "spill"),
                            "ingest.batch_max_ms": 20})


def brute_force_pairs(payloads) -> dict[tuple[str, str], dict[str, float]]:
    """(agent, data source) -> {"src,dst": bytes scaled by the sampling rate} for IPv4 samples."""
    out: dict = defaultdict(lambda: defaultdict(float))
    for dg in decodable(payloads):
        for s in dg.samples:
            if type(s) is not FlowSample:
                continue
            h = next((r for r in s.records if type(r) is SampledHeader), None)
            if h is None or h.decoded is None or h.decoded.ip_version != 4:
                continue
            ds = str(s.source_id_index) if s.source_id_type == 0 else f"{s.source_id_type}.{s.source_id_index}"
            out[(dg.agent_address, ds)][f"{h.decoded.src_ip},{h.decoded.dst_ip}"] += h.frame_length * s.sampling_rate
    return out


def latest_active(messages, flow):
    last = {}
    for m in messages:
        if m["flow"] == flow:
            last[m["agent"]] = m
    return last


def test_top_flows_match_brute_force(kafka_bootstrap, topic_prefix, tmp_path, captures_dir):
    defs = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes", "t": 600, "n": 10}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    try:
        datagrams = read_udp_payloads(str(captures_dir / "overflowd__sflow.pcap"))
        t0 = time.time()
        publish_kafka(datagrams, ingest_settings(kafka_bootstrap, topic_prefix, tmp_path), speed=0)
        want = brute_force_pairs([d.payload for d in datagrams])
        agents = {a for a, _ in want}
        # the worker has processed the whole capture (it commits after processing; on a loaded machine
        # that is well after the publishing): a report after that has every sample
        until(lambda: group_lag(kafka_bootstrap, f"{topic_prefix}app", topic_prefix + "flow-samples") == 0, 90)
        processed = max(time.time(), t0 + 3)

        def complete(msgs):
            last = latest_active(msgs, "pair")
            return set(last) >= agents and all(m["timestamp"] / 1000 > processed for m in last.values())

        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows", complete, timeout=90)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    last = latest_active(msgs, "pair")
    assert set(last) == agents
    checked = 0
    for agent, m in last.items():
        by_ds = defaultdict(list)
        for e in m["flows"]:
            by_ds[e["dataSource"]].append((e["key"], e["value"]))
        decay = math.exp(-(m["timestamp"] / 1000 - t0) / 600)
        for ds, got in by_ds.items():
            totals = want[(agent, ds)]
            ranked = sorted(totals.items(), key=lambda kv: -kv[1])
            assert len(got) == min(10, len(ranked))
            for key, value in got[:3]:  # the largest flows, with their values
                expected = totals[key] / 600 * decay
                assert value == pytest.approx(expected, rel=0.03), (ds, key)
            assert got[0][1] == pytest.approx(ranked[0][1] / 600 * decay, rel=0.03)
            checked += 1
    assert checked >= 1


def generated(seconds: float, rate: float, start: float, seed: int = 4) -> list[UdpDatagram]:
    gen = Generator(agents=1, interfaces=4, sampling_rate=100, counter_interval=1.0, seed=seed)
    out = []
    for i in range(int(seconds * rate)):
        ts = start + i / rate
        out.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), "192.0.2.200", 6343, "", 0, gen.datagram(now=ts)))
    return out


def test_elephant_events_one_per_flow_and_rearm(kafka_bootstrap, topic_prefix, tmp_path):
    defs = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes"}},
            "thresholds": {"elephant": {"metric": "pair", "value": 1_250_000, "byFlow": True, "timeout": 2}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    settings = ingest_settings(kafka_bootstrap, topic_prefix, tmp_path)
    elephants = {f"10.1.{i}.10,192.0.2.{10 + i}" for i in range(3)}
    try:
        publish_kafka(generated(6, 20, time.time()), settings, speed=1)
        stopped = time.time()
        first = read_topic(kafka_bootstrap, topic_prefix + "events", lambda m: len(m) >= 3, timeout=30)

        def rearmed(msgs):
            """Traffic stopped: the elephants decayed under the threshold and stayed there for its
            timeout (2 s) between two report rounds, so the second round's check re-armed them."""
            rounds: dict[int, float] = {}
            for m in msgs:
                if m["flow"] == "pair" and m["timestamp"] / 1000 > stopped:
                    top = max((e["value"] for e in m["flows"] if e["key"] in elephants), default=0.0)
                    rounds[m["timestamp"]] = max(rounds.get(m["timestamp"], 0.0), top)
            last_over = max((ts for ts, top in rounds.items() if top > 1_250_000), default=0)
            under = sorted(ts for ts, top in rounds.items() if top <= 1_250_000 and ts > last_over)
            return bool(under) and under[-1] - under[0] >= 2000

        assert rearmed(read_topic(kafka_bootstrap, topic_prefix + "flows", rearmed, timeout=60))
        publish_kafka(generated(5, 20, time.time(), seed=5), settings, speed=1)
        events = read_topic(kafka_bootstrap, topic_prefix + "events", lambda m: len(m) >= 6, timeout=30)
        # then no more may come: waiting this out is the check (6 s: three report intervals and more)
        events = read_topic(kafka_bootstrap, topic_prefix + "events", lambda m: False, timeout=6)
        metrics = read_topic(kafka_bootstrap, topic_prefix + "metrics", lambda m: len(m) >= 2, timeout=20)
        enriched = read_topic(kafka_bootstrap, topic_prefix + "enriched-flow-samples", lambda m: len(m) >= 1,
                              timeout=20)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    assert {e["flowKey"] for e in first[:3]} == elephants
    assert len(events) == 6, [(e["flowKey"], e["timestamp"]) for e in events]
    assert sorted(e["flowKey"] for e in events) == sorted(list(elephants) * 2)
    assert all(e["thresholdID"] == "elephant" and e["metric"] == "pair" and e["value"] > e["threshold"]
               for e in events)
    ids = [e["eventID"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 6
    names = {m["name"] for batch in metrics for m in batch["metrics"]}
    assert {"ifinoctets", "ifoutoctets", "ifinutilization"} <= names
    e = enriched[0]
    assert len(e["src_country"]) == len(e["sequence_number"]) and "dst_groups" in e


def test_live_definition_from_config_topic(kafka_bootstrap, topic_prefix, tmp_path):
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, {"flows": {}}, app_id=f"{topic_prefix}app")
    worker.start()
    settings = ingest_settings(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        publish(settings, "flow", "bydst", {"keys": "ipdestination", "value": "frames"})
        # the topology as the API's PUT /topology/json publishes it: every port of the agent is a link end
        publish(settings, "topology", "topology", {
            "nodes": {"leaf": {"agent": "192.0.2.200", "ports": {f"p{i}": {"ifindex": str(i)} for i in range(1, 5)}},
                      "spine": {"agent": "192.0.2.250", "ports": {f"s{i}": {"ifindex": str(i)} for i in range(1, 5)}}},
            "links": {f"l{i}": {"node1": "leaf", "port1": f"p{i}", "node2": "spine", "port2": f"s{i}"}
                      for i in range(1, 5)}})
        publish(settings, "flow", "bylink", {"keys": "link:inputifindex", "value": "frames"})
        with pytest.raises(DefinitionError, match="ipsrc"):  # refused where it is made
            publish(settings, "flow", "broken", {"keys": "ipsrc"})
        # written past publish() (another tool, an older version): the worker rejects it, named in the log
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        p.produce(topic_prefix + "config", json.dumps({"keys": "ipsrc"}).encode(), b"flow:broken")
        assert p.flush(10) == 0
        # the worker has taken both flows and refused the broken one (the engine logs each flow it takes)
        until(lambda: all(text in worker.log.read_text(errors="replace")
                          for text in ("flow bydst: keys=", "flow bylink: keys=", "rejected b'flow:broken'")),
              timeout=60)
        publish_kafka(generated(3, 20, time.time()), settings, speed=1)
        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows",
                          lambda m: {"bydst", "bylink"} <= {x["flow"] for x in m}, timeout=30)
        metrics = worker.metrics()  # the worker's own /metrics, with the traffic just processed
        # the same registry's numbers on the status topic (the API's status page and /analyzer/json)
        statuses = read_topic(kafka_bootstrap, topic_prefix + "status", decode=json.loads, timeout=30,
                              until=lambda ms: any(m.get("kind") == "processor" and m["samples"] > 0
                                                   and m["definitions_rejected"] >= 1 for m in ms))
    finally:
        worker.stop()
    status = next(m for m in statuses if m.get("kind") == "processor" and m["samples"] > 0
                  and m["definitions_rejected"] >= 1)
    assert status["component"] == f"{topic_prefix}app" and status["instance"].endswith(f":{topic_prefix}app:0")
    assert status["batches"] > 0 and status["rebalances"] >= 1 and status["checkpoints"] > 0
    assert status["undecodable"] == 0
    assert metrics.value("sflowpipe_processors_samples_total", kind="flow") > 0
    assert metrics.value("sflowpipe_processors_samples_total", kind="counter") > 0
    assert metrics.value("sflowpipe_processors_batches_total", kind="flow") > 0
    assert metrics.value("sflowpipe_processors_definitions_rejected_total") >= 1  # flow:broken
    assert metrics.value("sflowpipe_processors_rebalances_total", change="assigned") >= 1
    assert metrics.value("sflowpipe_processors_reports_total", kind="flows") > 0
    assert metrics.has("sflowpipe_processors_lag_messages")
    assert metrics.value("sflowpipe_processors_checkpoint_seconds_count") > 0
    assert any(m["flow"] == "bydst" and m["value"] == "frames" for m in msgs)
    links = {e["key"] for m in msgs if m["flow"] == "bylink" for e in m["flows"]}
    assert links and links <= {"l1", "l2", "l3", "l4"}, links
    assert "ipsrc" in worker.log.read_text()


def test_blocklist_events_from_the_worker(kafka_bootstrap, topic_prefix, tmp_path):
    """A blocklist configured in the settings, through a real worker: a listed elephant
    destination raises blocklist events (one per address pair within the rate limit)."""
    listed = tmp_path / "bad.txt"
    listed.write_text("# test list\n192.0.2.10\n198.18.0.0/15\n")
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, {"flows": {}}, app_id=f"{topic_prefix}app",
                              extra_env={"SFLOWPIPE_PROCESSORS__BLOCKLISTS":
                                         '{"bad": {"source": "%s", "rate_limit_s": 600}}' % listed})
    worker.start()
    settings = ingest_settings(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        publish_kafka(generated(3, 20, time.time()), settings, speed=1)
        events = read_topic(kafka_bootstrap, topic_prefix + "events", lambda m: len(m) >= 1, timeout=30)
        # then no more may come (rate-limited): waiting this out is the check
        events = read_topic(kafka_bootstrap, topic_prefix + "events", lambda m: False, timeout=7)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    assert events and all(e["thresholdID"] == "blocklist" and e["metric"] == "bad" for e in events)
    # the elephant 10.1.0.10 -> 192.0.2.10 is the only listed pair: one event per agent sending it
    assert {e["flowKey"] for e in events} == {"10.1.0.10,192.0.2.10"}
    assert len(events) == len({e["agent"] for e in events})


def _parity_datagrams(agent: str, seconds: float, rate: float, start: float) -> list[UdpDatagram]:
    """Per datagram: two packet samples (one in on swp1, an inter-switch link; one on swp2, an edge
    port) and two discard notifications (reason acl, ttl_exceeded) of agent ``agent``."""
    out = []
    for i in range(int(seconds * rate)):
        ts = start + i / rate
        samples = (
            FlowSample(False, 2 * i, 0, 3, 100, 100 * i, 0, 0, 3, 0, 4, (
                SampledHeader.of(1, 1000, 4, tcp_frame("10.3.0.1", "10.9.0.1")),)),
            FlowSample(False, 2 * i + 1, 0, 4, 100, 100 * i, 0, 0, 4, 0, 3, (
                SampledHeader.of(1, 1000, 4, tcp_frame("10.4.0.1", "10.9.0.1")),)),
        ) + discard_datagram(agent, [(3, 258, tcp_frame("10.3.0.1", "10.9.0.1")),
                                     (4, 257, tcp_frame("10.4.0.1", "10.9.0.1"))], seq=2 * i).samples
        dg = Datagram(5, agent, 0, i + 1, int((ts - start) * 1000) + 1000, samples)
        out.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), agent, 6343, "", 0, encode_datagram(dg)))
    return out


def test_dropped_and_link_flows_end_to_end(kafka_bootstrap, topic_prefix, tmp_path):
    """A dropped: true flow (discard notifications by reason) and a link: flow over a topology from
    the definitions file, through the Faust worker on the broker; flowkeys reach the status topic."""
    agent = "192.0.2.200"
    defs = {"flows": {"drops": {"keys": "reason", "value": "frames", "dropped": True, "t": 600},
                      "bylink": {"keys": "link:inputifindex,ipsource", "value": "frames", "t": 600},
                      "edge": {"keys": "ipsource", "value": "frames", "t": 600, "aggMode": "edge"}},
            "topology": TOPO}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    settings = ingest_settings(kafka_bootstrap, topic_prefix, tmp_path)
    try:
        t0 = time.time()
        publish_kafka(_parity_datagrams(agent, 2, 10, t0), settings, speed=0)

        def complete(msgs):
            last = latest_active([m for m in msgs if m["timestamp"] / 1000 > t0 + 2], "drops")
            return agent in last and all(any(m["flow"] == f for m in msgs) for f in ("bylink", "edge"))

        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows", complete, timeout=60)
        status = read_topic(kafka_bootstrap, topic_prefix + "status",
                            lambda m: any(x.get("kind") == "flowkeys" and "reason" in x["keys"] for x in m),
                            timeout=30, decode=json.loads)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    flows = {(m["flow"], e["dataSource"], e["key"]): (e["value"], m["timestamp"]) for m in msgs
             for e in m["flows"]}
    # 20 notifications of each reason, t = 600: value = 20 / 600 decayed to the report time
    for ds, reason in (("3", "acl"), ("4", "ttl_exceeded")):
        value, ts = flows[("drops", ds, reason)]
        assert value == pytest.approx(20 / 600 * math.exp(-(ts / 1000 - t0) / 600), rel=0.05)
    # swp1 (ifIndex 3) is the leaf1-spine1 link's end; swp2 (4) is no link's: no link: value, no flow
    assert flows[("bylink", "3", "leaf1-spine1,10.3.0.1")][0] > 0
    assert not any(k[0] == "bylink" and k[1] == "4" for k in flows)
    # edge: only what came in on the edge port
    assert {k[2] for k in flows if k[0] == "edge"} == {"10.4.0.1"}
    fk = [x for x in status if x.get("kind") == "flowkeys" and "reason" in x["keys"]][-1]
    assert {"ipsource", "tcpdestinationport", "direction", "reason", "agent"} <= set(fk["keys"])
    assert fk["worker"] and fk["time"] >= fk["keys"]["ipsource"]


def test_a_capture_with_32_bit_vlans_is_analysed_and_forwarded_whole(kafka_bootstrap, topic_prefix, tmp_path,
                                                                     captures_dir):
    """akvorado__data-1140.pcap has an extended switch record with VLAN 4294967295 (32-bit field).
    The `vlan` key raised IndexError on it: the flow agent crashed, Faust restarted it past the
    message, and that batch's samples never reached the sinks (seen as 5 rows missing in the
    scale-out test). Now: the key is its decimal text, every batch is analysed and forwarded, and
    an analysis error, should one remain, is counted (sflowpipe_processors_batch_errors_total)
    instead of crashing the agent."""
    defs = {"flows": {"vlans": {"keys": "vlan", "value": "frames", "t": 600, "n": 20}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    try:
        datagrams = read_udp_payloads(str(captures_dir / "akvorado__data-1140.pcap"))
        publish_kafka(datagrams, ingest_settings(kafka_bootstrap, topic_prefix, tmp_path), speed=0)
        until(lambda: group_lag(kafka_bootstrap, f"{topic_prefix}app", topic_prefix + "flow-samples") == 0, 90)
        sent = read_topic(kafka_bootstrap, topic_prefix + "flow-samples", lambda m: False, timeout=10)
        forwarded = read_topic(kafka_bootstrap, topic_prefix + "enriched-flow-samples",
                               lambda m: len(m) >= len(sent), timeout=60)
        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows",
                          lambda m: any(e["key"] == "4294967295" for x in m for e in x["flows"]), timeout=60)
        metrics = worker.metrics()
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    assert sent and len(forwarded) == len(sent)
    assert sorted(len(b["sequence_number"]) for b in forwarded) == sorted(len(b["sequence_number"]) for b in sent)
    assert any(e["key"] == "4294967295" for m in msgs for e in m["flows"])
    assert not any(v for (name, _), v in metrics.items() if name == "sflowpipe_processors_batch_errors_total")
    assert "Traceback" not in worker.log.read_text()
