"""The sampled-header parse and its sflowtool fields (ingest/sflow/header.py)."""

from __future__ import annotations

import json
import socket
import struct
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.sflow.header import DecodedHeader, _decode, decode_header, header_sflowtool

# ---------------------------------------------------------------- packet builders

MAC_A = bytes.fromhex("001122334455")
MAC_B = bytes.fromhex("66778899aabb")


def eth(t: int, dst: bytes = MAC_A, src: bytes = MAC_B, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """Ethernet header; tags: (TPID, TCI) pairs, outermost first."""
    b = dst + src
    for tpid, tci in tags:
        b += struct.pack(">HH", tpid, tci)
    return b + struct.pack(">H", t)


def ip4(proto: int, payload: bytes = b"", src="10.0.0.1", dst="192.0.2.200", tos=0x10, ttl=63,
        ident=0x1234, flags_frag=0x4000, total: int | None = None, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    total = total if total is not None else ihl * 4 + len(payload)
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, tos, total, ident, flags_frag, ttl, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + options + payload


def ip6(nh: int, payload: bytes = b"", src="2001:db8::1", dst="2001:db8:0:1::2", tc=0xB8, label=0x12345,
        hlim=64, plen: int | None = None) -> bytes:
    plen = len(payload) if plen is None else plen
    return struct.pack(">IHBB16s16s", (6 << 28) | (tc << 20) | label, plen, nh, hlim,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload


def tcp(sport=443, dport=51000, flags=0x18, off=5) -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 2, off << 4, flags, 1000, 0, 0)


def udp(sport=5353, dport=53, payload: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload) if length is None else length, 0) + payload


def icmp(t=8, c=0) -> bytes:
    return struct.pack(">BBHHH", t, c, 0, 1, 2)


class Rec(NamedTuple):
    """Stands in for flow_records.SampledHeader (what header_sflowtool reads)."""

    header_protocol: int
    frame_length: int
    stripped: int
    header: bytes
    decoded: DecodedHeader | None


def rec(proto: int, header: bytes, frame_length: int = 1000, stripped: int = 4) -> Rec:
    return Rec(proto, frame_length, stripped, header, decode_header(proto, header))


def tool(r: Rec, p: str = "") -> dict:
    out: dict = {}
    header_sflowtool(r, out, p)
    return out


# ---------------------------------------------------------------- Ethernet / IPv4 / TCP

def test_ethernet_ipv4_tcp():
    h = eth(0x0800) + ip4(6, tcp(flags=0x12)) + b"payload"
    d = decode_header(1, h)
    assert d.dst_mac == "00:11:22:33:44:55" and d.src_mac == "66:77:88:99:aa:bb"
    assert d.vlans == () and d.eth_type == 0x0800
    assert (d.ip_version, d.ip_offset, d.src_ip, d.dst_ip) == (4, 14, "10.0.0.1", "192.0.2.200")
    assert (d.ip_protocol, d.tos, d.ttl, d.ip_total_length, d.ip_id, d.ip_flags, d.fragment_offset) == \
        (6, 0x10, 63, 40, 0x1234, 2, 0)
    assert (d.src_port, d.dst_port, d.tcp_flags) == (443, 51000, 0x12)
    assert d.udp_length is None and d.icmp_type is None and d.inner is None and d.vni is None
    assert list(tool(rec(1, h, 1000, 4)).items()) == [
        ("dstMAC", "001122334455"), ("srcMAC", "66778899aabb"), ("ethernet_type", "2048"),
        ("IPSize", "982"), ("ip.tot_len", "40"), ("srcIP", "10.0.0.1"), ("dstIP", "192.0.2.200"),
        ("IPProtocol", "6"), ("IPTOS", "16"), ("IPTTL", "63"),
        ("IPID", str(0x3412)),  # sflowtool prints the id without ntohs
        ("TCPSrcPort", "443"), ("TCPDstPort", "51000"), ("TCPFlags", "18"),
    ]


def test_prefix_and_negative_ipsize():
    out = tool(rec(1, eth(0x0800) + ip4(17, udp()), frame_length=10, stripped=4), "discarded_")
    assert all(k.startswith("discarded_") for k in out)
    assert out["discarded_IPSize"] == "-8"  # printed with %d after unsigned arithmetic
    assert out["discarded_UDPBytes"] == "8"


def test_ipv4_options_move_l4():
    d = decode_header(1, eth(0x0800) + ip4(17, udp(1, 2), options=b"\x01\x01\x01\x00"))
    assert (d.src_port, d.dst_port, d.udp_length) == (1, 2, 8)


def test_ipv4_fragment():
    h = eth(0x0800) + ip4(17, udp(), flags_frag=0x2000 | 185)
    d = decode_header(1, h)
    assert d.fragment_offset == 185 and d.ip_flags == 1 and d.src_port is None
    out = tool(rec(1, h))
    assert list(out)[-2:] == ["IPID", "IPFragmentOffset"] and out["IPFragmentOffset"] == "185"
    assert "UDPSrcPort" not in out


def test_icmp4():
    h = eth(0x0800) + ip4(1, icmp(3, 4))
    d = decode_header(1, h)
    assert (d.icmp_type, d.icmp_code, d.src_port) == (3, 4, None)
    out = tool(rec(1, h))
    assert list(out.items())[-2:] == [("ICMPType", "3"), ("ICMPCode", "4")]


# ---------------------------------------------------------------- VLANs

def test_qinq():
    h = eth(0x0800, tags=((0x88A8, (5 << 13) | 100), (0x8100, (3 << 13) | 0x1000 | 2000))) + ip4(6, tcp())
    d = decode_header(1, h)
    assert d.vlans == ((100, 5), (2000, 3)) and d.ip_offset == 22 and d.eth_type == 0x0800
    out = tool(rec(1, h))
    assert list(out.items())[:7] == [
        ("dstMAC", "001122334455"), ("srcMAC", "66778899aabb"),
        ("decodedVLAN", "100"), ("decodedPriority", "5"),
        ("decodedVLAN.1", "2000"), ("decodedPriority.1", "3"), ("ethernet_type", "2048"),
    ]
    assert out["IPSize"] == str(1000 - 4 - 22)


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8, 0x9100, 0x9200, 0x9300])
def test_every_tpid(tpid):
    d = decode_header(1, eth(0x86DD, tags=((tpid, 7),)) + ip6(59))
    assert d.vlans == ((7, 0),) and d.ip_version == 6 and d.ip_offset == 18


