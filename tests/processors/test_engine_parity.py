"""The engine's sFlow-RT parity: dropped: true flows over discard notifications, aggMode edge and
agent, link: over an imported topology, flows without keys, the flowkeys status message."""

from __future__ import annotations

import pytest

from sflowpipe.config_plane import parse
from processors.engine import Engine
from schemas.codec import AvroCodec
from tests.processors.discard_data import discard_batch, discard_datagram, tcp_frame
from tests.sflowpipe.test_flowspec import batch, tcp4, udp4, vxlan
from tests.sflowpipe.test_flowspec_parity import TOPO

NOW = 1_700_000_000.0
A = "192.0.2.200"


class _NoEnrich:
    def enrich_batch(self, batch):
        return {}


def engine(*flows, topology=None):
    e = Engine(_NoEnrich(), clock=lambda: NOW)
    for name, body in flows:
        e.apply("flow", name, parse("flow", name, body))
    if topology is not None:
        e.apply("topology", "topology", parse("topology", "topology", topology))
    return e


def tops(e, now=NOW):
    active, _, _ = e.report(now)
    return {(m["flow"], m["agent"], f["dataSource"], f["key"]): f["value"] for m in active for f in m["flows"]}


def decoded(datum: dict) -> dict:
    c = AvroCodec("discard_sample_batch")
    return c.decode(c.encode(datum))  # as the worker reads it off the discard-samples topic


def test_dropped_flow_counts_discard_notifications_by_reason_and_ignores_packet_samples():
    e = engine(("drops", {"keys": "reason", "value": "frames", "dropped": True, "t": 10}),
               ("bysrc", {"keys": "ipsource,reason", "value": "bytes", "dropped": True, "t": 10}),
               ("pkts", {"keys": "ipsource", "value": "frames", "t": 10}))
    assert e.wants_discards
    frame = tcp_frame("10.0.0.1", "10.0.0.2")
    dg = discard_datagram(A, [(3, 258, frame), (3, 258, frame), (3, 257, tcp_frame("10.0.0.9", "10.0.0.2")),
                              (4, 999, frame)])
    e.on_discard_batch(decoded(discard_batch(dg)), NOW)
    e.on_flow_batch(batch(tcp4()), NOW)
    got = tops(e)
    # one notification is one dropped packet: frames = notifications / t
    assert got[("drops", A, "3", "acl")] == pytest.approx(2 / 10)
    assert got[("drops", A, "3", "ttl_exceeded")] == pytest.approx(1 / 10)
    assert got[("drops", A, "4", "999")] == pytest.approx(1 / 10)  # a code the spec does not name
    assert got[("bysrc", A, "3", "10.0.0.1,acl")] == pytest.approx(2 * (len(frame) + 4) / 10)
    assert ("pkts", A, "3", "10.1.2.3") in got  # packet samples feed the other flows only
    assert not any(k[0] == "pkts" and k[3] in ("10.0.0.1", "10.0.0.9") for k in got)
    assert not any(k[0] in ("drops", "bysrc") and k[3] == "10.1.2.3" for k in got)


def test_no_dropped_flow_means_discards_are_not_even_decoded():
    e = engine(("pkts", {"keys": "ipsource"}))
    assert not e.wants_discards
    e.on_discard_batch({"agent_address": A, "samples": None}, NOW)  # not looked at
    assert tops(e) == {}


def test_link_keys_and_edge_aggregation_over_the_imported_topology():
    e = engine(("bylink", {"keys": "link:inputifindex", "value": "frames", "t": 10}),
               ("edge", {"keys": "ipsource", "value": "frames", "t": 10, "aggMode": "edge"}),
               ("all", {"value": "frames", "t": 10}),
               topology=TOPO)
    # ds 3 is swp1 (an inter-switch link), ds 4 swp2 (an edge port); the last sample is egress on 4
    e.on_flow_batch(batch(tcp4(source_id_index=3, input=3), tcp4(source_id_index=4, input=4, src_ip="10.4.4.4"),
                          tcp4(source_id_index=4, input=3, output=4, src_ip="10.5.5.5")), NOW)
    got = tops(e)
    assert got[("bylink", A, "3", "leaf1-spine1")] == pytest.approx(100 / 10)
    assert got[("bylink", A, "4", "leaf1-spine1")] == pytest.approx(100 / 10)
    assert [k[3] for k in got if k[0] == "edge"] == ["10.4.4.4"]  # counted once: ingress, not a link
    assert got[("all", A, "3", "")] == pytest.approx(10) and got[("all", A, "4", "")] == pytest.approx(20)
    e.apply("topology", "topology", None)  # deleted: no link resolves, every port is an edge
    e.on_flow_batch(batch(tcp4(source_id_index=3, input=3, src_ip="10.3.3.3")), NOW)
    assert ("edge", A, "3", "10.3.3.3") in tops(e)


