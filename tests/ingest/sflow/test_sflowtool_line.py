"""sflowtool's -l lines: FLOW and CNTR (ingest/sflow/sflowtool_line.py)."""

from __future__ import annotations

import json

import pytest

from tests.ingest.sflow.test_header import eth, icmp, ip4, ip6, tcp


def _flow_sample(records, input_=3, output=5, rate=4096):
    from ingest.sflow.model import FlowSample

    return FlowSample(False, 1, 0, 3, rate, 100000, 0, 0, input_, 0, output, tuple(records))


def test_flow_line_from_header_and_switch():
    from ingest.sflow.flow_records import ExtendedSwitch, SampledHeader
    from ingest.sflow.sflowtool_line import flow_line

    h = eth(0x0800, tags=((0x88A8, 100), (0x8100, 200))) + ip4(6, tcp(flags=0x02))
    line = flow_line("192.0.2.1", _flow_sample([SampledHeader.of(1, 1518, 4, h)]))
    assert line == ("FLOW,192.0.2.1,3,5,66778899aabb,001122334455,0x0800,200,0,10.0.0.1,192.0.2.200,"
                    "6,0x10,63,443,51000,0x02,1518,1492,4096\n")
    line = flow_line("2001:db8::1", _flow_sample([SampledHeader.of(1, 1518, 4, h), ExtendedSwitch(7, 0, 8, 0)]))
    assert line.startswith("FLOW,2001:0db8:0000:0000:0000:0000:0000:0001,3,5,")
    assert ",0x0800,7,8," in line


def test_flow_line_empty_and_icmp():
    from ingest.sflow.flow_records import SampledHeader
    from ingest.sflow.sflowtool_line import flow_line

    assert flow_line("10.1.1.1", _flow_sample([], input_=0x3FFFFFFF, rate=0xFFFFFFFF)) == \
        "FLOW,10.1.1.1,1073741823,5,000000000000,000000000000,0x0000,0,0,-,-,0,0x00,0,0,0,0x00,0,0,-1\n"
    h = eth(0x86DD) + ip6(1, icmp(8, 0))  # ICMP (1) over IPv6: ports are type and code
    line = flow_line("10.1.1.1", _flow_sample([SampledHeader.of(1, 100, 0, h)]))
    assert ",2001:0db8:0000:0000:0000:0000:0000:0001,2001:0db8:0000:0001:0000:0000:0000:0002,1,0xb8,64,8,0,0x00," \
        in line
    assert line.endswith(",100,100,4096\n")  # no IPv4 offset for IPv6 packets


def test_counters_line():
    from ingest.sflow.counter_records import IfCounters
    from ingest.sflow.model import CounterSample
    from ingest.sflow.sflowtool_line import counters_line

    c = IfCounters(*range(1, 20))
    assert counters_line("10.0.0.9", CounterSample(False, 1, 0, 1, (c,))) == \
        "CNTR,10.0.0.9," + ",".join(str(i) for i in range(1, 20)) + "\n"
    assert counters_line("10.0.0.9", CounterSample(False, 1, 0, 1, ())) == "CNTR,10.0.0.9," + ",".join("0" * 19) + "\n"


class _Unknowable(Exception):
    pass


