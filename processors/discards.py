"""Discarded-packet notifications as the columns flows evaluate (flows with ``dropped: true``).

A discard_sample_batch message carries rows (one per notification, with typed records); flow
keys and filters read columns shaped like a flow_sample_batch. ``discard_columns`` builds those
columns from each notification's first sampled_header (its decoded packet and raw bytes) and
extended_switch record, its records, plus the notification's ``reason`` code (the ``reason`` key).

A notification reports one dropped packet; it is not sampled, so its ``sampling_rate`` column is 1
(``frames`` counts notifications, ``bytes`` their frame lengths).
"""

from __future__ import annotations

from schemas.definitions import DECODED_COLUMNS

_HEADER = "sflowpipe.SampledHeader"
_SWITCH = "sflowpipe.ExtendedSwitch"
_ENVELOPE = ("receive_time_us", "source_id_type", "source_id_index", "input_format", "input", "output_format",
             "output", "reason")
_SWITCH_FIELDS = ("src_vlan", "src_priority", "dst_vlan", "dst_priority")


def _record(records: list, name: str) -> dict | None:
    for r in records or ():
        if isinstance(r, (tuple, list)) and len(r) == 2 and r[0] == name:
            return r[1]
        if isinstance(r, dict) and r.get("-type") == name:  # a datum not yet through Avro (tests)
            return r
    return None


def discard_columns(batch: dict) -> dict:
    """A decoded discard_sample_batch datum as flow-sample-batch-like columns."""
    samples = batch.get("samples") or []
    n = len(samples)
    cols: dict = {"agent_address": batch.get("agent_address"), "exporter_address": batch.get("exporter_address"),
                  "sampling_rate": [1] * n}
    for name in _ENVELOPE:
        cols[name] = [s.get(name) for s in samples]
    headers = [_record(s.get("records"), _HEADER) for s in samples]
    for name in ("header_protocol", "frame_length", "stripped", "header"):  # header: payload keys read it
        cols[name] = [h.get(name) if h is not None else None for h in headers]
    cols["records"] = [s.get("records") or [] for s in samples]  # application records (payload keys)
    decoded = [h.get("decoded") if h is not None else None for h in headers]
    for name in DECODED_COLUMNS:
        cols[name] = [d.get(name) if d is not None else None for d in decoded]
    cols["vlans"] = [v or [] for v in cols["vlans"]]
    switches = [_record(s.get("records"), _SWITCH) for s in samples]
    for name in _SWITCH_FIELDS:
        cols[name] = [w.get(name) if w is not None else None for w in switches]
    return cols
