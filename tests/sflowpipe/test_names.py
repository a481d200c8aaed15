"""sFlow-RT's names: data sources, flow keys, agent lists."""

from __future__ import annotations

import pytest

from sflowpipe.flowspec import parse_definition
from sflowpipe.names import data_source, data_sources, parse_agents, split_flow_key, split_keys


def test_data_source_names():
    assert data_source(0, 3) == "3"  # an interface: its ifIndex
    assert data_source(1, 100) == "1.100"  # smonVlanDataSource, VLAN 100
    assert data_source(2, 7) == "2.7"
    assert data_source(3, 17) == "3.17"


def test_data_sources_of_batch_columns():
    assert data_sources([0, 0, 1, None], [3, 3, 10, 4]) == ["3", "3", "1.10", None]
    assert data_sources([], []) == []


@pytest.mark.parametrize("spec,keys", [
    ("ipsource,ipdestination", ["ipsource", "ipdestination"]),
    (" ipsource , tcpsourceport ", ["ipsource", "tcpsourceport"]),
    ("", []),
    ("  ", []),
    ("null:[asn:ipsource:both]:unknown,ipdestination", ["null:[asn:ipsource:both]:unknown", "ipdestination"]),
    ("null:[prefix:ipsource:,:1]:none,ipdestination", ["null:[prefix:ipsource:,:1]:none", "ipdestination"]),
    ("ipsource,,ipdestination", ["ipsource", "", "ipdestination"]),  # kept: the compiler names the empty key
    ("ipsource,", ["ipsource", ""]),
])
def test_split_keys(spec, keys):
    assert split_keys(spec) == keys


def test_split_keys_is_what_the_compiler_splits():
    spec = "null:[prefix:ipsource:,:1]:none,or:[ipsource]:[ip6source],ipprotocol"
    assert list(parse_definition("f", {"keys": spec}).keys) == split_keys(spec)


def test_split_flow_key_by_the_flows_separator():
    assert split_flow_key("10.0.0.1,10.0.0.2") == ["10.0.0.1", "10.0.0.2"]
    assert split_flow_key("10.0.0.1|a,b", "|") == ["10.0.0.1", "a,b"]  # a value with a comma survives
    assert split_flow_key("10.0.0.1_SEP_443", "_SEP_") == ["10.0.0.1", "443"]  # sFlow-RT's prometheus app
    assert split_flow_key("a,b", "") == ["a,b"]
    assert split_flow_key("") == [""]  # a flow without keys has the one key ""


@pytest.mark.parametrize("spec,agents", [
    ("ALL", None),
    ("", None),
    ("10.0.0.1", ["10.0.0.1"]),
    ("10.0.0.1;switch1", ["10.0.0.1", "switch1"]),  # sFlow-RT's separator
    ("10.0.0.1,10.0.0.2", ["10.0.0.1", "10.0.0.2"]),
    ("2001%3Adb8%3A%3A1;", ["2001:db8::1"]),  # URL-encoded, trailing separator
])
def test_agent_lists(spec, agents):
    assert parse_agents(spec) == agents
