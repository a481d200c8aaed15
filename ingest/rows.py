"""One datagram's bytes straight to the rows the ingester batches, without the data model.

The model path (``decode_datagram``, then ``ingest.batches.flow_row``) builds a Datagram, a
FlowSample, a SampledHeader, a DecodedHeader and an ExtendedSwitch for every flow sample, then
reads them back field by field into a row. ``decode_rows`` reads the flow sample envelope, the
sampled header (its Ethernet / 802.1Q / IPv4 / IPv6 / TCP / UDP / ICMP parse) and the extended
switch record straight into the row's values; the commonest sample of all ([sampled_header of
Ethernet/IPv4/TCP or UDP, extended_switch]) in one unpack, into a short row of the columns that
vary (ingest/batches.py HOT_COLUMNS). Counter records of plain numbers go straight to their datum.
Anything else takes the model's own pieces for that part only: other records their codec and
``to_datum``, a sampled header beyond that parse ``decode_header``, discard samples their model row.

The contract is the model path's output: the same batch columns (so the same Avro bytes), and the
same datagrams refused. Every length check of ``decode_datagram`` is made here too; whenever this
module finds a fault it raises ``Unhandled`` and the caller decodes the datagram with
``decode_datagram``, which finds the same fault and says it with its own offset and reason code.
Nothing is kept of a datagram until it has decoded whole. (One count can differ: a sampled header
left to ``decode_header`` whose parse raised, in a datagram found faulty further on, is counted in
``HEADER_FAILURES`` by both decodes.)
"""

from __future__ import annotations

import socket
import struct
from operator import itemgetter
from typing import NamedTuple

from ingest.batches import COUNTERS, DISCARDS, FLOW, FLOW_COLUMNS, discard_row
from ingest.sflow.counter_records import COUNTER_RECORDS
from ingest.sflow.flow_records import FLOW_RECORDS, ExtendedRouter
from ingest.sflow.header import decode_header
from ingest.sflow.layout import Fixed
from ingest.sflow.model import DiscardSample, UnknownRecord
from schemas.definitions import DECODED_COLUMNS, HEADER_COLUMNS, ROUTER_COLUMNS, SWITCH_COLUMNS
from schemas.model_avro import NAMESPACE, to_datum


class Unhandled(Exception):
    """This datagram is for ``decode_datagram``: a fault (which it will name) or a shape not read here."""


class DatagramRows(NamedTuple):
    agent: str
    sub_agent_id: int
    sequence_number: int
    uptime: int
    flows: list  # rows of FLOW_COLUMNS, in sample order
    # every sample as (kind, row), in order, when the datagram holds more than flow samples; else None
    mixed: list | None
    # (source_id_type, source_id_index, sequence_number) of each counter sample, for the agent counters
    counter_keys: list


_TAG_LEN = struct.Struct(">II")
_HEAD_V4 = struct.Struct(">II4sIIII")
_HEAD_V6 = struct.Struct(">II16sIIII")
_FLOW = struct.Struct(">IIIIIIII")
_FLOW_X = struct.Struct(">IIIIIIIIIII")
_COUNTERS = struct.Struct(">III")
_COUNTERS_X = struct.Struct(">IIII")
_DISCARD = struct.Struct(">IIIIIIII")
_HEADER_HEAD = struct.Struct(">IIII")
_SWITCH = struct.Struct(">IIII")
_SWITCH_RECORD = struct.Struct(">II" "IIII")  # tag, length, extended_switch

_TAG_HEADER = 1  # 0:1 sampled_header
_TAG_SWITCH = 1001  # 0:1001 extended_switch
_FLOW_BY_TAG = {(e << 12) | f: c for (e, f), c in FLOW_RECORDS.items()}
_COUNTER_BY_TAG = {(e << 12) | f: c for (e, f), c in COUNTER_RECORDS.items()}

# where the agent counters find a flow row's data source, sequence number and drops
FLOW_KEYS = itemgetter(*(FLOW_COLUMNS.index(n) for n in ("source_id_type", "source_id_index", "sequence_number",
                                                         "drops")))

