"""CounterMetrics: sFlow-RT style metrics and rates from decoded counter sample batches."""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path

import pytest

from processors.counters import (
    IF_DIRECTIONS,
    IF_STATUS,
    IF_TYPES,
    TEXT_METRICS,
    CounterMetrics,
    Metric,
)

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(glob.glob("/work/shared/captures/*.pcap"))
T0 = 1_763_683_200_000_000


# ---------------------------------------------------------------- builders


def if_counters(index=3, speed=1_000_000_000, status=3, **counters):
    rec = {"if_index": index, "if_type": 6, "if_speed": speed, "if_direction": 1, "if_status": status,
           "if_in_octets": 0, "if_in_ucast_pkts": 0, "if_in_multicast_pkts": 0, "if_in_broadcast_pkts": 0,
           "if_in_discards": 0, "if_in_errors": 0, "if_in_unknown_protos": 0, "if_out_octets": 0,
           "if_out_ucast_pkts": 0, "if_out_multicast_pkts": 0, "if_out_broadcast_pkts": 0, "if_out_discards": 0,
           "if_out_errors": 0, "if_promiscuous_mode": 0}
    rec.update(counters)
    return ("sflowpipe.IfCounters", rec)


def eth_counters(**counters):
    names = ("alignment_errors", "fcs_errors", "single_collision_frames", "multiple_collision_frames",
             "sqe_test_errors", "deferred_transmissions", "late_collisions", "excessive_collisions",
             "internal_mac_transmit_errors", "carrier_sense_errors", "frame_too_longs",
             "internal_mac_receive_errors", "symbol_errors")
    rec = {f"dot3_stats_{n}": 0 for n in names}
    rec.update(counters)
    return ("sflowpipe.EthernetCounters", rec)


def host_cpu(user, nice, system, idle, wio=0, intr=0, sintr=0, **extra):
    rec = {"load_one": 0.5, "load_five": 0.25, "load_fifteen": 0.125, "proc_run": 2, "proc_total": 300,
           "cpu_num": 4, "cpu_speed": 2400, "uptime": 1000, "cpu_user": user, "cpu_nice": nice,
           "cpu_system": system, "cpu_idle": idle, "cpu_wio": wio, "cpu_intr": intr, "cpu_sintr": sintr,
           "interrupts": 0, "contexts": 0, "cpu_steal": None, "cpu_guest": None, "cpu_guest_nice": None}
    rec.update(extra)
    return ("sflowpipe.HostCpu", rec)


def host_memory(total, free, buffers=0, cached=0, **extra):
    rec = {"mem_total": total, "mem_free": free, "mem_shared": 0, "mem_buffers": buffers, "mem_cached": cached,
           "swap_total": 0, "swap_free": 0, "page_in": 0, "page_out": 0, "swap_in": 0, "swap_out": 0}
    rec.update(extra)
    return ("sflowpipe.HostMemory", rec)


def host_disk(total, free, **extra):
    rec = {"disk_total": total, "disk_free": free, "part_max_used": 42.5, "reads": 0, "bytes_read": 0,
           "read_time": 0, "writes": 0, "bytes_written": 0, "write_time": 0}
    rec.update(extra)
    return ("sflowpipe.HostDiskIo", rec)


def host_net(**counters):
    rec = {f: 0 for f in ("bytes_in", "pkts_in", "errs_in", "drops_in", "bytes_out", "pkts_out", "errs_out",
                          "drops_out")}
    rec.update(counters)
    return ("sflowpipe.HostNetIo", rec)


def sample(records, uptime_ms, seq, t_us=None, ds_type=0, ds_index=3, sub_agent=0):
    return {"receive_time_us": T0 + uptime_ms * 1000 if t_us is None else t_us, "sub_agent_id": sub_agent,
            "datagram_sequence": seq, "uptime_ms": uptime_ms, "sequence_number": seq, "source_id_type": ds_type,
            "source_id_index": ds_index, "expanded": False, "records": list(records)}


