"""Decoded samples -> the Avro datums of the sample topics, one agent per batch.

``AgentBatches`` collects the samples of each (agent, exporter) pair and hands back a batch
when it holds ``max_samples`` samples or its oldest sample is ``max_age`` seconds old. Flow
batches are columnar (schemas/flow_sample_batch); counter and discard batches are rows.
"""

from __future__ import annotations

import time
from operator import attrgetter, itemgetter
from typing import Any, Iterator, NamedTuple

from ingest.sflow.flow_records import ExtendedRouter, ExtendedSwitch, SampledHeader
from ingest.sflow.model import CounterSample, Datagram, DiscardSample, FlowSample
from schemas.definitions import (
    DECODED_COLUMNS,
    FLOW_ENVELOPE,
    HEADER_COLUMNS,
    ROUTER_COLUMNS,
    SWITCH_COLUMNS,
)
from schemas.model_avro import to_datum

FLOW, COUNTERS, DISCARDS = "flow", "counters", "discards"

FLOW_COLUMNS = (tuple(n for n, _, _ in FLOW_ENVELOPE) + HEADER_COLUMNS + DECODED_COLUMNS + SWITCH_COLUMNS
                + ROUTER_COLUMNS + ("records",))

# The commonest flow sample, [sampled_header (Ethernet, IPv4 without options, TCP or UDP),
# extended_switch], as a short row (ingest/rows.py writes it): the columns that vary, its envelope
# first as in a full row; the others hold one value for every such sample. A batch of such rows
# alone becomes columns without a value per sample for those; among full rows, a short row is
# expanded to one (``full_row``).
HOT_CONSTANTS = {
    "header_protocol": 1, "vlans": (), "eth_type": 0x0800, "vsnap_oui": None, "tx_mac": None, "rx_mac": None,
    "ip_version": 4, "ip_offset": 14, "fragment_offset": 0, "flow_label": None, "payload_length": None,
    "ext_headers": (), "icmp_type": None, "icmp_code": None, "vni": None, "inner": None, "icmp_quoted_protocol": None,
    "icmp_quoted_dst_ip": None, "icmp_quoted_dst_port": None, "next_hop": None, "src_mask_len": None,
    "dst_mask_len": None, "records": None,  # records: a new empty list per sample
}
HOT_COLUMNS = tuple(n for n in FLOW_COLUMNS if n not in HOT_CONSTANTS)
assert HOT_COLUMNS[:len(FLOW_ENVELOPE)] == FLOW_COLUMNS[:len(FLOW_ENVELOPE)]
_EXPAND = itemgetter(*(HOT_COLUMNS.index(n) if n in HOT_COLUMNS else len(HOT_COLUMNS) + list(HOT_CONSTANTS).index(n)
                       for n in FLOW_COLUMNS))
_HOT_TAIL = tuple(HOT_CONSTANTS.values())


def full_row(row: tuple) -> tuple:
    """A flow row of FLOW_COLUMNS, from either form."""
    if len(row) == len(FLOW_COLUMNS):
        return row
    return _EXPAND(row + _HOT_TAIL)[:-1] + ([],)


def _flow_columns(rows: list) -> dict[str, list]:
    n = len(rows)
    values = sum(map(len, rows))  # rows are either length: all short or all full rows say so
    if values == n * len(HOT_COLUMNS):
        columns = dict(zip(HOT_COLUMNS, map(list, zip(*rows))))
        for name, value in HOT_CONSTANTS.items():
            columns[name] = [value] * n
        columns["records"] = [[] for _ in range(n)]
        return columns
    if values != n * len(FLOW_COLUMNS):
        rows = list(map(full_row, rows))
    return dict(zip(FLOW_COLUMNS, map(list, zip(*rows))))


_decoded_values = attrgetter(*DECODED_COLUMNS)
_i_vlans = DECODED_COLUMNS.index("vlans")
_i_inner = DECODED_COLUMNS.index("inner")
_NO_DECODED = tuple([] if n in ("vlans", "ext_headers") else None for n in DECODED_COLUMNS)
_NO_HEADER = (None,) * len(HEADER_COLUMNS)
_NO_SWITCH = (None,) * len(SWITCH_COLUMNS)
_NO_ROUTER = (None,) * len(ROUTER_COLUMNS)


def _decoded_row(d) -> tuple:
    if d is None:
        return _NO_DECODED
    row = _decoded_values(d)
    if row[_i_vlans] or row[_i_inner] is not None:
        row = list(row)
        row[_i_vlans] = [{"vlan": v, "priority": p} for v, p in row[_i_vlans]]
        if row[_i_inner] is not None:
            row[_i_inner] = to_datum(row[_i_inner])
        return tuple(row)
    return row


def flow_row(dg: Datagram, s: FlowSample, receive_time_us: int) -> tuple:
    """One flow sample as the values of FLOW_COLUMNS."""
    header = switch = router = None
    others = []
    for r in s.records:
        cls = type(r)
        if cls is SampledHeader and header is None:
            header = r
        elif cls is ExtendedSwitch and switch is None:
            switch = r
        elif cls is ExtendedRouter and router is None:
            router = r
        else:
            others.append(to_datum(r))
    return (
        (receive_time_us, dg.sub_agent_id, dg.sequence_number, dg.uptime, s.sequence_number, s.source_id_type,
         s.source_id_index, s.expanded, s.sampling_rate, s.sample_pool, s.drops, s.input_format, s.input,
         s.output_format, s.output)
        + (_NO_HEADER if header is None else (header.header_protocol, header.frame_length, header.stripped,
                                              header.header))
        + _decoded_row(None if header is None else header.decoded)
        + (_NO_SWITCH if switch is None else (switch.src_vlan, switch.src_priority, switch.dst_vlan,
                                              switch.dst_priority))
        + (_NO_ROUTER if router is None else (router.next_hop, router.src_mask_len, router.dst_mask_len))
        + (others,)
    )


