"""``sflowtool -j`` lines written straight from datagram bytes: the fast path of ``decode -j``.

The general path decodes a datagram into the data model, builds sflowtool's nested dict
(``sflowtool.datagram_fields``) and serialises it with orjson; most of its time went to the
objects made and dropped for every field. Here a datagram's line is one bytes %-template, put
together from pieces (the head, each sample, each record), and the values read for it with a
struct or two per record: one format per datagram, no per-field objects. Bytes, not str: bytes
%-formatting takes about half the time.

In the template: flow samples (compact and expanded) whose records are sampled headers of
Ethernet frames (untagged or one 802.1Q tag) with IPv4 or IPv6 and a whole TCP or UDP header,
extended switch, IPv4 router and the common gateway (IPv4 next hop, one AS path segment); counter
and discard samples (a discard sample's records print every key after "discarded_"). Other
records have writers of their own below (any sampled header this parse follows, sampled
Ethernet/IPv4/IPv6, router, gateway, extended user and URL, the drop details, interface,
Ethernet and host counters, any fixed layout of the record tables); strings are cut and escaped
as the general path does (``_text``). Anything else -- another record type, a sampled header
left to the general parse (LLC/SNAP, 802.11), anything malformed -- goes to the general path's
decoder and printer for that record or sample, or for the whole datagram when it would be an
error line. The line is the general path's, byte for byte (tests/ingest/sflow/test_sflowtool_json.py
checks it on every capture, on encoder-built datagrams of every record type and header shape,
on odd strings and record layouts at the edges of their kinds, and on mutated datagrams).

It imports nothing of the data model until a fallback needs it: a capture of common datagrams
is printed without loading msgspec, orjson or the record tables (start-up is part of every
``decode -j -r`` run).
"""

from __future__ import annotations

import re
import struct
import time
from binascii import hexlify as _hexlify
from socket import AF_INET, inet_ntop
from typing import Callable, NamedTuple


class Meta(NamedTuple):
    """What sflowtool prints about a datagram besides its contents."""

    source_ip: str  # "-" when unknown (sflowtool prints "-" for capture input)
    size: int
    read_sec: int = 0
    read_usec: int = 0
    pcap_sec: int = 0  # 0: not read from a capture
    pcap_usec: int = 0


_TAG_LEN = struct.Struct(">II")
_U32 = struct.Struct(">I")
_HEAD_V4 = struct.Struct(">II4sIIII")  # version, address type, IPv4, sub-agent, seq, uptime, n samples
_HEAD_V6 = struct.Struct(">II16sIIII")
_FLOW = struct.Struct(">IIIIIIII")  # seq, source id, rate, pool, drops, input, output, n records
_FLOW_X = struct.Struct(">IIIIIIIIIII")  # seq, class, index, rate, pool, drops, in fmt, in, out fmt, out, n
_COUNTERS = struct.Struct(">III")
_COUNTERS_X = struct.Struct(">IIII")
_HEADER_HEAD = struct.Struct(">IIII")  # header protocol, frame length, stripped, header length
_SWITCH = struct.Struct(">IIII")
_ROUTER4 = struct.Struct(">I4sII")
_ROUTER6 = struct.Struct(">I16sII")
_GATEWAY = struct.Struct(">IIII")  # as, src as, src peer as, AS path segments
# the sampled packet
_ETH = struct.Struct(">6s6sH")
_VLAN = struct.Struct(">HH")
_IP4 = struct.Struct(">BBHHHBBxx4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
_TCP = struct.Struct(">HH8xxB")
_PORTS = struct.Struct(">HH")
_UDP = struct.Struct(">HHH")
_TPIDS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_IP6_EXT = frozenset((0, 43, 44, 51, 60))

# ---------------------------------------------------------------- value formatting

_TIMES: dict[int, str] = {}
_TIMES_B: dict[int, bytes] = {}
# the output is built as bytes: bytes %-formatting takes about half the time of str's
_IP4_TEXT: dict[bytes, bytes] = {}
_IP6_TEXT: dict[bytes, bytes] = {}
_CACHE_MAX = 1 << 16  # addresses and seconds repeat: bounded caches, cleared when full


def localtime(sec: int) -> str:
    """ISO 8601 local time, as sflowtool's strftime("%Y-%m-%dT%H:%M:%S%z")."""
    t = _TIMES.get(sec)
    if t is None:
        if len(_TIMES) >= _CACHE_MAX:
            _TIMES.clear()
        t = _TIMES[sec] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(sec))
    return t


def _localtime_b(sec: int) -> bytes:
    t = _TIMES_B.get(sec)
    if t is None:
        if len(_TIMES_B) >= _CACHE_MAX:
            _TIMES_B.clear()
        t = _TIMES_B[sec] = localtime(sec).encode()
    return t


def _ip4(a: bytes) -> bytes:
    if len(_IP4_TEXT) >= _CACHE_MAX:
        _IP4_TEXT.clear()
    t = _IP4_TEXT[a] = inet_ntop(AF_INET, a).encode()
    return t


def _ip6(a: bytes) -> bytes:
    """sflowtool prints IPv6 uncompressed: eight groups of four lowercase hex digits."""
    if len(_IP6_TEXT) >= _CACHE_MAX:
        _IP6_TEXT.clear()
    h = a.hex()
    t = _IP6_TEXT[a] = ":".join((h[0:4], h[4:8], h[8:12], h[12:16], h[16:20], h[20:24], h[24:28], h[28:32])).encode()
    return t


def _s32(v: int) -> int:
    """printf %d of a 32-bit value."""
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def _hex(b) -> bytes:
    """Bytes as sflowtool's headerBytes: "00-1F-29-..."."""
    return _hexlify(b, b"-").upper()


_PORT_FORMAT = (b"", b"dropCode ", b"multiple ", b"format==3 ")  # sflowtool's inputPort/outputPort by format

# XDR strings (user names, URLs, drop reasons, host names). The general path decodes them as UTF-8
# (invalid bytes replaced), cuts them as sflowtool's getString does (at a NUL, and to its buffer
# less one byte, on the UTF-8 bytes: a cut character is replaced again) and orjson escapes them.
# Printable ASCII without quote or backslash, short enough, is all of that unchanged.
_PLAIN_BYTES = bytes(c for c in range(0x20, 0x7F) if c not in (0x22, 0x5C))
_ESCAPES = {bytes((c,)): b"\\u%04x" % c for c in range(0x20)}
_ESCAPES.update({b"\b": b"\\b", b"\t": b"\\t", b"\n": b"\\n", b"\f": b"\\f", b"\r": b"\\r", b'"': b'\\"',
                 b"\\": b"\\\\"})
_ESCAPED = re.compile(rb'[\x00-\x1f"\\]')  # as orjson escapes: nothing else (not DEL, not U+2028)


def _escape(m) -> bytes:
    return _ESCAPES[m.group()]


def _text(raw: bytes, limit: int) -> bytes:
    """An XDR string's bytes as the general path prints them between quotes, at most ``limit``
    bytes of UTF-8 (sflowtool's buffer size less one)."""
    if len(raw) <= limit and not raw.translate(None, _PLAIN_BYTES):
        return raw
    # the bytes are ASCII, or UTF-8 once decoded with replacement: quotes, backslashes and control
    # characters are single bytes in it, never inside a multi-byte character
    b = raw if raw.isascii() else raw.decode("utf-8", "replace").encode()
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    if len(b) > limit:
        b = b[:limit]
        if not b.isascii():
            b = b.decode("utf-8", "replace").encode()
    return _ESCAPED.sub(_escape, b)


# ---------------------------------------------------------------- datagram and samples