def batch(*samples, agent="192.0.2.1"):
    return {"agent_address": agent, "exporter_address": agent, "samples": list(samples)}


def values(metrics, ds=None, agent=None):
    """name -> value of a metric list (one data source)."""
    return {m.name: m.value for m in metrics
            if (ds is None or m.data_source == ds) and (agent is None or m.agent == agent)}


# ---------------------------------------------------------------- interfaces


def test_first_sample_gives_gauges_only():
    cm = CounterMetrics()
    out = cm.update(batch(sample([if_counters(if_in_octets=1000)], 10_000, 1)))
    v = values(out)
    assert v["ifindex"] == 3.0 and v["ifspeed"] == 1e9
    assert v["iftype"] == 6.0 and IF_TYPES[6] == "ethernetCsmacd"
    assert v["ifdirection"] == 1.0 and IF_DIRECTIONS[1] == "full-duplex"
    assert v["ifadminstatus"] == 1.0 and v["ifoperstatus"] == 1.0 and IF_STATUS[1] == "up"
    assert all(type(m.value) is float for m in out)
    assert "ifinoctets" not in v and "ifinutilization" not in v and "ifinpkts" not in v
    assert all(isinstance(m, Metric) and m.agent == "192.0.2.1" and m.data_source == "3"
               and m.timestamp_us == T0 + 10_000_000 for m in out)


def test_rates_and_utilization_from_two_samples():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=1_000, if_out_octets=5_000, if_in_ucast_pkts=10,
                                        if_in_multicast_pkts=1, if_in_broadcast_pkts=2, if_out_ucast_pkts=7,
                                        if_in_errors=4)], 10_000, 1)))
    # 20 s later: 250 MB in (100 Mbit/s -> 10 % of 1 Gbit/s), 500 MB out (20 %)
    out = cm.update(batch(sample([if_counters(if_in_octets=1_000 + 250_000_000, if_out_octets=5_000 + 500_000_000,
                                              if_in_ucast_pkts=2_010, if_in_multicast_pkts=41,
                                              if_in_broadcast_pkts=22, if_out_ucast_pkts=407, if_in_errors=24)],
                                 30_000, 2)))
    v = values(out)
    assert v["ifinoctets"] == pytest.approx(12_500_000.0)
    assert v["ifoutoctets"] == pytest.approx(25_000_000.0)
    assert v["ifinutilization"] == pytest.approx(10.0)
    assert v["ifoututilization"] == pytest.approx(20.0)
    assert v["ifinucastpkts"] == pytest.approx(100.0)
    assert v["ifinmulticastpkts"] == pytest.approx(2.0)
    assert v["ifinbroadcastpkts"] == pytest.approx(1.0)
    assert v["ifinpkts"] == pytest.approx(103.0)
    assert v["ifoutpkts"] == pytest.approx(20.0)
    assert v["ifinerrors"] == pytest.approx(1.0)
    assert v["ifindiscards"] == 0.0


def test_admin_and_oper_status_text():
    cm = CounterMetrics()
    v = values(cm.update(batch(sample([if_counters(status=1)], 1_000, 1))))
    assert v["ifadminstatus"] == 1.0 and v["ifoperstatus"] == 2.0  # admin up, oper down
    v = values(cm.update(batch(sample([if_counters(status=0)], 2_000, 2))))
    assert v["ifadminstatus"] == 2.0 and v["ifoperstatus"] == 2.0 and IF_STATUS[2] == "down"


def test_zero_speed_gives_no_utilization():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(speed=0)], 1_000, 1)))
    v = values(cm.update(batch(sample([if_counters(speed=0, if_in_octets=100)], 2_000, 2))))
    assert v["ifinoctets"] == 100.0 and "ifinutilization" not in v


def test_32_bit_counter_wrap():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_ucast_pkts=2**32 - 1_000)], 10_000, 1)))
    v = values(cm.update(batch(sample([if_counters(if_in_ucast_pkts=500)], 20_000, 2))))
    assert v["ifinucastpkts"] == pytest.approx(150.0)  # 1_500 packets in 10 s