def test_vlan_stack_cut_short():
    h = eth(0x8100, tags=((0x8100, 10),)) + b"\x00"  # second tag announced, 3 bytes left
    d = decode_header(1, h)
    assert d.vlans == ((10, 0),) and d.eth_type is None
    assert list(tool(rec(1, h))) == ["dstMAC", "srcMAC", "decodedVLAN", "decodedPriority"]


# ---------------------------------------------------------------- IPv6

def test_ipv6_hop_by_hop_and_fragment_then_udp():
    hbh = bytes([44, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next: fragment; PadN
    frag = bytes([17, 0]) + struct.pack(">HI", (0 << 3) | 1, 0xABCDEF01)  # offset 0, M flag
    h = eth(0x86DD) + ip6(0, hbh + frag + udp(1000, 4789 + 1, length=1200))
    d = decode_header(1, h)
    assert d.ip_version == 6 and d.ip_offset == 14
    assert (d.src_ip, d.dst_ip) == ("2001:db8::1", "2001:db8:0:1::2")
    assert (d.tos, d.flow_label, d.ttl, d.payload_length) == (0xB8, 0x12345, 64, 24)
    assert d.ext_headers == (0, 44) and d.fragment_offset == 0 and d.ip_protocol == 17
    assert (d.src_port, d.dst_port, d.udp_length) == (1000, 4790, 1200)
    out = tool(rec(1, h, 1500, 0))
    assert list(out.items()) == [
        ("dstMAC", "001122334455"), ("srcMAC", "66778899aabb"), ("ethernet_type", "34525"),
        ("IPSize", "1486"), ("IPTOS", "184"), ("IP6_label", "0x12345"), ("IPV6_payloadLen", "24"),
        ("IPTTL", "64"), ("srcIP6", "2001:0db8:0000:0000:0000:0000:0000:0001"),
        ("dstIP6", "2001:0db8:0000:0001:0000:0000:0000:0002"),
        ("IP6HeaderExtension", "44"),  # a repeated key: first position, last value (as json.loads)
        ("IPProtocol", "17"), ("UDPSrcPort", "1000"), ("UDPDstPort", "4790"), ("UDPBytes", "1200"),
    ]


def test_ipv6_non_first_fragment_offset():
    frag = bytes([6, 0]) + struct.pack(">HI", (100 << 3), 7)
    d = decode_header(12, ip6(44, frag + tcp()))
    assert d.fragment_offset == 100 and d.ext_headers == (44,) and d.ip_offset == 0


def test_icmpv6_not_printed_by_sflowtool():
    h = eth(0x86DD) + ip6(58, icmp(135, 0), plen=0, label=0)
    d = decode_header(1, h)
    assert (d.ip_protocol, d.icmp_type, d.icmp_code, d.src_port) == (58, 135, 0, None)
    out = tool(rec(1, h))
    assert out["IPV6_payloadLen"] == "<jumbo>" and out["IP6_label"] == "0x0"
    assert list(out)[-1] == "IPProtocol" and "ICMPType" not in out


def test_ipv6_extension_header_runs_off_the_end():
    h = eth(0x86DD) + ip6(0, bytes([6, 10]) + b"\0" * 6)  # hop-by-hop claims 88 bytes
    d = decode_header(1, h)
    assert d.ext_headers == (0,) and d.ip_protocol is None and d.src_ip == "2001:db8::1"
    out = tool(rec(1, h))
    assert list(out)[-1] == "IP6HeaderExtension" and "IPProtocol" not in out


def test_ipv6_truncated_prints_only_ipsize():
    h = eth(0x86DD) + ip6(6)[:30]
    d = decode_header(1, h)
    assert d.ip_version == 6 and d.src_ip is None
    assert list(tool(rec(1, h))) == ["dstMAC", "srcMAC", "ethernet_type", "IPSize"]


# ---------------------------------------------------------------- header protocols 11 and 12

def test_protocol_11_and_12_start_at_ip():
    d = decode_header(11, ip4(17, udp(1, 2)))
    assert d.dst_mac is None and d.ip_offset == 0 and (d.src_port, d.dst_port) == (1, 2)
    assert list(tool(rec(11, ip4(17, udp(1, 2)), 100, 0)))[:2] == ["IPSize", "ip.tot_len"]
    d = decode_header(12, ip6(6, tcp()))
    assert d.ip_version == 6 and d.ip_offset == 0 and d.tcp_flags == 0x18
    # sflowtool reports the IP size even with no header bytes at all
    assert tool(rec(11, b"", 60, 0)) == {"IPSize": "60"}
    assert tool(rec(12, b"", 60, 0)) == {"IPSize": "60"}
    # ... and for protocol 12 checks the version (protocol 11 does not)
    assert tool(rec(12, ip4(6, tcp()) + b"\0" * 20, 60, 0)) == {"IPSize": "60"}
    assert tool(rec(11, ip6(6, tcp()), 60, 0))["srcIP"] == "0.0.0.0"


def test_unknown_protocols():
    assert decode_header(7, eth(0x0800) + ip4(6, tcp())) is None
    assert tool(rec(7, eth(0x0800) + ip4(6, tcp()))) == {}


# ---------------------------------------------------------------- 802.2 LLC / SNAP

def test_snap_ethertype():
    h = eth(60) + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip4(6, tcp())
    d = decode_header(1, h)
    assert d.eth_type == 0x0800 and d.ip_offset == 22 and d.src_port == 443 and d.vsnap_oui is None


def test_vendor_snap():
    h = eth(60) + b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + b"\0" * 40  # Cisco CDP
    d = decode_header(1, h)
    assert d.vsnap_oui == "00-00-0C" and d.eth_type is None and d.ip_version is None
    assert list(tool(rec(1, h)).items()) == [
        ("dstMAC", "001122334455"), ("srcMAC", "66778899aabb"), ("VSNAP_OUI", "00-00-0C")]


def test_ip_over_8022():
    d = decode_header(1, eth(60) + b"\x06\x06\x03" + ip4(17, udp()))
    assert d.eth_type == 0x0800 and d.ip_offset == 17 and d.udp_length == 8


def test_other_llc_and_ipx_stop():
    d = decode_header(1, eth(60) + b"\x42\x42\x03" + b"\0" * 40)  # spanning tree
    assert d.eth_type is None and d.dst_mac == "00:11:22:33:44:55"
    d = decode_header(1, eth(0x0600) + b"\xff\xff\x00\x40" + b"\0" * 60)  # IPX
    assert d.eth_type is None


def test_ethernet_type_printed_even_when_not_ip():
    h = eth(0x0806) + b"\0" * 28  # ARP
    assert list(tool(rec(1, h)).items())[-1] == ("ethernet_type", "2054")
    assert decode_header(1, h).ip_version is None


def test_short_frame_no_type():
    # < 20 bytes in all: sflowtool stops after the MACs
    assert list(tool(rec(1, eth(0x0800) + b"\x45\0\0"))) == ["dstMAC", "srcMAC"]
    assert decode_header(1, b"\0" * 13) is None


# ---------------------------------------------------------------- tunnels

def test_vxlan_inner():
    inner = eth(0x0800, dst=bytes.fromhex("020000000001"), src=bytes.fromhex("020000000002"),
                tags=((0x8100, 42),)) + ip4(6, tcp(22, 40000), src="172.16.0.1", dst="172.16.0.2")
    vx = struct.pack(">BxxxI", 0x08, 5001 << 8) + inner
    h = eth(0x0800) + ip4(17, udp(45833, 4789, vx))
    d = decode_header(1, h)
    assert (d.src_port, d.dst_port, d.vni) == (45833, 4789, 5001)
    i = d.inner
    assert i.dst_mac == "02:00:00:00:00:01" and i.vlans == ((42, 0),) and i.eth_type == 0x0800
    assert (i.src_ip, i.dst_ip, i.ip_protocol, i.src_port, i.dst_port) == ("172.16.0.1", "172.16.0.2", 6, 22, 40000)
    assert i.ip_offset == 14 + 20 + 8 + 8 + 18  # offsets count from the start of the sampled header
    out = tool(rec(1, h))
    assert list(out)[-1] == "UDPBytes" and not any("inner" in k or ".1" in k for k in out)


def test_vxlan_without_i_flag_or_port_is_not_decoded():
    vx = struct.pack(">BxxxI", 0x00, 5001 << 8) + eth(0x0800) + ip4(6, tcp())
    assert decode_header(1, eth(0x0800) + ip4(17, udp(1, 4789, vx))).inner is None
    vx = struct.pack(">BxxxI", 0x08, 5001 << 8) + eth(0x0800) + ip4(6, tcp())
    assert decode_header(1, eth(0x0800) + ip4(17, udp(1, 4790, vx))).inner is None


def test_geneve_inner_after_options():
    inner = eth(0x0800, dst=bytes.fromhex("020000000001"), src=bytes.fromhex("020000000002")) \
        + ip4(6, tcp(22, 40000), src="172.16.0.1", dst="172.16.0.2")
    opts = struct.pack(">HBB", 0x0102, 0x80, 1) + b"\0" * 4  # one 8-byte option (2 words)
    gen = struct.pack(">BBHI", 2, 0, 0x6558, 7001 << 8) + opts + inner
    h = eth(0x0800) + ip4(17, udp(45833, 6081, gen))
    d = decode_header(1, h)
    assert (d.src_port, d.dst_port, d.vni) == (45833, 6081, 7001)
    i = d.inner
    assert i.dst_mac == "02:00:00:00:00:01" and (i.src_ip, i.dst_port) == ("172.16.0.1", 40000)
    assert i.ip_offset == 14 + 20 + 8 + 8 + 8 + 14
    assert tool(rec(1, h)) == tool(rec(1, eth(0x0800) + ip4(17, udp(45833, 6081, b"\0" * len(gen)))))  # UDP only
    ip_inner = struct.pack(">BBHI", 0, 0, 0x0800, 9 << 8) + ip4(1, icmp(8, 0), src="198.51.100.7")
    d = decode_header(11, ip4(17, udp(1, 6081, ip_inner)))
    assert d.vni == 9 and d.inner.src_ip == "198.51.100.7" and d.inner.icmp_type == 8


def test_geneve_other_version_or_cut_options_not_decoded():
    gen = struct.pack(">BBHI", 0x40, 0, 0x6558, 1 << 8) + eth(0x0800) + ip4(6, tcp())  # version 1
    d = decode_header(1, eth(0x0800) + ip4(17, udp(1, 6081, gen)))
    assert d.inner is None and d.vni is None
    gen = struct.pack(">BBHI", 0x3F, 0, 0x6558, 1 << 8) + b"\0" * 8  # 252 bytes of options announced
    d = decode_header(1, eth(0x0800) + ip4(17, udp(1, 6081, gen)))
    assert d.inner is None and d.vni == 1


def test_gre_transparent_ethernet_bridging_with_key():
    inner = eth(0x86DD) + ip6(17, udp(1, 2))
    gre = struct.pack(">HHI", 0x2000, 0x6558, (777 << 8) | 5) + inner
    h = eth(0x0800) + ip4(47, gre)
    d = decode_header(1, h)
    assert d.ip_protocol == 47 and d.vni == 777 and d.src_port is None
    assert d.inner.ip_version == 6 and d.inner.ip_offset == 14 + 20 + 8 + 14 and d.inner.src_port == 1
    assert list(tool(rec(1, h)))[-1] == "IPID"


def test_gre_ipv4_with_checksum_and_sequence():
    gre = struct.pack(">HHII", 0x9000, 0x0800, 0, 99) + ip4(1, icmp(0, 0), src="198.51.100.1")
    d = decode_header(11, ip4(47, gre))
    assert d.vni is None and d.inner.src_ip == "198.51.100.1" and d.inner.icmp_type == 0
    assert d.inner.dst_mac is None and d.inner.ip_offset == 20 + 12


def test_ip_in_ip():
    d = decode_header(11, ip4(41, ip6(17, udp(7, 8))))
    assert d.inner.ip_version == 6 and d.inner.dst_port == 8


# ---------------------------------------------------------------- 802.11

def _wifi(fc: int, a1: bytes, a2: bytes, a3: bytes, a4: bytes = b"") -> bytes:
    return struct.pack("<HH", fc, 0) + a1 + a2 + a3 + b"\0\0" + a4 + b"\xaa\xaa\x03\0\0\0\x08\x00"


def test_80211_data_frames():
    m1, m2, m3, m4 = (bytes([i] * 6) for i in (1, 2, 3, 4))
    cases = {  # (ToDS, FromDS) -> (src, dst)
        0x0008: (m2, m1), 0x0208: (m3, m1), 0x0108: (m2, m3), 0x0308: (m4, m3),
    }
    for fc, (src, dst) in cases.items():
        d = decode_header(15, _wifi(fc, m1, m2, m3, m4))
        assert (d.src_mac, d.dst_mac, d.tx_mac, d.rx_mac) == (src.hex(":"), dst.hex(":"), m2.hex(":"), m1.hex(":"))
        assert list(tool(rec(15, _wifi(fc, m1, m2, m3, m4))).items()) == [
            ("srcMAC", src.hex()), ("dstMAC", dst.hex()), ("txMAC", m2.hex()), ("rxMAC", m1.hex())]
    assert decode_header(15, _wifi(0x0000, m1, m2, m3)) is None  # management frame
    assert decode_header(15, _wifi(0x0008, m1, m2, m3)[:23]) is None


# ---------------------------------------------------------------- truncation and fuzz

SAMPLES = {
    "tcp4": (1, eth(0x0800) + ip4(6, tcp())),
    "qinq": (1, eth(0x86DD, tags=((0x88A8, 1), (0x8100, 2))) + ip6(0, bytes([44, 0]) + b"\0" * 6
                                                                   + bytes([17, 0]) + b"\0" * 6 + udp())),
    "vxlan": (1, eth(0x0800) + ip4(17, udp(1, 4789, struct.pack(">BxxxI", 8, 1 << 8) + eth(0x0800)
                                          + ip4(6, tcp())))),
    "geneve": (1, eth(0x0800) + ip4(17, udp(1, 6081, struct.pack(">BBHI", 1, 0, 0x6558, 1 << 8) + b"\0" * 4
                                           + eth(0x0800) + ip4(6, tcp())))),
    "gre": (1, eth(0x0800) + ip4(47, struct.pack(">HHI", 0x2000, 0x6558, 1) + eth(0x0800) + ip4(17, udp()))),
    "snap": (1, eth(60) + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip4(1, icmp())),
    "ip4": (11, ip4(6, tcp())),
    "ip6": (12, ip6(60, bytes([58, 0]) + b"\0" * 6 + icmp(128, 0))),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_truncated_at_every_length(name):
    proto, h = SAMPLES[name]
    previous = 0
    for n in range(len(h) + 1):
        out = tool(rec(proto, h[:n]))
        assert all(isinstance(v, str) for v in out.values())
        assert len(out) >= previous  # a shorter header only makes the parse stop earlier
        previous = len(out)
    full = tool(rec(proto, h))
    assert "IPProtocol" in full


def test_truncated_tcp_prints_ports_without_flags():
    base = eth(0x0800) + ip4(6, b"")
    for n in range(8, 14):
        out = tool(rec(1, base + tcp()[:n]))
        assert out["TCPSrcPort"] == "443" and "TCPFlags" not in out
    assert "TCPSrcPort" not in tool(rec(1, base + tcp()[:7]))
    assert tool(rec(1, base + tcp()[:14]))["TCPFlags"] == "24"


@given(st.sampled_from([1, 11, 12, 15, 2, 0, 0xFFFFFFFF]), st.binary(max_size=200))
def test_random_bytes_never_raise(proto, data):
    d = _decode(data, proto, 0, len(data), 0)  # not decode_header: its safety net would hide a bug
    assert d is None or isinstance(d, DecodedHeader)
    out = tool(Rec(proto, 100, 4, data, d))
    assert all(isinstance(v, str) for v in out.values())


@given(st.sampled_from(sorted(SAMPLES)), st.binary(max_size=64), st.integers(0, 300))
def test_mutated_headers_never_raise(name, junk, at):
    proto, h = SAMPLES[name]
    h = h[:at] + junk + h[at + len(junk):]
    d = _decode(h, proto, 0, len(h), 0)
    tool(Rec(proto, 100, 4, h, d))


def test_no_inner_recursion_blowup():
    vx = eth(0x0800) + ip4(17, udp(1, 4789, struct.pack(">BxxxI", 8, 1 << 8)))
    h = vx
    for _ in range(50):
        h = eth(0x0800) + ip4(17, udp(1, 4789, struct.pack(">BxxxI", 8, 1 << 8) + h))
    d = decode_header(1, h)
    depth = 0
    while d is not None and d.inner is not None:
        d, depth = d.inner, depth + 1
    assert depth <= 3


# ---------------------------------------------------------------- sflowtool's own output


def _reference_headers(captures_dir):
    for path in sorted((captures_dir / "reference").glob("*.jsonl")):
        for line in path.open():
            dg = json.loads(line)
            for sample in dg.get("samples", []):
                for el in sample.get("elements", []):
                    for p in ("", "discarded_"):
                        if p + "headerBytes" in el:
                            yield path.name, p, el


@pytest.mark.interop
def test_header_fields_match_sflowtool_references(captures_dir):
    from ingest.sflow.flow_records import SampledHeader

    seen = set()
    n = 0
    for name, p, el in _reference_headers(captures_dir):
        raw = el[p + "headerBytes"]
        header = bytes.fromhex(raw.replace("-", ""))
        assert len(header) == int(el[p + "headerLen"])
        r = SampledHeader.of(int(el[p + "headerProtocol"]), int(el[p + "sampledPacketSize"]),
                             int(el[p + "strippedBytes"]), header)
        keys = list(el)
        expected = {k: el[k] for k in keys[keys.index(p + "headerBytes") + 1:]}
        out: dict = {}
        header_sflowtool(r, out, p)
        assert out == expected, name
        assert list(out) == list(expected), name
        seen.add(name.split(".")[0])
        n += 1
    assert n > 5000
    assert {"akvorado__data-qinq", "akvorado__data-icmpv6", "akvorado__data-1140",
            "akvorado__data-encap-vxlan"} <= seen


@pytest.mark.interop
def test_reference_vxlan_inner(captures_dir):
    path = captures_dir / "reference" / "akvorado__data-encap-vxlan.pcap.sflowtool.jsonl"
    el = next(e for e in json.loads(path.read_text().splitlines()[0])["samples"][0]["elements"] if "headerBytes" in e)
    d = decode_header(1, bytes.fromhex(el["headerBytes"].replace("-", "")))
    assert d.vni == 100 and d.inner.ip_version == 6 and d.inner.ip_protocol == 58 and d.inner.icmp_type == 128
    assert d.inner.src_mac == "ca:6e:98:f8:49:8f" and d.inner.src_ip == "2001:db8:4::1"


# ---------------------------------------------------------------- the packet an ICMP error quotes


def icmp_error(t: int, c: int, quoted: bytes) -> bytes:
    return struct.pack(">BBHI", t, c, 0, 0) + quoted


def test_icmp4_port_unreachable_quotes_udp():
    probe = ip4(17, udp(40000, 1434), src="192.0.2.66", dst="10.0.0.9")
    d = decode_header(1, eth(0x0800) + ip4(1, icmp_error(3, 3, probe), src="10.0.0.9", dst="192.0.2.66"))
    assert (d.icmp_type, d.icmp_code) == (3, 3)
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (17, "10.0.0.9", 1434)
    assert d.inner is None and d.dst_ip == "192.0.2.66"  # inner stays for tunnels
    assert "ICMPType" in tool(rec(1, eth(0x0800) + ip4(1, icmp_error(3, 3, probe))))


def test_icmp4_quotes_tcp_with_options_and_only_8_bytes():
    probe = ip4(6, tcp(51000, 8080)[:8], dst="10.0.0.7", options=b"\x01\x01\x01\x00")
    d = decode_header(11, ip4(1, icmp_error(3, 1, probe)))
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (6, "10.0.0.7", 8080)


@pytest.mark.parametrize("t", [11, 12])
def test_icmp4_time_exceeded_and_parameter_problem_quote(t):
    d = decode_header(11, ip4(1, icmp_error(t, 0, ip4(17, udp(1, 33434), dst="198.51.100.3"))))
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (17, "198.51.100.3", 33434)


def test_icmp4_non_errors_quote_nothing():
    d = decode_header(11, ip4(1, icmp_error(0, 0, ip4(17, udp(1, 53)))))  # echo reply: payload is not a quote
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (None, None, None)


def test_icmp4_quoted_non_first_fragment_and_other_protocol_have_no_port():
    d = decode_header(11, ip4(1, icmp_error(3, 3, ip4(17, udp(1, 53), dst="10.0.0.1", flags_frag=0x0010))))
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (17, "10.0.0.1", None)
    d = decode_header(11, ip4(1, icmp_error(3, 2, ip4(47, b"\0" * 8, dst="10.0.0.2"))))
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (47, "10.0.0.2", None)


def test_icmp4_truncated_quote():
    whole = eth(0x0800) + ip4(1, icmp_error(3, 3, ip4(17, udp(1, 161), dst="10.0.0.5")))
    icmp_at = 14 + 20
    for cut in range(icmp_at + 8, len(whole) + 1):
        d = decode_header(1, whole[:cut])
        assert d.icmp_type == 3
        got = (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port)
        if cut < icmp_at + 8 + 20:
            assert got == (None, None, None)
        elif cut < icmp_at + 8 + 20 + 4:
            assert got == (17, "10.0.0.5", None)
        else:
            assert got == (17, "10.0.0.5", 161)
    # not an IPv4 header where the quote should be
    d = decode_header(11, ip4(1, icmp_error(3, 3, b"\x60" + b"\0" * 27)))
    assert d.icmp_quoted_dst_ip is None


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_icmp6_errors_quote_tcp(t):
    probe = ip6(6, tcp(40000, 22), src="2001:db8::66", dst="2001:db8:0:9::1")
    d = decode_header(1, eth(0x86DD) + ip6(58, icmp_error(t, 4, probe), dst="2001:db8::66"))
    assert (d.icmp_type, d.icmp_code) == (t, 4)
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (6, "2001:db8:0:9::1", 22)


def test_icmp6_quote_with_extension_header_and_truncated():
    hop = struct.pack(">BB6x", 17, 0)
    probe = ip6(0, hop + udp(1, 547), dst="2001:db8::5")
    d = decode_header(12, ip6(58, icmp_error(1, 4, probe)))
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (17, "2001:db8::5", 547)
    whole = ip6(58, icmp_error(1, 4, ip6(17, udp(1, 53), dst="2001:db8::7")))
    assert decode_header(12, whole[: 40 + 8 + 39]).icmp_quoted_dst_ip is None
    d = decode_header(12, whole[: 40 + 8 + 40 + 3])
    assert (d.icmp_quoted_protocol, d.icmp_quoted_dst_ip, d.icmp_quoted_dst_port) == (17, "2001:db8::7", None)
    d = decode_header(12, ip6(58, icmp_error(128, 0, ip6(17, udp(1, 53)))))  # echo request: no quote
    assert d.icmp_quoted_dst_ip is None
