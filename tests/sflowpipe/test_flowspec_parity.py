"""sFlow-RT parity of the flow language: tunnel ids, direction, ip_offset, oui:, link:, key=null,
flows without keys, aggMode and dropped (parsing), keys sFlow does not carry."""

from __future__ import annotations

import pytest

from sflowpipe.config_plane import DefinitionError, parse
from sflowpipe.flowspec import (
    EvalContext,
    FlowSpecError,
    compile_filter,
    compile_flow,
    compile_key,
    parse_definition,
)
from sflowpipe.topology import parse_topology
from tests.sflowpipe.test_flowspec import INNER, batch, tcp4, udp4, vxlan


def col(expr, b, topology=None):
    return compile_key(expr).col(EvalContext(b, None, topology))


def mask(expr, b, topology=None):
    return compile_filter(expr).mask_ctx(EvalContext(b, None, topology))


def nvgre(**kw):
    s = tcp4(src_ip="192.0.2.5", dst_ip="192.0.2.6", ip_protocol=47, src_port=None, dst_port=None, tcp_flags=None,
             vni=77, inner=dict(INNER))
    s.update(kw)
    return s


# ---------------------------------------------------------------- tunnel identifiers


def test_vxlanvni_genevevni_and_grevsid_tell_the_tunnel_apart_and_vni_stays_an_alias():
    b = batch(vxlan(), nvgre(), tcp4(), vxlan(vni=16777215), vxlan(dst_port=6081, vni=42))
    assert col("vxlanvni", b) == ["5000", None, None, "16777215", None]
    assert col("genevevni", b) == [None, None, None, None, "42"]
    assert col("grevsid", b) == [None, "77", None, None, None]
    assert col("vni", b) == ["5000", "77", None, "16777215", "42"]
    assert col("vxlanvni.1", b) == [None] * 5  # the inner packets carry no tunnel
    assert mask("vxlanvni=5000", b) == [True, False, False, False, False]


# ---------------------------------------------------------------- InMon's fabric-view keys


def test_dscp_names_and_isbroadcast():
    b = batch(tcp4(tos=0xB8), tcp4(tos=0x00), tcp4(tos=0x28 << 0), tcp4(tos=0x0C), tcp4(tos=0x04),
              dict(tcp4(), ip_version=6, src_ip="2001:db8::1", tos=0x88), udp4(dst_mac="ff:ff:ff:ff:ff:ff"))
    assert col("ipdscpname", b) == ["ef", "cs0", "af11", "3", "le", None, "cs0"]
    assert col("ip6dscpname", b) == [None] * 5 + ["af41", None]
    assert col("isbroadcast", b) == ["false"] * 6 + ["true"]
    assert mask("isbroadcast=true", b) == [False] * 6 + [True]


# ---------------------------------------------------------------- direction


def test_direction_is_where_the_data_source_sits_on_the_packets_path():
    b = batch(tcp4(source_id_index=3, input=3, output=7), tcp4(source_id_index=7, input=3, output=7),
              tcp4(source_id_index=9, input=3, output=7), tcp4(source_id_type=1, source_id_index=3, input=3),
              tcp4(source_id_index=3, input_format=1, input=3, output=3))
    assert col("direction", b) == ["ingress", "egress", None, None, "egress"]
    assert mask("direction=ingress", b) == [True, False, False, False, False]
    with pytest.raises(FlowSpecError, match="no tunnel level"):
        compile_key("direction.1")


# ---------------------------------------------------------------- ip_offset


def test_ip_offset_outer_and_inner_and_the_outer_one_is_a_cold_column():
    b = batch(vxlan(inner=dict(INNER, ip_offset=64)), tcp4(), udp4())
    b["ip_offset"] = [14, 18, None]
    assert col("ip_offset", b) == ["14", "18", None]
    assert col("ip_offset.1", b) == ["64", None, None]
    assert mask("ip_offset!=null", b) == [True, True, False]
    assert compile_flow(parse_definition("f", {"keys": "ipsource,ip_offset"})).needs == {"ip_offset"}
    assert compile_flow(parse_definition("f", {"keys": "ipsource", "filter": "ip_offset=18"})).needs == {"ip_offset"}
    assert not compile_flow(parse_definition("f", {"keys": "ip_offset.1"})).needs  # inner is hot
    assert not compile_flow(parse_definition("f", {"keys": "ipsource"})).needs


# ---------------------------------------------------------------- oui:


def test_oui_gives_the_prefix_and_the_registered_vendor_offline():
    b = batch(tcp4(src_mac="00:0c:29:a1:b2:c3"), tcp4(src_mac="00:50:56:01:02:03"), tcp4(src_mac=None),
              tcp4(src_mac="02:00:00:00:00:01"))
    assert col("oui:macsource", b) == ["000C29", "005056", None, "020000"]
    # netaddr's copy of the IEEE registry: both are VMware's; a locally administered MAC has none
    assert col("oui:macsource:name", b) == ["VMware, Inc.", "VMware, Inc.", None, None]
    assert col("macsource,oui:macsource:name".split(",")[1], b)[0] == "VMware, Inc."
    assert mask("oui:macsource:name=VMware, Inc.", b) == [False, False, False, False]  # ',' separates values
    assert mask("oui:macsource:name~VMware.*", b) == [True, True, False, False]
    fd = parse_definition("srcs", {"keys": "macsource,oui:macsource:name", "value": "frames"})
    assert [k for _, k, _ in compile_flow(fd).evaluate(b)] == ["000C29A1B2C3,VMware, Inc.", "005056010203,VMware, Inc."]


# ---------------------------------------------------------------- link: over a topology

TOPO = {
    "nodes": {"leaf1": {"agent": "192.0.2.200", "ports": {"swp1": {"ifindex": "3"}, "swp2": {"ifindex": "4"}}},
              "spine1": {"agent": "192.0.2.201", "ports": {"swp9": {"ifindex": 9}}}},
    "links": {"leaf1-spine1": {"node1": "leaf1", "port1": "swp1", "node2": "spine1", "port2": "swp9"}},
}


def test_link_resolves_agent_and_ifindex_to_the_link_name():
    topo = parse_topology(TOPO)
    b = batch(tcp4(input=3, output=7), tcp4(input=4, output=3), tcp4(input=9, output=3))
    assert col("link:inputifindex", b, topo) == ["leaf1-spine1", None, None]
    assert col("link:outputifindex", b, topo) == [None, "leaf1-spine1", "leaf1-spine1"]
    assert col("link:inputifindex", b) == [None, None, None]  # no topology imported
    other = batch(tcp4(input=9), agent="192.0.2.201")
    assert col("link:inputifindex", other, topo) == ["leaf1-spine1"]  # ifindex given as a number
    # InMon's IXP app: edge traffic is what did not come in on an inter-switch link
    assert mask("direction=ingress&link:inputifindex=null", batch(tcp4(source_id_index=4, input=4),
                                                                  tcp4(source_id_index=3, input=3)), topo) == [
        True, False]


@pytest.mark.parametrize("body, fragment", [
    ([], "expected an object"),
    ({"nodes": {}, "links": {}, "switches": {}}, "unknown attribute 'switches'"),
    ({"nodes": {"a": {"ports": {"p": {"ifindex": "x3"}}}}}, "bad ifindex 'x3'"),
    ({"links": {"l": {"node1": "a", "port1": "p", "node2": "b"}}}, "port2 must be a non-empty string"),
    ({"nodes": {"a": "leaf"}}, "node 'a' must be an object"),
])
def test_topology_refusals_name_the_fault(body, fragment):
    with pytest.raises(DefinitionError, match=fragment) as e:
        parse("topology", "topology", body)
    assert "field" in e.value.detail


def test_topology_parse_keeps_the_body_and_has_one_name():
    t = parse("topology", "topology", TOPO)
    assert t.as_json() == TOPO and t.resolved_ends == 2
    assert t.model_dump(by_alias=True, exclude_none=True) == TOPO  # as the API dumps typed definitions
    with pytest.raises(DefinitionError, match="named 'topology'"):
        parse("topology", "lab", TOPO)


# ---------------------------------------------------------------- or:, key=null


def test_or_in_keys_and_filters_as_sflow_rt_documents():
    b = batch(tcp4(), dict(tcp4(), ip_version=6, src_ip="2001:db8::7", eth_type=0x86DD), udp4(src_ip=None))
    assert col("or:ipsource:ip6source", b) == ["10.1.2.3", "2001:db8::7", None]
    assert mask("or:ipsource:ip6source=2001:db8::7", b) == [False, True, False]
    assert mask("or:ipsource:ip6source=null", b) == [False, False, True]


def test_null_compares_absent_keys_only():
    b = batch(tcp4(), udp4())
    assert mask("tcpdestinationport=null", b) == [False, True]
    assert mask("tcpdestinationport!=null", b) == [True, False]
    assert mask("tcpdestinationport=null,443", b) == [True, True]
    assert mask("tcpdestinationport!=443", b) == [False, False]  # still: absent is never != a value


