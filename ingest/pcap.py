"""Read UDP datagrams out of packet captures (classic pcap and pcapng), in file order.

Handles both byte orders and µs/ns timestamps, link types Ethernet (with 802.1Q/QinQ), Linux
cooked (v1, v2), BSD loopback and raw IP, IPv4 (with fragment reassembly) and IPv6 (with
extension headers). Anything that is not a UDP datagram is skipped.
"""

from __future__ import annotations

import io
import mmap
import socket
import struct
from typing import BinaryIO, Iterator, NamedTuple


class CaptureError(ValueError):
    """The file is not a capture this reader understands."""


class UdpDatagram(NamedTuple):
    ts_sec: int
    ts_usec: int
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", False),  # byte order, nanosecond timestamps
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
_PCAPNG_SHB = 0x0A0D0D0A

LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_LOOP, LINK_SLL, LINK_SLL2 = 0, 1, 101, 108, 113, 276
_RAW_LINKS = {LINK_RAW, 12, 14, 228, 229}
_VLAN_TPIDS = {0x8100, 0x88A8, 0x9100, 0x9200, 0x9300}

_ETH_TYPE = struct.Struct(">H")
_IP4 = struct.Struct(">BBHHHBBH4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
_UDP = struct.Struct(">HHHH")


class _Reassembler:
    """IPv4 fragment reassembly, bounded (an sFlow agent may send datagrams above the MTU)."""

    MAX_PENDING = 1024

    def __init__(self) -> None:
        self.pending: dict[tuple, dict[int, bytes]] = {}
        self.totals: dict[tuple, int] = {}

    def add(self, key: tuple, offset: int, more: bool, data: bytes) -> bytes | None:
        if key not in self.pending and len(self.pending) >= self.MAX_PENDING:
            oldest = next(iter(self.pending))
            del self.pending[oldest]
            self.totals.pop(oldest, None)
        parts = self.pending.setdefault(key, {})
        parts[offset] = data
        if not more:
            self.totals[key] = offset + len(data)
        total = self.totals.get(key)
        if total is None:
            return None
        have, pos = [], 0
        while pos < total:
            chunk = parts.get(pos)
            if not chunk:
                return None
            have.append(chunk)
            pos += len(chunk)
        del self.pending[key]
        del self.totals[key]
        return b"".join(have)[:total]


def _udp(ts_sec: int, ts_usec: int, src: str, dst: str, seg: bytes) -> UdpDatagram | None:
    if len(seg) < 8:
        return None
    sport, dport, ulen, _ = _UDP.unpack_from(seg, 0)
    end = ulen if 8 <= ulen <= len(seg) else len(seg)
    return UdpDatagram(ts_sec, ts_usec, src, sport, dst, dport, seg[8:end])


def _ip(pkt: bytes, off: int, ts_sec: int, ts_usec: int, frags: _Reassembler) -> UdpDatagram | None:
    if len(pkt) <= off:
        return None
    version = pkt[off] >> 4
    if version == 4:
        if len(pkt) - off < 20:
            return None
        vihl, _, total, ident, frag, _, proto, _, src, dst = _IP4.unpack_from(pkt, off)
        ihl = (vihl & 15) * 4
        if proto != 17 or ihl < 20:
            return None
        end = off + total if ihl <= total <= len(pkt) - off else len(pkt)
        payload = pkt[off + ihl : end]
        more, foff = bool(frag & 0x2000), (frag & 0x1FFF) * 8
        if more or foff:
            payload = frags.add((src, dst, ident), foff, more, payload)
            if payload is None:
                return None
        return _udp(ts_sec, ts_usec, socket.inet_ntop(socket.AF_INET, src),
                    socket.inet_ntop(socket.AF_INET, dst), payload)
    if version == 6:
        if len(pkt) - off < 40:
            return None
        _, plen, nxt, _, src, dst = _IP6.unpack_from(pkt, off)
        p = off + 40
        end = p + plen if 0 < plen <= len(pkt) - p else len(pkt)
        while nxt in (0, 43, 60, 51, 44):
            if p + 8 > end:
                return None
            if nxt == 44:
                frag = _ETH_TYPE.unpack_from(pkt, p + 2)[0]
                if frag & 0xFFF9:  # offset or more-fragments: not reassembled for IPv6
                    return None
                nxt, p = pkt[p], p + 8
                continue
            hlen = (pkt[p + 1] + 2) * 4 if nxt == 51 else (pkt[p + 1] + 1) * 8
            nxt, p = pkt[p], p + hlen
        if nxt != 17:
            return None
        return _udp(ts_sec, ts_usec, socket.inet_ntop(socket.AF_INET6, src),
                    socket.inet_ntop(socket.AF_INET6, dst), pkt[p:end])
    return None


def _ethertype_payload(pkt: bytes, off: int, etype: int) -> int | None:
    """Skip VLAN tags; return the offset of the IP header, or None."""
    while etype in _VLAN_TPIDS:
        if off + 4 > len(pkt):
            return None
        etype = _ETH_TYPE.unpack_from(pkt, off + 2)[0]
        off += 4
    if etype in (0x0800, 0x86DD):
        return off
    return None


def _frame(link: int, pkt: bytes, ts_sec: int, ts_usec: int, frags: _Reassembler) -> UdpDatagram | None:
    if link == LINK_ETHERNET:
        if len(pkt) < 14:
            return None
        off = _ethertype_payload(pkt, 14, _ETH_TYPE.unpack_from(pkt, 12)[0])
    elif link in _RAW_LINKS:
        off = 0
    elif link in (LINK_NULL, LINK_LOOP):
        off = 4
    elif link == LINK_SLL:
        if len(pkt) < 16:
            return None
        off = _ethertype_payload(pkt, 16, _ETH_TYPE.unpack_from(pkt, 14)[0])
    elif link == LINK_SLL2:
        if len(pkt) < 20:
            return None
        off = _ethertype_payload(pkt, 20, _ETH_TYPE.unpack_from(pkt, 0)[0])
    else:
        return None
    if off is None:
        return None
    return _ip(pkt, off, ts_sec, ts_usec, frags)


def _read_exact(f: BinaryIO, n: int) -> bytes | None:
    b = f.read(n)
    if len(b) < n:
        return None
    return b


def _pcap(f: BinaryIO, head: bytes) -> Iterator[UdpDatagram]:
    order, nanos = _PCAP_MAGIC[head[:4]]
    rest = _read_exact(f, 20)
    if rest is None:
        raise CaptureError("truncated pcap file header")
    link = struct.unpack(order + "I", rest[16:20])[0] & 0x0FFFFFFF
    rec = struct.Struct(order + "IIII")
    frags = _Reassembler()
    while True:
        h = _read_exact(f, 16)
        if h is None:
            return
        ts_sec, ts_frac, caplen, _ = rec.unpack(h)
        if caplen > 0x4000000:
            raise CaptureError(f"pcap record of {caplen} bytes: corrupt file")
        pkt = _read_exact(f, caplen)
        if pkt is None:
            return
        ts_usec = ts_frac // 1000 if nanos else ts_frac
        d = _frame(link, pkt, ts_sec, ts_usec, frags)
        if d is not None:
            yield d


def _pcapng(f: BinaryIO, head: bytes) -> Iterator[UdpDatagram]:
    frags = _Reassembler()
    order = "<"
    links: list[tuple[int, int]] = []  # (link type, ticks per second) per interface
    block = head
    while True:
        if block is None or len(block) < 8:
            return
        btype_raw = block[:4]
        if struct.unpack("<I", btype_raw)[0] == _PCAPNG_SHB:
            bom = _read_exact(f, 4)
            if bom is None:
                return
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack(order + "I", block[4:8])[0]
            body = bom + (_read_exact(f, length - 12) or b"")
            links = []
        else:
            length = struct.unpack(order + "I", block[4:8])[0]
            if length < 12 or length > 0x4000000:
                raise CaptureError(f"pcapng block of {length} bytes: corrupt file")
            body = _read_exact(f, length - 8)
            if body is None:
                return
        btype = struct.unpack(order + "I", btype_raw)[0]
        if btype == 1:  # interface description
            link = struct.unpack_from(order + "H", body, 0)[0]
            tsres = 1_000_000
            opt = 8
            while opt + 4 <= len(body) - 4:
                code, olen = struct.unpack_from(order + "HH", body, opt)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    v = body[opt + 4]
                    tsres = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
                opt += 4 + ((olen + 3) & ~3)
            links.append((link, tsres))
        elif btype in (6, 3):  # enhanced packet / simple packet
            if btype == 6:
                iface, hi, lo, caplen = struct.unpack_from(order + "IIII", body, 0)
                pkt = body[20 : 20 + caplen]
                link, tsres = links[iface] if iface < len(links) else (LINK_ETHERNET, 1_000_000)
                ticks = (hi << 32) | lo
                ts_sec, rem = divmod(ticks, tsres)
                ts_usec = rem * 1_000_000 // tsres
            else:
                caplen = struct.unpack_from(order + "I", body, 0)[0]
                pkt = body[4 : 4 + caplen]
                link = links[0][0] if links else LINK_ETHERNET
                ts_sec = ts_usec = 0
            d = _frame(link, pkt, ts_sec, ts_usec, frags)
            if d is not None:
                yield d
        block = _read_exact(f, 8)


def read_udp(f: BinaryIO) -> Iterator[UdpDatagram]:
    """Every UDP datagram in a pcap or pcapng stream, in order."""
    head = _read_exact(f, 4)
    if head is None:
        return
    if head in _PCAP_MAGIC:
        yield from _pcap(f, head)
        return
    if struct.unpack("<I", head)[0] == _PCAPNG_SHB:
        rest = _read_exact(f, 4)
        yield from _pcapng(f, head + (rest or b""))
        return
    raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})")


