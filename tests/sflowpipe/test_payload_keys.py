"""Payload flow keys (ARP, DNS, ICMP echo, application records) and the ``requests`` value over flow
batches built through the real encode, decode, batching and Avro path; the cold-column mechanism
(a flow that reads them makes the app decode whole batches, only while it is defined)."""

from __future__ import annotations

import pytest

from processors.app import decode_flow_batch
from sflowpipe.config_plane import DefinitionError, parse
from processors.engine import Engine
from processors.enrich import Enricher
from sflowpipe.flowspec import KEY_NAMES, EvalContext, FlowSpecError, compile_flow, compile_key, parse_definition
from schemas.codec import Codec
from schemas.definitions import hot_field_count
from sflowpipe.settings import EnrichSettings
from tests.payload_frames import (
    app_op,
    arp_frame,
    datagram,
    dns_frame,
    echo_frame,
    flow_batch,
    header_sample,
    http,
    memcache,
    record_sample,
    socket4,
    tcp_frame,
)


def key(name: str, batch: dict) -> list:
    return compile_key(name).col(EvalContext(batch))


def flow(body: dict, batch: dict) -> list:
    return compile_flow(parse_definition("f", body)).evaluate(batch)


@pytest.fixture(scope="module")
def mixed():
    return flow_batch([
        header_sample(arp_frame(1, "10.0.0.1", "10.0.0.2", vlan=5), 1),                       # 0 ARP request
        header_sample(arp_frame(2, "10.0.0.2", "10.0.0.1"), 2),                               # 1 ARP reply
        header_sample(dns_frame("10.0.0.9", "10.0.0.53", 0x1111, "www.example.com", 28), 3),  # 2 DNS query
        header_sample(dns_frame("10.0.0.9", "10.0.0.53", 0x1111, "www.example.com", 28, response=True, rcode=3), 4),
        header_sample(dns_frame("10.0.0.9", "10.0.0.53", 2, "a-long-name.example.org"), 5, cut=56),  # 4 name cut
        header_sample(echo_frame("10.0.0.1", "10.0.0.2", 0x4D2, 77), 6),                      # 5 echo request
        header_sample(echo_frame("10.0.0.2", "10.0.0.1", 0x4D2, 77, reply=True), 7),          # 6 echo reply
        header_sample(tcp_frame("10.0.0.1", "10.0.0.80"), 8),                                 # 7 plain TCP
        record_sample((http(), socket4()), 9),                                                # 8 HTTP + socket
        record_sample((memcache(),), 10),                                                     # 9 memcache
        record_sample((app_op(),), 11),                                                       # 10 app operation
    ])


def test_arp_keys(mixed):
    assert key("arpoperation", mixed)[:3] == ["1", "2", None]
    assert key("arpipsender", mixed)[:3] == ["10.0.0.1", "10.0.0.2", None]
    assert key("arpiptarget", mixed)[:2] == ["10.0.0.2", "10.0.0.1"]
    assert key("arpmacsender", mixed)[:2] == ["0CC47A7E6D4E", "0CC47A7E6D4E"]
    assert key("arpmactarget", mixed)[:2] == ["000000000000", "020000000002"]
    assert all(v is None for v in key("arpoperation", mixed)[2:])


def test_dns_keys(mixed):
    assert key("dnsqname", mixed)[2:5] == ["www.example.com.", "www.example.com.", None]
    assert key("dnsqr", mixed)[2:5] == ["false", "true", "false"]
    assert key("dnsqtype", mixed)[2:4] == ["28", "28"]
    assert key("dnsqtypename", mixed)[2:4] == ["AAAA", "AAAA"]
    assert key("dnsqclass", mixed)[2] == "1"
    assert key("dnsrcode", mixed)[2:4] == ["0", "3"]
    assert key("dnsid", mixed)[2:5] == ["4369", "4369", "2"]
    assert key("dnsrd", mixed)[3] == "true" and key("dnsra", mixed)[2:4] == ["false", "true"]
    assert key("dnsancount", mixed)[2:4] == ["0", "1"] and key("dnsopcode", mixed)[2] == "0"
    assert key("dnsaa", mixed)[3] == "false" and key("dnstc", mixed)[3] == "false"
    assert all(v is None for i, v in enumerate(key("dnsqr", mixed)) if i not in (2, 3, 4))
    # key functions over them: sFlow-RT's "top level domains" shortcut
    assert key("suffix:dnsqname:.:2", mixed)[2] == "com."