def test_64_bit_counter_wrap():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=2**64 - 1_000)], 10_000, 1)))
    v = values(cm.update(batch(sample([if_counters(if_in_octets=9_000)], 20_000, 2))))
    assert v["ifinoctets"] == pytest.approx(1_000.0)


def test_counter_reset_without_restart_is_not_a_wrap():
    """A 64-bit counter that steps back (counters cleared on the switch) gives no 1.8e18 spike."""
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=10**12, if_in_ucast_pkts=3_000_000)], 10_000, 1)))
    v = values(cm.update(batch(sample([if_counters(if_in_octets=1_000, if_in_ucast_pkts=20, if_out_octets=50)],
                                      20_000, 2))))
    assert "ifinoctets" not in v and "ifinucastpkts" not in v and "ifinpkts" not in v
    assert v["ifoutoctets"] == 5.0  # the others still give rates
    # and the next interval continues from the reset values
    v = values(cm.update(batch(sample([if_counters(if_in_octets=11_000)], 30_000, 3))))
    assert v["ifinoctets"] == 1_000.0


def test_agent_restart_gives_no_rates():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=5_000_000, if_out_octets=10)], 900_000, 500)))
    # agent restarted: uptime and sequence number start again; if_out_octets happens to be higher
    out = cm.update(batch(sample([if_counters(if_in_octets=1_000, if_out_octets=20)], 5_000, 1,
                                 t_us=T0 + 905_000_000)))
    v = values(out)
    assert not {"ifinoctets", "ifoutoctets", "ifinutilization", "ifinpkts"} & set(v)
    assert v["ifspeed"] == 1e9  # gauges still flow
    v = values(cm.update(batch(sample([if_counters(if_in_octets=2_000, if_out_octets=20)], 15_000, 2,
                                      t_us=T0 + 915_000_000))))
    assert v["ifinoctets"] == 100.0 and v["ifoutoctets"] == 0.0


def test_sequence_reset_alone_is_a_discontinuity():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=100)], 10_000, 50)))
    v = values(cm.update(batch(sample([if_counters(if_in_octets=200)], 20_000, 1))))
    assert "ifinoctets" not in v


def test_duplicate_sample_gives_no_rates():
    cm = CounterMetrics()
    s = sample([if_counters(if_in_octets=100)], 10_000, 7)
    cm.update(batch(s))
    assert "ifinoctets" not in values(cm.update(batch(s)))


def test_uptime_backwards_with_sequence_continuing_uses_receive_time():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=1_000, if_out_octets=9_000)], 50_000, 10, t_us=T0)))
    out = cm.update(batch(sample([if_counters(if_in_octets=3_000, if_out_octets=100)], 40_000, 11,
                                 t_us=T0 + 4_000_000)))
    v = values(out)
    assert v["ifinoctets"] == pytest.approx(500.0)  # 2_000 bytes over 4 s of receive time
    assert "ifoutoctets" not in v  # went backwards with the uptime: no rate, not a wrap


def test_uptime_32_bit_wrap():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=0)], 2**32 - 5_000, 10, t_us=T0)))
    v = values(cm.update(batch(sample([if_counters(if_in_octets=1_000)], 5_000, 11, t_us=T0 + 99_000_000))))
    assert v["ifinoctets"] == pytest.approx(100.0)  # 10 s of uptime, not 99 s of receive time


def test_agent_without_uptime_uses_receive_time():
    cm = CounterMetrics()
    cm.update(batch(sample([host_net(bytes_in=0)], 0, 1, t_us=T0, ds_type=2, ds_index=1)))
    v = values(cm.update(batch(sample([host_net(bytes_in=3_000)], 0, 2, t_us=T0 + 30_000_000, ds_type=2,
                                      ds_index=1))))
    assert v["bytes_in"] == pytest.approx(100.0)


