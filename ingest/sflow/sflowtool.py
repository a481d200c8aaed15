"""sflowtool-compatible views of decoded datagrams.

``datagram_fields`` builds the nested dict that ``sflowtool -j`` prints: the same field names,
nesting and string-formatted values, in sflowtool's order. The text (default), ``-g`` and
JSON writers all render that one dict; ``-l`` lines come from sflowtool_line.
"""

from __future__ import annotations

import json

import orjson

from ingest.sflow.counter_records import COUNTER_RECORDS
from ingest.sflow.discard_reasons import SFLOWTOOL_REASONS
from ingest.sflow.errors import DecodeError
from ingest.sflow.flow_records import FLOW_RECORDS
from ingest.sflow.layout import fmt_ip
from ingest.sflow.model import CounterSample, Datagram, DiscardSample, FlowSample, UnknownRecord
# Meta (the datagram metadata every writer takes) and the local time cache live with the fast -j writer
from ingest.sflow.sflowtool_json import Meta, localtime

_FLOW_TOOL = {c.cls: c.sflowtool for c in FLOW_RECORDS.values()}
_COUNTER_TOOL = {c.cls: c.sflowtool for c in COUNTER_RECORDS.values()}
_FLOW_TAG = {c.cls: f"{e}:{f}" for (e, f), c in FLOW_RECORDS.items()}
_COUNTER_TAG = {c.cls: f"{e}:{f}" for (e, f), c in COUNTER_RECORDS.items()}


def in_out_port(fmt: int, value: int) -> str:
    if fmt == 0:
        return str(value)
    if fmt == 1:
        return f"dropCode {value}"
    if fmt == 2:
        return f"multiple {value}"
    return f"format==3 {value}"


def _elements(records, tools: dict, tags: dict, tag_key: str, p: str) -> list:
    out = []
    for rec in records:
        cls = type(rec)
        if cls is UnknownRecord:
            out.append({p + tag_key: f"{rec.enterprise}:{rec.format}"})
            continue
        e = {p + tag_key: tags[cls]}
        tools[cls](rec, e, p)
        out.append(e)
    return out


def sample_fields(s) -> dict:
    cls = type(s)
    if cls is FlowSample:
        return {
            "sampleType_tag": "0:3" if s.expanded else "0:1",
            "sampleType": "FLOWSAMPLE",
            "sampleSequenceNo": str(s.sequence_number),
            "sourceId": f"{s.source_id_type}:{s.source_id_index}",
            "meanSkipCount": str(s.sampling_rate),
            "samplePool": str(s.sample_pool),
            "dropEvents": str(s.drops),
            "inputPort": in_out_port(s.input_format, s.input),
            "outputPort": in_out_port(s.output_format, s.output),
            "elements": _elements(s.records, _FLOW_TOOL, _FLOW_TAG, "flowBlock_tag", ""),
        }
    if cls is CounterSample:
        return {
            "sampleType_tag": "0:4" if s.expanded else "0:2",
            "sampleType": "COUNTERSSAMPLE",
            "sampleSequenceNo": str(s.sequence_number),
            "sourceId": f"{s.source_id_type}:{s.source_id_index}",
            "elements": _elements(s.records, _COUNTER_TOOL, _COUNTER_TAG, "counterBlock_tag", ""),
        }
    if cls is DiscardSample:
        return {
            "sampleType_tag": "0:5",
            "sampleType": "DISCARD",
            "sampleSequenceNo": str(s.sequence_number),
            "sourceId": f"{s.source_id_type}:{s.source_id_index}",
            "dropEvents": str(s.drops),
            # sflowtool prints the raw 32-bit interface words of a discard sample
            "inputPort": str((s.input_format << 30) | s.input),
            "outputPort": str((s.output_format << 30) | s.output),
            "discardCode": str(s.reason),
            "discardReason": SFLOWTOOL_REASONS.get(s.reason, "NotFound"),
            "elements": _elements(s.records, _FLOW_TOOL, _FLOW_TAG, "flowBlock_tag", "discarded_"),
        }
    return {"sampleType_tag": f"{s.enterprise}:{s.format}"}