def test_icmp_echo_keys(mixed):
    assert key("icmpseqno", mixed)[5:8] == ["77", "77", None]
    assert key("icmpid", mixed)[5:7] == ["1234", "1234"]
    assert key("icmptype", mixed)[5:7] == ["8", "0"]


def test_application_record_keys(mixed):
    assert key("httpmethod", mixed)[8] == "GET"
    assert key("httpurl", mixed)[8] == "/index.html" and key("httphost", mixed)[8] == "www.example.com"
    assert key("httpstatus", mixed)[8] == "200" and key("httpprotocol", mixed)[8] == "HTTP/1.1"
    assert key("httpuseragent", mixed)[8] == "curl/8.0" and key("httpmimetype", mixed)[8] == "text/html"
    assert key("httpreferer", mixed)[8] is None  # empty string: the request had none
    assert key("serveraddress", mixed)[8] == "10.0.0.80" and key("clientaddress", mixed)[8] == "10.0.0.99"
    assert key("serverport", mixed)[8] == "80" and key("protocol", mixed)[8] == "6"
    assert key("memcachekey", mixed)[9] == "user:42"
    assert key("memcachecommand", mixed)[9] == "GET" and key("memcachestatus", mixed)[9] == "NOT_FOUND"
    assert key("memcacheprotocol", mixed)[9] == "ASCII" and key("memcachenkeys", mixed)[9] == "1"
    assert key("application", mixed)[10] == "payment" and key("operation", mixed)[10] == "get.balance"
    assert key("status", mixed)[10] == "SUCCESS" and key("attributes", mixed)[10] == "user=1234"
    assert [i for i, v in enumerate(key("httpmethod", mixed)) if v is not None] == [8]


def test_requests_value_counts_transactions(mixed):
    got = flow({"keys": "dnsqname", "value": "requests"}, mixed)
    assert [(i, k, v) for i, k, v in got] == [(2, "www.example.com.", 100), (3, "www.example.com.", 100)]
    arp = flow({"keys": "arpipsender", "value": "requests", "filter": "arpoperation=1"}, mixed)
    assert arp == [(0, "10.0.0.1", 100)]
    clients = flow({"keys": "or:ipsource:ip6source", "value": "requests", "filter": "dnsqr=false"}, mixed)
    assert [(k, v) for _, k, v in clients] == [("10.0.0.9", 100), ("10.0.0.9", 100)]  # the cut query counts too
    apps = flow({"keys": "agent", "value": "requests"}, mixed)
    assert [i for i, _, _ in apps] == [0, 1, 2, 3, 4, 8, 9, 10]  # not the echo and plain TCP packets
    assert [v for i, _, v in apps if i >= 8] == [10, 10, 10]  # sampling rate of the application samples
    urls = flow({"keys": "httpurl,httpmethod", "value": "requests"}, mixed)
    assert urls == [(8, "/index.html,GET", 10)]


def test_hot_prefix_lacks_payload_and_full_decode_has_it():
    samples = [header_sample(dns_frame("10.0.0.9", "10.0.0.53", 1, "example.net"), 1), record_sample((http(),), 2)]
    hot = flow_batch(samples, full=False)
    assert "header" not in hot and "records" not in hot
    assert key("dnsqname", hot) == [None, None] and key("httpurl", hot) == [None, None]
    full = flow_batch(samples)
    assert key("dnsqname", full) == ["example.net.", None] and key("httpurl", full) == [None, "/index.html"]


def test_compiled_flows_declare_cold_columns():
    assert compile_flow(parse_definition("a", {"keys": "ipsource,tcpflags", "value": "bps"})).needs == frozenset()
    assert compile_flow(parse_definition("b", {"keys": "country:ipsource", "filter": "ipprotocol=6"})).needs == set()
    assert "header" in compile_flow(parse_definition("c", {"keys": "dnsqname"})).needs
    assert compile_flow(parse_definition("d", {"keys": "ipsource", "filter": "null:memcachekey:x!=x"})).needs \
        == {"records"}
    assert compile_flow(parse_definition("e", {"keys": "group:[or:ipsource:arpipsender]:g"})).needs == {"header"}
    assert {"header", "records"} <= compile_flow(parse_definition("f", {"keys": "agent", "value": "requests"})).needs