def _envelope(dg: Datagram, s, receive_time_us: int) -> dict[str, Any]:
    return {
        "receive_time_us": receive_time_us,
        "sub_agent_id": dg.sub_agent_id,
        "datagram_sequence": dg.sequence_number,
        "uptime_ms": dg.uptime,
        "sequence_number": s.sequence_number,
        "source_id_type": s.source_id_type,
        "source_id_index": s.source_id_index,
    }


def counter_row(dg: Datagram, s: CounterSample, receive_time_us: int) -> dict[str, Any]:
    d = _envelope(dg, s, receive_time_us)
    d["expanded"] = s.expanded
    d["records"] = [to_datum(r) for r in s.records]
    return d


def discard_row(dg: Datagram, s: DiscardSample, receive_time_us: int) -> dict[str, Any]:
    d = _envelope(dg, s, receive_time_us)
    d.update(expanded=True, drops=s.drops, input_format=s.input_format, input=s.input,
             output_format=s.output_format, output=s.output, reason=s.reason,
             records=[to_datum(r) for r in s.records])
    return d


class Batch(NamedTuple):
    kind: str  # FLOW, COUNTERS or DISCARDS
    agent: str
    exporter: str
    samples: int
    datum: dict


class _Pending:
    __slots__ = ("rows", "first")

    def __init__(self, now: float) -> None:
        self.rows: list = []
        self.first = now


class AgentBatches:
    """Per-agent batching of decoded samples (flush at N samples or T seconds)."""

    def __init__(self, max_samples: int = 500, max_age: float = 0.05) -> None:
        self.max_samples = max_samples
        self.max_age = max_age
        self.pending: dict[tuple[str, str, str], _Pending] = {}

    def add(self, dg: Datagram, exporter: str, receive_time_us: int, now: float | None = None) -> list[Batch]:
        """Add a datagram's samples; returns the batches that became full."""
        now = time.monotonic() if now is None else now
        full: list[Batch] = []
        agent = dg.agent_address
        for s in dg.samples:
            cls = type(s)
            if cls is FlowSample:
                kind, row = FLOW, flow_row(dg, s, receive_time_us)
            elif cls is CounterSample:
                kind, row = COUNTERS, counter_row(dg, s, receive_time_us)
            elif cls is DiscardSample:
                kind, row = DISCARDS, discard_row(dg, s, receive_time_us)
            else:
                continue  # unknown sample types stay on the raw topic only
            key = (kind, agent, exporter)
            p = self.pending.get(key)
            if p is None:
                p = self.pending[key] = _Pending(now)
            p.rows.append(row)
            if len(p.rows) >= self.max_samples:
                full.append(self._take(key))
        return full

    def add_rows(self, agent: str, exporter: str, flows: list, mixed: list | None,
                 now: float | None = None) -> list[Batch]:
        """``add`` for a datagram decoded to rows (ingest/rows.py): ``flows`` its flow rows, ``mixed``
        every sample as (kind, row) in order when it holds more than flow samples. The same batches
        as ``add`` of the same datagram."""
        now = time.monotonic() if now is None else now
        full: list[Batch] = []
        if mixed is not None:
            for kind, row in mixed:
                key = (kind, agent, exporter)
                p = self.pending.get(key)
                if p is None:
                    p = self.pending[key] = _Pending(now)
                p.rows.append(row)
                if len(p.rows) >= self.max_samples:
                    full.append(self._take(key))
            return full
        if not flows:
            return full
        key = (FLOW, agent, exporter)
        p = self.pending.get(key)
        if p is None:
            p = self.pending[key] = _Pending(now)
        rows = p.rows
        rows += flows
        m = self.max_samples
        if len(rows) >= m:
            # what appending one by one does: a batch at every max_samples rows, the rest in a new one
            del self.pending[key]
            for i in range(0, len(rows) - m + 1, m):
                full.append(self._batch(key, rows[i : i + m]))
            rest = len(rows) % m
            if rest:
                self.pending[key] = p = _Pending(now)
                p.rows = rows[len(rows) - rest :]
        return full

    def due(self, now: float | None = None) -> list[Batch]:
        """Batches whose oldest sample has waited max_age."""
        now = time.monotonic() if now is None else now
        keys = [k for k, p in self.pending.items() if now - p.first >= self.max_age]
        return [self._take(k) for k in keys]

    def drain(self) -> list[Batch]:
        return [self._take(k) for k in list(self.pending)]

    def _take(self, key: tuple[str, str, str]) -> Batch:
        return self._batch(key, self.pending.pop(key).rows)

    @staticmethod
    def _batch(key: tuple[str, str, str], rows: list) -> Batch:
        kind, agent, exporter = key
        head = {"agent_address": agent, "exporter_address": exporter}
        if kind == FLOW:
            datum = dict(_flow_columns(rows), **head)
        else:
            datum = {**head, "samples": rows}
        return Batch(kind, agent, exporter, len(rows), datum)


def flow_rows(datum: dict) -> Iterator[dict]:
    """A decoded FlowSampleBatch datum as one dict per sample (batch fields repeated)."""
    cols = [c for c in datum if c not in ("agent_address", "exporter_address")]
    head = {"agent_address": datum["agent_address"], "exporter_address": datum["exporter_address"]}
    for values in zip(*(datum[c] for c in cols)):
        yield {**head, **dict(zip(cols, values))}
