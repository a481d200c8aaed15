"""sFlow v5 datagram and sample decoding (sflow_version_5.txt, sections 5.1-5.4).

``decode_datagram(data)`` returns a ``Datagram`` or raises ``DecodeError`` (offset and reason);
no other exception escapes, every length is checked against the bytes that remain before it
is used, and work is bounded by the input size.

Speed (issue 16): the samples and records nearly every agent sends are decoded in line, with
one struct unpack where the general path makes several calls: flow samples in decode_datagram
(a sampled header + extended_switch sample in a single unpack), the sampled header,
extended_switch and extended_router in _flow_records. Each takes only input that every check of
the general path would pass, builds the same objects, and leaves anything else to the general
path, which raises the errors it always raised; tests/ingest/sflow/test_fast_paths.py compares
the two on captures, encoder-built and mutated datagrams.
"""

from __future__ import annotations

import socket
import struct

from ingest.sflow.counter_records import COUNTER_RECORDS
from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.flow_records import FLOW_RECORDS, ExtendedRouter, ExtendedSwitch, SampledHeader
from ingest.sflow.header import decode_header
from ingest.sflow.layout import IP4_WORD_TEXT, ip4_word_text
from ingest.sflow.model import (
    CounterSample,
    Datagram,
    DiscardSample,
    FlowSample,
    UnknownRecord,
    UnknownSample,
)

_U32 = struct.Struct(">I")
_TAG_LEN = struct.Struct(">II")
_HEAD_V4 = struct.Struct(">II4sIIII")  # version, address type, IPv4, sub-agent, seq, uptime, n samples
_HEAD_V6 = struct.Struct(">II16sIIII")
_FLOW = struct.Struct(">IIIIIIII")  # seq, source id, rate, pool, drops, input, output, n records
_FLOW_X = struct.Struct(">IIIIIIIIIII")  # seq, class, index, rate, pool, drops, in fmt, in, out fmt, out, n
_COUNTERS = struct.Struct(">III")  # seq, source id, n records
_COUNTERS_X = struct.Struct(">IIII")  # seq, class, index, n records
_DISCARD = struct.Struct(">IIIIIIII")  # seq, class, index, drops, input, output, reason, n records

_RECORD_HEAD = struct.Struct(">IIIIII")  # a record's tag and length, and its first four words
# a flow sample's fields, its first record's tag and length, and a sampled header's fields
_FLOW_HEADER = struct.Struct(">IIIIIIII" "II" "IIII")
_SWITCH_RECORD = struct.Struct(">II" "IIII")  # tag, length, extended_switch

# Records keyed by their 32-bit tag (enterprise << 12 | format) for the hot loop.
_FLOW_BY_TAG = {(e << 12) | f: c for (e, f), c in FLOW_RECORDS.items()}
_COUNTER_BY_TAG = {(e << 12) | f: c for (e, f), c in COUNTER_RECORDS.items()}
# what a record decoder may raise on bytes it did not expect, reported as DecodeError(INVALID)
_CODEC_ERRORS = (struct.error, ValueError, IndexError, OverflowError, UnicodeError, OSError)


def _records(buf: bytes, off: int, end: int, n: int, table: dict, what: str) -> tuple:
    """Decode n tag/length/body records that must exactly fill [off, end)."""
    if n > (end - off) // 8:
        raise DecodeError(off - 4, f"{what}: {n} records cannot fit in {end - off} bytes", DecodeReason.TRUNCATED)
    out = []
    append = out.append
    unpack = _TAG_LEN.unpack_from
    for _ in range(n):
        if off + 8 > end:
            raise DecodeError(off, f"{what}: record header truncated", DecodeReason.TRUNCATED)
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off or length > end - off:
            raise DecodeError(off - 4, f"{what}: record {tag >> 12}:{tag & 0xFFF} length {length} exceeds the {end - off} bytes left",
                              DecodeReason.BAD_LENGTH)
        codec = table.get(tag)
        if codec is None:
            append(UnknownRecord(tag >> 12, tag & 0xFFF, buf[off : off + length]))
        else:
            try:
                append(codec.decode(buf, off, length))
            except DecodeError:
                raise
            except _CODEC_ERRORS as e:
                raise DecodeError(off, f"{codec.name} record: {e}", DecodeReason.INVALID) from None
        off += padded
    if off != end:
        raise DecodeError(off, f"{what} length error: records end at byte {off}, sample ends at {end}",
                          DecodeReason.BAD_LENGTH)
    return tuple(out)


