"""SIEM renderings of events and active flows: ArcSight CEF and IBM QRadar LEEF 2.0.

Both name the flow key's parts with the SIEM's own fields (CEF ``src``/``dst``/``spt``/``dpt``,
LEEF ``src``/``dst``/``srcPort``/``dstPort``, ...). An event only carries the flow key's values
(``"10.1.0.10,192.0.2.10"``); their names come from the flow's definition (the event's metric is
the flow name), so ``FlowKeyNames`` reads the same flow definitions the processors use. Values
of a flow with no known definition stay in the custom string ``cs4`` / attribute ``flowKey``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sflowpipe.names import split_flow_key, split_keys

VENDOR = "sflowpipe"
PRODUCT = "sflowpipe"

# sFlow-RT flow key name -> (CEF key, LEEF key)
_KEY_FIELDS: dict[str, tuple[str, str]] = {
    "ipsource": ("src", "src"),
    "ipdestination": ("dst", "dst"),
    "ip6source": ("c6a2", "src"),
    "ip6destination": ("c6a3", "dst"),
    "tcpsourceport": ("spt", "srcPort"),
    "udpsourceport": ("spt", "srcPort"),
    "tcpdestinationport": ("dpt", "dstPort"),
    "udpdestinationport": ("dpt", "dstPort"),
    "ipprotocol": ("proto", "proto"),
    "ip6nexthdr": ("proto", "proto"),
    "macsource": ("smac", "srcMAC"),
    "macdestination": ("dmac", "dstMAC"),
    "inputifindex": ("deviceInboundInterface", "inIf"),
    "outputifindex": ("deviceOutboundInterface", "outIf"),
}
_CEF_LABELS = {"c6a2": ("c6a2Label", "Source IPv6 Address"), "c6a3": ("c6a3Label", "Destination IPv6 Address")}
_PROTOCOL_NAMES = {"1": "ICMP", "6": "TCP", "17": "UDP", "47": "GRE", "50": "ESP", "58": "ICMPv6", "132": "SCTP"}
# syslog severity (0 emergency .. 7 debug) -> CEF severity (0..10) and LEEF sev (1..10)
_CEF_SEVERITY = {0: 10, 1: 9, 2: 8, 3: 7, 4: 5, 5: 3, 6: 1, 7: 0}


class FlowKeyNames:
    """Flow name -> its key names, from the flow definitions (settings and the definitions file)."""

    def __init__(self, keys_by_flow: Mapping[str, list[str]] | None = None,
                 fs_by_flow: Mapping[str, str] | None = None) -> None:
        self.keys_by_flow = dict(keys_by_flow or {})
        self.fs_by_flow = dict(fs_by_flow or {})  # a flow's key separator when not ","

    @classmethod
    def from_settings(cls, processors) -> FlowKeyNames:
        """From the processors' section: its flows and definitions file name each flow's keys."""
        keys = {name: split_keys(fd.keys) for name, fd in processors.flows.items()}
        fs = {name: fd.fs for name, fd in processors.flows.items()}
        path = processors.definitions_file
        if path and Path(path).is_file():
            data = yaml.safe_load(Path(path).read_text()) or {}
            for name, body in (data.get("flows") or {}).items():
                if isinstance(body, dict) and body.get("keys"):
                    keys[name] = split_keys(str(body["keys"]))
                    fs[name] = str(body.get("fs", ","))
        return cls(keys, fs)

    def named(self, flow: str, flow_key: str | None) -> list[tuple[str, str]]:
        """(key name, value) pairs of a flow key; [] when the names are unknown or do not fit."""
        names = self.keys_by_flow.get(flow)
        if not names or not flow_key:
            return []
        values = split_flow_key(flow_key, self.fs_by_flow.get(flow, ","))
        return list(zip(names, values)) if len(values) == len(names) else []


# ---- CEF (ArcSight Common Event Format, revision 25) ----

def cef_header_escape(s: str) -> str:
    """Header fields: backslash and pipe escaped; a header has no line breaks."""
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def cef_value_escape(s: str) -> str:
    """Extension values: backslash, equals sign and line breaks escaped."""
    return (s.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n")
            .replace("\n", "\\n").replace("\r", "\\r"))


def _mac(value: str) -> str:
    v = value.replace(":", "").replace("-", "").lower()
    return ":".join(v[i:i + 2] for i in range(0, 12, 2)) if len(v) == 12 else value


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def _cef_key_fields(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in pairs:
        field = _KEY_FIELDS.get(name)
        if not field or field[0] in seen:
            continue
        key = field[0]
        if key in ("src", "dst") and not _is_ipv4(value):
            key = "c6a2" if key == "src" else "c6a3"  # CEF src/dst are IPv4 only
        if key in ("smac", "dmac"):
            value = _mac(value)
        if key == "proto":
            value = _PROTOCOL_NAMES.get(value, value)
        seen.add(key)
        out.append((key, value))
        if key in _CEF_LABELS:
            out.append(_CEF_LABELS[key])
    return out


def cef_line(signature: str, name: str, severity: int, ext: list[tuple[str, Any]], version: str) -> str:
    head = "|".join(cef_header_escape(str(x)) for x in
                    ("CEF:0", VENDOR, PRODUCT, version, signature, name, severity))
    body = " ".join(f"{k}={cef_value_escape(_text(v))}" for k, v in ext if v is not None)
    return f"{head}|{body}"


def cef_event(event: Mapping[str, Any], keys: FlowKeyNames, syslog_severity: int, version: str) -> str:
    """One threshold event as a CEF line (signature = the threshold id)."""
    ext: list[tuple[str, Any]] = [("rt", event["timestamp"]), ("dvchost", event["agent"])]
    ext += _cef_key_fields(keys.named(event["metric"], event.get("flowKey")))
    ext += [("msg", event_message(event)),
            ("cn1", event["eventID"]), ("cn1Label", "eventID"),
            ("cs1", event["thresholdID"]), ("cs1Label", "thresholdID"),
            ("cs2", event["metric"]), ("cs2Label", "metric"),
            ("cs3", event["dataSource"]), ("cs3Label", "dataSource"),
            ("cs4", event.get("flowKey")), ("cs4Label", "flowKey" if event.get("flowKey") is not None else None),
            ("cfp1", event["value"]), ("cfp1Label", "value"),
            ("cfp2", event["threshold"]), ("cfp2Label", "threshold")]
    return cef_line(event["thresholdID"], f"threshold {event['thresholdID']} exceeded",
                    _CEF_SEVERITY[syslog_severity], ext, version)


def cef_flow(active: Mapping[str, Any], flow: Mapping[str, Any], keys: FlowKeyNames, version: str) -> str:
    """One entry of an active-flows record as a CEF line (signature = the flow name)."""
    ext: list[tuple[str, Any]] = [("rt", active["timestamp"]), ("dvchost", active["agent"])]
    ext += _cef_key_fields(keys.named(active["flow"], flow["key"]))
    ext += [("msg", flow_message(active, flow)),
            ("cs2", active["flow"]), ("cs2Label", "flow"),
            ("cs3", flow["dataSource"]), ("cs3Label", "dataSource"),
            ("cs4", flow["key"]), ("cs4Label", "flowKey"),
            ("cs5", active["value"]), ("cs5Label", "valueName"),
            ("cfp1", flow["value"]), ("cfp1Label", "value")]
    return cef_line(f"flow:{active['flow']}", f"active flow {active['flow']}", _CEF_SEVERITY[6], ext, version)


# ---- LEEF 2.0 (IBM QRadar Log Event Extended Format), tab-delimited ----

LEEF_DELIMITER = "\t"


def leef_header_escape(s: str) -> str:
    return (s.replace("\\", "\\\\").replace("|", "\\|").replace("\t", " ").replace("\r", " ")
            .replace("\n", " "))


def leef_value_escape(s: str) -> str:
    """LEEF has no escape for the delimiter inside a value: tabs and line breaks become spaces."""
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def leef_line(event_id: str, attrs: list[tuple[str, Any]], version: str) -> str:
    head = "|".join(leef_header_escape(str(x)) for x in ("LEEF:2.0", VENDOR, PRODUCT, version, event_id))
    body = LEEF_DELIMITER.join(f"{k}={leef_value_escape(_text(v))}" for k, v in attrs if v is not None)
    return f"{head}|x09|{body}"


def _leef_key_fields(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in pairs:
        field = _KEY_FIELDS.get(name)
        if field and field[1] not in seen:
            seen.add(field[1])
            out.append((field[1], _mac(value) if field[1] in ("srcMAC", "dstMAC") else value))
    return out


def leef_event(event: Mapping[str, Any], keys: FlowKeyNames, syslog_severity: int, version: str) -> str:
    attrs: list[tuple[str, Any]] = [
        ("devTime", event["timestamp"]), ("devTimeFormat", "Millis"),  # epoch milliseconds
        ("cat", "threshold"), ("sev", max(1, _CEF_SEVERITY[syslog_severity])),
        ("identHostName", event["agent"])]
    attrs += _leef_key_fields(keys.named(event["metric"], event.get("flowKey")))
    attrs += [("eventID", event["eventID"]), ("thresholdID", event["thresholdID"]), ("agent", event["agent"]),
              ("dataSource", event["dataSource"]), ("metric", event["metric"]), ("value", event["value"]),
              ("threshold", event["threshold"]), ("flowKey", event.get("flowKey")),
              ("msg", event_message(event))]
    return leef_line(event["thresholdID"], attrs, version)


def leef_flow(active: Mapping[str, Any], flow: Mapping[str, Any], keys: FlowKeyNames, version: str) -> str:
    attrs: list[tuple[str, Any]] = [
        ("devTime", active["timestamp"]), ("devTimeFormat", "Millis"), ("cat", "flow"), ("sev", 1),
        ("identHostName", active["agent"])]
    attrs += _leef_key_fields(keys.named(active["flow"], flow["key"]))
    attrs += [("flow", active["flow"]), ("agent", active["agent"]), ("dataSource", flow["dataSource"]),
              ("flowKey", flow["key"]), ("valueName", active["value"]), ("value", flow["value"]),
              ("msg", flow_message(active, flow))]
    return leef_line(f"flow:{active['flow']}", attrs, version)


# ---- shared ----

def _text(v: Any) -> str:
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def event_message(event: Mapping[str, Any]) -> str:
    """The human sentence of an event."""
    what = f"{event['metric']} {event['flowKey']}" if event.get("flowKey") else event["metric"]
    return (f"threshold {event['thresholdID']} exceeded: {what} on {event['agent']}/{event['dataSource']} = "
            f"{_text(event['value'])} > {_text(event['threshold'])}")


def flow_message(active: Mapping[str, Any], flow: Mapping[str, Any]) -> str:
    return (f"active flow {active['flow']} {flow['key']} on {active['agent']}/{flow['dataSource']}: "
            f"{_text(flow['value'])} {active['value']}")