_NO_SWITCH = (None,) * len(SWITCH_COLUMNS)
_NO_ROUTER = (None,) * len(ROUTER_COLUMNS)
_I_VLANS = DECODED_COLUMNS.index("vlans")
_I_INNER = DECODED_COLUMNS.index("inner")
# a sampled header whose parse found nothing: its decoded columns as ingest.batches writes them
_NOTHING_DECODED = tuple([] if n in ("vlans", "ext_headers") else None for n in DECODED_COLUMNS)
_NO_HEADER = (None,) * len(HEADER_COLUMNS) + _NOTHING_DECODED

# The fields the parse below fills, in DecodedHeader's order (the row's order): it is written for
# this order, so a change to the model shows here at import rather than as misplaced values.
assert DECODED_COLUMNS[:21] == (
    "dst_mac", "src_mac", "vlans", "eth_type", "vsnap_oui", "tx_mac", "rx_mac", "ip_version", "ip_offset", "src_ip",
    "dst_ip", "ip_protocol", "tos", "ttl", "ip_total_length", "ip_id", "ip_flags", "fragment_offset", "flow_label",
    "payload_length", "ext_headers") and DECODED_COLUMNS[21:] == (
    "src_port", "dst_port", "tcp_flags", "udp_length", "icmp_type", "icmp_code", "vni", "inner",
    "icmp_quoted_protocol", "icmp_quoted_dst_ip", "icmp_quoted_dst_port"), DECODED_COLUMNS


# ---------------------------------------------------------------- the sampled header's parse

_ETH = struct.Struct(">12sH")  # both MACs, type
_VLAN = struct.Struct(">HH")
_IP4 = struct.Struct(">BBHHHBBxx8s")  # vihl tos len id frag ttl proto (csum) src+dst
_IP6 = struct.Struct(">IHBB32s")  # ver/class/label, payload len, next header, hop limit, src+dst
_TCP = struct.Struct(">HH8xxB")
_PORTS = struct.Struct(">HH")
_UDP = struct.Struct(">HHH")
# a sample's tag and length, flow_sample, a record's tag and length, sampled_header's head, then
# Ethernet, IPv4 without options and the first 14 bytes of TCP or UDP: ports, UDP length, TCP flags
_HOT = struct.Struct(">II" "IIIIIIII" "II" "IIII" "12sH" "BBHHHBBxx8s" "HHH7xB")

_TPIDS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_ICMP4_ERRORS = frozenset((3, 11, 12))
_ICMP6_ERRORS = frozenset((1, 2, 3, 4))
# L4 protocols whose parse carries on into a quoted or tunnelled packet: left to decode_header
_DEEPER = frozenset((4, 41, 47))
_TUNNEL_PORTS = frozenset((4789, 6081))  # VXLAN, Geneve
_IP6_EXT = frozenset((0, 43, 44, 51, 60))

# text of what repeats in a flow stream (MAC pairs, address pairs), bounded: cleared when full
_CACHE_MAX = 1 << 16
_MACS: dict[bytes, tuple[str, str]] = {}
_IP4S: dict[bytes, tuple[str, str]] = {}
_IP6S: dict[bytes, tuple[str, str]] = {}


def _macs(b: bytes) -> tuple[str, str]:
    if len(_MACS) >= _CACHE_MAX:
        _MACS.clear()
    t = _MACS[b] = (b[:6].hex(":"), b[6:].hex(":"))
    return t


def _ip4s(b: bytes) -> tuple[str, str]:
    if len(_IP4S) >= _CACHE_MAX:
        _IP4S.clear()
    t = _IP4S[b] = (socket.inet_ntop(socket.AF_INET, b[:4]), socket.inet_ntop(socket.AF_INET, b[4:]))
    return t


def _ip6s(b: bytes) -> tuple[str, str]:
    if len(_IP6S) >= _CACHE_MAX:
        _IP6S.clear()
    t = _IP6S[b] = (socket.inet_ntop(socket.AF_INET6, b[:16]), socket.inet_ntop(socket.AF_INET6, b[16:]))
    return t