def test_unknown_counter_value_gives_no_rate():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_unknown_protos=2**32 - 1, if_in_discards=2**32 - 1)], 1_000, 1)))
    v = values(cm.update(batch(sample([if_counters(if_in_unknown_protos=2**32 - 1, if_in_discards=5)],
                                      2_000, 2))))
    assert "ifinunknownprotos" not in v and "ifindiscards" not in v
    v = values(cm.update(batch(sample([if_counters(if_in_discards=6)], 3_000, 3))))
    assert v["ifindiscards"] == 1.0


def test_ethernet_counters():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(), eth_counters()], 1_000, 1)))
    v = values(cm.update(batch(sample([if_counters(), eth_counters(dot3_stats_fcs_errors=10,
                                                                   dot3_stats_symbol_errors=4)], 3_000, 2))))
    assert v["eth_fcserrors"] == 5.0 and v["eth_symbolerrors"] == 2.0 and v["eth_alignmenterrors"] == 0.0


def test_port_name_openflow_and_processor():
    cm = CounterMetrics()
    recs = [("sflowpipe.PortName", {"name": "eth0"}),
            ("sflowpipe.OfPort", {"datapath_id": 0x62D33CE76E49, "port_no": 7}),
            ("sflowpipe.Processor", {"five_sec_cpu": 12.5, "one_min_cpu": 10.0, "five_min_cpu": None,
                                     "total_memory": 1_000, "free_memory": 250})]
    v = values(cm.update(batch(sample(recs, 1_000, 1, ds_type=0, ds_index=1))))
    assert v["of_port"] == 7.0 and "ifname" not in v and "of_dpid" not in v
    assert cm.text("192.0.2.1") == {"1": {"ifname": "eth0", "of_dpid": "000062d33ce76e49"}}
    assert v["cpu_utilization"] == 12.5 and v["mem_utilization"] == 75.0 and v["mem_total"] == 1_000.0
    recs[2][1]["five_sec_cpu"] = None
    assert "cpu_utilization" not in values(cm.update(batch(sample(recs, 2_000, 2, ds_type=0, ds_index=1))))


def test_unhandled_records_are_ignored():
    cm = CounterMetrics()
    recs = [("sflowpipe.HostAdapters", {"adaptors": []}), ("sflowpipe.SomethingNew", {"x": 1})]
    assert cm.update(batch(sample(recs, 1_000, 1))) == []
    assert cm.snapshot("192.0.2.1") == {}


# ---------------------------------------------------------------- hosts


def test_host_cpu_utilization_from_tick_deltas():
    cm = CounterMetrics()
    host = dict(ds_type=2, ds_index=1, sub_agent=100000)
    out = cm.update(batch(sample([host_cpu(1_000, 100, 500, 10_000, interrupts=0, contexts=0)], 60_000, 1, **host)))
    v = values(out)
    assert v["load_one"] == 0.5 and v["cpu_num"] == 4.0 and v["proc_total"] == 300.0
    assert "cpu_utilization" not in v and "cpu_user" not in v
    assert {m.data_source for m in out} == {"2.1"}
    # 10 s: user 3000, nice 0, system 1000, idle 5000, wio 500, intr 250, sintr 250 ms of 10_000
    out = cm.update(batch(sample([host_cpu(4_000, 100, 1_500, 15_000, wio=500, intr=250, sintr=250,
                                           interrupts=20_000, contexts=50_000)], 70_000, 2, **host)))
    v = values(out)
    assert v["cpu_user"] == pytest.approx(30.0)
    assert v["cpu_nice"] == pytest.approx(0.0)
    assert v["cpu_system"] == pytest.approx(10.0)
    assert v["cpu_idle"] == pytest.approx(50.0)
    assert v["cpu_wio"] == pytest.approx(5.0)
    assert v["cpu_intr"] == pytest.approx(2.5) and v["cpu_sintr"] == pytest.approx(2.5)
    assert v["cpu_utilization"] == pytest.approx(50.0)
    assert v["interrupts"] == pytest.approx(2_000.0) and v["contexts"] == pytest.approx(5_000.0)
    assert "cpu_steal" not in v  # absent in the older host_cpu layout


