"""The message schemas of sflowpipe's topics, built from the data model.

Flow samples travel as a columnar batch (one array per field, one agent per message: see
README "Avro layout" for the measurements behind that choice); counter and discard samples,
far fewer, as arrays of typed records. ``python -m schemas.generate`` writes them to .avsc.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from ingest.sflow.counter_records import COUNTER_RECORDS
from ingest.sflow.flow_records import FLOW_RECORDS, ExtendedRouter, ExtendedSwitch, SampledHeader
from ingest.sflow.header import DecodedHeader
from ingest.sflow.model import UnknownRecord
from schemas.model_avro import NAMESPACE, avro_type, union_of

# The flow-sample columns taken from a sample's first sampled_header, extended_switch and
# extended_router records (None where the sample has none); every other record of the sample
# goes, typed, into the ``records`` column.
HEADER_COLUMNS = ("header_protocol", "frame_length", "stripped", "header")
DECODED_COLUMNS = tuple(f.name for f in mi.type_info(DecodedHeader).fields)  # includes "inner"
SWITCH_COLUMNS = tuple(f.name for f in mi.type_info(ExtendedSwitch).fields)
ROUTER_COLUMNS = tuple(f.name for f in mi.type_info(ExtendedRouter).fields)

# Per-sample envelope columns: what every sample carries about its datagram and data source.
ENVELOPE = (
    ("receive_time_us", "long", "receive time, microseconds since the Unix epoch (UTC)"),
    ("sub_agent_id", "long", "datagram sub-agent id"),
    ("datagram_sequence", "long", "datagram sequence number"),
    ("uptime_ms", "long", "agent uptime when the datagram was sent, milliseconds"),
    ("sequence_number", "long", "sample sequence number (per data source)"),
    ("source_id_type", "long", "data source type: 0 ifIndex, 1 smonVlanDataSource, 2 entPhysicalEntry"),
    ("source_id_index", "long", "data source index"),
    ("expanded", "boolean", "sent as an expanded sample (0:3 / 0:4)"),
)
FLOW_ENVELOPE = ENVELOPE + (
    ("sampling_rate", "long", "one packet in sampling_rate was sampled"),
    ("sample_pool", "long", "packets that could have been sampled"),
    ("drops", "long", "samples dropped for lack of resources"),
    ("input_format", "long", "input interface format: 0 ifIndex, 1 discard reason, 2 multiple"),
    ("input", "long", "input interface (ifIndex) or value per input_format"),
    ("output_format", "long", "output interface format: 0 ifIndex, 1 discard reason, 2 multiple"),
    ("output", "long", "output interface (ifIndex) or value per output_format"),
)


def _nullable(t: Any) -> Any:
    return t if isinstance(t, list) and t[0] == "null" else ["null", t]


def _flow_record_classes() -> list[type]:
    return [c.cls for c in FLOW_RECORDS.values()] + [UnknownRecord]


def _counter_record_classes() -> list[type]:
    return [c.cls for c in COUNTER_RECORDS.values()] + [UnknownRecord]


def _batch_head(named: dict) -> list[dict]:
    return [
        {"name": "agent_address", "type": "string", "doc": "sFlow agent address"},
        {"name": "exporter_address", "type": "string", "doc": "source address of the UDP datagrams"},
    ]


# Columns the stream processors read (flow keys, filters, values), written first: a reader can
# stop after them (schemas.codec.AvroCodec.decode_prefix), the rest of the batch is skipped.
HOT_DECODED = ("dst_mac", "src_mac", "vlans", "eth_type", "ip_version", "src_ip", "dst_ip", "ip_protocol", "tos",
               "ttl", "src_port", "dst_port", "tcp_flags", "icmp_type", "icmp_code", "icmp_quoted_protocol",
               "icmp_quoted_dst_ip", "icmp_quoted_dst_port", "vni", "inner")

# Columns added after v1 of flow_sample_batch: they carry a default (empty array), so messages of
# older versions still read with the newest reader (a reader sees an empty column for them).
ADDED_DECODED = ("icmp_quoted_protocol", "icmp_quoted_dst_ip", "icmp_quoted_dst_port")  # v2


def flow_sample_batch() -> dict:
    """FlowSampleBatch: flow samples of one agent, one array per field (columnar)."""
    named: dict = {}
    hot: list[dict] = [{"name": n, "type": {"type": "array", "items": t}, "doc": d} for n, t, d in FLOW_ENVELOPE]
    cold: list[dict] = []
    header_fields = {f.name: f for f in mi.type_info(SampledHeader).fields}
    for name in ("frame_length", "header_protocol", "stripped", "header"):
        f = header_fields[name]
        col = {"name": name, "type": {"type": "array", "items": _nullable(avro_type(f.type, named))},
               "doc": f"sampled_header.{name} (null: no sampled header)"}
        (cold if name == "header" else hot).append(col)
    decoded = {f.name: f for f in mi.type_info(DecodedHeader).fields}
    for name in HOT_DECODED + tuple(n for n in decoded if n not in HOT_DECODED):
        col = {"name": name, "type": {"type": "array", "items": avro_type(decoded[name].type, named)},
               "doc": f"parsed from the sampled header: {name}"}
        if name in ADDED_DECODED:
            col["default"] = []
        (hot if name in HOT_DECODED else cold).append(col)
    for cls, target in ((ExtendedSwitch, hot), (ExtendedRouter, cold)):
        for f in mi.type_info(cls).fields:
            target.append({"name": f.name, "type": {"type": "array", "items": _nullable(avro_type(f.type, named))},
                           "doc": f"{cls.__name__}.{f.name} (null: no such record)"})
    cold.append({"name": "records", "doc": "the sample's other flow records, typed, in order",
                 "type": {"type": "array", "items": {"type": "array",
                                                      "items": union_of(_flow_record_classes(), named)}}})
    return {"type": "record", "name": "FlowSampleBatch", "namespace": NAMESPACE,
            "doc": "Flow samples (0:1, 0:3) of one agent, columnar: field i of every array is sample i.",
            "fields": _batch_head(named) + hot + cold}


def hot_field_count() -> int:
    """How many leading FlowSampleBatch fields the processors need (up to the extended switch fields)."""
    names = [f["name"] for f in flow_sample_batch()["fields"]]
    return names.index("dst_priority") + 1


def _row_sample(name: str, envelope: tuple, record_classes: list[type], extra: list[dict], named: dict,
                doc: str) -> dict:
    fields = [{"name": n, "type": t, "doc": d} for n, t, d in envelope] + extra
    fields.append({"name": "records", "type": {"type": "array", "items": union_of(record_classes, named)}})
    return {"type": "record", "name": name, "namespace": NAMESPACE, "doc": doc, "fields": fields}


def counter_sample_batch() -> dict:
    named: dict = {}
    sample = _row_sample("CounterSample", ENVELOPE, _counter_record_classes(), [], named,
                         "A counters sample (0:2, 0:4) with its typed counter blocks.")
    return {"type": "record", "name": "CounterSampleBatch", "namespace": NAMESPACE,
            "doc": "Counter samples of one agent.",
            "fields": _batch_head(named) + [{"name": "samples", "type": {"type": "array", "items": sample}}]}


def discard_sample_batch() -> dict:
    named: dict = {}
    extra = [
        {"name": "drops", "type": "long"},
        {"name": "input_format", "type": "long"},
        {"name": "input", "type": "long"},
        {"name": "output_format", "type": "long"},
        {"name": "output", "type": "long"},
        {"name": "reason", "type": "long", "doc": "discard reason code (sflow_drops.txt)"},
    ]
    sample = _row_sample("DiscardSample", ENVELOPE, _flow_record_classes(), extra, named,
                         "A discarded-packet sample (0:5) with its typed flow records.")
    return {"type": "record", "name": "DiscardSampleBatch", "namespace": NAMESPACE,
            "doc": "Discard samples of one agent.",
            "fields": _batch_head(named) + [{"name": "samples", "type": {"type": "array", "items": sample}}]}


def raw_datagram() -> dict:
    return {"type": "record", "name": "RawDatagram", "namespace": NAMESPACE,
            "doc": "One sFlow datagram as received.",
            "fields": [
                {"name": "receive_time_us", "type": "long", "doc": "microseconds since the Unix epoch (UTC)"},
                {"name": "exporter_address", "type": "string"},
                {"name": "exporter_port", "type": "int"},
                {"name": "data", "type": "bytes", "doc": "the UDP payload"},
            ]}


def dead_letter() -> dict:
    return {"type": "record", "name": "DeadLetter", "namespace": NAMESPACE,
            "doc": "Input that could not be processed, with why.",
            "fields": [
                {"name": "receive_time_us", "type": "long"},
                {"name": "exporter_address", "type": "string"},
                {"name": "exporter_port", "type": "int"},
                {"name": "data", "type": "bytes"},
                {"name": "stage", "type": "string", "doc": "where it failed, e.g. decode"},
                {"name": "error", "type": "string"},
                {"name": "offset", "type": ["null", "long"], "default": None, "doc": "byte offset of a decode error"},
                {"name": "reason", "type": ["null", "string"], "default": None,
                 "doc": "the fault's code: a decode's (unsupported_version, truncated, bad_length, bad_address, "
                        "invalid), delivery_failed (http) or action_failed (control)"},
            ]}


ENRICH_COLUMNS = (
    ("src_country", ["null", "string"], "ISO 3166 country of src_ip"),
    ("dst_country", ["null", "string"], "ISO 3166 country of dst_ip"),
    ("src_asn", ["null", "long"], "AS number of src_ip (needs an ASN database)"),
    ("dst_asn", ["null", "long"], "AS number of dst_ip"),
    ("src_as_name", ["null", "string"], "AS organisation of src_ip"),
    ("dst_as_name", ["null", "string"], "AS organisation of dst_ip"),
    ("src_groups", {"type": "array", "items": "string"}, "address groups of src_ip, as groupset:group"),
    ("dst_groups", {"type": "array", "items": "string"}, "address groups of dst_ip, as groupset:group"),
)


def enriched_flow_sample_batch() -> dict:
    """Flow samples with the country, AS and address groups of their addresses."""
    base = flow_sample_batch()
    base["name"] = "EnrichedFlowSampleBatch"
    base["doc"] = "Flow samples of one agent, columnar, with country/AS/group enrichment of src_ip and dst_ip."
    base["fields"] = base["fields"] + [{"name": n, "type": {"type": "array", "items": t}, "doc": d}
                                       for n, t, d in ENRICH_COLUMNS]
    return base


def active_flows() -> dict:
    """The top flows of every data source of one agent, for one flow definition, at one instant."""
    entry = {"type": "record", "name": "ActiveFlow", "namespace": NAMESPACE, "fields": [
        {"name": "dataSource", "type": "string"},
        {"name": "key", "type": "string", "doc": "flow key values joined by the definition's fs"},
        {"name": "value", "type": "double", "doc": "smoothed rate per second (bytes, frames, bits...)"},
    ]}
    return {"type": "record", "name": "ActiveFlows", "namespace": NAMESPACE,
            "doc": "Top-n active flows of one flow definition for one agent (sFlow-RT activeflows).",
            "fields": [
                {"name": "flow", "type": "string", "doc": "flow definition name"},
                {"name": "agent", "type": "string"},
                {"name": "timestamp", "type": "long", "doc": "milliseconds since the Unix epoch"},
                {"name": "value", "type": "string", "doc": "what the values measure: bytes, frames, bps, fps"},
                {"name": "flows", "type": {"type": "array", "items": entry}},
            ]}


def metrics() -> dict:
    """Counter metrics of one agent at one instant, sFlow-RT names."""
    m = {"type": "record", "name": "Metric", "namespace": NAMESPACE, "fields": [
        {"name": "dataSource", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "value", "type": "double"},
    ]}
    return {"type": "record", "name": "Metrics", "namespace": NAMESPACE,
            "doc": "Counter metrics of one agent computed from its counter samples (sFlow-RT metric names).",
            "fields": [
                {"name": "agent", "type": "string"},
                {"name": "timestamp", "type": "long", "doc": "milliseconds since the Unix epoch"},
                {"name": "metrics", "type": {"type": "array", "items": m}},
            ]}


def event() -> dict:
    """A threshold crossing (sFlow-RT event vocabulary)."""
    return {"type": "record", "name": "Event", "namespace": NAMESPACE,
            "doc": "A threshold was crossed (sFlow-RT /events vocabulary).",
            "fields": [
                {"name": "eventID", "type": "long", "doc": "increasing event id"},
                {"name": "thresholdID", "type": "string"},
                {"name": "agent", "type": "string"},
                {"name": "dataSource", "type": "string"},
                {"name": "metric", "type": "string", "doc": "flow name or counter metric"},
                {"name": "value", "type": "double"},
                {"name": "threshold", "type": "double"},
                {"name": "flowKey", "type": ["null", "string"], "default": None},
                {"name": "timestamp", "type": "long", "doc": "milliseconds since the Unix epoch"},
            ]}


def flow_log() -> dict:
    """One flow of a flow definition with ``log: true`` (processors/flowlog.py)."""
    return {"type": "record", "name": "FlowLog", "namespace": NAMESPACE,
            "doc": "A logged flow (sFlow-RT log: true): totals of one (agent, dataSource, flow key) over an interval.",
            "fields": [
                {"name": "flow", "type": "string", "doc": "flow definition name"},
                {"name": "flowKeys", "type": "string", "doc": "flow key values joined by the definition's fs"},
                {"name": "keys", "type": {"type": "array", "items": "string"}, "doc": "the flow key values"},
                {"name": "agent", "type": "string"},
                {"name": "dataSource", "type": "string"},
                {"name": "bytes", "type": "long", "doc": "frame_length * sampling_rate summed over the samples"},
                {"name": "frames", "type": "long", "doc": "sampling_rate summed over the samples"},
                {"name": "start", "type": "long", "doc": "first sample of the interval, ms since the Unix epoch"},
                {"name": "end", "type": "long", "doc": "last sample of the interval, ms since the Unix epoch"},
                {"name": "reason", "type": "string",
                 "doc": "start (flowStart), active (activeTimeout flushed a still active flow) or end (idle)"},
                {"name": "timestamp", "type": "long", "doc": "when the record was emitted, ms since the Unix epoch"},
            ]}


# schema file stem -> builder, the set of message schemas sflowpipe writes
MESSAGES = {
    "raw_datagram": raw_datagram,
    "flow_sample_batch": flow_sample_batch,
    "counter_sample_batch": counter_sample_batch,
    "discard_sample_batch": discard_sample_batch,
    "dead_letter": dead_letter,
    "enriched_flow_sample_batch": enriched_flow_sample_batch,
    "active_flows": active_flows,
    "metrics": metrics,
    "event": event,
    "flow_log": flow_log,
}
