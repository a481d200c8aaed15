"""sFlow-RT flow definition language: keys, key functions, filters, definitions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sflowpipe.flowspec import (
    FUNCTION_NAMES,
    KEY_NAMES,
    EvalContext,
    FlowDef,
    FlowSpecError,
    compile_filter,
    compile_flow,
    compile_key,
    parse_definition,
)

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- fixtures

COLUMNS = [
    "receive_time_us", "source_id_type", "source_id_index", "sampling_rate", "input_format", "input",
    "output_format", "output", "header_protocol", "frame_length", "dst_mac", "src_mac", "vlans", "eth_type",
    "ip_version", "src_ip", "dst_ip", "ip_protocol", "tos", "ttl", "src_port", "dst_port", "tcp_flags",
    "udp_length", "icmp_type", "icmp_code", "vni", "inner", "src_vlan", "src_priority", "dst_vlan",
    "dst_priority",
]

BASE = dict(
    receive_time_us=1_700_000_000_000_000, source_id_type=0, source_id_index=3, sampling_rate=100,
    input_format=0, input=3, output_format=0, output=7, header_protocol=1, frame_length=1000,
    dst_mac="02:00:00:00:00:02", src_mac="0c:c4:7a:7e:6d:4e", vlans=[], eth_type=0x0800,
)


def tcp4(**kw):
    s = dict(BASE, ip_version=4, src_ip="10.1.2.3", dst_ip="192.0.2.9", ip_protocol=6, tos=0xB8, ttl=64,
             src_port=40001, dst_port=443, tcp_flags=0x12)
    s.update(kw)
    return s


def udp4(**kw):
    s = dict(BASE, ip_version=4, src_ip="10.9.9.9", dst_ip="198.51.100.1", ip_protocol=17, tos=0, ttl=63,
             src_port=5353, dst_port=53, udp_length=40)
    s.update(kw)
    return s


def icmp4(**kw):
    s = dict(BASE, ip_version=4, src_ip="10.0.0.1", dst_ip="10.0.0.2", ip_protocol=1, tos=0, ttl=64,
             icmp_type=8, icmp_code=0)
    s.update(kw)
    return s


def tcp6(**kw):
    s = dict(BASE, eth_type=0x86DD, ip_version=6, src_ip="2001:db8::1", dst_ip="2001:db8:1::2", ip_protocol=6,
             tos=0, ttl=64, src_port=51000, dst_port=80, tcp_flags=0x02)
    s.update(kw)
    return s


def icmp6(**kw):
    s = dict(BASE, eth_type=0x86DD, ip_version=6, src_ip="fe80::1", dst_ip="ff02::1", ip_protocol=58,
             tos=0, ttl=255, icmp_type=135, icmp_code=0)
    s.update(kw)
    return s


def arp(**kw):
    s = dict(BASE, eth_type=0x0806, dst_mac="ff:ff:ff:ff:ff:ff")
    s.update(kw)
    return s


INNER = dict(dst_mac="02:00:00:00:01:02", src_mac="02:00:00:00:01:01", vlans=[{"vlan": 20, "priority": 5}],
             eth_type=0x0800, ip_version=4, src_ip="172.16.0.1", dst_ip="172.16.0.2", ip_protocol=6, tos=0,
             ttl=64, src_port=1234, dst_port=22, tcp_flags=0x18, udp_length=None, icmp_type=None,
             icmp_code=None, vni=None, inner=None)


def vxlan(**kw):
    s = udp4(src_ip="192.0.2.1", dst_ip="192.0.2.2", src_port=49152, dst_port=4789, vni=5000, inner=dict(INNER))
    s.update(kw)
    return s


def batch(*samples, agent="192.0.2.200"):
    b = {"agent_address": agent, "exporter_address": agent}
    for c in COLUMNS:
        b[c] = [s.get(c) for s in samples]
    b["vlans"] = [s.get("vlans") or [] for s in samples]
    return b


class FakeEnrich:
    COUNTRY = {"10.1.2.3": "US", "10.9.9.9": "DE", "2001:db8::1": "FR", "192.0.2.9": "GB"}
    ASN = {"10.1.2.3": 64500, "192.0.2.9": "64501"}
    GROUPS = {
        "site": [("10.1.", "lan1"), ("10.", "lan"), ("2001:db8::", "v6lan")],
        "external": [("192.0.2.", "docs"), ("198.51.100.", "docs2")],
    }

    def __init__(self):
        self.calls = 0

    def country(self, ip):
        self.calls += 1
        return self.COUNTRY.get(ip)

    def asn(self, ip):
        self.calls += 1
        return self.ASN.get(ip)

    def group(self, groupset, ip):
        self.calls += 1
        for pfx, name in self.GROUPS.get(groupset, []):
            if ip.startswith(pfx):
                return name
        return None


E = FakeEnrich()


def col(key, b, enrich=E):
    return compile_key(key).col(EvalContext(b, enrich))


def mask(expr, b, enrich=E):
    return compile_filter(expr).mask(b, enrich)


B = batch(tcp4(), udp4(), icmp4(), tcp6(), icmp6(), arp(), vxlan())
#          0       1       2        3       4        5      6

# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "key, expected",
    [
        ("agent", ["192.0.2.200"] * 7),
        ("datasource", ["3"] * 7),
        ("inputifindex", ["3"] * 7),
        ("outputifindex", ["7"] * 7),
        ("macsource", ["0CC47A7E6D4E"] * 7),
        ("macdestination", ["020000000002"] * 5 + ["FFFFFFFFFFFF", "020000000002"]),
        ("ethernetprotocol", ["2048", "2048", "2048", "34525", "34525", "2054", "2048"]),
        ("ipsource", ["10.1.2.3", "10.9.9.9", "10.0.0.1", None, None, None, "192.0.2.1"]),
        ("ipdestination", ["192.0.2.9", "198.51.100.1", "10.0.0.2", None, None, None, "192.0.2.2"]),
        ("ipprotocol", ["6", "17", "1", None, None, None, "17"]),
        ("iptos", ["184", "0", "0", None, None, None, "0"]),
        ("ipdscp", ["46", "0", "0", None, None, None, "0"]),
        ("ipttl", ["64", "63", "64", None, None, None, "63"]),
        ("ip6source", [None, None, None, "2001:db8::1", "fe80::1", None, None]),
        ("ip6destination", [None, None, None, "2001:db8:1::2", "ff02::1", None, None]),
        ("ip6nexthdr", [None, None, None, "6", "58", None, None]),
        ("tcpsourceport", ["40001", None, None, "51000", None, None, None]),
        ("tcpdestinationport", ["443", None, None, "80", None, None, None]),
        ("tcpflags", ["000010010", None, None, "000000010", None, None, None]),
        ("udpsourceport", [None, "5353", None, None, None, None, "49152"]),
        ("udpdestinationport", [None, "53", None, None, None, None, "4789"]),
        ("icmptype", [None, None, "8", None, None, None, None]),
        ("icmpcode", [None, None, "0", None, None, None, None]),
        ("icmp6type", [None, None, None, None, "135", None, None]),
        ("icmp6code", [None, None, None, None, "0", None, None]),
        ("vni", [None] * 6 + ["5000"]),
    ],
)
def test_outer_keys(key, expected):
    assert col(key, B) == expected


@pytest.mark.parametrize(
    "key, expected",
    [
        ("ipsource.1", "172.16.0.1"),
        ("ipdestination.1", "172.16.0.2"),
        ("ipprotocol.1", "6"),
        ("tcpsourceport.1", "1234"),
        ("tcpdestinationport.1", "22"),
        ("tcpflags.1", "000011000"),
        ("macsource.1", "020000000101"),
        ("macdestination.1", "020000000102"),
        ("ethernetprotocol.1", "2048"),
        ("vlan.1", "20"),
        ("priority.1", "5"),
        ("udpdestinationport.1", None),
        ("ip6source.1", None),
    ],
)
def test_inner_keys(key, expected):
    assert col(key, B) == [None] * 6 + [expected]


def test_inner_ipv6_udp_and_second_level():
    inner2 = dict(INNER, src_ip="10.10.10.10", ip_version=4, ip_protocol=17, src_port=1, dst_port=2)
    inner = dict(INNER, eth_type=0x86DD, ip_version=6, src_ip="2001:db8::5", dst_ip="2001:db8::6",
                 ip_protocol=17, src_port=4000, dst_port=4789, tcp_flags=None, vni=77, inner=inner2)
    b = batch(vxlan(inner=inner), tcp4())
    assert col("ip6source.1", b) == ["2001:db8::5", None]
    assert col("udpdestinationport.1", b) == ["4789", None]
    assert col("udpsourceport.1", b) == ["4000", None]
    assert col("ipsource.1", b) == [None, None]
    assert col("vni.1", b) == ["77", None]
    assert col("ipsource.2", b) == ["10.10.10.10", None]
    assert col("udpdestinationport.2", b) == ["2", None]


def test_vlan_from_tag_else_extended_switch():
    b = batch(tcp4(vlans=[{"vlan": 100, "priority": 3}, {"vlan": 200, "priority": 0}], src_vlan=5),
              tcp4(src_vlan=10, src_priority=2), tcp4())
    assert col("vlan", b) == ["100", "10", None]
    assert col("priority", b) == ["3", "2", None]


def test_extended_switch_vlan_and_priority_are_32_bit():
    """akvorado__data-1140.pcap's agent reports extended-switch VLAN 4294967295: the key raised
    IndexError, which crashed the worker's flow agent and lost that batch's samples downstream."""
    b = batch(tcp4(src_vlan=70000, src_priority=4294967295), tcp4(src_vlan=65535, src_priority=7))
    assert col("vlan", b) == ["70000", "65535"]
    assert col("priority", b) == ["4294967295", "7"]


def test_ifindex_only_for_format_0_and_large_values():
    b = batch(tcp4(input=1_000_001, output_format=2, output=3), tcp4(input_format=1, input=4))
    assert col("inputifindex", b) == ["1000001", None]
    assert col("outputifindex", b) == [None, "7"]


def test_datasource_non_ifindex_class():
    b = batch(tcp4(source_id_type=1, source_id_index=100), tcp4(source_id_index=42))
    assert col("datasource", b) == ["1.100", "42"]


def test_missing_columns_are_missing_keys():
    b = {"agent_address": "a", "sampling_rate": [1, 1], "frame_length": [10, 20]}
    assert col("ipsource", b) == [None, None]
    assert col("tcpflags", b) == [None, None]
    assert col("ipsource.1", b) == [None, None]


def test_real_example_datum():
    raw = json.loads((ROOT / "schemas" / "examples" / "flow_sample_batch.v1.json").read_text())
    fd = parse_definition("t", {"keys": "ipsource,ipdestination,ipprotocol,vlan", "value": "frames"})
    out = compile_flow(fd).evaluate(raw, E)
    assert out == [(0, "10.245.145.149,198.51.100.77,17,10", 1000), (1, "10.1.1.10,192.0.2.11,6,10", 1000)]


# ---------------------------------------------------------------- key functions


def test_country_asn_group():
    assert col("country:ipsource", B)[:4] == ["US", "DE", None, None]
    assert col("asn:ipsource", B)[:2] == ["64500", None]
    assert col("asn:ipdestination", B)[0] == "64501"
    assert col("group:ipsource:site", B)[:4] == ["lan1", "lan", "lan", None]
    # several group sets: first match wins, in order
    assert col("group:ipdestination:site:external", B)[:3] == ["docs", "docs2", "lan"]
    assert col("group:ipdestination:nosuch", B)[0] is None


def test_enrichment_looked_up_once_per_distinct_value():
    e = FakeEnrich()
    b = batch(*[tcp4() for _ in range(50)], *[udp4() for _ in range(50)])
    assert col("country:ipsource", b, e) == ["US"] * 50 + ["DE"] * 50
    assert e.calls == 2


def test_null_and_or():
    assert col("null:tcpsourceport:none", B) == ["40001", "none", "none", "51000", "none", "none", "none"]
    assert col("null:country:ipsource:XX", B)[:3] == ["US", "DE", "XX"]
    assert col("null:ipsource:", B)[3] == ""
    assert col("or:ipsource:ip6source", B)[:6] == ["10.1.2.3", "10.9.9.9", "10.0.0.1", "2001:db8::1", "fe80::1", None]
    assert col("or:tcpdestinationport:udpdestinationport:icmptype", B)[:4] == ["443", "53", "8", "80"]


def test_nesting_plain_and_bracketed():
    assert col("country:or:ipsource:ip6source", B)[:4] == ["US", "DE", None, "FR"]
    assert col("country:[or:ipsource:ip6source]", B)[:4] == ["US", "DE", None, "FR"]
    assert col("null:[country:[or:ipsource:ip6source]]:ZZ", B)[:6] == ["US", "DE", "ZZ", "FR", "ZZ", "ZZ"]
    assert col("prefix:[mask:ipsource:16]:/:1", B)[0] == "10.1.0.0"


def test_mask():
    assert col("mask:ipsource:24", B)[:3] == ["10.1.2.0/24", "10.9.9.0/24", "10.0.0.0/24"]
    assert col("mask:ipsource:8", B)[0] == "10.0.0.0/8"
    assert col("mask:ipsource:32", B)[0] == "10.1.2.3/32"
    assert col("mask:ip6source:48", B)[3] == "2001:db8::/48"
    # bits over 32 on IPv4 are capped; a second argument is the IPv6 length
    assert col("mask:[or:ipsource:ip6source]:64", B)[:4] == [
        "10.1.2.3/32", "10.9.9.9/32", "10.0.0.1/32", "2001:db8::/64"]
    assert col("mask:[or:ipsource:ip6source]:16:32", B)[:4] == [
        "10.1.0.0/16", "10.9.0.0/16", "10.0.0.0/16", "2001:db8::/32"]
    # not an address: missing
    assert col("mask:tcpsourceport:8", B)[0] is None


def test_prefix_suffix():
    assert col("prefix:ipsource:.:2", B)[:2] == ["10.1", "10.9"]
    assert col("suffix:ipsource:.:1", B)[:2] == ["3", "9"]
    assert col("prefix:[prefix:ipsource:.:3]:.:2", B)[0] == "10.1"
    with pytest.raises(FlowSpecError, match="empty separator"):
        compile_key("prefix:ip6source::2")  # ':' cannot be a separator: arguments split on ':'
    assert col("prefix:ipsource:.:0", B)[0] == ""


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("ipprotocol=6", [1, 0, 0, 0, 0, 0, 0]),
        ("ipprotocol=6,17", [1, 1, 0, 0, 0, 0, 1]),
        ("ipprotocol!=6", [0, 1, 1, 0, 0, 0, 1]),  # missing key: no match, even for !=
        ("ipprotocol!=6,17", [0, 0, 1, 0, 0, 0, 0]),
        ("ipsource~10\\..*", [1, 1, 1, 0, 0, 0, 0]),
        ("ipsource~10\\.1", [0, 0, 0, 0, 0, 0, 0]),  # full match, like Java's Pattern.matches
        ("ipsource!~10\\..*", [0, 0, 0, 0, 0, 0, 1]),
        ("ipsource~10\\.1\\..*,192\\..*", [1, 0, 0, 0, 0, 0, 1]),
        ("tcpflags~.......1.", [1, 0, 0, 1, 0, 0, 0]),  # SYN set
        ("ipprotocol=6|ipprotocol=17&udpdestinationport=53", [1, 1, 0, 0, 0, 0, 0]),  # & binds tighter
        ("(ipprotocol=6|ipprotocol=17)&udpdestinationport=53", [0, 1, 0, 0, 0, 0, 0]),
        ("ipprotocol=17&udpdestinationport=53|ipprotocol=6", [1, 1, 0, 0, 0, 0, 0]),
        ("ipprotocol=17&(udpdestinationport=53|ipprotocol=6)", [0, 1, 0, 0, 0, 0, 0]),
        ("((ipprotocol=6))", [1, 0, 0, 0, 0, 0, 0]),
        ("ipprotocol=6,17&country:ipsource!=US", [0, 1, 0, 0, 0, 0, 0]),
        ("null:country:ipsource:none=none", [0, 0, 1, 1, 1, 1, 1]),
        ("country:[or:ipsource:ip6source]=FR,US", [1, 0, 0, 1, 0, 0, 0]),
        ("group:ipsource:site=lan", [0, 1, 1, 0, 0, 0, 0]),
        ("mask:ipsource:24=10.1.2.0/24", [1, 0, 0, 0, 0, 0, 0]),
        ("ipsource.1=172.16.0.1&vni=5000", [0, 0, 0, 0, 0, 0, 1]),
        ("ethernetprotocol=2054", [0, 0, 0, 0, 0, 1, 0]),
        ("macsource=0CC47A7E6D4E", [1] * 7),
        ("ip6source=2001:db8::1", [0, 0, 0, 1, 0, 0, 0]),
        (" ipprotocol = 6 | ( icmptype = 8 ) ", [1, 0, 1, 0, 0, 0, 0]),
    ],
)
def test_filters(expr, expected):
    assert mask(expr, B) == [bool(x) for x in expected]


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("ipsrc=10.0.0.1", "unknown flow key 'ipsrc'"),
        ("ipprotocol=6)", "unexpected token ')' at 12"),
        ("(ipprotocol=6", "missing ')'"),
        ("ipprotocol=6&", "unexpected end of filter"),
        ("ipprotocol=6&|ipprotocol=17", "unexpected token '|' at 13"),
        ("ipprotocol", "expected a comparison operator"),
        ("=6", "unexpected token '='"),
        ("ipprotocol=", "missing value"),
        ("ipsource~(", "bad pattern '('"),
        ("bogus:ipsource=1", "unknown flow key 'bogus'"),
        ("mask:ipsource:x=1", "bad mask bits 'x'"),
        ("mask:ipsource:200=1", "bad mask bits '200'"),
        ("group:ipsource=1", "function 'group' needs group set names"),
        ("null:ipsource=1", "function 'null' is missing its default"),
        ("country=US", "missing flow key"),
        ("country:ipsource:extra=US", "unexpected argument 'extra'"),
        ("inputifindex.1=3", "unknown flow key 'inputifindex.1'"),
        ("country:[ipsource=US", "unbalanced '['"),
        ("", "empty filter"),
        ("()", "unexpected token ')' at 1"),
        ("(" * 100 + "ipprotocol=6" + ")" * 100, "nested too deeply"),
    ],
)
def test_filter_errors_name_the_token(expr, fragment):
    with pytest.raises(FlowSpecError) as ei:
        compile_filter(expr)
    assert fragment in str(ei.value)
    assert isinstance(ei.value, ValueError)


_ALPHABET = "()&|=!~,:.[]_ 0123456789abcdefipsourcentdlgmaxkyvUS*\\+?{}^$-/"
_TOKENS = ["ipsource", "ipprotocol", "tcpflags", "country:", "group:", "null:", "or:", "mask:", "prefix:",
           "=", "!=", "~", "!~", "&", "|", "(", ")", ",", "[", "]", ":", ".1", "6", "10.0.0.1", ".*", "(?P<a>x)", "\\"]


@settings(max_examples=400)
@given(st.one_of(st.text(alphabet=_ALPHABET, max_size=40),
                 st.lists(st.sampled_from(_TOKENS), max_size=12).map("".join),
                 st.text(max_size=20)))
def test_random_filters_only_raise_flowspecerror(expr):
    try:
        f = compile_filter(expr)
    except FlowSpecError:
        return
    # whatever compiled also evaluates without raising
    out = f.mask(B, E)
    assert len(out) == 7 and all(isinstance(x, bool) for x in out)


@settings(max_examples=200)
@given(st.one_of(st.text(alphabet=_ALPHABET, max_size=30), st.lists(st.sampled_from(_TOKENS), max_size=8).map("".join)))
def test_random_keys_only_raise_flowspecerror(text):
    try:
        k = compile_key(text)
    except FlowSpecError:
        return
    assert len(k.col(EvalContext(B, E))) == 7


# ---------------------------------------------------------------- definitions


def test_parse_definition_defaults_and_list_keys():
    fd = parse_definition("pair", {"keys": "ipsource, ipdestination"})
    assert fd == FlowDef(name="pair", keys=("ipsource", "ipdestination"), value="bytes", filter=None, t=2.0, n=5,
                         fs=",")
    fd = parse_definition("p", {"keys": ["ipsource", "prefix:ipsource:,:2"], "value": "frames", "fs": "_SEP_"})
    assert fd.keys == ("ipsource", "prefix:ipsource:,:2")
    fd = parse_definition("p", {"keys": "ipsource,[prefix:ipsource:,:2]"})
    assert fd.keys == ("ipsource", "[prefix:ipsource:,:2]")
    with pytest.raises(Exception):
        fd.t = 3  # frozen


@pytest.mark.parametrize("t, want", [(0.01, 0.2), (0.2, 0.2), (10, 10.0), (601, 600.0), ("5", 5.0)])
def test_t_clamped(t, want):
    assert parse_definition("x", {"keys": "ipsource", "t": t}).t == want


@pytest.mark.parametrize("n, want", [(1, 5), (5, 5), (12, 12), (100, 20)])
def test_n_clamped(n, want):
    assert parse_definition("x", {"keys": "ipsource", "n": n}).n == want


@pytest.mark.parametrize(
    "d, fragment",
    [
        ({"keys": "ipsrc"}, "unknown flow key 'ipsrc'"),
        ({"keys": "ipsource,,ipdestination"}, "empty flow key"),
        ({"keys": 5}, "keys must be"),
        ({"keys": "ipsource", "aggMode": "median"}, "unknown aggMode 'median'"),
        ({"keys": "ipsource", "dropped": "yes"}, "dropped must be true or false"),
        ({"keys": "reason"}, "'reason' is a key of discarded-packet notifications: set dropped: true"),
        ({"keys": "map:macsource:members"}, "'map' needs data sFlow does not carry"),
        ({"keys": "ipsource", "value": "octets"}, "unknown flow value 'octets'"),
        ({"keys": "ipsource", "filter": "ipsource=1)"}, "unexpected token ')'"),
        ({"keys": "ipsource", "t": "soon"}, "t must be a number"),
        ({"keys": "ipsource", "n": float("nan")}, "n must be a number"),
        ({"keys": "ipsource", "bogus": 1}, "unknown attribute 'bogus'"),
        ({"keys": "ipsource", "fs": 1}, "fs must be a string"),
        ({"keys": "mask:ipsource"}, "function 'mask' is missing its mask bits"),
    ],
)
def test_parse_definition_errors(d, fragment):
    with pytest.raises(FlowSpecError, match=re.escape(fragment)):
        parse_definition("f", d)


def test_vocabulary_exposed():
    assert {"ipsource", "ip6source", "tcpflags", "macsource", "agent", "datasource"} <= KEY_NAMES
    assert {"country", "asn", "group", "null", "or", "mask", "prefix"} <= FUNCTION_NAMES


# ---------------------------------------------------------------- evaluate


def test_evaluate_values():
    b = batch(tcp4(frame_length=100, sampling_rate=10), tcp4(frame_length=None, sampling_rate=10), udp4())
    rows = lambda v: compile_flow(parse_definition("f", {"keys": "ipsource", "value": v})).evaluate(b, E)
    assert rows("bytes") == [(0, "10.1.2.3", 1000), (2, "10.9.9.9", 100_000)]
    assert rows("bps") == [(0, "10.1.2.3", 8000), (2, "10.9.9.9", 800_000)]
    assert rows("frames") == [(0, "10.1.2.3", 10), (1, "10.1.2.3", 10), (2, "10.9.9.9", 100)]
    assert rows("fps") == rows("frames")


def test_evaluate_needs_every_key_and_filter():
    cf = compile_flow(parse_definition("f", {"keys": "ipsource,tcpdestinationport", "value": "frames", "fs": "|",
                                             "filter": "ipsource~10\\..*"}))
    assert cf.evaluate(B, E) == [(0, "10.1.2.3|443", 100)]
    cf = compile_flow(parse_definition("f", {"keys": "or:ipsource:ip6source,null:tcpdestinationport:-",
                                             "value": "frames"}))
    assert [r[1] for r in cf.evaluate(B, E)] == [
        "10.1.2.3,443", "10.9.9.9,-", "10.0.0.1,-", "2001:db8::1,80", "fe80::1,-", "192.0.2.1,-"]


def test_filter_with_no_match_returns_empty():
    cf = compile_flow(parse_definition("f", {"keys": "ipsource", "filter": "ipprotocol=99"}))
    assert cf.evaluate(B, E) == []


def test_shared_context_across_flows():
    e = FakeEnrich()
    ctx = EvalContext(B, e)
    f1 = compile_flow(parse_definition("a", {"keys": "country:ipsource"}))
    f2 = compile_flow(parse_definition("b", {"keys": "ipdestination", "filter": "country:ipsource=US"}))
    r1 = f1.evaluate(B, e, ctx)
    calls = e.calls
    r2 = f2.evaluate(B, e, ctx)
    assert e.calls == calls  # country:ipsource column reused
    assert [r[1] for r in r1] == ["US", "DE"]
    assert r2 == [(0, "192.0.2.9", 100_000)]


def test_empty_batch():
    b = batch()
    cf = compile_flow(parse_definition("f", {"keys": "ipsource,country:ipsource", "filter": "ipprotocol=6"}))
    assert cf.evaluate(b, E) == []
    assert compile_filter("ipprotocol=6").mask(b, E) == []