def _ethernet(h: bytes, head: tuple):
    """``head`` (the record's HEADER_COLUMNS values) + the DECODED_COLUMNS values of an Ethernet
    header parsed as ingest.sflow.header does; None where that parse would go somewhere this one
    does not (LLC/SNAP, tunnels, ICMP errors, IPv6 extension headers, fragments, a header cut
    short before L4)."""
    end = len(h)
    if end < 34:
        return None
    key, t = _ETH.unpack_from(h, 0)
    macs = _MACS.get(key) or _macs(key)
    p = 14
    vlans: tuple | list = ()
    if t in _TPIDS:
        vlans = []
        while t in _TPIDS:
            if end - p < 4:
                return None
            tci, t = _VLAN.unpack_from(h, p)
            vlans.append({"vlan": tci & 0x0FFF, "priority": tci >> 13})
            p += 4
    if t == 0x0800:
        if end - p < 20:
            return None
        vihl, tos, tot_len, ip_id, fo, ttl, proto, addrs = _IP4.unpack_from(h, p)
        if vihl >> 4 != 4 or vihl & 15 < 5 or fo & 0x1FFF:
            return None
        ips = _IP4S.get(addrs) or _ip4s(addrs)
        l4 = p + (vihl & 15) * 4
        if l4 > end:
            return None
        left = end - l4
        if proto == 6:
            if left >= 14:
                sport, dport, flags = _TCP.unpack_from(h, l4)
            elif left >= 8:
                sport, dport = _PORTS.unpack_from(h, l4)
                flags = None
            else:
                sport = dport = flags = None
            return head + (macs[0], macs[1], vlans, 0x0800, None, None, None, 4, p, ips[0], ips[1], 6, tos, ttl,
                           tot_len, ip_id, fo >> 13, 0, None, None, (), sport, dport, flags, None, None, None,
                           None, None, None, None, None)
        if proto == 17:
            if left >= 8:
                sport, dport, ulen = _UDP.unpack_from(h, l4)
                if dport in _TUNNEL_PORTS:
                    return None
            else:
                sport = dport = ulen = None
            return head + (macs[0], macs[1], vlans, 0x0800, None, None, None, 4, p, ips[0], ips[1], 17, tos, ttl,
                           tot_len, ip_id, fo >> 13, 0, None, None, (), sport, dport, None, ulen, None, None,
                           None, None, None, None, None)
        if proto == 1 or proto == 58:
            if left >= 8:
                itype, icode = h[l4], h[l4 + 1]
                if itype in (_ICMP4_ERRORS if proto == 1 else _ICMP6_ERRORS):
                    return None
            else:
                itype = icode = None
            return head + (macs[0], macs[1], vlans, 0x0800, None, None, None, 4, p, ips[0], ips[1], proto, tos, ttl,
                           tot_len, ip_id, fo >> 13, 0, None, None, (), None, None, None, None, itype, icode,
                           None, None, None, None, None)
        if proto in _DEEPER:
            return None
        return head + (macs[0], macs[1], vlans, 0x0800, None, None, None, 4, p, ips[0], ips[1], proto, tos, ttl,
                       tot_len, ip_id, fo >> 13, 0, None, None, (), None, None, None, None, None, None,
                       None, None, None, None, None)
    if t == 0x86DD:
        if end - p < 40:
            return None
        vcl, plen, proto, ttl, addrs = _IP6.unpack_from(h, p)
        if vcl >> 28 != 6 or proto in _IP6_EXT:
            return None
        ips = _IP6S.get(addrs) or _ip6s(addrs)
        l4 = p + 40
        left = end - l4
        sport = dport = flags = ulen = itype = icode = None
        if proto == 6:
            if left >= 14:
                sport, dport, flags = _TCP.unpack_from(h, l4)
            elif left >= 8:
                sport, dport = _PORTS.unpack_from(h, l4)
        elif proto == 17:
            if left >= 8:
                sport, dport, ulen = _UDP.unpack_from(h, l4)
                if dport in _TUNNEL_PORTS:
                    return None
        elif proto == 58 or proto == 1:
            if left >= 8:
                itype, icode = h[l4], h[l4 + 1]
                if itype in (_ICMP4_ERRORS if proto == 1 else _ICMP6_ERRORS):
                    return None
        elif proto in _DEEPER:
            return None
        return head + (macs[0], macs[1], vlans, 0x86DD, None, None, None, 6, p, ips[0], ips[1], proto,
                       (vcl >> 20) & 0xFF, ttl, None, None, None, None, vcl & 0xFFFFF, plen, (), sport, dport, flags,
                       ulen, itype, icode, None, None, None, None, None)
    return None