def test_agent_aggregation_pools_data_sources():
    e = engine(("out", {"keys": "outputifindex", "value": "frames", "t": 10, "aggMode": "AGENT"}))
    e.on_flow_batch(batch(tcp4(source_id_index=3, input=3, output=7), tcp4(source_id_index=5, input=5, output=7),
                          udp4(source_id_index=6, input=6, output=8)), NOW)
    got = tops(e)
    assert got == {("out", A, "0", "7"): pytest.approx(20), ("out", A, "0", "8"): pytest.approx(10)}


def test_flowkeys_lists_keys_with_values_and_examines_one_batch_per_interval():
    e = engine(("pkts", {"keys": "ipsource"}))
    e.on_flow_batch(batch(tcp4(), vxlan()), NOW)
    e.on_flow_batch(batch(dict(tcp4(), ip_version=6, src_ip="2001:db8::1", eth_type=0x86DD)), NOW + 0.5)
    m = e.keys_seen.message("w1", NOW + 0.6)
    assert m["kind"] == "flowkeys" and m["worker"] == "w1" and m["time"] == int((NOW + 0.6) * 1000)
    keys = m["keys"]
    assert {"agent", "ipsource", "tcpdestinationport", "vxlanvni", "vni", "udpdestinationport", "direction",
            "ipsource.1", "tcpdestinationport.1", "macsource.1"} <= set(keys)
    assert keys["ipsource"] == int(NOW * 1000)
    assert "ip6source" not in keys and "grevsid" not in keys and "reason" not in keys
    assert "ipsource.2" not in keys
    e.on_flow_batch(batch(dict(tcp4(), ip_version=6, src_ip="2001:db8::1", eth_type=0x86DD)), NOW + 1.5)
    keys = e.keys_seen.message("w1", NOW + 2)["keys"]
    assert keys["ip6source"] == int((NOW + 1.5) * 1000) and keys["ipsource"] == int(NOW * 1000)
    # discards: their reason is a key too
    e.apply("flow", "drops", parse("flow", "drops", {"keys": "reason", "dropped": True}))
    e.on_discard_batch(decoded(discard_batch(discard_datagram(A, [(3, 258, tcp_frame("10.0.0.1", "10.0.0.2"))]))),
                       NOW + 3)
    assert e.keys_seen.message("w1", NOW + 3)["keys"]["reason"] == int((NOW + 3) * 1000)
    assert "ipsource" in e.keys_seen.message("w1", NOW + 3602)["keys"]  # last seen on the discard at NOW + 3
    assert "ipsource" not in e.keys_seen.message("w1", NOW + 3604)["keys"]  # forgotten after an hour


def test_cold_columns_while_a_packet_flow_reads_ip_offset_never_for_dropped_flows():
    e = engine(("pkts", {"keys": "ipsource"}))
    assert not e.cold_columns
    e.apply("flow", "off", parse("flow", "off", {"keys": "ip_offset"}))
    assert e.cold_columns == {"ip_offset"}
    e.apply("flow", "off", None)
    e.apply("flow", "drops", parse("flow", "drops", {"keys": "reason,ip_offset,dnsqname", "dropped": True}))
    assert not e.cold_columns  # discard batches are decoded whole anyway


def test_payload_keys_on_dropped_packets():
    """A dropped: true flow reads the dropped packet's payload too (here: its DNS query)."""
    from tests.payload_frames import dns_frame

    e = engine(("dropdns", {"keys": "reason,dnsqname", "value": "frames", "dropped": True, "t": 10}))
    e.on_discard_batch(decoded(discard_batch(discard_datagram(A, [(3, 258, dns_frame("10.0.0.9", "10.0.0.53", 7, "example.com"))]))), NOW)
    assert tops(e) == {("dropdns", A, "3", "acl,example.com."): pytest.approx(0.1)}