def _i32(v: int) -> int:
    """printf %d of an unsigned 32-bit value."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _expected_lines(dg: dict) -> list[str]:
    """sflowtool's -l lines rebuilt from its -j output (the same per-sample state, read back)."""
    agent = dg["agent"]
    lines = []
    for s in dg.get("samples", []):
        if s["sampleType"] == "COUNTERSSAMPLE":
            vals = ["0"] * 19
            for el in s["elements"]:
                if el.get("counterBlock_tag") == "0:1":
                    vals = [el[k] for k in (
                        "ifIndex", "networkType", "ifSpeed", "ifDirection", "ifStatus", "ifInOctets",
                        "ifInUcastPkts", "ifInMulticastPkts", "ifInBroadcastPkts", "ifInDiscards", "ifInErrors",
                        "ifInUnknownProtos", "ifOutOctets", "ifOutUcastPkts", "ifOutMulticastPkts",
                        "ifOutBroadcastPkts", "ifOutDiscards", "ifOutErrors", "ifPromiscuousMode")]
            lines.append(f"CNTR,{agent}," + ",".join(vals) + "\n")
            continue
        if s["sampleType"] != "FLOWSAMPLE":
            continue
        st = dict(src="000000000000", dst="000000000000", type=0, inv=0, outv=0, sip="-", dip="-", proto=0,
                  tos=0, ttl=0, sport=0, dport=0, flags=0, size=0, stripped=0, off=0)
        for el in s["elements"]:
            kind = el.get("flowSampleType") or el.get("extendedType")
            if kind == "HEADER":
                st["size"], st["stripped"] = int(el["sampledPacketSize"]), int(el["strippedBytes"])
                if "dstMAC" in el:
                    st["dst"], st["src"] = el["dstMAC"], el["srcMAC"]
                vl = [k for k in el if k.startswith("decodedVLAN")]
                if vl:
                    st["inv"] = int(el[vl[-1]])
                if "ethernet_type" in el:
                    st["type"] = int(el["ethernet_type"])
                if "IPSize" in el and ("ip.tot_len" in el or el["headerProtocol"] == "11"):
                    st["off"] = st["size"] - st["stripped"] - int(el["IPSize"])
                for a, b in (("srcIP", "sip"), ("dstIP", "dip"), ("srcIP6", "sip"), ("dstIP6", "dip"),
                             ("IPProtocol", "proto"), ("IPTOS", "tos"), ("IPTTL", "ttl"),
                             ("TCPSrcPort", "sport"), ("TCPDstPort", "dport"), ("TCPFlags", "flags"),
                             ("UDPSrcPort", "sport"), ("UDPDstPort", "dport"),
                             ("ICMPType", "sport"), ("ICMPCode", "dport")):
                    if a in el:
                        st[b] = el[a] if b in ("sip", "dip") else int(el[a])
            elif kind and kind.endswith("ETHERNET"):
                p = kind[: -len("ETHERNET")]
                st["src"], st["dst"], st["type"] = el[p + "ethernet_src"], el[p + "ethernet_dst"], \
                    int(el[p + "ethernet_type"])
            elif kind and kind.endswith(("IPV4", "IPV6")):
                p = kind[:-4]
                st["size"] = int(el[p + "sampledPacketSize"])
                st["sip"] = el.get(p + "srcIP") or el[p + "srcIP6"]
                st["dip"] = el.get(p + "dstIP") or el[p + "dstIP6"]
                st["proto"] = int(el[p + "IPProtocol"])
                if kind.endswith("IPV4"):
                    st["tos"] = int(el[p + "IPTOS"])
                for a, b in (("TCPSrcPort", "sport"), ("TCPDstPort", "dport"), ("TCPFlags", "flags"),
                             ("UDPSrcPort", "sport"), ("UDPDstPort", "dport")):
                    if p + a in el:
                        st[b] = int(el[p + a])
                if st["proto"] not in (6, 17):
                    raise _Unknowable("the ports of other protocols are stored but not printed")
            elif kind == "SWITCH":
                st["inv"], st["outv"] = int(el["in_vlan"]), int(el["out_vlan"])
            elif kind in ("socket4", "socket6"):
                st["sip"], st["dip"] = el[kind + "_local_ip"], el[kind + "_remote_ip"]
        lines.append(
            "FLOW,%s,%s,%s,%s,%s,0x%04x,%d,%d,%s,%s,%d,0x%02x,%d,%d,%d,0x%02x,%d,%d,%d\n" % (
                agent, s["inputPort"].split()[-1], s["outputPort"].split()[-1], st["src"], st["dst"], st["type"], _i32(st["inv"]),
                _i32(st["outv"]), st["sip"], st["dip"], st["proto"], st["tos"], st["ttl"], st["sport"],
                st["dport"], st["flags"], _i32(st["size"]), _i32(st["size"] - st["stripped"] - st["off"]),
                _i32(int(s["meanSkipCount"]))))
    return lines


@pytest.mark.interop
def test_lines_match_sflowtool_json_state(captures_dir):
    """-l lines carry the state sflowtool's -j output shows, for every capture it fully decoded."""
    import io

    from ingest import decode
    from tests.conftest import capture_files

    checked = 0
    for capture in capture_files():
        ref = [json.loads(x) for x in (captures_dir / "reference" / f"{capture.name}.sflowtool.jsonl").open()]
        if any(r.get("sflowtool_abort") for r in ref):
            continue
        try:
            expected = [line for r in ref for line in _expected_lines(r)]
        except _Unknowable:
            continue
        out = io.BytesIO()
        with capture.open("rb") as f:
            decode.run(decode.from_capture(f), "line", out, flush_each=False)
        assert out.getvalue().decode().splitlines(keepends=True) == expected, capture.name
        checked += 1
    assert checked > 25
