"""sFlow v5 encoder: the data model back to datagram bytes.

Writes every record the decoder reads (through the same record tables), so tests can build
datagrams without capture files and ``sflowpipe generate`` can synthesise traffic.
"""

from __future__ import annotations

import socket
import struct

from ingest.sflow.counter_records import COUNTER_RECORDS
from ingest.sflow.flow_records import FLOW_RECORDS
from ingest.sflow.layout import pad4
from ingest.sflow.model import (
    CounterSample,
    Datagram,
    DiscardSample,
    FlowSample,
    UnknownRecord,
    UnknownSample,
)

_TAG_LEN = struct.Struct(">II")
_FLOW = struct.Struct(">IIIIIIII")
_FLOW_X = struct.Struct(">IIIIIIIIIII")
_COUNTERS = struct.Struct(">III")
_COUNTERS_X = struct.Struct(">IIII")
_DISCARD = struct.Struct(">IIIIIIII")
_HEAD = struct.Struct(">IIII")

_FLOW_BY_CLASS = {c.cls: ((e << 12) | f, c) for (e, f), c in FLOW_RECORDS.items()}
_COUNTER_BY_CLASS = {c.cls: ((e << 12) | f, c) for (e, f), c in COUNTER_RECORDS.items()}


def encode_record(rec, table: dict) -> bytes:
    """One record with its tag and length."""
    if isinstance(rec, UnknownRecord):
        tag, body = (rec.enterprise << 12) | rec.format, rec.data
    else:
        tag, codec = table[type(rec)]
        body = codec.encode(rec)
    return _TAG_LEN.pack(tag, len(body)) + pad4(body)


def _records(records, table) -> bytes:
    return b"".join(encode_record(r, table) for r in records)


def _iface(fmt: int, value: int) -> int:
    if not 0 <= fmt <= 3 or not 0 <= value < 1 << 30:
        raise ValueError(f"interface format {fmt} value {value} does not fit a compact sample")
    return (fmt << 30) | value


def encode_sample(s) -> bytes:
    """One sample with its tag and length."""
    if isinstance(s, FlowSample):
        recs = _records(s.records, _FLOW_BY_CLASS)
        if s.expanded:
            tag = 3
            head = _FLOW_X.pack(s.sequence_number, s.source_id_type, s.source_id_index, s.sampling_rate,
                                s.sample_pool, s.drops, s.input_format, s.input, s.output_format, s.output,
                                len(s.records))
        else:
            tag = 1
            head = _FLOW.pack(s.sequence_number, (s.source_id_type << 24) | s.source_id_index,
                              s.sampling_rate, s.sample_pool, s.drops, _iface(s.input_format, s.input),
                              _iface(s.output_format, s.output), len(s.records))
    elif isinstance(s, CounterSample):
        recs = _records(s.records, _COUNTER_BY_CLASS)
        if s.expanded:
            tag = 4
            head = _COUNTERS_X.pack(s.sequence_number, s.source_id_type, s.source_id_index, len(s.records))
        else:
            tag = 2
            head = _COUNTERS.pack(s.sequence_number, (s.source_id_type << 24) | s.source_id_index, len(s.records))
    elif isinstance(s, DiscardSample):
        recs = _records(s.records, _FLOW_BY_CLASS)
        tag = 5
        head = _DISCARD.pack(s.sequence_number, s.source_id_type, s.source_id_index, s.drops,
                             _iface(s.input_format, s.input), _iface(s.output_format, s.output), s.reason,
                             len(s.records))
    elif isinstance(s, UnknownSample):
        tag, head, recs = (s.enterprise << 12) | s.format, b"", pad4(s.data)
    else:
        raise TypeError(f"not an sFlow sample: {type(s).__name__}")
    body = head + recs
    return _TAG_LEN.pack(tag, len(body)) + body


def encode_datagram(d: Datagram) -> bytes:
    """A whole sFlow v5 datagram."""
    if ":" in d.agent_address:
        agent = struct.pack(">I", 2) + socket.inet_pton(socket.AF_INET6, d.agent_address)
    else:
        agent = struct.pack(">I", 1) + socket.inet_pton(socket.AF_INET, d.agent_address)
    head = struct.pack(">I", d.version) + agent + struct.pack(">IIII", d.sub_agent_id, d.sequence_number,
                                                               d.uptime, len(d.samples))
    return head + b"".join(encode_sample(s) for s in d.samples)