def test_host_cpu_with_steal_guest_and_tick_wrap():
    cm = CounterMetrics()
    host = dict(ds_type=2, ds_index=1)
    cm.update(batch(sample([host_cpu(2**32 - 1_000, 0, 0, 0, cpu_steal=0, cpu_guest=0, cpu_guest_nice=0)],
                           1_000, 1, **host)))
    # user wrapped: +2000; idle +1000; steal +1000; guest +500 (already inside user)
    v = values(cm.update(batch(sample([host_cpu(1_000, 0, 0, 1_000, cpu_steal=1_000, cpu_guest=500,
                                                cpu_guest_nice=0)], 2_000, 2, **host))))
    assert v["cpu_user"] == pytest.approx(50.0)
    assert v["cpu_steal"] == pytest.approx(25.0)
    assert v["cpu_guest"] == pytest.approx(12.5)
    assert v["cpu_idle"] == pytest.approx(25.0)
    assert v["cpu_utilization"] == pytest.approx(75.0)


def test_memory_and_disk_utilization():
    cm = CounterMetrics()
    gib = 2**30
    recs = [host_memory(16 * gib, 4 * gib, buffers=1 * gib, cached=3 * gib, swap_total=2 * gib, swap_free=gib),
            host_disk(1_000 * gib, 250 * gib)]
    v = values(cm.update(batch(sample(recs, 1_000, 1, ds_type=2, ds_index=1))))
    assert v["mem_total"] == 16 * gib and v["mem_free"] == 4 * gib and v["mem_cached"] == 3 * gib
    assert v["mem_used"] == 8 * gib
    assert v["mem_utilization"] == pytest.approx(50.0)  # buffers and cache count as free
    assert v["swap_total"] == 2 * gib and v["swap_free"] == gib
    assert v["disk_total"] == 1_000 * gib and v["disk_free"] == 250 * gib
    assert v["disk_utilization"] == pytest.approx(75.0)
    assert v["part_max_used"] == 42.5


def test_host_io_rates():
    cm = CounterMetrics()
    host = dict(ds_type=2, ds_index=1)
    cm.update(batch(sample([host_net(), host_disk(100, 50), host_memory(100, 50)], 1_000, 1, **host)))
    recs = [host_net(bytes_in=10_000, pkts_in=100, bytes_out=4_000, pkts_out=40, drops_in=2),
            host_disk(100, 50, reads=30, bytes_read=3_000_000, writes=10, bytes_written=2**33),
            host_memory(100, 50, page_in=50, swap_out=10)]
    v = values(cm.update(batch(sample(recs, 11_000, 2, **host))))
    assert v["bytes_in"] == 1_000.0 and v["pkts_in"] == 10.0 and v["bytes_out"] == 400.0
    assert v["pkts_out"] == 4.0 and v["drops_in"] == 0.2
    assert v["reads"] == 3.0 and v["bytes_read"] == 300_000.0 and v["writes"] == 1.0
    assert v["bytes_written"] == 2**33 / 10  # 64-bit field: no 32-bit wrap assumed
    assert v["page_in"] == 5.0 and v["swap_out"] == 1.0


def test_host_description():
    cm = CounterMetrics()
    rec = ("sflowpipe.HostDescr", {"hostname": "fractal", "uuid": "20d11d01-5150-11cb-957d-990521365ba3",
                                   "machine_type": 3, "os_name": 2, "os_release": "6.1.0"})
    assert cm.update(batch(sample([rec], 1_000, 1, ds_type=2, ds_index=1))) == []  # text only
    assert cm.text("192.0.2.1") == {"2.1": {"host_name": "fractal", "machine_type": "x86_64", "os_name": "linux",
                                            "os_release": "6.1.0"}}
    cm.forget("192.0.2.1")
    assert cm.text("192.0.2.1") == {}