def _flow_records(buf: bytes, off: int, end: int, n: int) -> tuple:
    """``_records`` of a flow sample, with the records of nearly every flow sample decoded in line:
    the sampled header (0:1), extended_switch (0:1001) and extended_router (0:1002) with an IPv4
    next hop. In line means the same checks and the same model as their codecs; whatever those
    checks refuse goes to the codec, which raises the error it always raised."""
    if n > (end - off) // 8:
        raise DecodeError(off - 4, f"flow_sample: {n} records cannot fit in {end - off} bytes", DecodeReason.TRUNCATED)
    out = []
    append = out.append
    unpack = _TAG_LEN.unpack_from
    unpack_head = _RECORD_HEAD.unpack_from
    table = _FLOW_BY_TAG
    for _ in range(n):
        if end - off >= 24:
            # the tag, the length and the first four words, all three in-line records read
            tag, length, w0, w1, w2, w3 = unpack_head(buf, off)
        elif off + 8 > end:
            raise DecodeError(off, "flow_sample: record header truncated", DecodeReason.TRUNCATED)
        else:
            tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > end - off or length > end - off:
            raise DecodeError(off - 4, f"flow_sample: record {tag >> 12}:{tag & 0xFFF} length {length} exceeds the "
                                       f"{end - off} bytes left", DecodeReason.BAD_LENGTH)
        # Below, length >= 16 and the record fits before end: the words were read in this turn.
        if tag == 1:
            if length >= 16 and w3 <= length - 16 and (w3 + 3) & ~3 == (length - 13) & ~3:
                header = buf[off + 16 : off + 16 + w3]
                append(SampledHeader(w0, w1, w2, header, decode_header(w0, header)))
                off += padded
                continue
        elif length == 16:
            if tag == 1001:
                append(ExtendedSwitch(w0, w1, w2, w3))
                off += padded
                continue
            if tag == 1002 and w0 == 1:
                append(ExtendedRouter(IP4_WORD_TEXT.get(w1) or ip4_word_text(w1), w2, w3))
                off += padded
                continue
        codec = table.get(tag)
        if codec is None:
            append(UnknownRecord(tag >> 12, tag & 0xFFF, buf[off : off + length]))
        else:
            try:
                append(codec.decode(buf, off, length))
            except DecodeError:
                raise
            except _CODEC_ERRORS as e:
                raise DecodeError(off, f"{codec.name} record: {e}", DecodeReason.INVALID) from None
        off += padded
    if off != end:
        raise DecodeError(off, f"flow_sample length error: records end at byte {off}, sample ends at {end}",
                          DecodeReason.BAD_LENGTH)
    return tuple(out)


def _flow_sample(buf: bytes, off: int, end: int) -> FlowSample:
    if end - off < _FLOW.size:
        raise DecodeError(off, "flow_sample truncated", DecodeReason.TRUNCATED)
    seq, src, rate, pool, drops, inp, outp, n = _FLOW.unpack_from(buf, off)
    records = _flow_records(buf, off + _FLOW.size, end, n)
    return FlowSample(False, seq, src >> 24, src & 0xFFFFFF, rate, pool, drops,
                      inp >> 30, inp & 0x3FFFFFFF, outp >> 30, outp & 0x3FFFFFFF, records)


def _flow_sample_expanded(buf: bytes, off: int, end: int) -> FlowSample:
    if end - off < _FLOW_X.size:
        raise DecodeError(off, "flow_sample_expanded truncated", DecodeReason.TRUNCATED)
    seq, cls, idx, rate, pool, drops, infmt, inp, outfmt, outp, n = _FLOW_X.unpack_from(buf, off)
    records = _flow_records(buf, off + _FLOW_X.size, end, n)
    return FlowSample(True, seq, cls, idx, rate, pool, drops, infmt, inp, outfmt, outp, records)


def _counter_sample(buf: bytes, off: int, end: int) -> CounterSample:
    if end - off < _COUNTERS.size:
        raise DecodeError(off, "counters_sample truncated", DecodeReason.TRUNCATED)
    seq, src, n = _COUNTERS.unpack_from(buf, off)
    records = _records(buf, off + _COUNTERS.size, end, n, _COUNTER_BY_TAG, "counters_sample")
    return CounterSample(False, seq, src >> 24, src & 0xFFFFFF, records)


def _counter_sample_expanded(buf: bytes, off: int, end: int) -> CounterSample:
    if end - off < _COUNTERS_X.size:
        raise DecodeError(off, "counters_sample_expanded truncated", DecodeReason.TRUNCATED)
    seq, cls, idx, n = _COUNTERS_X.unpack_from(buf, off)
    records = _records(buf, off + _COUNTERS_X.size, end, n, _COUNTER_BY_TAG, "counters_sample")
    return CounterSample(True, seq, cls, idx, records)


def _discard_sample(buf: bytes, off: int, end: int) -> DiscardSample:
    if end - off < _DISCARD.size:
        raise DecodeError(off, "discarded_packet truncated", DecodeReason.TRUNCATED)
    seq, cls, idx, drops, inp, outp, reason, n = _DISCARD.unpack_from(buf, off)
    records = _records(buf, off + _DISCARD.size, end, n, _FLOW_BY_TAG, "discard_sample")
    return DiscardSample(seq, cls, idx, drops, inp >> 30, inp & 0x3FFFFFFF, outp >> 30,
                         outp & 0x3FFFFFFF, reason, records)