def test_engine_decodes_whole_batches_only_while_a_flow_needs_them():
    engine = Engine(Enricher(EnrichSettings(office365_enabled=False)))
    codec = Codec()
    samples = [header_sample(dns_frame("10.0.0.9", "10.0.0.53", 1, "example.net"), 1)]
    from ingest.batches import AgentBatches
    from ingest.sflow import decode_datagram

    b = AgentBatches(10_000, 1e9)
    b.add(decode_datagram(datagram(samples)), "192.0.2.200", 1_763_683_200_000_000)
    message = codec.encode("flow_sample_batch", [x for x in b.drain() if x.kind == "flow"][0].datum)
    hot = hot_field_count()
    engine.apply("flow", "pair", parse("flow", "pair", {"keys": "ipsource,ipdestination"}))
    assert engine.cold_columns == frozenset() and "header" not in decode_flow_batch(codec, message, hot, engine)
    engine.apply("flow", "names", parse("flow", "names", {"keys": "dnsqname", "value": "requests"}))
    assert "header" in engine.cold_columns
    batch = decode_flow_batch(codec, message, hot, engine)
    assert "header" in batch
    engine.on_flow_batch(batch, now=1000.0)
    active, _, _ = engine.report(now=1000.5)
    names = [a for a in active if a["flow"] == "names"]
    assert names and names[0]["flows"][0]["key"] == "example.net." and names[0]["value"] == "requests"
    engine.apply("flow", "names", None)
    assert engine.cold_columns == frozenset() and "header" not in decode_flow_batch(codec, message, hot, engine)


def test_bad_uses_are_refused_with_their_token():
    for body, token in (({"keys": "arpipsender.1"}, "arpipsender.1"),  # ARP has no tunnel level
                        ({"keys": "ipsource,httpurl.2"}, "httpurl.2"),
                        ({"keys": "dnsqnam"}, "dnsqnam")):
        with pytest.raises(DefinitionError) as e:
            parse("flow", "x", body)
        assert e.value.detail["token"] == token and e.value.detail["field"] == "keys", e.value.detail
    with pytest.raises(DefinitionError) as e:
        parse("flow", "x", {"keys": "ipsource", "value": "request"})
    assert e.value.detail["field"] == "value" and "requests" in e.value.detail["error"]
    with pytest.raises(FlowSpecError):
        compile_key("dnsqname:x")
    assert parse("flow", "ok", {"keys": "dnsqname.1,icmpseqno.1", "value": "requests"}) is not None


def test_every_payload_key_is_in_the_key_table():
    from sflowpipe.flowspec.payload_keys import PAYLOAD_KEYS

    assert set(PAYLOAD_KEYS) <= KEY_NAMES
    assert {"arpipsender", "dnsqname", "dnsqr", "dnsqtypename", "icmpseqno", "memcachekey", "httpurl",
            "application"} <= KEY_NAMES


def test_dns_over_ipv6_and_inside_a_vxlan_tunnel():
    import socket
    import struct

    from tests.payload_frames import dns_message, eth, ip4

    msg = dns_message(3, "v6.example.com", 28)
    udp6 = struct.pack(">HHHH", 40000, 53, 8 + len(msg), 0) + msg
    hop = bytes([17, 0]) + b"\0" * 6  # a hop-by-hop options header before UDP
    ip6 = struct.pack(">IHBB16s16s", 6 << 28, len(hop) + len(udp6), 0, 64,
                      socket.inet_pton(socket.AF_INET6, "2001:db8::9"),
                      socket.inet_pton(socket.AF_INET6, "2001:db8::53")) + hop + udp6
    inner = eth(0x0800, ip4(17, struct.pack(">HHHH", 40000, 53, 8 + len(msg), 0) + dns_message(4, "in.example"),
                            "172.16.0.9", "172.16.0.53"))
    vxlan = eth(0x0800, ip4(17, struct.pack(">HHHH", 45000, 4789, 16 + len(inner), 0)
                            + struct.pack(">BxxxI", 8, 5001 << 8) + inner, "10.0.0.1", "10.0.0.2"))
    b = flow_batch([header_sample(eth(0x86DD, ip6), 1), header_sample(vxlan, 2)])
    assert key("dnsqname", b) == ["v6.example.com.", None]
    assert key("dnsqname.1", b) == [None, "in.example."]
    assert key("dnsid.1", b) == [None, "4"] and key("ip6source", b)[0] == "2001:db8::9"
    got = flow({"keys": "or:dnsqname:dnsqname.1", "value": "requests"}, b)
    assert [(k, v) for _, k, v in got] == [("v6.example.com.", 100), ("in.example.", 100)]