def read_udp_payloads(path: str) -> list[UdpDatagram]:
    """All UDP datagrams of a capture file."""
    with open(path, "rb") as f:
        return list(read_udp(f))


def udp_payloads(f: BinaryIO) -> Iterator[tuple[int, int, bytes | memoryview]]:
    """(seconds, microseconds, payload) of every UDP datagram in a capture, as ``read_udp``.

    A classic pcap file is mapped into memory and its common frames (Ethernet, IPv4 without
    options or fragments, UDP) are sliced out of the mapping without copies; every other frame,
    pcapng and streams (stdin) go through ``read_udp``. The payloads are memoryviews then.
    """
    try:
        if f.tell() != 0:
            raise OSError("not at the start")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # a pipe, an empty file, BytesIO
        buf = None
    if buf is None or len(buf) < 24 or buf[:4] not in _PCAP_MAGIC:
        for d in read_udp(f):
            yield d.ts_sec, d.ts_usec, d.payload
        return
    mv = memoryview(buf)
    order, nanos = _PCAP_MAGIC[buf[:4]]
    link = struct.unpack_from(order + "I", mv, 20)[0] & 0x0FFFFFFF
    unpack = struct.Struct(order + "IIII").unpack_from
    frags = _Reassembler()
    size = len(mv)
    pos = 24
    while pos + 16 <= size:
        ts_sec, ts_frac, caplen, _ = unpack(mv, pos)
        if caplen > 0x4000000:
            raise CaptureError(f"pcap record of {caplen} bytes: corrupt file")
        start = pos + 16
        pos = start + caplen
        if pos > size:
            return
        ts_usec = ts_frac // 1000 if nanos else ts_frac
        # Ethernet, type IPv4, version 4 with a 20-byte header, protocol UDP, not a fragment
        if (link == LINK_ETHERNET and caplen >= 42 and mv[start + 12] == 8 and mv[start + 13] == 0
                and mv[start + 14] == 0x45 and mv[start + 23] == 17 and not mv[start + 20] & 0x3F
                and not mv[start + 21]):
            total = (mv[start + 16] << 8) | mv[start + 17]
            ip_end = start + 14 + total if 20 <= total <= caplen - 14 else pos
            if ip_end - start >= 42:
                ulen = (mv[start + 38] << 8) | mv[start + 39]
                seg = ip_end - start - 34
                yield ts_sec, ts_usec, mv[start + 42 : start + 34 + (ulen if 8 <= ulen <= seg else seg)]
            continue
        d = _frame(link, bytes(mv[start:pos]), ts_sec, ts_usec, frags)
        if d is not None:
            yield d.ts_sec, d.ts_usec, d.payload