def _header_columns(proto: int, frame_length: int, stripped: int, h: bytes) -> tuple:
    """HEADER_COLUMNS + DECODED_COLUMNS values of a sampled_header record."""
    head = (proto, frame_length, stripped, h)
    if proto == 1:
        row = _ethernet(h, head)
        if row is not None:
            return row
    d = decode_header(proto, h)
    if d is None:
        return head + _NOTHING_DECODED
    row = [getattr(d, n) for n in DECODED_COLUMNS]
    if row[_I_VLANS] or row[_I_INNER] is not None:  # as ingest.batches converts them
        row[_I_VLANS] = [{"vlan": v, "priority": p} for v, p in row[_I_VLANS]]
        if row[_I_INNER] is not None:
            row[_I_INNER] = to_datum(row[_I_INNER])
    return head + tuple(row)


# ---------------------------------------------------------------- records and samples


def _flow_records(buf: memoryview, off: int, end: int, n: int, hdr: tuple | None = None) -> tuple:
    """(header + decoded, switch, router values, the other records' datums) of n flow records that
    must fill [off, end) exactly (the checks of datagram.py's _records); ``hdr``: the sample's first
    record, a sampled header, already read."""
    sw = rt = None
    others = []
    unpack = _TAG_LEN.unpack_from
    for _ in range(n):
        if off + 8 > end:
            raise Unhandled
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off:  # padded >= length
            raise Unhandled
        if tag == _TAG_HEADER and hdr is None:
            # packet.py decode_sampled_header's checks
            if length < 16:
                raise Unhandled
            proto, frame_length, stripped, hn = _HEADER_HEAD.unpack_from(buf, off)
            if hn > length - 16 or ((hn + 3) & ~3) != ((length - 13) & ~3):
                raise Unhandled
            hdr = _header_columns(proto, frame_length, stripped, bytes(buf[off + 16 : off + 16 + hn]))
        elif tag == _TAG_SWITCH and sw is None:
            if length != 16:  # a Fixed layout of four u32
                raise Unhandled
            sw = _SWITCH.unpack_from(buf, off)
        else:
            codec = _FLOW_BY_TAG.get(tag)
            if codec is None:
                others.append(to_datum(UnknownRecord(tag >> 12, tag & 0xFFF, bytes(buf[off : off + length]))))
            else:
                try:
                    rec = codec.decode(buf, off, length)
                except Exception:
                    raise Unhandled from None
                if type(rec) is ExtendedRouter and rt is None:
                    rt = (rec.next_hop, rec.src_mask_len, rec.dst_mask_len)
                else:
                    others.append(to_datum(rec))
        off += padded
    if off != end:
        raise Unhandled
    return (hdr or _NO_HEADER) + (sw or _NO_SWITCH) + (rt or _NO_ROUTER) + (others,)