# ---------------------------------------------------------------- definitions


def test_flow_without_keys_is_one_flow_the_total():
    b = batch(tcp4(), udp4(), tcp4(frame_length=None))
    fd = parse_definition("total", {"value": "frames", "filter": "ipprotocol=6"})
    assert fd.keys == ()
    assert compile_flow(fd).evaluate(b) == [(0, "", 100), (2, "", 100)]
    assert compile_flow(parse_definition("t", {"keys": ""})).evaluate(b) == [(0, "", 100000), (1, "", 100000)]


def test_aggmode_and_dropped_are_kept_with_sflow_rt_names():
    fd = parse_definition("f", {"keys": "outputifindex", "aggMode": "AGENT"})
    assert fd.agg_mode == "agent" and not fd.dropped
    fd = parse_definition("d", {"keys": "reason", "value": "frames", "dropped": True, "aggMode": "edge"})
    assert (fd.agg_mode, fd.dropped) == ("edge", True)
    typed = parse("flow", "d", {"keys": "reason", "value": "frames", "dropped": True, "aggMode": "edge"})
    assert typed.model_dump(by_alias=True)["aggMode"] == "edge" and typed.dropped
    assert parse("flow", "t", {"value": "bytes"}).keys == ""


@pytest.mark.parametrize("body, detail", [
    ({"keys": "ipsource", "aggMode": "median"}, {"field": "aggMode", "token": "median", "position": 0}),
    ({"keys": "ipsource,reason"}, {"field": "keys", "token": "reason", "position": 9}),
    ({"keys": "ipsource", "filter": "reason=acl"}, {"field": "filter", "token": "reason", "position": 0}),
    ({"keys": "ipsource,map:macsource:members"}, {"field": "keys", "token": "map", "position": 9}),
    ({"keys": "ipsource", "filter": "ipsource=1&map:ipsource:m=x"}, {"field": "filter", "token": "map",
                                                                   "position": 11}),
    ({"keys": "link:nosuchkey"}, {"field": "keys", "token": "nosuchkey", "position": 5}),
    ({"keys": "oui:macsource:vendor"}, {"field": "keys", "token": "vendor"}),
    ({"keys": "ipsource", "bogus": True}, {"field": "bogus"}),
])
def test_config_parse_refuses_new_fields_and_keys_with_field_token_position(body, detail):
    with pytest.raises(DefinitionError) as e:
        parse("flow", "f", body)
    for k, v in detail.items():
        assert e.value.detail.get(k) == v, e.value.detail


@pytest.mark.parametrize("key, source", [
    ("map:macsource:ixp_member", "setMap"),  # InMon's IXP app
    ("bgpdestinationaspath", "BGP sessions"),  # InMon's active route manager
    ("bgpsourceas", "BGP sessions"),
    ("country:bgpnexthop", "BGP sessions"),
])
def test_keys_sflow_does_not_carry_are_refused_as_such_not_as_unknown(key, source):
    with pytest.raises(FlowSpecError) as e:
        compile_key(key)
    assert "needs data sFlow does not carry" in str(e.value) and source in str(e.value)
    assert "unknown flow key" not in str(e.value) and e.value.token


def test_readme_flow_keys_table_lists_every_key_and_function():
    """The README's "Flow keys" tables name every base key and key function the compiler knows."""
    from pathlib import Path

    from sflowpipe.flowspec import FUNCTION_NAMES, KEY_NAMES

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("### Flow keys"):text.index("### Outputs")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {tok.strip("`") for r in rows for tok in r.split("|")[1].replace(",", " ").split() if tok.startswith("`")}
    missing = {k for k in KEY_NAMES if k not in named}
    assert not missing, missing
    functions = {n.split(":")[0] for n in named if ":" in n}
    assert set(FUNCTION_NAMES) <= functions, set(FUNCTION_NAMES) - functions


def test_readme_processors_example_definitions_parse():
    """The definitions example in the README's Processors section is accepted as written."""
    from pathlib import Path

    import yaml

    from sflowpipe.config_plane import file_definitions

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Processors"):]
    block = section[section.index("```yaml") + len("```yaml"):]
    data = yaml.safe_load(block[:block.index("```")])
    todo = file_definitions(data)
    assert {k for k, _, _ in todo} == {"flow", "threshold", "group", "topology"}
    typed = {(k, n): parse(k, n, b) for k, n, b in todo}
    assert typed[("flow", "drops")].dropped
    assert typed[("topology", "topology")].link("192.0.2.1", "1") == "leaf1-spine1"
