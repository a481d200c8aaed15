"""The payload parsers (ingest/sflow/payload.py): ARP, DNS messages with compression, ICMP echo,
built byte by byte here; malformed, looping and cut input gives None, never an exception."""

from __future__ import annotations

import socket
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.sflow.payload import (
    ArpPacket,
    IcmpEcho,
    dns_offset,
    parse_arp,
    parse_dns,
    parse_icmp_echo,
    read_name,
    transport_offset,
)


def arp(op: int, sha: str, spa: str, tha: str, tpa: str, htype: int = 1) -> bytes:
    return struct.pack(">HHBBH6s4s6s4s", htype, 0x0800, 6, 4, op, bytes.fromhex(sha), socket.inet_aton(spa),
                       bytes.fromhex(tha), socket.inet_aton(tpa))


def name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\0"


def dns(mid: int, flags: int, question: bytes, qtype: int = 1, qclass: int = 1, an: int = 0, rest: bytes = b"") -> bytes:
    return struct.pack(">HHHHHH", mid, flags, 1, an, 0, 0) + question + struct.pack(">HH", qtype, qclass) + rest


# ---------------------------------------------------------------- ARP


def test_arp_request_and_reply():
    req = arp(1, "0cc47a7e6d4e", "10.0.0.1", "000000000000", "10.0.0.2")
    assert parse_arp(req, 0, len(req)) == ArpPacket(1, "0CC47A7E6D4E", "10.0.0.1", "000000000000", "10.0.0.2")
    rep = b"\xff" * 14 + arp(2, "020000000002", "10.0.0.2", "0cc47a7e6d4e", "10.0.0.1")
    a = parse_arp(rep, 14, len(rep))
    assert (a.operation, a.sender_mac, a.sender_ip, a.target_ip) == (2, "020000000002", "10.0.0.2", "10.0.0.1")


def test_arp_refuses_other_hardware_and_cut_packets():
    other = arp(1, "0cc47a7e6d4e", "10.0.0.1", "000000000000", "10.0.0.2", htype=6)
    assert parse_arp(other, 0, len(other)) is None
    req = arp(1, "0cc47a7e6d4e", "10.0.0.1", "000000000000", "10.0.0.2")
    assert parse_arp(req, 0, 27) is None  # one byte short of the target address
    assert parse_arp(req, -1, len(req)) is None


# ---------------------------------------------------------------- DNS


def test_dns_query_fields():
    m = dns(0x1234, 0x0100, name("www.example.com"), qtype=28)  # standard query, RD
    d = parse_dns(m, 0, len(m))
    assert (d.id, d.qr, d.opcode, d.aa, d.tc, d.rd, d.ra, d.rcode) == (0x1234, False, 0, False, False, True, False, 0)
    assert (d.qdcount, d.ancount, d.nscount, d.arcount) == (1, 0, 0, 0)
    assert (d.qname, d.qtype, d.qclass) == ("www.example.com.", 28, 1)


def test_dns_response_with_compression_pointers():
    question = name("example.com")  # at offset 12
    # answer 1: a pointer to the question name; answer 2: "mail" + a pointer to it
    ans1 = b"\xc0\x0c" + struct.pack(">HHIH4s", 1, 1, 60, 4, socket.inet_aton("192.0.2.1"))
    at2 = 12 + len(question) + 4 + len(ans1)
    ans2 = b"\x04mail\xc0\x0c" + struct.pack(">HHIH4s", 1, 1, 60, 4, socket.inet_aton("192.0.2.2"))
    m = dns(7, 0x8583, question, an=2, rest=ans1 + ans2)  # response, AA, RD, RA, NXDOMAIN
    d = parse_dns(m, 0, len(m))
    assert (d.qr, d.aa, d.rd, d.ra, d.rcode, d.ancount, d.qname) == (True, True, True, True, 3, 2, "example.com.")
    at1 = 12 + len(question) + 4
    assert read_name(m, 0, at1, len(m)) == ("example.com.", at1 + 2)
    assert read_name(m, 0, at2, len(m)) == ("mail.example.com.", at2 + 7)
    # a message embedded after other bytes: pointers count from the message start
    framed = b"\xaa" * 9 + m
    assert read_name(framed, 9, 9 + at2, len(framed))[0] == "mail.example.com."
    assert parse_dns(framed, 9, len(framed)).qname == "example.com."


def test_dns_pointer_loops_are_refused():
    self_loop = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    d = parse_dns(self_loop, 0, len(self_loop))
    assert d is not None and d.qname is None and d.qtype is None
    # offset 12: "a" then a pointer forward to 16; offset 16: a pointer back to 12 (a two-step loop)
    pair = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x01a\xc0\x10" + b"\xc0\x0c" + b"\0\1\0\1"
    assert parse_dns(pair, 0, len(pair)).qname is None
    assert read_name(pair, 0, 16, len(pair)) == (None, 16)  # the same loop entered at the other end
    # pointer to a place that itself points back to the pointer: refused at the second hop
    back = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0e" + b"\xc0\x0c"
    assert read_name(back, 0, 14, len(back))[0] is None