def head_fields(meta: Meta) -> dict:
    d = {
        "datagramSourceIP": meta.source_ip,
        "datagramSize": str(meta.size),
        "unixSecondsUTC": str(meta.read_sec),
        "unixSecondsUTC_uS": str(meta.read_usec),
        "localtime": localtime(meta.read_sec),
    }
    if meta.pcap_sec:
        d["pcapTimestamp"] = localtime(meta.pcap_sec)
        d["pcapTimestamp_uS"] = str(meta.pcap_usec)
    return d


def datagram_fields(dg: Datagram, meta: Meta) -> dict:
    d = head_fields(meta)
    d["datagramVersion"] = str(dg.version)
    d["agentSubId"] = str(dg.sub_agent_id)
    d["agent"] = fmt_ip(dg.agent_address)
    d["packetSequenceNo"] = str(dg.sequence_number)
    d["sysUpTime"] = str(dg.uptime)
    d["samplesInPacket"] = str(len(dg.samples))
    d["samples"] = [sample_fields(s) for s in dg.samples]
    return d


def error_fields(err: DecodeError, meta: Meta) -> dict:
    """The line printed for a datagram that cannot be decoded."""
    return {"error": err.reason, "offset": err.offset, **head_fields(meta)}


# ---------------------------------------------------------------- writers


def json_line(d: dict) -> bytes:
    """sflowtool -j: one compact JSON object per line."""
    return orjson.dumps(d) + b"\n"


def json_pretty(d: dict) -> str:
    """sflowtool -J: indented JSON followed by a blank line."""
    return json.dumps(d, indent=1) + "\n\n"


def _text_element(e: dict, emit) -> None:
    for k, v in e.items():
        if k == "adaptor_list":
            for i, ad in enumerate(v):
                emit(f"adaptor_{i}_ifIndex", ad["ifIndex"])
                emit(f"adaptor_{i}_MACs", ad["MACs"])
                for j, mac in enumerate(ad["mac_list"]):
                    emit(f"adaptor_{i}_MAC_{j}", mac)
        elif k == "sfp_lanes":
            for lane in v:
                for lk, lv in lane.items():
                    if lk.startswith("sfp_lane_"):
                        emit(lk, lv)
        else:
            emit(k, v)


def _lines(d: dict, context) -> list[str]:
    """Text lines for one datagram dict; ``context(sample, element)`` prefixes each line (-g)."""
    lines: list[str] = []
    state = {"sample": None, "element": None}

    def emit(k, v):
        lines.append(f"{context(state['sample'], state['element'])}{k} {v}")

    def mark(text):
        lines.append(f"{context(state['sample'], state['element'])}{text}")

    mark("startDatagram =================================")
    for k, v in d.items():
        if k != "samples":
            emit(k, v)
            continue
        for s in v:
            state["sample"], state["element"] = s, None
            mark("startSample ----------------------")
            for sk, sv in s.items():
                if sk != "elements":
                    emit(sk, sv)
                    continue
                for e in sv:
                    state["element"] = e
                    _text_element(e, emit)
            mark("endSample   ----------------------")
        state["sample"] = state["element"] = None
    mark("endDatagram   =================================")
    return lines


def text(d: dict) -> str:
    """sflowtool's default output: ``key value`` lines between start/end markers."""
    return "\n".join(_lines(d, lambda s, e: "")) + "\n"


def grep(d: dict, meta: Meta) -> str:
    """sflowtool -g: every line carries its context (time, agent, sub-agent, sequence, source, tags)."""
    ts = localtime(meta.pcap_sec or meta.read_sec)
    head = f"{ts} {d.get('agent', '-')} {d.get('agentSubId', '0')} {d.get('packetSequenceNo', '0')} "

    def context(s, e):
        if s is None:
            return head + "0:0 0:0 0:0 "
        etag = "0:0" if e is None else next(iter(e.values()))
        return f"{head}{s.get('sourceId', '0:0')} {s['sampleType_tag']} {etag} "

    return "\n".join(_lines(d, context)) + "\n"