# ---------------------------------------------------------------- state, names, agents


def test_names_lists_every_metric():
    names = CounterMetrics.names()
    assert len(names) == len(set(names))
    for n in ("ifindex", "iftype", "ifspeed", "ifdirection", "ifadminstatus", "ifoperstatus", "ifinoctets",
              "ifoutoctets", "ifinucastpkts", "ifinmulticastpkts", "ifinbroadcastpkts", "ifindiscards",
              "ifinerrors", "ifinunknownprotos", "ifoutucastpkts", "ifoutmulticastpkts", "ifoutbroadcastpkts",
              "ifoutdiscards", "ifouterrors", "ifinpkts", "ifoutpkts", "ifinutilization", "ifoututilization",
              "load_one", "load_five", "load_fifteen", "cpu_utilization", "cpu_user", "cpu_system", "cpu_idle",
              "mem_total", "mem_free", "mem_utilization", "disk_total", "disk_free", "disk_utilization",
              "bytes_in", "bytes_out", "pkts_in", "pkts_out", "eth_fcserrors"):
        assert n in names, n
    assert not TEXT_METRICS & set(names)


def test_snapshot_restore_continues_rates():
    a = CounterMetrics()
    a.update(batch(sample([if_counters(if_in_octets=1_000)], 10_000, 1),
                   sample([host_cpu(0, 0, 0, 0)], 10_000, 1, ds_type=2, ds_index=1)))
    snap = json.loads(json.dumps(a.snapshot("192.0.2.1")))  # JSON-serialisable
    assert set(snap) == {"0/3", "0/2.1"}
    b = CounterMetrics()
    b.restore("192.0.2.1", snap)
    out = b.update(batch(sample([if_counters(if_in_octets=11_000)], 20_000, 2),
                         sample([host_cpu(100, 0, 100, 800)], 20_000, 2, ds_type=2, ds_index=1)))
    assert values(out, ds="3")["ifinoctets"] == 1_000.0
    assert values(out, ds="2.1")["cpu_utilization"] == pytest.approx(20.0)
    # the snapshot is a copy: later updates of ``a`` do not change it, nor ``b``'s state
    a.update(batch(sample([if_counters(if_in_octets=5)], 15_000, 2)))
    assert snap["0/3"]["c"]["if_in_octets"] == 1_000
    assert b.snapshot("192.0.2.1")["0/3"]["c"]["if_in_octets"] == 11_000


def test_forget_starts_over():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=1_000)], 10_000, 1)))
    cm.forget("192.0.2.1")
    cm.forget("198.51.100.9")  # unknown agent: no error
    assert cm.snapshot("192.0.2.1") == {}
    assert "ifinoctets" not in values(cm.update(batch(sample([if_counters(if_in_octets=2_000)], 20_000, 2))))


def test_multiple_agents_and_data_sources_keep_separate_state():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(index=1, if_in_octets=0)], 10_000, 1, ds_index=1),
                    sample([if_counters(index=2, if_in_octets=0)], 10_000, 1, ds_index=2), agent="10.0.0.1"))
    cm.update(batch(sample([if_counters(index=1, if_in_octets=500)], 10_000, 1, ds_index=1), agent="10.0.0.2"))
    out1 = cm.update(batch(sample([if_counters(index=1, if_in_octets=1_000)], 20_000, 2, ds_index=1),
                           sample([if_counters(index=2, if_in_octets=3_000)], 20_000, 2, ds_index=2),
                           agent="10.0.0.1"))
    out2 = cm.update(batch(sample([if_counters(index=1, if_in_octets=2_500)], 15_000, 2, ds_index=1),
                           agent="10.0.0.2"))
    assert values(out1, ds="1")["ifinoctets"] == 100.0
    assert values(out1, ds="2")["ifinoctets"] == 300.0
    assert values(out2, ds="1")["ifinoctets"] == 400.0
    assert {m.agent for m in out1} == {"10.0.0.1"} and {m.agent for m in out2} == {"10.0.0.2"}
    assert sorted(cm.agents()) == ["10.0.0.1", "10.0.0.2"]