def test_dns_cut_and_malformed_names():
    m = dns(9, 0x0100, name("a-rather-long-label.example.org"))
    cut = parse_dns(m, 0, 20)  # the sampled header ends inside the name
    assert cut is not None and cut.id == 9 and cut.rd and cut.qname is None and cut.qtype is None
    assert parse_dns(m, 0, 11) is None  # not even the fixed header
    no_tail = parse_dns(m, 0, len(m) - 2)  # the name is complete, qclass is cut
    assert no_tail.qname == "a-rather-long-label.example.org." and no_tail.qtype is None
    extended = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x41abc\0" + b"\0\1\0\1"
    assert parse_dns(extended, 0, len(extended)).qname is None
    long_name = name(".".join(["x" * 63] * 4))  # 4 * 64 + 1 = 257 bytes on the wire > 255
    m = dns(1, 0, long_name)
    assert parse_dns(m, 0, len(m)).qname is None
    root = dns(1, 0, b"\0", qtype=2)
    assert parse_dns(root, 0, len(root)).qname == "."


def test_dns_offsets_over_udp_and_tcp():
    msg = dns(5, 0x0100, name("example.net"))
    ip = struct.pack(">BBHHHBBH4s4s", 0x46, 0, 0, 0, 0, 64, 17, 0, b"\n\0\0\1", b"\n\0\0\2") + b"\1\1\1\1"  # IHL 6
    udp = struct.pack(">HHHH", 40000, 53, 8 + len(msg), 0)
    pkt = ip + udp + msg
    l4 = transport_offset(pkt, 0, len(pkt))
    assert l4 == 24
    assert parse_dns(pkt, dns_offset(pkt, l4, len(pkt), 17, 40000, 53), len(pkt)).qname == "example.net."
    assert dns_offset(pkt, l4, len(pkt), 17, 40000, 5353) is None
    tcp = struct.pack(">HHIIBBHHH", 53, 40000, 1, 1, 5 << 4, 0x18, 1000, 0, 0) + struct.pack(">H", len(msg))
    seg = ip[:20].replace(b"\x46", b"\x45", 1) + tcp + msg
    l4 = transport_offset(seg, 0, len(seg))
    assert l4 == 20 and parse_dns(seg, dns_offset(seg, l4, len(seg), 6, 53, 40000), len(seg)).id == 5


def test_transport_offset_walks_ipv6_extension_headers():
    hop = bytes([17, 0]) + b"\0" * 6  # hop-by-hop options, next header UDP, 8 bytes
    ip6 = struct.pack(">IHBB16s16s", 6 << 28, 16, 0, 64, b"\0" * 15 + b"\1", b"\0" * 15 + b"\2")
    pkt = ip6 + hop + struct.pack(">HHHH", 1, 53, 8, 0)
    assert transport_offset(pkt, 0, len(pkt)) == 48
    assert transport_offset(pkt, 0, 45) is None  # the extension header runs past the end
    assert transport_offset(pkt, 0, 30) is None
    assert transport_offset(b"\x45" + b"\0" * 10, 0, 11) is None  # IPv4 header cut


# ---------------------------------------------------------------- ICMP echo


def test_icmp_echo():
    req = struct.pack(">BBHHH", 8, 0, 0, 0x4D2, 77) + b"payload"
    assert parse_icmp_echo(req, 0, len(req)) == IcmpEcho(0x4D2, 77)
    rep = struct.pack(">BBHHH", 0, 0, 0, 1, 65535)
    assert parse_icmp_echo(rep, 0, len(rep)) == IcmpEcho(1, 65535)
    unreach = struct.pack(">BBHHH", 3, 3, 0, 1, 2)
    assert parse_icmp_echo(unreach, 0, len(unreach)) is None
    assert parse_icmp_echo(req, 0, 7) is None


# ---------------------------------------------------------------- never raises, always bounded


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 40))
def test_parsers_never_raise_on_garbage(data, pos):
    end = len(data)
    d = parse_dns(data, pos, end)
    if d is not None and d.qname is not None:
        assert len(d.qname) <= 255 * 4  # labels may be backslash-escaped, the wire form is <= 255 bytes
    read_name(data, 0, pos, end)
    parse_arp(data, pos, end)
    parse_icmp_echo(data, pos, end)
    l4 = transport_offset(data, pos, end)
    assert l4 is None or pos <= l4 <= end
    dns_offset(data, l4, end, 6, 53, 1)
