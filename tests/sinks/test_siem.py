"""CEF and LEEF 2.0 renderings, parsed back; and carried through a real rsyslogd."""

from __future__ import annotations

import re

from sflowpipe.settings import SyslogSettings
from sinks import siem
from sinks.syslog import SyslogSink
from tests.sinks.rsyslog import rsyslog  # noqa: F401  (fixture)

EVENT = {"eventID": 7, "thresholdID": "ele|phant", "agent": "192.0.2.200", "dataSource": "3", "metric": "pair",
         "value": 2500000.0, "threshold": 1250000.5, "flowKey": "10.1.0.10,192.0.2.10,6,443",
         "timestamp": 1763683200123}
KEYS = siem.FlowKeyNames({"pair": ["ipsource", "ipdestination", "ipprotocol", "tcpdestinationport"],
                          "v6": ["ip6source", "ip6destination", "macsource"]})


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """Header fields (unescaped) and extension (unescaped), the way a CEF consumer reads them."""
    fields, cur, i = [], "", 0
    while len(fields) < 7:
        c = line[i]
        if c == "\\":
            cur += line[i + 1]
            i += 2
            continue
        if c == "|":
            fields.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    ext = line[i:]
    keys = list(re.finditer(r"(?:^| )([A-Za-z0-9_]+)=", ext))
    out = {}
    for k, nxt in zip(keys, keys[1:] + [None]):
        raw = ext[k.end():nxt.start() if nxt else len(ext)]
        out[k.group(1)] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw)
    return fields, out


def parse_leef(line: str) -> tuple[list[str], dict[str, str]]:
    head = re.split(r"(?<!\\)\|", line, maxsplit=6)
    assert len(head) == 7, line
    attrs = dict(a.split("=", 1) for a in head[6].split("\t"))
    return [h.replace("\\|", "|") for h in head[:6]], attrs


def test_cef_event_header_extension_and_flow_key_fields():
    fields, ext = parse_cef(siem.cef_event(EVENT, KEYS, 4, "0.1.0"))
    assert fields == ["CEF:0", "sflowpipe", "sflowpipe", "0.1.0", "ele|phant", "threshold ele|phant exceeded", "5"]
    assert (ext["src"], ext["dst"], ext["proto"], ext["dpt"]) == ("10.1.0.10", "192.0.2.10", "TCP", "443")
    assert ext["rt"] == "1763683200123" and ext["dvchost"] == "192.0.2.200"
    assert (ext["cn1"], ext["cn1Label"]) == ("7", "eventID")
    assert (ext["cs1"], ext["cs1Label"]) == ("ele|phant", "thresholdID")
    assert (ext["cs2"], ext["cs3"], ext["cs4"]) == ("pair", "3", "10.1.0.10,192.0.2.10,6,443")
    assert (ext["cfp1"], ext["cfp2"]) == ("2500000", "1250000.5")
    assert ext["msg"].startswith("threshold ele|phant exceeded: pair 10.1.0.10,192.0.2.10,6,443")


def test_cef_escaping():
    assert siem.cef_header_escape("a|b\\c\nd") == "a\\|b\\\\c d"
    assert siem.cef_value_escape("a=b\\c\nd\re|f") == "a\\=b\\\\c\\nd\\re|f"
    e = dict(EVENT, thresholdID="x=1\\y\nz|w", metric="m", flowKey=None)
    line = siem.cef_event(e, KEYS, 0, "1")
    assert "\n" not in line
    fields, ext = parse_cef(line)
    assert fields[4] == "x=1\\y z|w" and fields[6] == "10"
    assert ext["cs1"] == "x=1\\y\nz|w"
    assert "cs4" not in ext and "src" not in ext  # no flow key: no flow key fields


def test_cef_ipv6_and_mac_and_unknown_flow():
    e = dict(EVENT, metric="v6", flowKey="2001:db8::1,2001:db8::2,00005e005301")
    _, ext = parse_cef(siem.cef_event(e, KEYS, 4, "1"))
    assert (ext["c6a2"], ext["c6a2Label"]) == ("2001:db8::1", "Source IPv6 Address")
    assert ext["c6a3"] == "2001:db8::2" and ext["smac"] == "00:00:5e:00:53:01"
    _, ext = parse_cef(siem.cef_event(dict(EVENT, metric="other"), KEYS, 4, "1"))
    assert "src" not in ext and ext["cs4"] == EVENT["flowKey"]
    # values that do not fit the definition are not guessed at
    _, ext = parse_cef(siem.cef_event(dict(EVENT, flowKey="10.1.0.10"), KEYS, 4, "1"))
    assert "src" not in ext