def test_links_without_nodes_are_placed_by_the_names_agents_report():
    """sFlow-RT's topology may list links only: an end is placed by the agent's host_descr host
    name (the node) and a data source's port_name (the port), from its counter samples."""
    from tests.processors.test_counters import sample as counter_sample

    e = engine(("bylink", {"keys": "link:inputifindex,link:outputifindex", "value": "frames", "t": 10}),
               topology={"links": {"link1": {"node1": "leaf1", "port1": "swp1", "node2": "spine1", "port2": "swp1"},
                                   "link2": {"node1": "leaf1", "port1": "swp2", "node2": "spine2",
                                             "port2": "swp1"}}})
    b = batch(tcp4(source_id_index=3, input=3, output=4))
    e.on_flow_batch(b, NOW)
    assert tops(e) == {}  # names not reported yet: no end is placed
    e.on_counter_batch({"agent_address": A, "exporter_address": A, "samples": [
        counter_sample([("sflowpipe.HostDescr", {"hostname": "leaf1"})], 1_000, 1, ds_type=2, ds_index=1),
        counter_sample([("sflowpipe.PortName", {"name": "swp1"})], 1_000, 2, ds_type=0, ds_index=3),
        counter_sample([("sflowpipe.PortName", {"name": "swp2"})], 1_000, 3, ds_type=0, ds_index=4)]})
    e.on_flow_batch(b, NOW)
    assert tops(e) == {("bylink", A, "3", "link1,link2"): pytest.approx(10)}
    other = batch(tcp4(source_id_index=3, input=3, output=4), agent="192.0.2.99")  # names of another agent
    e.on_flow_batch(other, NOW)
    assert not any(k[1] == "192.0.2.99" for k in tops(e))


def test_a_lagging_worker_reports_the_rates_it_has_read_and_silence_still_decays():
    """Batches counted at their receive time (a worker behind its partitions) are read at the newest
    batch's time, not decayed by the lag; once nothing arrives, or batches are live, the clock."""
    import math

    e = Engine(_NoEnrich(), clock=lambda: NOW, lag_grace_s=10.0)
    e.apply("flow", "src", parse("flow", "src", {"keys": "ipsource", "value": "frames", "t": 10}))
    lagging = NOW - 5  # every batch 5 s old when read
    e.on_flow_batch(batch(tcp4()), lagging)
    [v] = tops(e, NOW).values()
    assert v > 0
    fresh = Engine(_NoEnrich(), clock=lambda: NOW)  # the clock alone: the same batch decayed by the lag
    fresh.apply("flow", "src", parse("flow", "src", {"keys": "ipsource", "value": "frames", "t": 10}))
    fresh.on_flow_batch(batch(tcp4()), lagging)
    [decayed] = tops(fresh, NOW).values()
    assert decayed == pytest.approx(v * math.exp(-5 / 10), rel=1e-6)
    [later] = tops(e, NOW + 20).values()  # nothing read since: silence decays with the clock
    assert later == pytest.approx(v * math.exp(-(NOW + 20 - lagging) / 10), rel=1e-6)
    e.on_flow_batch(batch(tcp4()), NOW + 20)  # live again: read at the clock, as without a grace
    fresh.on_flow_batch(batch(tcp4()), NOW + 20)
    assert tops(e, NOW + 20.5) == tops(fresh, NOW + 20.5)


def test_a_restarted_worker_catching_up_reports_the_restored_rates_not_them_decayed_by_the_blank():
    """A worker killed and restarted 25 s later (a loaded machine: the session's expiry, start-up)
    restores the checkpoint and reads the backlog since it, counted at its receive times. Its reports
    while it catches up are the rates it has read, as the uninterrupted worker's were: before, they
    were the restored rates decayed by the blank (0.07x measured) until the backlog was read."""
    from processors.app import batch_time, lag_grace_s
    from sflowpipe.settings import ProcessorSettings

    flow = parse("flow", "src", {"keys": "ipsource", "value": "frames", "t": 10})
    grace = lag_grace_s(ProcessorSettings())

    def worker(now):
        e = Engine(_NoEnrich(), clock=lambda: now, lag_grace_s=grace)
        e.apply("flow", "src", flow)
        return e

    def received(at):
        b = batch(tcp4())
        b["receive_time_us"] = [int(at * 1e6)] * len(b["receive_time_us"])
        return b

    ref, victim = worker(NOW), worker(NOW)
    arrivals = [NOW - 120 + i * 0.5 for i in range(240)]  # steady traffic for 2 minutes, up to NOW
    killed = NOW - 25
    for at in arrivals:  # both live until the kill; the reference after it too
        ref.on_flow_batch(received(at), at)
        if at <= killed:
            victim.on_flow_batch(received(at), at)
    [(key, live)] = tops(ref, arrivals[-1]).items()  # steady (2 minutes of t = 10 s): read at a batch
    restarted = worker(NOW)
    restarted.restore(A, victim.snapshot(A))
    restored = victim.report(killed)[0][0]["flows"][0]["value"]  # what the victim reported at the kill
    assert tops(restarted, NOW)[key] == pytest.approx(restored, rel=1e-3)  # before its backlog's first batch
    backlog = [at for at in arrivals if at > killed]
    for at in backlog[: len(backlog) // 3]:  # a third of the backlog read when the report comes
        restarted.on_flow_batch(received(at), batch_time(received(at), NOW))
    assert tops(restarted, NOW)[key] == pytest.approx(live, rel=1e-3)  # read at its newest batch's time