def _model_records(buf: memoryview, off: int, end: int, n: int, table: dict) -> tuple:
    """The model records of a counter or discard sample (datagram.py's _records)."""
    if n > (end - off) // 8:
        raise Unhandled
    out = []
    for _ in range(n):
        if off + 8 > end:
            raise Unhandled
        tag, length = _TAG_LEN.unpack_from(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off:
            raise Unhandled
        codec = table.get(tag)
        if codec is None:
            out.append(UnknownRecord(tag >> 12, tag & 0xFFF, bytes(buf[off : off + length])))
        else:
            try:
                out.append(codec.decode(buf, off, length))
            except Exception:
                raise Unhandled from None
        off += padded
    if off != end:
        raise Unhandled
    return tuple(out)


# Counter records of a fixed layout of plain numbers (interface, Ethernet, processor... counters):
# their datum (what to_datum makes of the model record) straight from the unpack
_PLAIN_COUNTERS = {tag: (c.struct.unpack_from, c.size, c.attrs, f"{NAMESPACE}.{c.cls.__name__}")
                   for tag, c in _COUNTER_BY_TAG.items()
                   if isinstance(c, Fixed) and not c.convert and c.short is None}


def _counter_datums(buf: memoryview, off: int, end: int, n: int) -> list:
    """The record datums of a counter sample (the checks of datagram.py's _records)."""
    if n > (end - off) // 8:
        raise Unhandled
    out = []
    for _ in range(n):
        if off + 8 > end:
            raise Unhandled
        tag, length = _TAG_LEN.unpack_from(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off:
            raise Unhandled
        plain = _PLAIN_COUNTERS.get(tag)
        if plain is not None:
            unpack, size, attrs, name = plain
            if length != size:
                raise Unhandled
            d = {"-type": name}
            d.update(zip(attrs, unpack(buf, off)))
            out.append(d)
        else:
            codec = _COUNTER_BY_TAG.get(tag)
            if codec is None:
                out.append(to_datum(UnknownRecord(tag >> 12, tag & 0xFFF, bytes(buf[off : off + length]))))
            else:
                try:
                    out.append(to_datum(codec.decode(buf, off, length)))
                except Exception:
                    raise Unhandled from None
        off += padded
    if off != end:
        raise Unhandled
    return out


class _Head(NamedTuple):  # what counter_row and discard_row read of a datagram
    sub_agent_id: int
    sequence_number: int
    uptime: int


_AGENTS: dict[bytes, str] = {}


def decode_rows(data: bytes, receive_time_us: int) -> DatagramRows:
    """The batch rows of one datagram; ``Unhandled`` when ``decode_datagram`` must have the last word."""
    if type(data) is not bytes:
        data = bytes(data)
    buf = memoryview(data)  # the record codecs' input, as decode_datagram gives it them
    size = len(data)
    if size < _HEAD_V4.size:
        raise Unhandled
    version, atype, addr, sub, dseq, uptime, n = _HEAD_V4.unpack_from(buf, 0)
    if version != 5:
        raise Unhandled
    if atype == 1:
        agent = _AGENTS.get(addr)
        if agent is None:
            if len(_AGENTS) >= _CACHE_MAX:
                _AGENTS.clear()
            agent = _AGENTS[addr] = socket.inet_ntop(socket.AF_INET, addr)
        off = _HEAD_V4.size
    elif atype == 2:
        if size < _HEAD_V6.size:
            raise Unhandled
        _, _, addr, sub, dseq, uptime, n = _HEAD_V6.unpack_from(buf, 0)
        agent = socket.inet_ntop(socket.AF_INET6, addr)
        off = _HEAD_V6.size
    else:
        raise Unhandled
    if n > (size - off) // 8:
        raise Unhandled
    flows: list = []
    mixed: list | None = None
    counter_keys: list = []
    unpack = _TAG_LEN.unpack_from
    for _ in range(n):
        if size - off >= 112:
            # the commonest sample, [sampled_header (Ethernet, IPv4 without options, TCP or UDP),
            # extended_switch]: its envelope, records' heads and packet headers in one unpack, the
            # checks of the general path below, its short row (ingest/batches.py HOT_COLUMNS)
            (tag, length, seq, src, rate, pool, drops, inp, outp, nrec, rtag, rlen, proto, flen, stripped, hn,
             macs, t, vihl, tos, tot_len, ip_id, fo, ttl, ipp, addrs, sport, dport, w, flags) = _HOT.unpack_from(data, off)
            if tag == 1 and nrec == 2 and rtag == 1 and proto == 1 and t == 0x0800 and vihl == 0x45 \
                    and 48 <= hn <= rlen - 16 and ((hn + 3) & ~3) == ((rlen - 13) & ~3) and not fo & 0x1FFF \
                    and (ipp == 6 or (ipp == 17 and dport not in _TUNNEL_PORTS)):
                roff = off + 48 + ((rlen + 3) & ~3)  # the second record
                end = off + 8 + ((length + 3) & ~3)
                if end <= size and end - roff == 24:
                    stag, slen, v1, p1, v2, p2 = _SWITCH_RECORD.unpack_from(data, roff)
                    if stag == _TAG_SWITCH and slen == 16:
                        m = _MACS.get(macs) or _macs(macs)
                        a = _IP4S.get(addrs) or _ip4s(addrs)
                        if ipp == 6:
                            w = None
                        else:
                            flags = None
                        row = (receive_time_us, sub, dseq, uptime, seq, src >> 24, src & 0xFFFFFF, False, rate, pool,
                               drops, inp >> 30, inp & 0x3FFFFFFF, outp >> 30, outp & 0x3FFFFFFF,
                               flen, stripped, data[off + 64 : off + 64 + hn], m[0], m[1], a[0], a[1], ipp, tos, ttl,
                               tot_len, ip_id, fo >> 13, sport, dport, flags, w, v1, p1, v2, p2)
                        flows.append(row)
                        if mixed is not None:
                            mixed.append((FLOW, row))
                        off = end
                        continue
        if off + 8 > size:
            raise Unhandled
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > size - off:
            raise Unhandled
        end = off + padded
        if tag == 1:
            if padded < 32:
                raise Unhandled
            seq, src, rate, pool, drops, inp, outp, nrec = _FLOW.unpack_from(data, off)
            row = (receive_time_us, sub, dseq, uptime, seq, src >> 24, src & 0xFFFFFF, False, rate, pool, drops,
                   inp >> 30, inp & 0x3FFFFFFF, outp >> 30, outp & 0x3FFFFFFF) + _flow_records(buf, off + 32, end, nrec)
            flows.append(row)
            if mixed is not None:
                mixed.append((FLOW, row))
        elif tag == 3:
            if padded < 44:
                raise Unhandled
            seq, cls, idx, rate, pool, drops, infmt, inp, outfmt, outp, nrec = _FLOW_X.unpack_from(buf, off)
            row = (receive_time_us, sub, dseq, uptime, seq, cls, idx, True, rate, pool, drops, infmt, inp, outfmt,
                   outp) + _flow_records(buf, off + 44, end, nrec)
            flows.append(row)
            if mixed is not None:
                mixed.append((FLOW, row))
        elif tag == 2 or tag == 4 or tag == 5:
            if mixed is None:
                mixed = [(FLOW, r) for r in flows]
            head = _Head(sub, dseq, uptime)
            if tag == 5:
                if padded < 32:
                    raise Unhandled
                seq, cls, idx, drops, inp, outp, reason, nrec = _DISCARD.unpack_from(buf, off)
                s = DiscardSample(seq, cls, idx, drops, inp >> 30, inp & 0x3FFFFFFF, outp >> 30, outp & 0x3FFFFFFF,
                                  reason, _model_records(buf, off + 32, end, nrec, _FLOW_BY_TAG))
                mixed.append((DISCARDS, discard_row(head, s, receive_time_us)))
            else:
                if tag == 2:
                    if padded < 12:
                        raise Unhandled
                    seq, src, nrec = _COUNTERS.unpack_from(buf, off)
                    cls, idx, start = src >> 24, src & 0xFFFFFF, off + 12
                else:
                    if padded < 16:
                        raise Unhandled
                    seq, cls, idx, nrec = _COUNTERS_X.unpack_from(buf, off)
                    start = off + 16
                mixed.append((COUNTERS, {
                    "receive_time_us": receive_time_us, "sub_agent_id": sub, "datagram_sequence": dseq,
                    "uptime_ms": uptime, "sequence_number": seq, "source_id_type": cls, "source_id_index": idx,
                    "expanded": tag == 4, "records": _counter_datums(buf, start, end, nrec)}))
                counter_keys.append((cls, idx, seq))
        off = end
    return DatagramRows(agent, sub, dseq, uptime, flows, mixed, counter_keys)
