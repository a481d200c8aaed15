"""The decoded-sFlow data model: immutable typed records, the model the Avro schemas mirror.

Names follow the sFlow v5 specification (sflow.org/sflow_version_5.txt). Addresses are text
(IPv4 dotted quad, IPv6 RFC 5952 compressed), MACs ``aa:bb:cc:dd:ee:ff``; every counter keeps
its wire width. Record classes live beside their decoders in the flow_records/ and
counter_records/ packages; this module holds the datagram and sample envelopes they sit in.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Record(msgspec.Struct, frozen=True, gc=False, tag=True):
    """Base of every flow, counter and sample structure (JSON carries ``"type": ClassName``)."""


class UnknownRecord(Record):
    """A record this decoder does not know: kept as its tag and raw bytes, never fatal."""

    enterprise: int
    format: int
    data: bytes


class FlowSample(Record):
    """flow_sample (0:1) or flow_sample_expanded (0:3)."""

    expanded: bool
    sequence_number: int
    source_id_type: int
    source_id_index: int
    sampling_rate: int
    sample_pool: int
    drops: int
    input_format: int  # 0 ifIndex, 1 discard reason, 2 number of interfaces, 3 reserved
    input: int
    output_format: int
    output: int
    records: tuple[Any, ...]


class CounterSample(Record):
    """counters_sample (0:2) or counters_sample_expanded (0:4)."""

    expanded: bool
    sequence_number: int
    source_id_type: int
    source_id_index: int
    records: tuple[Any, ...]


class DiscardSample(Record):
    """discarded_packet (0:5): a dropped packet and why (sFlow drop-notification extension)."""

    sequence_number: int
    source_id_type: int
    source_id_index: int
    drops: int
    input_format: int
    input: int
    output_format: int
    output: int
    reason: int
    records: tuple[Any, ...]


class UnknownSample(Record):
    """A sample type this decoder does not know: its tag and raw bytes."""

    enterprise: int
    format: int
    data: bytes


class Datagram(Record):
    """One sFlow v5 datagram."""

    version: int
    agent_address: str
    sub_agent_id: int
    sequence_number: int
    uptime: int  # milliseconds since the agent booted
    samples: tuple[Any, ...]