def datagram_line(data, meta: Meta) -> bytes | None:
    """sflowtool's -j line for one datagram (bytes or memoryview), or None where the general path
    must write it (the datagram is malformed: an error line)."""
    size = len(data)
    if size < 28 or meta.source_ip != "-" and not _plain(meta.source_ip):
        return None
    version, atype = _TAG_LEN.unpack_from(data, 0)
    if version != 5:
        return None
    if atype == 1:
        _, _, a, sub, seq, uptime, n = _HEAD_V4.unpack_from(data, 0)
        agent = _IP4_TEXT.get(a) or _ip4(a)
        off = 28
    elif atype == 2 and size >= 40:
        _, _, a, sub, seq, uptime, n = _HEAD_V6.unpack_from(data, 0)
        agent = _IP6_TEXT.get(a) or _ip6(a)
        off = 40
    else:
        return None
    if n > (size - off) // 8:
        return None
    # the whole line is one template (pieces) and its values: a single %-format per datagram
    source, size, read_sec, read_usec, pcap_sec, pcap_usec = meta
    if pcap_sec:
        pieces = [_PCAP_DATAGRAM_T]
        vals = [b"-" if source == "-" else source.encode(), size, read_sec, read_usec, _localtime_b(read_sec),
                _localtime_b(pcap_sec), pcap_usec, sub, agent, seq, uptime, n]
    else:
        pieces = [_LIVE_DATAGRAM_T]
        vals = [b"-" if source == "-" else source.encode(), size, read_sec, read_usec, _localtime_b(read_sec),
                sub, agent, seq, uptime, n]
    unpack = _TAG_LEN.unpack_from
    writers = _SAMPLE_WRITERS
    for _ in range(n):
        if off + 8 > size:
            return None
        tag, length = unpack(data, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > size - off:
            return None
        w = writers.get(tag)
        k, kv = len(pieces), len(vals)
        if w is None or not w(data, off, off + padded, pieces, vals):
            del pieces[k:], vals[kv:]
            e = _general_sample(data, off, off + padded, tag)
            if e is None:
                return None
            pieces.append(b",%s")
            vals.append(e)
        off += padded
    if n:
        pieces[1] = pieces[1][1:]  # the first sample has no comma before it
    pieces.append(b"]}\n")
    return b"".join(pieces) % tuple(vals)


_DATAGRAM_T = (b',"datagramVersion":"5","agentSubId":"%d","agent":"%s","packetSequenceNo":"%d","sysUpTime":"%d",'
               b'"samplesInPacket":"%d","samples":[')
_HEAD_T = (b'{"datagramSourceIP":"%s","datagramSize":"%d","unixSecondsUTC":"%d","unixSecondsUTC_uS":"%d",'
           b'"localtime":"%s"')
_PCAP_T = b',"pcapTimestamp":"%s","pcapTimestamp_uS":"%d"'
_LIVE_DATAGRAM_T = _HEAD_T + _DATAGRAM_T
_PCAP_DATAGRAM_T = _HEAD_T + _PCAP_T + _DATAGRAM_T


def _plain(s: str) -> bool:
    """A string JSON carries as is (no escapes): what an address's text is."""
    return s.isascii() and s.isprintable() and '"' not in s and "\\" not in s


_FLOW_T = (b',{"sampleType_tag":"0:%d","sampleType":"FLOWSAMPLE","sampleSequenceNo":"%d","sourceId":"%d:%d",'
           b'"meanSkipCount":"%d","samplePool":"%d","dropEvents":"%d","inputPort":"%s%d","outputPort":"%s%d",'
           b'"elements":[')
_COUNTERS_T = (b',{"sampleType_tag":"0:%d","sampleType":"COUNTERSSAMPLE","sampleSequenceNo":"%d","sourceId":"%d:%d",'
               b'"elements":[%s]}')


def _flow_sample(buf, off: int, end: int, pieces: list, vals: list) -> bool:
    if end - off < 32:
        return False
    seq, src, rate, pool, drops, inp, outp, n = _FLOW.unpack_from(buf, off)
    pieces.append(_FLOW_T)
    vals += (1, seq, src >> 24, src & 0xFFFFFF, rate, pool, drops, _PORT_FORMAT[inp >> 30], inp & 0x3FFFFFFF,
             _PORT_FORMAT[outp >> 30], outp & 0x3FFFFFFF)
    return _flow_records(buf, off + 32, end, n, pieces, vals)


def _flow_sample_expanded(buf, off: int, end: int, pieces: list, vals: list) -> bool:
    if end - off < 44:
        return False
    seq, cls, idx, rate, pool, drops, infmt, inp, outfmt, outp, n = _FLOW_X.unpack_from(buf, off)
    pieces.append(_FLOW_T)
    vals += (3, seq, cls, idx, rate, pool, drops, _PORT_FORMAT[min(infmt, 3)], inp, _PORT_FORMAT[min(outfmt, 3)],
             outp)
    return _flow_records(buf, off + 44, end, n, pieces, vals)


# The common records are printed into their sample's one template: pieces of it and their values.
_HEADER_HEAD_T = (b',{"flowBlock_tag":"0:1","flowSampleType":"HEADER","headerProtocol":"1","sampledPacketSize":"%d",'
                  b'"strippedBytes":"%d","headerLen":"%d","headerBytes":"%s","dstMAC":"%s","srcMAC":"%s"')
_VLAN_T = b',"decodedVLAN":"%d","decodedPriority":"%d"'
_IP4_T = (b',"ethernet_type":"2048","IPSize":"%d","ip.tot_len":"%d","srcIP":"%s","dstIP":"%s","IPProtocol":"%d",'
          b'"IPTOS":"%d","IPTTL":"%d","IPID":"%d",')
_IP6_T = (b',"ethernet_type":"34525","IPSize":"%d","IPTOS":"%d","IP6_label":"0x%x","IPV6_payloadLen":"%s",'
          b'"IPTTL":"%d","srcIP6":"%s","dstIP6":"%s","IPProtocol":"%d",')
_TCP_T = b'"TCPSrcPort":"%d","TCPDstPort":"%d","TCPFlags":"%d"}'
_UDP_T = b'"UDPSrcPort":"%d","UDPDstPort":"%d","UDPBytes":"%d"}'
_SWITCH_T = (b',{"flowBlock_tag":"0:1001","extendedType":"SWITCH","in_vlan":"%d","in_priority":"%d","out_vlan":"%d",'
             b'"out_priority":"%d"}')
_ROUTER_T = (b',{"flowBlock_tag":"0:1002","extendedType":"ROUTER","nextHop":"%s","srcSubnetMask":"%d",'
             b'"dstSubnetMask":"%d"}')
_IP4_HEAD = struct.Struct(">xBHH2xBBxx4s4s")  # tos, total length, id, ttl, protocol, addresses: 20 bytes
_IP6_HEAD = struct.Struct(">IHBB16s16s")
_TCP_HEAD = struct.Struct(">HH8xxB")
_UDP_HEAD = struct.Struct(">HHH")
_MACS = struct.Struct(">6s6s")
_HEADER_ETH_IP4 = struct.Struct(">IIII6s6sHBBHHHBBxx4s4s")  # header head, Ethernet, IPv4: 50 bytes


def _flow_records(buf, off: int, end: int, n: int, pieces: list, vals: list) -> bool:
    """Add n flow records that must exactly fill [off, end) to a sample's template; False: malformed."""
    if n > (end - off) // 8:
        return False
    first = len(pieces)
    unpack = _TAG_LEN.unpack_from
    for _ in range(n):
        if off + 8 > end:
            return False
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off:
            return False
        if tag == 1 and length >= 58:
            # the most common of all: an untagged frame with IPv4 (20-byte header, not a fragment)
            # and a whole TCP or UDP header, read with two structs
            (proto, frame_length, stripped, hlen, dm, sm, t, vihl, tos, tot_len, ip_id, fo, ttl, ip_proto, s,
             d) = _HEADER_ETH_IP4.unpack_from(buf, off)
            if (proto == 1 and t == 0x0800 and vihl == 0x45 and not fo & 0x1FFF and hlen <= length - 16
                    and (hlen + 3) & ~3 == padded - 16
                    and (ip_proto == 6 and hlen >= 48 or ip_proto == 17 and hlen >= 42)):
                ip_size = frame_length - stripped - 14
                pieces += (_HEADER_HEAD_T, _IP4_T, _TCP_T if ip_proto == 6 else _UDP_T)
                vals += (frame_length, stripped, hlen,
                         _hexlify(buf[off + 16 : off + 16 + min(hlen, 682)], b"-").upper(), _hexlify(dm), _hexlify(sm),
                         ip_size if 0 <= ip_size < 0x80000000 else _s32(ip_size), tot_len,
                         _IP4_TEXT.get(s) or _ip4(s), _IP4_TEXT.get(d) or _ip4(d), ip_proto, tos, ttl,
                         ((ip_id & 0xFF) << 8) | (ip_id >> 8))  # sflowtool prints the id without ntohs
                vals += (_TCP_HEAD if ip_proto == 6 else _UDP_HEAD).unpack_from(buf, off + 50)
                off += padded
                continue
            # else a sampled Ethernet frame with IPv4 (no options, not a fragment) or IPv6 (no extension
            # headers), after at most one 802.1Q tag, and a whole TCP or UDP header
            h = off + 16
            q = h + 14  # the IP header
            if proto == 1 and hlen <= length - 16 and (hlen + 3) & ~3 == padded - 16 and hlen >= 42:
                t = (buf[h + 12] << 8) | buf[h + 13]
                if t == 0x8100 and hlen >= 46:
                    tci, t = _VLAN.unpack_from(buf, q)
                    q += 4
                left = h + hlen - q  # bytes from the IP header on
                ip = buf[q]
                if t == 0x0800 and ip == 0x45 and left >= 28 and not buf[q + 6] & 0x1F and not buf[q + 7]:
                    tos, tot_len, ip_id, ttl, ip_proto, s, d = _IP4_HEAD.unpack_from(buf, q)
                    if ip_proto == 6 and left >= 34:
                        l4, l4_t = _TCP_HEAD.unpack_from(buf, q + 20), _TCP_T
                    elif ip_proto == 17:
                        l4, l4_t = _UDP_HEAD.unpack_from(buf, q + 20), _UDP_T
                    else:
                        l4 = None
                    if l4 is not None:
                        dm, sm = _MACS.unpack_from(buf, h)
                        ip_size = frame_length - stripped - (q - h)
                        vals += (frame_length, stripped, hlen, _hexlify(buf[h : h + min(hlen, 682)], b"-").upper(),
                                 _hexlify(dm), _hexlify(sm))
                        if q - h == 18:
                            pieces += (_HEADER_HEAD_T, _VLAN_T, _IP4_T, l4_t)
                            vals += (tci & 0x0FFF, tci >> 13)
                        else:
                            pieces += (_HEADER_HEAD_T, _IP4_T, l4_t)
                        vals += (ip_size if 0 <= ip_size < 0x80000000 else _s32(ip_size), tot_len,
                                 _IP4_TEXT.get(s) or _ip4(s), _IP4_TEXT.get(d) or _ip4(d), ip_proto, tos, ttl,
                                 ((ip_id & 0xFF) << 8) | (ip_id >> 8))  # sflowtool prints the id without ntohs
                        vals += l4
                        off += padded
                        continue
                elif t == 0x86DD and ip >> 4 == 6 and left >= 48 and buf[q + 6] in (6, 17):
                    vcl, plen, ip_proto, ttl, s, d = _IP6_HEAD.unpack_from(buf, q)
                    if ip_proto == 17 or left >= 54:
                        dm, sm = _MACS.unpack_from(buf, h)
                        ip_size = frame_length - stripped - (q - h)
                        vals += (frame_length, stripped, hlen, _hexlify(buf[h : h + min(hlen, 682)], b"-").upper(),
                                 _hexlify(dm), _hexlify(sm))
                        if q - h == 18:
                            pieces += (_HEADER_HEAD_T, _VLAN_T, _IP6_T, _TCP_T if ip_proto == 6 else _UDP_T)
                            vals += (tci & 0x0FFF, tci >> 13)
                        else:
                            pieces += (_HEADER_HEAD_T, _IP6_T, _TCP_T if ip_proto == 6 else _UDP_T)
                        vals += (ip_size if 0 <= ip_size < 0x80000000 else _s32(ip_size), (vcl >> 20) & 0xFF,
                                 vcl & 0xFFFFF, b"%d" % plen if plen else b"<jumbo>", ttl, _IP6_TEXT.get(s) or _ip6(s),
                                 _IP6_TEXT.get(d) or _ip6(d), ip_proto)
                        vals += (_TCP_HEAD if ip_proto == 6 else _UDP_HEAD).unpack_from(buf, q + 40)
                        off += padded
                        continue
        elif tag == 1001 and length == 16:
            pieces.append(_SWITCH_T)
            vals += _SWITCH.unpack_from(buf, off)
            off += padded
            continue
        elif tag == 1002 and length == 16 and _U32.unpack_from(buf, off)[0] == 1:
            _, a, src_mask, dst_mask = _ROUTER4.unpack_from(buf, off)
            pieces.append(_ROUTER_T)
            vals += (_IP4_TEXT.get(a) or _ip4(a), src_mask, dst_mask)
            off += padded
            continue
        elif tag == 1003 and length >= 44 and not length & 3:
            # a gateway with an IPv4 next hop and one AS path segment of up to 63 ASNs
            t, a, my_as, src_as, src_peer_as, nseg, seg_type, count = _GATEWAY4_ONE.unpack_from(buf, off)
            if t == 1 and nseg == 1 and 0 < count < 64 and 40 + 4 * count <= length:
                p = off + 32 + 4 * count
                nc = _U32.unpack_from(buf, p)[0]
                if nc < 64 and length == 40 + 4 * count + 4 * nc:
                    if count == 1:
                        asn = _U32.unpack_from(buf, off + 32)[0]
                        path = b"(%d)" % asn if seg_type == 1 else b"%d" % asn
                        dst_peer_as = dst_as = asn
                    else:
                        asns = _U32_ARRAYS[count].unpack_from(buf, off + 32)
                        path = "-".join(map(str, asns)).encode()
                        if seg_type == 1:
                            path = b"(%s)" % path
                        dst_peer_as, dst_as = asns[0], asns[-1]
                    pieces.append(_GATEWAY_PIECE_T)
                    vals += (_IP4_TEXT.get(a) or _ip4(a), my_as, src_as, src_peer_as, path, dst_as, dst_peer_as,
                             b',"BGP_communities":"%s"' % "-".join(map(str, _U32_ARRAYS[nc].unpack_from(buf, p + 4)))
                             .encode() if nc else b"", _U32.unpack_from(buf, p + 4 + 4 * nc)[0])
                    off += padded
                    continue
        # any other record: its writer's text, or the general path's
        w = _FLOW_WRITERS.get(tag, _UNSEEN)
        if w is _UNSEEN:
            w = _FLOW_WRITERS[tag] = _table_writer(tag, False)
        e = w(buf, off, length) if w is not None else None
        if e is None:
            e = _general_record(buf, off, length, tag, False)
            if e is None:
                return False
        pieces.append(b",%s")
        vals.append(e)
        off += padded
    if off != end:
        return False
    if n:
        pieces[first] = pieces[first][1:]  # the first element has no comma before it
    pieces.append(b"]}")
    return True


def _counter_sample(buf, off: int, end: int, pieces: list, vals: list) -> bool:
    if end - off < 12:
        return False
    seq, src, n = _COUNTERS.unpack_from(buf, off)
    elements = _records(buf, off + 12, end, n, _COUNTER_WRITERS, True)
    if elements is None:
        return False
    pieces.append(_COUNTERS_T)
    vals += (2, seq, src >> 24, src & 0xFFFFFF, elements)
    return True


def _counter_sample_expanded(buf, off: int, end: int, pieces: list, vals: list) -> bool:
    if end - off < 16:
        return False
    seq, cls, idx, n = _COUNTERS_X.unpack_from(buf, off)
    elements = _records(buf, off + 16, end, n, _COUNTER_WRITERS, True)
    if elements is None:
        return False
    pieces.append(_COUNTERS_T)
    vals += (4, seq, cls, idx, elements)
    return True


_DISCARD = struct.Struct(">IIIIIIII")  # seq, class, index, drops, input, output, reason, n records
_DISCARD_T = (b',{"sampleType_tag":"0:5","sampleType":"DISCARD","sampleSequenceNo":"%d","sourceId":"%d:%d",'
              b'"dropEvents":"%d","inputPort":"%d","outputPort":"%d","discardCode":"%d","discardReason":"%s",'
              b'"elements":[%s]}')
_REASONS: dict[int, bytes] = {}


def _discard_reasons() -> dict[int, bytes]:
    from ingest.sflow.discard_reasons import SFLOWTOOL_REASONS  # a table, nothing else

    _REASONS.update({k: v.encode() for k, v in SFLOWTOOL_REASONS.items()})
    return _REASONS


def _discard_sample(buf, off: int, end: int, pieces: list, vals: list) -> bool:
    if end - off < 32:
        return False
    seq, cls, idx, drops, inp, outp, reason, n = _DISCARD.unpack_from(buf, off)
    elements = _records(buf, off + 32, end, n, _DISCARD_WRITERS, False, _DISCARD_PREFIX)
    if elements is None:
        return False
    pieces.append(_DISCARD_T)
    # sflowtool prints the raw 32-bit interface words of a discard sample
    vals += (seq, cls, idx, drops, inp, outp, reason, (_REASONS or _discard_reasons()).get(reason, b"NotFound"),
             elements)
    return True


_SAMPLE_WRITERS: dict[int, Callable] = {1: _flow_sample, 2: _counter_sample, 3: _flow_sample_expanded,
                                        4: _counter_sample_expanded, 5: _discard_sample}
_UNSEEN = object()


def _records(buf, off: int, end: int, n: int, writers: dict, counters: bool, prefix: str = "") -> bytes | None:
    """The JSON of n records that must exactly fill [off, end), joined by commas; None: malformed.
    ``prefix``: before every key (a discard sample's records)."""
    if n > (end - off) // 8:
        return None
    out = []
    append = out.append
    unpack = _TAG_LEN.unpack_from
    for _ in range(n):
        if off + 8 > end:
            return None
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off:
            return None
        w = writers.get(tag, _UNSEEN)
        if w is _UNSEEN:
            w = writers[tag] = _table_writer(tag, counters, prefix)
        e = w(buf, off, length) if w is not None else None
        if e is None:
            e = _general_record(buf, off, length, tag, counters, prefix)
            if e is None:
                return None
        append(e)
        off += padded
    if off != end:
        return None
    return b",".join(out)


# ---------------------------------------------------------------- flow records


_HEADER_T = (b'{"flowBlock_tag":"0:1","flowSampleType":"HEADER","headerProtocol":"%d","sampledPacketSize":"%d",'
             b'"strippedBytes":"%d","headerLen":"%d","headerBytes":"%s"')


def _sampled_header(buf, off: int, length: int) -> bytes | None:
    if length < 16:
        return None
    proto, frame_length, stripped, n = _HEADER_HEAD.unpack_from(buf, off)
    start = off + 16
    left = length - 16
    if n > left or ((n + 3) & ~3) != ((left + 3) & ~3):
        return None
    h = buf[start : start + n]
    # sflowtool's 2048-byte string buffer holds at most 682 bytes as "XX-"
    head = _HEADER_T % (proto, frame_length, stripped, n, _hex(h[:682]))
    size = frame_length - stripped
    if proto == 1:
        tail = _ethernet(h, n, size)
    elif proto == 11:  # raw IPv4: no version check
        tail = _ipv4(h, 0, n, size) if n >= 20 else b',"IPSize":"%d"' % _s32(size)
    elif proto == 12:
        tail = _ipv6(h, 0, n, size)
    elif proto == 15:
        return None  # 802.11: the general path's header parse
    else:
        tail = b""
    return None if tail is None else head + tail + b"}"


def _ethernet(b, end: int, size: int) -> bytes | None:
    """What sflowtool prints of an Ethernet frame's header (decodeLinkLayer, decodeIPV4/6,
    decodeIPLayer4, as ingest/sflow/header.py follows them), or None for what it leaves to
    that parse (802.2 LLC/SNAP, IPX, IPv6 extension headers). ``size``: frame length - stripped."""
    if end < 14:
        return b""
    dst, src, t = _ETH.unpack_from(b, 0)
    out = b',"dstMAC":"%s","srcMAC":"%s"' % (_hexlify(dst), _hexlify(src))
    p = 14
    if t in _TPIDS:
        i = 0
        while t in _TPIDS:
            if end - p < 4:
                break
            tci, t = _VLAN.unpack_from(b, p)
            if i:
                out += b',"decodedVLAN.%d":"%d","decodedPriority.%d":"%d"' % (i, tci & 0x0FFF, i, tci >> 13)
            else:
                out += b',"decodedVLAN":"%d","decodedPriority":"%d"' % (tci & 0x0FFF, tci >> 13)
            i += 1
            p += 4
        if t in _TPIDS:
            return out
    if end < 20:
        return out
    if t <= 1500 or t == 0x0600:
        return None
    out += b',"ethernet_type":"%d"' % t
    if t == 0x0800:
        if end - p < 20 or b[p] >> 4 != 4 or b[p] & 15 < 5:
            return out
        return out + _ipv4(b, p, end, size)
    if t == 0x86DD:
        if p >= end or b[p] >> 4 != 6:
            return out
        return out + _ipv6(b, p, end, size)
    return out


def _ipv4(b, p: int, end: int, size: int) -> bytes:
    """decodeIPV4 of the 20 bytes or more at p, and on (``size``: frame length - stripped)."""
    vihl, tos, tot_len, ip_id, fo, ttl, proto, s, d = _IP4.unpack_from(b, p)
    ip_size = size - p
    out = (b',"IPSize":"%d","ip.tot_len":"%d","srcIP":"%s","dstIP":"%s","IPProtocol":"%d","IPTOS":"%d",'
           b'"IPTTL":"%d","IPID":"%d"') % (
        ip_size if 0 <= ip_size < 0x80000000 else _s32(ip_size), tot_len,
        _IP4_TEXT.get(s) or _ip4(s), _IP4_TEXT.get(d) or _ip4(d), proto, tos, ttl,
        ((ip_id & 0xFF) << 8) | (ip_id >> 8))  # sflowtool prints the id without ntohs
    if fo & 0x1FFF:
        return out + b',"IPFragmentOffset":"%d"' % (fo & 0x1FFF)
    p += (vihl & 15) * 4
    if p > end:
        return out
    return out + _l4(b, p, end, proto)


def _ipv6(b, p: int, end: int, size: int) -> bytes:
    """decodeIPV6 at p, and on (``size``: frame length - stripped)."""
    ip_size = size - p
    ip_size = ip_size if 0 <= ip_size < 0x80000000 else _s32(ip_size)
    if end - p < 40 or b[p] >> 4 != 6:
        return b',"IPSize":"%d"' % ip_size
    vcl, plen, proto, ttl, s, d = _IP6.unpack_from(b, p)
    out = (b',"IPSize":"%d","IPTOS":"%d","IP6_label":"0x%x","IPV6_payloadLen":"%s","IPTTL":"%d",'
           b'"srcIP6":"%s","dstIP6":"%s"') % (
        ip_size, (vcl >> 20) & 0xFF, vcl & 0xFFFFF, b"%d" % plen if plen else b"<jumbo>", ttl,
        _IP6_TEXT.get(s) or _ip6(s), _IP6_TEXT.get(d) or _ip6(d))
    p += 40
    if proto in _IP6_EXT:
        # sflowtool prints IP6HeaderExtension for each extension header it walks; the general path
        # keeps one such key (a JSON object's), at its first place, with the last value
        while proto in _IP6_EXT:
            last = proto
            if end - p < 2:
                return out + b',"IP6HeaderExtension":"%d"' % last
            proto = b[p]
            p += 8 * (b[p + 1] + 1)
            if p > end:
                return out + b',"IP6HeaderExtension":"%d"' % last
        out += b',"IP6HeaderExtension":"%d"' % last
    return out + b',"IPProtocol":"%d"' % proto + _l4(b, p, end, proto)


def _l4(b, p: int, end: int, proto: int) -> bytes:
    """decodeIPLayer4: sflowtool wants 8 bytes for any of it."""
    left = end - p
    if left < 8:
        return b""
    if proto == 6:
        if left >= 14:
            return b',"TCPSrcPort":"%d","TCPDstPort":"%d","TCPFlags":"%d"' % _TCP.unpack_from(b, p)
        return b',"TCPSrcPort":"%d","TCPDstPort":"%d"' % _PORTS.unpack_from(b, p)
    if proto == 17:
        return b',"UDPSrcPort":"%d","UDPDstPort":"%d","UDPBytes":"%d"' % _UDP.unpack_from(b, p)
    if proto == 1:
        return b',"ICMPType":"%d","ICMPCode":"%d"' % (b[p], b[p + 1])
    return b""


# sampled_ethernet, sampled_ipv4, sampled_ipv6 (0:2-0:4; sflowtool's readFlowSample_ethernet/IPv4/IPv6)
_SAMPLED_ETHERNET = struct.Struct(">I6s2x6s2xI")
_SAMPLED_IPV4 = struct.Struct(">II4s4sIIII")
_SAMPLED_IPV6 = struct.Struct(">II16s16sIIII")


def _sampled_ethernet(buf, off: int, length: int) -> bytes | None:
    if length != 24:
        return None
    n, src, dst, t = _SAMPLED_ETHERNET.unpack_from(buf, off)
    return (b'{"flowBlock_tag":"0:2","flowSampleType":"ETHERNET","ethernet_type":"%d","ethernet_len":"%d",'
            b'"ethernet_src":"%s","ethernet_dst":"%s"}' % (t, n, _hexlify(src), _hexlify(dst)))


def _ports(proto: int, src: int, dst: int, flags: int) -> bytes:
    if proto == 1:
        return b',"ICMPType":"%d"' % dst  # sflowtool takes the ICMP type from the dst port
    if proto == 6:
        return b',"TCPSrcPort":"%d","TCPDstPort":"%d","TCPFlags":"%d"' % (src, dst, flags)
    if proto == 17:
        return b',"UDPSrcPort":"%d","UDPDstPort":"%d"' % (src, dst)
    return b""


def _sampled_ipv4(buf, off: int, length: int) -> bytes | None:
    if length != 32:
        return None
    n, proto, s, d, sport, dport, flags, tos = _SAMPLED_IPV4.unpack_from(buf, off)
    return (b'{"flowBlock_tag":"0:3","flowSampleType":"IPV4","sampledPacketSize":"%d","IPSize":"%d","srcIP":"%s",'
            b'"dstIP":"%s","IPProtocol":"%d","IPTOS":"%d"%s}' % (
                n, n, _IP4_TEXT.get(s) or _ip4(s), _IP4_TEXT.get(d) or _ip4(d), proto, tos,
                _ports(proto, sport, dport, flags)))


def _sampled_ipv6(buf, off: int, length: int) -> bytes | None:
    if length != 56:
        return None
    n, proto, s, d, sport, dport, flags, priority = _SAMPLED_IPV6.unpack_from(buf, off)
    return (b'{"flowBlock_tag":"0:4","flowSampleType":"IPV6","sampledPacketSize":"%d","IPSize":"%d",'
            b'"srcIP6":"%s","dstIP6":"%s","IPProtocol":"%d","priority":"%d"%s}' % (
                n, n, _IP6_TEXT.get(s) or _ip6(s), _IP6_TEXT.get(d) or _ip6(d), proto, priority,
                _ports(proto, sport, dport, flags)))


def _router(buf, off: int, length: int) -> bytes | None:
    if length == 16:
        t, a, src_mask, dst_mask = _ROUTER4.unpack_from(buf, off)
        if t != 1:
            return None
        nh = _IP4_TEXT.get(a) or _ip4(a)
    elif length == 28:
        t, a, src_mask, dst_mask = _ROUTER6.unpack_from(buf, off)
        if t != 2:
            return None
        nh = _IP6_TEXT.get(a) or _ip6(a)
    else:
        return None
    return (b'{"flowBlock_tag":"0:1002","extendedType":"ROUTER","nextHop":"%s","srcSubnetMask":"%d",'
            b'"dstSubnetMask":"%d"}' % (nh, src_mask, dst_mask))


_GATEWAY4_ONE = struct.Struct(">I4sIIIIII")  # IPv4 next hop, as, src as, src peer as, 1 segment: its type, count
_GATEWAY_PIECE_T = (b',{"flowBlock_tag":"0:1003","extendedType":"GATEWAY","bgp_nexthop":"%s","my_as":"%d",'
                    b'"src_as":"%d","src_peer_as":"%d","dst_as_path":"%s","dst_as":"%d","dst_peer_as":"%d"%s,'
                    b'"BGP_localpref":"%d"}')
_U32_ARRAYS = [struct.Struct(">%dI" % i) for i in range(64)]


_GATEWAY_T = (b'{"flowBlock_tag":"0:1003","extendedType":"GATEWAY","bgp_nexthop":"%s","my_as":"%d","src_as":"%d",'
              b'"src_peer_as":"%d"%s,"dst_as":"%d","dst_peer_as":"%d"%s,"BGP_localpref":"%d"}')


_GATEWAY_TEXT: dict[bytes, bytes] = {}  # by the record's bytes: a router sends one per route, over and over


def _gateway(buf, off: int, length: int) -> bytes | None:
    """Any gateway record the sample's template does not take (IPv6 next hop, several segments...)."""
    key = bytes(buf[off : off + length])
    t = _GATEWAY_TEXT.get(key)
    if t is None:
        t = _gateway_text(buf, off, length)
        if t is None:
            return None
        if len(_GATEWAY_TEXT) >= 4096:
            _GATEWAY_TEXT.clear()
        _GATEWAY_TEXT[key] = t
    return t


def _gateway_text(buf, off: int, length: int) -> bytes | None:
    if length & 3 or length < 24:
        return None
    end = off + length
    t = _U32.unpack_from(buf, off)[0]
    if t == 1:
        a = bytes(buf[off + 4 : off + 8])
        nh = _IP4_TEXT.get(a) or _ip4(a)
        p = off + 8
    elif t == 2 and length >= 36:
        a = bytes(buf[off + 4 : off + 20])
        nh = _IP6_TEXT.get(a) or _ip6(a)
        p = off + 20
    else:
        return None
    if end - p < 16:
        return None
    my_as, src_as, src_peer_as, nseg = _GATEWAY.unpack_from(buf, p)
    p += 16
    if nseg > (end - p) // 8:
        return None
    pair = _TAG_LEN.unpack_from
    path = []
    first = last = None
    for i in range(nseg):
        if end - p < 8:
            return None
        seg_type, count = pair(buf, p)
        p += 8
        if count > (end - p) // 4:
            return None
        asns = (_U32_ARRAYS[count] if count < 64 else struct.Struct(">%dI" % count)).unpack_from(buf, p)
        p += 4 * count
        # segments run together, AS_SETs (1) in parentheses, e.g. "1-2(3-4)5"
        path.append("(%s)" % "-".join(map(str, asns)) if seg_type == 1 else "-".join(map(str, asns)))
        # the words sflowtool takes for dst_peer_as and dst_as, even when a segment is empty (see
        # flow_records/extended.py): the first after the first segment's head (the second segment's
        # type, or the count of communities, after an empty one)...
        if not i:
            first = asns[0] if asns else None
        elif i == 1 and first is None:
            first = seg_type
        last = asns[-1] if asns else 0  # ... and the last of the last segment
    if end - p < 4:
        return None
    nc = _U32.unpack_from(buf, p)[0]
    p += 4
    if nc > (end - p) // 4 or end - p - 4 * nc != 4:
        return None
    if path:
        path = "".join(path)
        if len(path) > 2000:
            return None  # near sflowtool's 2048-byte string buffer: the general path cuts it as it does
        path_t = b',"dst_as_path":"%s"' % path.encode()
        dst_peer_as = nc if first is None else first
        dst_as = last
    else:
        path_t = b""
        dst_peer_as = dst_as = 0
    if nc:
        c = "-".join(map(str, (_U32_ARRAYS[nc] if nc < 64 else struct.Struct(">%dI" % nc)).unpack_from(buf, p)))
        if len(c) > 2000:
            return None
        communities = b',"BGP_communities":"%s"' % c.encode()
    else:
        communities = b""
    return _GATEWAY_T % (nh, my_as, src_as, src_peer_as, path_t, dst_as, dst_peer_as, communities,
                         _U32.unpack_from(buf, p + 4 * nc)[0])


def _strings_writer(block_tag: str, ext: str, kinds: str, printed: tuple, prefix: str = "",
                    skip_empty: bool = False) -> Callable:
    """A writer for a flow record of u32s and XDR strings (a _var layout of flow_records/_common.py):
    ``kinds`` its fields in wire order ("u32", "string"); ``printed`` (field number, sflowtool key,
    sflowtool's buffer size for a string or 0 for a u32) in sflowtool's order; ``skip_empty``: an
    empty string is not printed (the _strings records)."""
    strings = tuple(k == "string" for k in kinds.split())
    head = f'{{"{prefix}flowBlock_tag":"{block_tag}","{prefix}extendedType":"{ext}"'.encode()
    keys = tuple((i, f',"{prefix}{key}":"'.encode(), size - 1) for i, key, size in printed)
    unpack = _U32.unpack_from

    def write(buf, off: int, length: int) -> bytes | None:
        # the checks of the _var decoder's happy path: what they refuse goes to the general path
        end = off + length
        pos = off
        vals = []
        for is_string in strings:
            if end - pos < 4:
                return None
            v = unpack(buf, pos)[0]
            pos += 4
            if is_string:
                if v > end - pos:
                    return None
                vals.append(bytes(buf[pos : pos + v]))
                pos += (v + 3) & ~3
            else:
                vals.append(v)
        if pos - off != (length + 3) & ~3:
            return None
        out = [head]
        for i, key, limit in keys:
            v = vals[i]
            if limit < 0:
                out += (key, b"%d" % v, b'"')
            elif v or not skip_empty:
                out += (key, _text(v, limit), b'"')
        out.append(b"}")
        return b"".join(out)

    return write


# the drop details of discard samples (0:1036-0:1042), declared here as the general path prints
# them (the tests compare them on odd strings); extended_url and extended_user are below
_STRING_RECORDS = {
    1038: ("0:1038", "function", "string", ((0, "symbol", 64),), True),
    1041: ("0:1041", "hw_trap", "string string", ((0, "hw_trap_group", 64), (1, "hw_trap_name", 64)), True),
    1042: ("0:1042", "linux_reason", "string", ((0, "linux_drop_reason", 64),), True),
}
# extended_switch and the one-word drop details: (tag, extendedType, fields)
_TYPED_RECORDS = {
    1001: ("0:1001", "SWITCH", (("I", "in_vlan"), ("I", "in_priority"), ("I", "out_vlan"), ("I", "out_priority"))),
    1036: ("0:1036", "egress_queue", (("I", "egress_queue_id"),)),
    1039: ("0:1039", "transit_delay", (("I", "transit_delay_nS"),)),
    1040: ("0:1040", "queue_depth", (("I", "queue_depth_bytes"),)),
}
_TAG_ONLY = (1037,)  # extended ACL: sflowtool prints only its tag (the general path has no codec for it)


def _url_user_writers(prefix: str) -> dict:
    """extended_url and extended_user in a struct or two (agents send them with every sample): the
    checks of _strings_writer, for their two layouts."""
    url_t = (f'{{"{prefix}flowBlock_tag":"0:1005","{prefix}extendedType":"URL","{prefix}url_direction":"%d",'
             f'"{prefix}url":"%s","{prefix}host":"%s"}}').encode()
    user_t = (f'{{"{prefix}flowBlock_tag":"0:1004","{prefix}extendedType":"USER","{prefix}src_user_charset":"%d",'
              f'"{prefix}dst_user_charset":"%d","{prefix}src_user":"%s","{prefix}dst_user":"%s"}}').encode()
    pair = _TAG_LEN.unpack_from
    word = _U32.unpack_from

    def url(buf, off: int, length: int) -> bytes | None:
        if length < 12:
            return None
        end = off + length
        direction, n = pair(buf, off)
        p = off + 8
        if n > end - p:
            return None
        q = p + ((n + 3) & ~3)
        if end - q < 4:
            return None
        m = word(buf, q)[0]
        q += 4
        if m > end - q or q + ((m + 3) & ~3) - off != (length + 3) & ~3:
            return None
        return url_t % (direction, _text(bytes(buf[p : p + n]), 199), _text(bytes(buf[q : q + m]), 199))

    def user(buf, off: int, length: int) -> bytes | None:
        if length < 16:
            return None
        end = off + length
        src_charset, n = pair(buf, off)
        p = off + 8
        if n > end - p:
            return None
        q = p + ((n + 3) & ~3)
        if end - q < 8:
            return None
        dst_charset, m = pair(buf, q)
        q += 8
        if m > end - q or q + ((m + 3) & ~3) - off != (length + 3) & ~3:
            return None
        return user_t % (src_charset, dst_charset, _text(bytes(buf[p : p + n]), 199),
                         _text(bytes(buf[q : q + m]), 199))

    return {1004: user, 1005: url}


def _flow_writers(prefix: str) -> dict:
    writers: dict[int, Callable | None] = {
        tag: _strings_writer(block_tag, ext, kinds, printed, prefix, skip)
        for tag, (block_tag, ext, kinds, printed, skip) in _STRING_RECORDS.items()}
    writers.update(_url_user_writers(prefix))
    for tag, (block_tag, ext, fields) in _TYPED_RECORDS.items():
        writers[tag] = fixed_writer(block_tag, fields, False, prefix, ext)
    for tag in _TAG_ONLY:
        line = f'{{"{prefix}flowBlock_tag":"0:{tag}"}}'.encode()
        writers[tag] = lambda buf, off, length, line=line: line
    return writers


def _prefixed(w: Callable, prefix: bytes) -> Callable:
    """A writer whose every key takes the prefix: only for records whose values never hold a
    quote (numbers, addresses, hex, AS paths), so that ',"' and '{"' start keys only."""
    first = b'{"' + prefix
    rest = b',"' + prefix

    def write(buf, off: int, length: int) -> bytes | None:
        e = w(buf, off, length)
        return None if e is None else first + e[2:].replace(b',"', rest)

    return write


def _tunnel(w: Callable, tag: int, sampled: bytes, prefix: bytes) -> Callable:
    """The tunnel records (0:1021-0:1026, sflow_tunnels.txt) carry the sampled Ethernet, IPv4 and
    IPv6 structures: sflowtool prints them as those, the type and every key after a prefix (the
    values are numbers and addresses: ',"' starts keys only)."""
    old = b'{"flowBlock_tag":"0:%s","flowSampleType":"%s"' % (sampled, _SAMPLED_TYPES[sampled])
    new = b'{"flowBlock_tag":"0:%d","flowSampleType":"%s%s"' % (tag, prefix, _SAMPLED_TYPES[sampled])
    rest = b',"' + prefix
    cut = len(old)

    def write(buf, off: int, length: int) -> bytes | None:
        e = w(buf, off, length)
        return None if e is None else new + e[cut:].replace(b',"', rest)

    return write


_SAMPLED_TYPES = {b"2": b"ETHERNET", b"3": b"IPV4", b"4": b"IPV6"}
_FLOW_WRITERS: dict[int, Callable | None] = {
    1: _sampled_header, 2: _sampled_ethernet, 3: _sampled_ipv4, 4: _sampled_ipv6, 1002: _router, 1003: _gateway,
    1021: _tunnel(_sampled_ethernet, 1021, b"2", b"tunnel_l2_out_"),
    1022: _tunnel(_sampled_ethernet, 1022, b"2", b"tunnel_l2_in_"),
    1023: _tunnel(_sampled_ipv4, 1023, b"3", b"tunnel_ipv4_out_"),
    1024: _tunnel(_sampled_ipv4, 1024, b"3", b"tunnel_ipv4_in_"),
    1025: _tunnel(_sampled_ipv6, 1025, b"4", b"tunnel_ipv6_out_"),
    1026: _tunnel(_sampled_ipv6, 1026, b"4", b"tunnel_ipv6_in_"),
}
# the records of a discard sample, printed with "discarded_" before every key
_DISCARD_PREFIX = "discarded_"
_DISCARD_WRITERS = {tag: _prefixed(w, _DISCARD_PREFIX.encode()) for tag, w in _FLOW_WRITERS.items()}


# ---------------------------------------------------------------- counter records


def fixed_writer(block_tag: str, fields: tuple[tuple[str, str | None], ...], counters: bool = True,
                 prefix: str = "", ext: str | None = None):
    """A writer for a record of fixed-size integers: ``fields`` are (struct format, sflowtool key or
    None when not printed) in wire order; printed in that order, each with %d, after the
    extendedType ``ext`` if any; every key after ``prefix`` (a discard sample's records)."""
    fmt = ">" + "".join(f if key else f"{struct.calcsize('>' + f)}x" for f, key in fields)
    st = struct.Struct(fmt)
    size = st.size
    unpack = st.unpack_from
    tag_key = prefix + ("counterBlock_tag" if counters else "flowBlock_tag")
    head = [f'{{"{tag_key}":"{block_tag}"'] + ([f',"{prefix}extendedType":"{ext}"'] if ext else [])
    template = "".join(head + [f',"{prefix}{key}":"%d"' for _, key in fields if key] + ["}"]).encode()

    def write(buf, off: int, length: int) -> bytes | None:
        if length != size:
            return None
        return template % unpack(buf, off)

    return write


_F32S = struct.Struct(">f")
_PERCENT_TEXT: dict[int, bytes] = {}


def _percent(v: int) -> bytes:
    """layout.PERCENT as the general path prints it: hundredths of a percent, through a float32."""
    t = _PERCENT_TEXT.get(v)
    if t is None:
        if len(_PERCENT_TEXT) >= _CACHE_MAX:
            _PERCENT_TEXT.clear()
        t = _PERCENT_TEXT[v] = b"unknown" if v == 0xFFFFFFFF else b"%.2f" % _F32S.unpack(_F32S.pack(v / 100))[0]
    return t


# how a Fixed layout's field is printed: a %-format of the value read, or a conversion then %s/%d
_D, _F3, _X16 = b"%d", b"%.3f", b"%016x"  # integers; floats (layout.fmt_float3); 64-bit ids as hex
_PCT, _MAC, _U32_OF_I32 = "percent", "mac", "u32"  # layout.PERCENT, layout.MAC, an i32 printed %u
_CONVERT = {_PCT: (b"%s", _percent), _MAC: (b"%s", _hexlify), _U32_OF_I32: (b"%d", lambda v: v & 0xFFFFFFFF)}


def _layout_writer(block_tag: str, fields: tuple, counters: bool, prefix: str, tail: int) -> Callable:
    """A writer for a Fixed layout: ``fields`` (struct format, sflowtool key or None, how it is
    printed or None), in wire order; a record ``tail`` fields short is the layout's older version,
    printed without them (Fixed's optional_tail)."""
    if all(conv in (_D, None) for _, _, conv in fields) and not tail:
        return fixed_writer(block_tag, tuple((f, k) for f, k, _ in fields), counters, prefix)
    tag_key = prefix + ("counterBlock_tag" if counters else "flowBlock_tag")
    head = f'{{"{tag_key}":"{block_tag}"'.encode()

    def layout(fs):
        st = struct.Struct(">" + "".join(f if key else f"{struct.calcsize('>' + f)}x" for f, key, _ in fs))
        printed = [conv for _, key, conv in fs if key]
        template = head + b"".join(b',"%s%s":"%s"' % (prefix.encode(), key.encode(), _CONVERT[conv][0]
                                                      if conv in _CONVERT else conv)
                                   for _, key, conv in fs if key) + b"}"
        converts = tuple((i, _CONVERT[conv][1]) for i, conv in enumerate(printed) if conv in _CONVERT)
        return st.size, st.unpack_from, template, converts

    forms = [layout(fields)] + ([layout(fields[:-tail])] if tail else [])

    def write(buf, off: int, length: int) -> bytes | None:
        for size, unpack, template, converts in forms:
            if length == size:
                vals = unpack(buf, off)
                if converts:
                    vals = list(vals)
                    for i, convert in converts:
                        vals[i] = convert(vals[i])
                return template % tuple(vals)
        return None

    return write


# the counter blocks of switches and routers, declared here so that a capture of them is printed
# without loading the record tables (tests check them against counter_records/interfaces.py)
IF_COUNTERS_FIELDS = (
    ("I", "ifIndex"), ("I", "networkType"), ("Q", "ifSpeed"), ("I", "ifDirection"), ("I", "ifStatus"),
    ("Q", "ifInOctets"), ("I", "ifInUcastPkts"), ("I", "ifInMulticastPkts"), ("I", "ifInBroadcastPkts"),
    ("I", "ifInDiscards"), ("I", "ifInErrors"), ("I", "ifInUnknownProtos"), ("Q", "ifOutOctets"),
    ("I", "ifOutUcastPkts"), ("I", "ifOutMulticastPkts"), ("I", "ifOutBroadcastPkts"), ("I", "ifOutDiscards"),
    ("I", "ifOutErrors"), ("I", "ifPromiscuousMode"),
)
ETHERNET_COUNTERS_FIELDS = tuple(("I", k) for k in (
    "dot3StatsAlignmentErrors", "dot3StatsFCSErrors", "dot3StatsSingleCollisionFrames",
    "dot3StatsMultipleCollisionFrames", "dot3StatsSQETestErrors", "dot3StatsDeferredTransmissions",
    "dot3StatsLateCollisions", "dot3StatsExcessiveCollisions", "dot3StatsInternalMacTransmitErrors",
    "dot3StatsCarrierSenseErrors", "dot3StatsFrameTooLongs", "dot3StatsInternalMacReceiveErrors",
    "dot3StatsSymbolErrors"))

_TWO_U32 = struct.Struct(">II")


def _host_descr(buf, off: int, length: int) -> bytes | None:
    """0:2000: host name, UUID, machine type, OS, OS release (counter_records/host.py's checks)."""
    end = off + length
    if length < 4:
        return None
    n = _U32.unpack_from(buf, off)[0]
    pos = off + 4
    if (n + 3) & ~3 > end - pos or n > end - pos:
        return None
    hostname = bytes(buf[pos : pos + n])
    pos += (n + 3) & ~3
    if end - pos < 28:
        return None
    u = buf[pos : pos + 16].hex()
    machine_type, os_name = _TWO_U32.unpack_from(buf, pos + 16)
    n = _U32.unpack_from(buf, pos + 24)[0]
    pos += 28
    if (n + 3) & ~3 > end - pos or n > end - pos or pos + ((n + 3) & ~3) != end:
        return None
    release = bytes(buf[pos : pos + n])
    # sflowtool's buffers: 64 bytes for the host name, 32 for the release
    out = b'{"counterBlock_tag":"0:2000"'
    if hostname:
        out += b',"hostname":"%s"' % _text(hostname, 63)
    out += b',"UUID":"%s-%s-%s-%s-%s","machine_type":"%d","os_name":"%d"' % (
        u[:8].encode(), u[8:12].encode(), u[12:16].encode(), u[16:20].encode(), u[20:].encode(), machine_type, os_name)
    if release:
        out += b',"os_release":"%s"' % _text(release, 31)
    return out + b"}"


def _host_adapters(buf, off: int, length: int) -> bytes | None:
    """0:2001: adapters, each an ifIndex and its MACs (counter_records/host.py's checks)."""
    end = off + length
    if length < 4:
        return None
    n = _U32.unpack_from(buf, off)[0]
    pos = off + 4
    if n > (end - pos) // 8:
        return None
    adaptors = []
    for _ in range(n):
        if end - pos < 8:
            return None
        if_index, nmacs = _TWO_U32.unpack_from(buf, pos)
        pos += 8
        if nmacs > (end - pos) // 8:
            return None
        if nmacs == 1:
            macs = b'"%s"' % _hexlify(buf[pos : pos + 6])
        else:
            macs = b",".join([b'"%s"' % _hexlify(buf[o : o + 6]) for o in range(pos, pos + 8 * nmacs, 8)])
        adaptors.append(b'{"ifIndex":"%d","MACs":"%d","mac_list":[%s]}' % (if_index, nmacs, macs))
        pos += 8 * nmacs
    if pos != end:
        return None
    return b'{"counterBlock_tag":"0:2001","adaptor_list":[%s]}' % b",".join(adaptors)


# the host counter blocks hsflowd sends, as table_layout reads them from counter_records/host.py
# (the tests check them): declared here, as the interface counters, so that printing them loads
# no record tables (about 90 ms of start-up)
HOST_CPU_LAYOUT = ((
    ("f", "cpu_load_one", _F3), ("f", "cpu_load_five", _F3), ("f", "cpu_load_fifteen", _F3),
    ("I", "cpu_proc_run", _D), ("I", "cpu_proc_total", _D), ("I", "cpu_num", _D), ("I", "cpu_speed", _D),
    ("I", "cpu_uptime", _D), ("I", "cpu_user", _D), ("I", "cpu_nice", _D), ("I", "cpu_system", _D),
    ("I", "cpu_idle", _D), ("I", "cpu_wio", _D), ("I", "cpuintr", _D), ("I", "cpu_sintr", _D),
    ("I", "cpuinterrupts", _D), ("I", "cpu_contexts", _D), ("I", "cpu_steal", _D), ("I", "cpu_guest", _D),
    ("I", "cpu_guest_nice", _D)), 3)
HOST_MEMORY_LAYOUT = (tuple(("Q", k, _D) for k in (
    "mem_total", "mem_free", "mem_shared", "mem_buffers", "mem_cached", "swap_total", "swap_free"))
    + tuple(("I", k, _D) for k in ("page_in", "page_out", "swap_in", "swap_out")), 0)
HOST_DISK_IO_LAYOUT = ((
    ("Q", "disk_total", _D), ("Q", "disk_free", _D), ("I", "disk_partition_max_used", _PCT),
    ("I", "disk_reads", _D), ("Q", "disk_bytes_read", _D), ("I", "disk_read_time", _D), ("I", "disk_writes", _D),
    ("Q", "disk_bytes_written", _D), ("I", "disk_write_time", _D)), 0)
HOST_NET_IO_LAYOUT = ((
    ("Q", "nio_bytes_in", _D), ("I", "nio_pkts_in", _D), ("I", "nio_errs_in", _D), ("I", "nio_drops_in", _D),
    ("Q", "nio_bytes_out", _D), ("I", "nio_pkts_out", _D), ("I", "nio_errs_out", _D), ("I", "nio_drops_out", _D)),
    0)
HOST_LAYOUTS = {2003: HOST_CPU_LAYOUT, 2004: HOST_MEMORY_LAYOUT, 2005: HOST_DISK_IO_LAYOUT, 2006: HOST_NET_IO_LAYOUT}

def _port_name(buf, off: int, length: int) -> bytes | None:
    """0:1005 port_name: one string, printed when not empty (sflowtool's 255-byte buffer)."""
    if length < 4:
        return None
    n = _U32.unpack_from(buf, off)[0]
    if off + 4 + ((n + 3) & ~3) != off + length or n > length - 4:
        return None
    if not n:
        return b'{"counterBlock_tag":"0:1005"}'
    return b'{"counterBlock_tag":"0:1005","ifName":"%s"}' % _text(bytes(buf[off + 4 : off + 4 + n]), 254)


_COUNTER_WRITERS: dict[int, Callable | None] = {
    1005: _port_name,
    1: fixed_writer("0:1", IF_COUNTERS_FIELDS),
    2: fixed_writer("0:2", ETHERNET_COUNTERS_FIELDS),
    2000: _host_descr,
    2001: _host_adapters,
    **{tag: _layout_writer(f"0:{tag}", fields, True, "", tail) for tag, (fields, tail) in HOST_LAYOUTS.items()},
}
_FLOW_WRITERS.update(_flow_writers(""))
_DISCARD_WRITERS.update(_flow_writers(_DISCARD_PREFIX))


# ---------------------------------------------------------------- the general path, for the rest

_general: list = []  # (datagram.SAMPLES by tag, FLOW_RECORDS by tag, COUNTER_RECORDS by tag, modules)


def _tables():
    if not _general:
        import orjson

        from ingest.sflow import sflowtool
        from ingest.sflow.counter_records import COUNTER_RECORDS
        from ingest.sflow.datagram import SAMPLES
        from ingest.sflow.errors import DecodeError
        from ingest.sflow.flow_records import FLOW_RECORDS

        _general.extend((
            {(e << 12) | f: fn for (e, f), fn in SAMPLES.items()},
            {(e << 12) | f: c for (e, f), c in FLOW_RECORDS.items()},
            {(e << 12) | f: c for (e, f), c in COUNTER_RECORDS.items()},
            sflowtool, orjson.dumps, DecodeError,
        ))
    return _general


def _table_writer(tag: int, counters: bool, prefix: str = "") -> Callable | None:
    """A template writer for a table record that is a Fixed layout of integers, floats (printed
    %.3f) and percentages (layout.PERCENT), else None."""
    layout = table_layout(_tables()[2 if counters else 1].get(tag))
    if layout is None:
        return None
    fields, tail = layout
    return _layout_writer(f"{tag >> 12}:{tag & 0xFFF}", fields, counters, prefix, tail)


_KEY = re.compile(r"[A-Za-z0-9_.]+")  # a key a template holds as it is (no quote, no %)


def table_layout(codec) -> tuple[tuple, int] | None:
    """A record codec as _layout_writer's fields and optional tail, or None when it is not a
    Fixed layout of the kinds _layout_writer prints."""
    from ingest.sflow.counter_records._common import HEX64, I32_AS_U32
    from ingest.sflow.layout import MAC, PERCENT, Fixed, fmt_float3

    if not isinstance(codec, Fixed) or codec.tool_extra is not None:
        return None
    fields = []
    for f in codec.fields:
        k = f.kind
        if f.tool is None:
            conv = None  # not printed: skipped
        elif k.from_wire is None and k.fmt in ("I", "i", "Q", "B") and k.tool is str:
            conv = _D
        elif k.from_wire is None and k.fmt in ("f", "d") and k.tool is fmt_float3:
            conv = _F3
        elif k is HEX64:
            conv = _X16
        elif k is I32_AS_U32:
            conv = _U32_OF_I32
        elif k is PERCENT:
            conv = _PCT
        elif k is MAC:
            conv = _MAC
        else:
            return None
        if f.tool is not None and not _KEY.fullmatch(f.tool):
            return None
        fields.append((k.fmt, f.tool, conv))
    keys = [k for _, k, _ in fields if k]
    if len(set(keys)) != len(keys):
        return None
    tail = len(codec.tail_none) if codec.short is not None else 0
    if tail and any(conv == _PCT for _, _, conv in fields[-tail:]):
        return None  # an absent percentage prints "unknown": not a shorter template
    return tuple(fields), tail


# what the general decoder turns into a DecodeError when a record codec raises it
_CODEC_ERRORS = (struct.error, ValueError, IndexError, OverflowError, UnicodeError, OSError)


def _general_record(buf, off: int, length: int, tag: int, counters: bool, prefix: str = "") -> bytes | None:
    samples, flows, counter_table, sflowtool, dumps, decode_error = _tables()
    codec = (counter_table if counters else flows).get(tag)
    key = prefix + ("counterBlock_tag" if counters else "flowBlock_tag")
    if codec is None:
        return b'{"%s":"%d:%d"}' % (key.encode(), tag >> 12, tag & 0xFFF)
    try:
        rec = codec.decode(memoryview(buf), off, length)
    except (decode_error, *_CODEC_ERRORS):
        return None
    e = {key: (sflowtool._COUNTER_TAG if counters else sflowtool._FLOW_TAG)[type(rec)]}
    codec.sflowtool(rec, e, prefix)
    return dumps(e)


def _general_sample(buf, off: int, end: int, tag: int) -> bytes | None:
    samples, flows, counter_table, sflowtool, dumps, decode_error = _tables()
    fn = samples.get(tag)
    if fn is None:
        return b'{"sampleType_tag":"%d:%d"}' % (tag >> 12, tag & 0xFFF)
    try:
        s = fn(memoryview(buf), off, end)
    except decode_error:
        return None
    return dumps(sflowtool.sample_fields(s))
