"""What a sampled header carries above L4 that sFlow-RT keys on: ARP packets, DNS messages, ICMP echo.

Pure parsers over the raw header bytes (``bytes`` or ``memoryview``) with explicit bounds: each
takes the offset where its structure starts and the end of the header, returns a small named
tuple, or None when the bytes are not (or not enough of) that structure. None of them raises,
and none reads past ``end``. Sampled headers are cut (128 bytes is a common setting), so a DNS
message whose question name is cut still yields its fixed header with ``qname`` None.

DNS names follow RFC 1035 4.1.4: a compression pointer must point strictly before the label
sequence that holds it (so a chain of pointers always moves backwards and ends), a name is at
most 255 bytes on the wire, and the extended label types (0x40, 0x80) are refused.
"""

from __future__ import annotations

import struct
from socket import AF_INET, inet_ntop
from typing import NamedTuple

_U16 = struct.Struct(">H")
_ARP = struct.Struct(">HHBBH6s4s6s4s")  # htype ptype hlen plen oper sha spa tha tpa (Ethernet/IPv4: 28 bytes)
_DNS = struct.Struct(">HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_QTAIL = struct.Struct(">HH")  # qtype, qclass
_ECHO = struct.Struct(">BBHHH")  # type, code, checksum, identifier, sequence number

_IP6_EXT = frozenset((0, 43, 44, 51, 60))  # extension headers walked to reach the transport header
MAX_NAME = 255  # RFC 1035: a domain name is at most 255 octets on the wire
DNS_PORT = 53


class ArpPacket(NamedTuple):
    """An Ethernet/IPv4 ARP packet (RFC 826): operation 1 request, 2 reply."""

    operation: int
    sender_mac: str  # 12 upper-case hex digits, sFlow-RT's MAC form
    sender_ip: str
    target_mac: str
    target_ip: str


class DnsMessage(NamedTuple):
    """The fixed header of a DNS message and its first question (RFC 1035 4.1)."""

    id: int
    qr: bool  # True: a response
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    rcode: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int
    qname: str | None  # 'www.example.com.' (root: '.'); None when cut short or malformed
    qtype: int | None
    qclass: int | None


class IcmpEcho(NamedTuple):
    """An ICMP echo request or reply: its identifier and sequence number."""

    id: int
    seqno: int


def parse_arp(b, pos: int, end: int) -> ArpPacket | None:
    """The ARP packet at ``pos``; None unless it is Ethernet (1) over IPv4 (0x0800) and complete."""
    if pos < 0 or end - pos < _ARP.size:
        return None
    htype, ptype, hlen, plen, oper, sha, spa, tha, tpa = _ARP.unpack_from(b, pos)
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
        return None
    return ArpPacket(oper, bytes(sha).hex().upper(), inet_ntop(AF_INET, spa), bytes(tha).hex().upper(),
                     inet_ntop(AF_INET, tpa))


def transport_offset(b, ip_offset: int, end: int) -> int | None:
    """Where the transport header of the IP packet at ``ip_offset`` starts (IPv4 IHL, IPv6 after its
    extension headers); None when the IP header or an extension header runs past ``end``."""
    if ip_offset is None or ip_offset < 0 or ip_offset >= end:
        return None
    version = b[ip_offset] >> 4
    if version == 4:
        p = ip_offset + (b[ip_offset] & 15) * 4
        return p if p <= end and b[ip_offset] & 15 >= 5 else None
    if version != 6 or end - ip_offset < 40:
        return None
    nh = b[ip_offset + 6]
    p = ip_offset + 40
    while nh in _IP6_EXT:  # each step moves forward by at least 8 bytes: bounded by the header length
        if end - p < 2:
            return None
        nh, p = b[p], p + 8 * (b[p + 1] + 1)
    return p if p <= end else None


def dns_offset(b, l4: int, end: int, ip_protocol: int, src_port: int | None, dst_port: int | None) -> int | None:
    """Where the DNS message of a UDP or TCP segment to or from port 53 starts (TCP: after the data
    offset and the 2-byte length prefix, RFC 1035 4.2.2); None for any other segment."""
    if l4 is None or (src_port != DNS_PORT and dst_port != DNS_PORT):
        return None
    if ip_protocol == 17:
        p = l4 + 8
    elif ip_protocol == 6:
        if end - l4 < 13:
            return None
        p = l4 + (b[l4 + 12] >> 4) * 4 + 2
    else:
        return None
    return p if p < end else None


def parse_dns(b, pos: int, end: int) -> DnsMessage | None:
    """The DNS message at ``pos``: None when its 12-byte header is cut; ``qname``/``qtype``/``qclass``
    None when it has no question or the question is cut or malformed."""
    if pos < 0 or end - pos < 12:
        return None
    mid, flags, qd, an, ns, ar = _DNS.unpack_from(b, pos)
    qname = qtype = qclass = None
    if qd:
        qname, after = read_name(b, pos, pos + 12, end)
        if qname is not None and end - after >= 4:
            qtype, qclass = _QTAIL.unpack_from(b, after)
    return DnsMessage(mid, bool(flags & 0x8000), (flags >> 11) & 15, bool(flags & 0x0400), bool(flags & 0x0200),
                      bool(flags & 0x0100), bool(flags & 0x0080), flags & 15, qd, an, ns, ar, qname, qtype, qclass)


def read_name(b, msg: int, pos: int, end: int) -> tuple[str | None, int]:
    """The domain name at ``pos`` of the message starting at ``msg``, with its trailing dot, and the
    offset just after it where it sits (after its first pointer, if any); (None, pos) when malformed,
    looping, longer than 255 bytes or cut by ``end``."""
    labels: list[str] = []
    wire = 1  # the final zero-length label
    after = -1
    floor = pos  # a pointer must point strictly before the label sequence it ends
    p = pos
    while True:
        if p >= end:
            return None, pos
        n = b[p]
        if n == 0:
            p += 1
            break
        kind = n & 0xC0
        if kind == 0xC0:
            if end - p < 2:
                return None, pos
            target = msg + (((n & 0x3F) << 8) | b[p + 1])
            if target >= floor or target < msg:
                return None, pos  # a forward or self pointer: a loop or garbage
            if after < 0:
                after = p + 2
            floor = p = target
            continue
        if kind:
            return None, pos  # extended label types (RFC 6891 obsoleted 0x40; 0x80 reserved)
        wire += n + 1
        if wire > MAX_NAME or end - p - 1 < n:
            return None, pos
        labels.append(bytes(b[p + 1 : p + 1 + n]).decode("ascii", "backslashreplace"))
        p += n + 1
    return (".".join(labels) + "." if labels else "."), (after if after >= 0 else p)


def parse_icmp_echo(b, pos: int, end: int) -> IcmpEcho | None:
    """Identifier and sequence number of the ICMPv4 echo request (8) or reply (0) at ``pos``."""
    if pos < 0 or end - pos < _ECHO.size:
        return None
    t, code, _, ident, seq = _ECHO.unpack_from(b, pos)
    if (t != 8 and t != 0) or code != 0:
        return None
    return IcmpEcho(ident, seq)