# Sample types (sflow_version_5.txt 5.2 and the drop-notification extension), by (enterprise, format).
SAMPLES = {
    (0, 1): _flow_sample,
    (0, 2): _counter_sample,
    (0, 3): _flow_sample_expanded,
    (0, 4): _counter_sample_expanded,
    (0, 5): _discard_sample,
}
_SAMPLES_BY_TAG = {(e << 12) | f: fn for (e, f), fn in SAMPLES.items()}
# The sample decode_datagram decodes in line, the same as _flow_sample does (tests set it to -1
# to compare the two).
_IN_LINE = 1


def decode_datagram(data: bytes | bytearray | memoryview) -> Datagram:
    """Decode one sFlow v5 datagram (the UDP payload)."""
    # Records read their fields from bytes: slicing bytes makes one object where a memoryview
    # slice then bytes() makes two (a sampled header, a string, an unknown record's body).
    buf = data if type(data) is bytes else bytes(data)
    size = len(buf)
    if size < 8:
        raise DecodeError(0, f"datagram of {size} bytes is too short for an sFlow header", DecodeReason.TRUNCATED)
    version, atype = _TAG_LEN.unpack_from(buf, 0)
    if version != 5:
        raise DecodeError(0, f"unsupported sFlow datagram version {version}", DecodeReason.UNSUPPORTED_VERSION)
    if atype == 1:
        if size < _HEAD_V4.size:
            raise DecodeError(8, "datagram header truncated", DecodeReason.TRUNCATED)
        _, _, addr, sub, seq, uptime, n = _HEAD_V4.unpack_from(buf, 0)
        agent = socket.inet_ntop(socket.AF_INET, addr)
        off = _HEAD_V4.size
    elif atype == 2:
        if size < _HEAD_V6.size:
            raise DecodeError(8, "datagram header truncated", DecodeReason.TRUNCATED)
        _, _, addr, sub, seq, uptime, n = _HEAD_V6.unpack_from(buf, 0)
        agent = socket.inet_ntop(socket.AF_INET6, addr)
        off = _HEAD_V6.size
    else:
        raise DecodeError(4, f"unknown agent address type {atype}", DecodeReason.BAD_ADDRESS)
    if n > (size - off) // 8:
        raise DecodeError(off - 4, f"{n} samples cannot fit in the {size - off} bytes left", DecodeReason.TRUNCATED)
    samples = []
    append = samples.append
    get = _SAMPLES_BY_TAG.get
    unpack = _TAG_LEN.unpack_from
    for i in range(n):
        if off + 8 > size:
            raise DecodeError(off, f"unexpected end of datagram after sample {i} of {n}", DecodeReason.TRUNCATED)
        tag, length = unpack(buf, off)
        off += 8
        padded = (length + 3) & ~3
        if padded > size - off or length > size - off:
            raise DecodeError(off - 4, f"sample {tag >> 12}:{tag & 0xFFF} length {length} exceeds the {size - off} bytes left",
                              DecodeReason.BAD_LENGTH)
        if tag == _IN_LINE and padded >= 32:  # flow_sample, the common sample: _flow_sample in line
            if padded >= 56:
                sq, src, rate, pool, drops, inp, outp, nr, rtag, rlen, proto, frame_length, stripped, hn = \
                    _FLOW_HEADER.unpack_from(buf, off)
                # What nearly every switch sends: a sampled header then extended_switch, nothing
                # else. Taken only when every check _flow_records makes would pass.
                if nr == 2 and rtag == 1 and hn <= rlen - 16 and (hn + 3) & ~3 == (rlen - 13) & ~3:
                    sw = off + 40 + ((rlen + 3) & ~3)
                    if sw + 24 == off + padded:
                        stag, slen, v1, v2, v3, v4 = _SWITCH_RECORD.unpack_from(buf, sw)
                        if stag == 1001 and slen == 16:
                            header = buf[off + 56 : off + 56 + hn]
                            append(FlowSample(False, sq, src >> 24, src & 0xFFFFFF, rate, pool, drops, inp >> 30,
                                              inp & 0x3FFFFFFF, outp >> 30, outp & 0x3FFFFFFF, (
                                                  SampledHeader(proto, frame_length, stripped, header,
                                                                decode_header(proto, header)),
                                                  ExtendedSwitch(v1, v2, v3, v4))))
                            off += padded
                            continue
            else:
                sq, src, rate, pool, drops, inp, outp, nr = _FLOW.unpack_from(buf, off)
            append(FlowSample(False, sq, src >> 24, src & 0xFFFFFF, rate, pool, drops, inp >> 30, inp & 0x3FFFFFFF,
                              outp >> 30, outp & 0x3FFFFFFF, _flow_records(buf, off + 32, off + padded, nr)))
            off += padded
            continue
        fn = get(tag)
        if fn is None:
            append(UnknownSample(tag >> 12, tag & 0xFFF, buf[off : off + length]))
        else:
            append(fn(buf, off, off + padded))
        off += padded
    return Datagram(5, agent, sub, seq, uptime, tuple(samples))