def test_leef_event_tab_delimited():
    line = siem.leef_event(dict(EVENT, metric="pair", thresholdID="a\tb"), KEYS, 3, "0.1.0")
    head, attrs = parse_leef(line)
    assert head == ["LEEF:2.0", "sflowpipe", "sflowpipe", "0.1.0", "a b", "x09"]
    assert attrs["thresholdID"] == "a b"  # a tab inside a value cannot be escaped in LEEF
    assert (attrs["src"], attrs["dst"], attrs["proto"], attrs["dstPort"]) == ("10.1.0.10", "192.0.2.10", "6", "443")
    assert attrs["devTime"] == "1763683200123" and attrs["devTimeFormat"] == "Millis"
    assert attrs["sev"] == "7" and attrs["eventID"] == "7" and attrs["agent"] == "192.0.2.200"
    assert attrs["value"] == "2500000" and attrs["threshold"] == "1250000.5"


def test_active_flows_renderings():
    active = {"flow": "pair", "agent": "192.0.2.200", "timestamp": 1763683200000, "value": "bytes",
              "flows": [{"dataSource": "3", "key": "10.1.0.10,192.0.2.10,17,53", "value": 1250000.0}]}
    fields, ext = parse_cef(siem.cef_flow(active, active["flows"][0], KEYS, "1"))
    assert fields[4] == "flow:pair" and ext["proto"] == "UDP" and ext["cfp1"] == "1250000"
    _, attrs = parse_leef(siem.leef_flow(active, active["flows"][0], KEYS, "1"))
    assert attrs["flow"] == "pair" and attrs["dstPort"] == "53" and attrs["valueName"] == "bytes"


def test_flow_key_names_from_settings(tmp_path):
    from sflowpipe.settings import Settings

    defs = tmp_path / "defs.yaml"
    defs.write_text("flows:\n  ports:\n    keys: ipsource, tcpsourceport\n    value: frames\n")
    s = Settings(processors={"definitions_file": str(defs),
                             "flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes"}}})
    names = siem.FlowKeyNames.from_settings(s.processors)
    assert names.named("pair", "10.0.0.1,10.0.0.2") == [("ipsource", "10.0.0.1"), ("ipdestination", "10.0.0.2")]
    assert names.named("ports", "10.0.0.1,80") == [("ipsource", "10.0.0.1"), ("tcpsourceport", "80")]


def test_flow_key_names_split_keys_as_the_compiler_does(tmp_path):
    # a key function in brackets may hold a comma: split naively, the names did not fit the values
    # and the SIEM fields were lost; and a flow's own separator (fs) splits its key values
    from sflowpipe.settings import Settings

    defs = tmp_path / "defs.yaml"
    defs.write_text("flows:\n  piped:\n    keys: ipsource,ipdestination\n    fs: '|'\n")
    s = Settings(processors={"definitions_file": str(defs), "flows": {
        "nested": {"keys": "null:[prefix:ipsource:,:1]:none,ipdestination", "value": "bytes"},
        "semi": {"keys": "ipsource,tcpdestinationport", "fs": ";"}}})
    names = siem.FlowKeyNames.from_settings(s.processors)
    assert names.named("nested", "10.0.0.1,10.0.0.2") == [("null:[prefix:ipsource:,:1]:none", "10.0.0.1"),
                                                          ("ipdestination", "10.0.0.2")]
    assert names.named("piped", "10.0.0.1|10.0.0.2") == [("ipsource", "10.0.0.1"), ("ipdestination", "10.0.0.2")]
    assert names.named("semi", "10.0.0.1;443") == [("ipsource", "10.0.0.1"), ("tcpdestinationport", "443")]


def test_cef_over_tcp_and_leef_over_udp_through_rsyslog(rsyslog):  # noqa: F811
    for fmt, transport, port in (("cef", "tcp", rsyslog.tcp), ("leef", "udp", rsyslog.udp)):
        sink = SyslogSink(SyslogSettings(address=f"127.0.0.1:{port}", transport=transport, format=fmt),
                          KEYS)
        assert sink.add("t", "event", None, EVENT, b"") == 1
        sink.flush()
        sink.close()
    got = rsyslog.wait_for(2)
    by_input = {r["input"]: r for r in got}
    cef = by_input["tcp"]
    assert cef["msgid"] == "event" and cef["app"] == "sflowpipe" and cef["sdraw"] == "-"
    fields, ext = parse_cef(cef["msg"])
    assert fields[4] == "ele|phant" and ext["src"] == "10.1.0.10" and ext["dpt"] == "443"
    head, attrs = parse_leef(by_input["udp"]["msg"])
    assert head[0] == "LEEF:2.0" and attrs["dst"] == "192.0.2.10" and attrs["eventID"] == "7"


def test_cef_to_file_is_bare_lines(tmp_path):
    path = tmp_path / "events.cef"
    sink = SyslogSink(SyslogSettings(format="cef", file=str(path)), KEYS)
    sink.add("t", "event", None, EVENT, b"")
    sink.add("t", "event", None, dict(EVENT, eventID=8, thresholdID="t\nx"), b"")
    sink.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("CEF:0|sflowpipe|") for line in lines)
    assert parse_cef(lines[1])[1]["cn1"] == "8"