def test_sub_agents_do_not_share_counters():
    cm = CounterMetrics()
    cm.update(batch(sample([if_counters(if_in_octets=1_000)], 10_000, 1, sub_agent=0),
                    sample([if_counters(if_in_octets=9_000_000)], 10_000, 1, sub_agent=1)))
    out = cm.update(batch(sample([if_counters(if_in_octets=2_000)], 20_000, 2, sub_agent=0)))
    assert values(out)["ifinoctets"] == 100.0


def test_several_samples_of_one_source_in_a_batch():
    cm = CounterMetrics()
    out = cm.update(batch(*(sample([if_counters(if_in_octets=1_000 * i)], 10_000 * i, i) for i in range(1, 5))))
    assert [m.value for m in out if m.name == "ifinoctets"] == [100.0, 100.0, 100.0]


def test_schema_example_datum():
    datum = json.loads((ROOT / "schemas/examples/counter_sample_batch.v1.json").read_text())
    out = CounterMetrics().update(datum)
    v = values(out, ds="1")
    assert v["ifspeed"] == 1e10 and v["iftype"] == 6.0 and v["ifoperstatus"] == 1.0
    assert {m.data_source for m in out} == {"1", "2"}


# ---------------------------------------------------------------- real captures


def _capture_batches():
    from ingest.batches import COUNTERS, AgentBatches
    from ingest.pcap import read_udp_payloads
    from ingest.sflow import decode_datagram
    from schemas.codec import AvroCodec

    codec = AvroCodec("counter_sample_batch")
    for path in CAPTURES:
        ab = AgentBatches(max_samples=50)
        batches = []
        for u in read_udp_payloads(path):
            try:
                dg = decode_datagram(u.payload)
            except Exception:  # noqa: BLE001 - captures include deliberately broken datagrams
                continue
            batches += ab.add(dg, u.src, u.ts_sec * 1_000_000 + u.ts_usec, now=0.0)
        batches += ab.drain()
        for b in batches:
            if b.kind == COUNTERS:
                yield path, codec.decode(codec.encode(b.datum))


@pytest.mark.skipif(not CAPTURES, reason="no captures in /work/shared/captures")
def test_real_captures_give_sensible_metrics():
    cm = CounterMetrics()
    names = set(CounterMetrics.names())
    seen: dict[str, list] = {}
    for _, datum in _capture_batches():
        for m in cm.update(datum):
            assert m.name in names
            assert m.agent == datum["agent_address"]
            assert type(m.value) is float and math.isfinite(m.value) and m.value >= 0, m
            seen.setdefault(m.name, []).append(m.value)
        json.dumps(cm.snapshot(datum["agent_address"]))
        for attrs in cm.text(datum["agent_address"]).values():
            for name, value in attrs.items():
                assert name in TEXT_METRICS and isinstance(value, str) and value
                seen.setdefault(name, []).append(value)
    # interface gauges and rates (overflowd's capture repeats its data sources), host metrics
    for n in ("ifindex", "ifspeed", "iftype", "ifoperstatus", "ifinoctets", "ifoutoctets", "ifinutilization",
              "ifinpkts", "eth_fcserrors", "load_one", "mem_utilization", "disk_utilization", "cpu_utilization",
              "host_name", "ifname"):
        assert n in seen, n
    for n in ("ifinutilization", "ifoututilization", "mem_utilization", "disk_utilization", "cpu_utilization"):
        assert all(0.0 <= v <= 100.5 for v in seen.get(n, ())), (n, max(seen[n]))
    assert max(seen["ifinoctets"]) > 0
    assert set(seen["ifoperstatus"]) <= {1.0, 2.0} and set(seen["ifadminstatus"]) <= {1.0, 2.0}
    assert set(seen["ifdirection"]) <= set(map(float, IF_DIRECTIONS))
    assert 6.0 in seen["iftype"]
