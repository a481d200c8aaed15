"""Flow records (flow_records.FLOW_RECORDS): round trips, strict lengths, sflowtool output."""

from __future__ import annotations

import random
import struct

import pytest

from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.flow_records import (
    AS_SEQUENCE,
    AS_SET,
    FLOW_RECORDS,
    AppInitiator,
    AppOperation,
    AppParentContext,
    AppTarget,
    Extended80211Payload,
    Extended80211Rx,
    Extended80211Tx,
    ExtendedDecapsulateEgress,
    ExtendedDecapsulateIngress,
    ExtendedEgressQueue,
    ExtendedEntities,
    ExtendedFunction,
    ExtendedGateway,
    ExtendedHwTrap,
    ExtendedIpv4TunnelEgress,
    ExtendedIpv4TunnelIngress,
    ExtendedIpv6TunnelEgress,
    ExtendedIpv6TunnelIngress,
    ExtendedL2TunnelEgress,
    ExtendedL2TunnelIngress,
    ExtendedLinuxReason,
    ExtendedMpls,
    ExtendedMplsFtn,
    ExtendedMplsLdpFec,
    ExtendedMplsTunnel,
    ExtendedMplsVc,
    ExtendedNat,
    ExtendedNatPort,
    ExtendedProxySocketIpv4,
    ExtendedProxySocketIpv6,
    ExtendedQueueDepth,
    ExtendedRouter,
    ExtendedSocketIpv4,
    ExtendedSocketIpv6,
    ExtendedSwitch,
    ExtendedTcpInfo,
    ExtendedTransitDelay,
    ExtendedUrl,
    ExtendedUser,
    ExtendedVlanTunnel,
    ExtendedVniEgress,
    ExtendedVniIngress,
    HttpRequest,
    HttpRequestV1,
    MemcacheOperation,
    SampledEthernet,
    SampledHeader,
    SampledIpv4,
    SampledIpv6,
    url_encode,
)
from ingest.sflow.model import Datagram, DiscardSample, FlowSample

# An Ethernet/IPv4/UDP frame, for the header-carrying records.
FRAME = bytes.fromhex(
    "001122334455" "66778899aabb" "0800"
    "4500002e1234400040117a0bc0a80001c0a80002"
    "d4311f900016a1b2" "000102030405060708090a0b0c0d"
)

# One instance of every record, with values that differ from field to field.
SAMPLES = {
    (0, 1): SampledHeader.of(1, 1518, 4, FRAME),
    (0, 2): SampledEthernet(1514, "00:25:90:a2:53:58", "00:1d:b5:a2:5f:c0", 0x0800),
    (0, 3): SampledIpv4(1344, 17, "50.50.50.50", "51.51.51.51", 46622, 58631, 0, 0x28),
    (0, 4): SampledIpv6(1280, 6, "2001:db8::1", "fe80::2:3", 443, 51000, 0x18, 5),
    (0, 1001): ExtendedSwitch(100, 3, 200, 5),
    (0, 1002): ExtendedRouter("45.90.161.46", 20, 27),
    (0, 1003): ExtendedGateway("13.12.11.10", 65001, 123, 999,
                               ((AS_SEQUENCE, (123, 456, 789)), (AS_SET, (11111, 22222, 33333)),
                                (AS_SEQUENCE, (777, 888, 999))), (12, 13), 432),
    (0, 1004): ExtendedUser(106, "source user", 3, "destination user"),
    (0, 1005): ExtendedUrl(1, "http://www.sflow.org", "host1.sflow.org"),
    (0, 1006): ExtendedMpls("2001:db8::fe", (0x00064F3F, 0x00065240), (0x0003E1FF,)),
    (0, 1007): ExtendedNat("10.0.0.1", "2001:db8:1::7"),
    (0, 1008): ExtendedMplsTunnel("lsp-east", 77, 4),
    (0, 1009): ExtendedMplsVc("vc-west1", 4242, 6),
    (0, 1010): ExtendedMplsFtn("ftn", 0xFFFFFF00),
    (0, 1011): ExtendedMplsLdpFec(24),
    (0, 1012): ExtendedVlanTunnel((0x88A80064, 0x8100A0C8)),
    (0, 1013): Extended80211Payload(0x000FAC04, SampledHeader.of(1, 300, 0, FRAME[:40])),
    (0, 1014): Extended80211Rx("sflow-lab", "a0:b1:c2:d3:e4:f5", 4, 36, 300_000_000, 41, 120, 250),
    (0, 1015): Extended80211Tx("sflow", "0a:0b:0c:0d:0e:0f", 3, 2, 180, 90, 11, 54_000_000, 100),
    (0, 1020): ExtendedNatPort(40000, 8443),
    (0, 1021): ExtendedL2TunnelEgress(1550, "02:00:00:00:00:01", "02:00:00:00:00:02", 0x86DD),
    (0, 1022): ExtendedL2TunnelIngress(1560, "02:00:00:00:00:03", "02:00:00:00:00:04", 0x0800),
    (0, 1023): ExtendedIpv4TunnelEgress(1500, 47, "0.0.0.0", "192.168.0.84", 0, 0, 0, 0),
    (0, 1024): ExtendedIpv4TunnelIngress(1400, 17, "192.168.0.84", "192.168.0.83", 51234, 4789, 0, 0),
    (0, 1025): ExtendedIpv6TunnelEgress(1450, 17, "2001:db8::a", "2001:db8::b", 1000, 4789, 0, 1),
    (0, 1026): ExtendedIpv6TunnelIngress(1460, 1, "2001:db8::c", "2001:db8::d", 0, 8, 0, 2),
    (0, 1027): ExtendedDecapsulateEgress(50),
    (0, 1028): ExtendedDecapsulateIngress(54),
    (0, 1029): ExtendedVniEgress(5001),
    (0, 1030): ExtendedVniIngress(5002),
    (0, 1036): ExtendedEgressQueue(42),
    (0, 1038): ExtendedFunction("__udp4_lib_rcv+0xbed/0xd90"),
    (0, 1039): ExtendedTransitDelay(123456),
    (0, 1040): ExtendedQueueDepth(65536),
    (0, 1041): ExtendedHwTrap("l3_drops", "blackhole_route"),
    (0, 1042): ExtendedLinuxReason("NOT_SPECIFIED"),
    (0, 2100): ExtendedSocketIpv4(6, "10.1.2.3", "10.4.5.6", 80, 61000),
    (0, 2101): ExtendedSocketIpv6(17, "2001:db8::10", "2001:db8::20", 53, 33333),
    (0, 2102): ExtendedProxySocketIpv4(6, "10.7.8.9", "10.10.11.12", 45000, 8080),
    (0, 2103): ExtendedProxySocketIpv6(6, "fd00::1", "fd00::2", 46000, 8081),
    (0, 2200): MemcacheOperation(1, 7, "user:1234 name", 3, 512, 120, 1),
    (0, 2201): HttpRequestV1(2, 1001, "/index.html", "www.example.com", "http://ref.example/", "curl/8.0",
                             "alice", "text/html", 2048, 1500, 200),
    (0, 2202): AppOperation("payment", "get.balance", "user=1234&currency=USD", "ok", 100, 2000, 350, 0),
    (0, 2203): AppParentContext("shop", "checkout", "cart=77"),
    (0, 2204): AppInitiator("user-1234"),
    (0, 2205): AppTarget("account-5678"),
    (0, 2206): HttpRequest(4, 2000, "/api/v1/items?id=5", "api.example.com", "", "python-requests/2.31",
                           "203.0.113.9", "", "application/json", 321, 4567, 890, -1),
    (0, 2209): ExtendedTcpInfo(2, 1448, 536, 3, 1, 2, 1500, 20000, 5000, 10, 3, 15000),
    (0, 2210): ExtendedEntities(3, 1001, 3, 1002),
}

TAGS = sorted(SAMPLES)
_ids = [f"{e}:{f}" for e, f in TAGS]


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _body(tag) -> bytes:
    return FLOW_RECORDS[tag].encode(SAMPLES[tag])


def _decode(tag, data: bytes, off: int = 0, length: int | None = None):
    return FLOW_RECORDS[tag].decode(memoryview(data), off, len(data) - off if length is None else length)


def _tool(rec, p: str = "") -> dict:
    tag = next(t for t, c in FLOW_RECORDS.items() if c.cls is type(rec))
    out: dict = {}
    FLOW_RECORDS[tag].sflowtool(rec, out, p)
    return out


def test_every_record_has_a_sample_and_its_own_class():
    assert set(SAMPLES) == set(FLOW_RECORDS)
    classes = [c.cls for c in FLOW_RECORDS.values()]
    assert len(set(classes)) == len(classes), "the encoder finds a record's tag from its class"
    for tag, rec in SAMPLES.items():
        assert type(rec) is FLOW_RECORDS[tag].cls


def test_extended_acl_is_left_to_unknown_record():
    assert (0, 1037) not in FLOW_RECORDS  # sflowtool only prints its tag


@pytest.mark.parametrize("tag", TAGS, ids=_ids)
def test_round_trip(tag):
    body = _body(tag)
    assert len(body) % 4 == 0
    assert _decode(tag, body) == SAMPLES[tag]


@pytest.mark.parametrize("tag", TAGS, ids=_ids)
def test_decodes_inside_a_larger_buffer(tag):
    body = _body(tag)
    buf = b"\xee" * 8 + body + b"\xff" * 64
    assert _decode(tag, buf, 8, len(body)) == SAMPLES[tag]


@pytest.mark.parametrize("tag", TAGS, ids=_ids)
def test_truncated_body_raises_decode_error(tag):
    body = _body(tag)
    for k in range(len(body)):
        if _pad4(k) == len(body):
            continue  # only padding missing: the datagram layer pads record lengths, so that may decode
        with pytest.raises(DecodeError):
            _decode(tag, body[:k])
        # the bytes beyond the record's length are there but must not be read
        with pytest.raises(DecodeError):
            _decode(tag, body + b"\0" * 64, 0, k)


@pytest.mark.parametrize("tag", TAGS, ids=_ids)
def test_over_long_body_raises_decode_error(tag):
    body = _body(tag)
    for extra in (b"\0\0\0\0", b"\0" * 8, b"\1"):
        with pytest.raises(DecodeError):
            _decode(tag, body + extra)


@pytest.mark.parametrize("tag", TAGS, ids=_ids)
def test_random_bytes_decode_or_raise_decode_error(tag):
    rnd = random.Random(tag[1])
    body = _body(tag)
    for _ in range(300):
        data = bytearray(body)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        try:
            _decode(tag, bytes(data))
        except DecodeError:
            pass


def test_huge_counts_are_rejected_without_allocating():
    gw = struct.pack(">I4sIIII", 1, bytes(4), 1, 2, 3, 0xFFFFFFFF)
    with pytest.raises(DecodeError):
        _decode((0, 1003), gw + bytes(16))
    with pytest.raises(DecodeError):
        _decode((0, 1012), struct.pack(">I", 0x40000000) + bytes(8))
    with pytest.raises(DecodeError):
        _decode((0, 1038), struct.pack(">I", 0xFFFFFFFF) + b"abcd")


def test_unknown_address_type_raises_decode_error():
    with pytest.raises(DecodeError):
        _decode((0, 1002), struct.pack(">I4sII", 3, bytes(4), 24, 24))


def test_unpadded_final_string_decodes():
    # goflow2's ExtendedFunction capture: record length 5 for a 1-byte string, no padding after it
    body = struct.pack(">I", 1) + b"x"
    assert _decode((0, 1038), body) == ExtendedFunction("x")


def test_all_records_in_flow_and_discard_samples_round_trip_through_datagrams():
    recs = tuple(SAMPLES[t] for t in TAGS)
    dg = Datagram(5, "192.0.2.1", 0, 7, 123456, (
        FlowSample(False, 1, 0, 3, 512, 4096, 0, 0, 3, 0, 4, recs),
        FlowSample(True, 2, 0, 70000, 1024, 9999, 1, 0, 70000, 2, 5, recs),
        DiscardSample(3, 0, 4, 0, 0, 4, 1, 259, 0x100, recs),
    ))
    assert decode_datagram(encode_datagram(dg)) == dg


# ---------------------------------------------------------------- sflowtool output


def test_sflowtool_gateway_matches_reference_output():
    # gopacket SFlowTestPacket2, as sflowtool prints it
    assert _tool(SAMPLES[(0, 1003)]) == {
        "extendedType": "GATEWAY", "bgp_nexthop": "13.12.11.10", "my_as": "65001", "src_as": "123",
        "src_peer_as": "999", "dst_as_path": "123-456-789(11111-22222-33333)777-888-999", "dst_as": "999",
        "dst_peer_as": "123", "BGP_communities": "12-13", "BGP_localpref": "432",
    }


def test_sflowtool_gateway_without_path_or_communities():
    # akvorado data-1140
    rec = ExtendedGateway("0.0.0.0", 39421, 13335, 203698, (), (), 0)
    assert _tool(rec) == {
        "extendedType": "GATEWAY", "bgp_nexthop": "0.0.0.0", "my_as": "39421", "src_as": "13335",
        "src_peer_as": "203698", "dst_as": "0", "dst_peer_as": "0", "BGP_localpref": "0",
    }


def test_sflowtool_gateway_empty_segments_print_the_words_sflowtool_reads():
    rec = ExtendedGateway("2001:db8::1", 1, 2, 3, ((AS_SET, ()), (AS_SEQUENCE, (7, 8)), (AS_SEQUENCE, ())),
                          (0x00010002,), 100)
    out = _tool(rec)
    assert out["bgp_nexthop"] == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert out["dst_as_path"] == "()7-8"
    assert out["dst_peer_as"] == "2"  # the next segment's type word
    assert out["dst_as"] == "0"  # the empty last segment's own length word
    assert out["BGP_communities"] == "65538"


def test_sflowtool_long_as_path_stops_at_sflowtool_buffer():
    rec = ExtendedGateway("10.0.0.1", 1, 2, 3, ((AS_SEQUENCE, tuple(range(4000000000, 4000000400))),), (), 0)
    path = _tool(rec)["dst_as_path"]
    # sflowtool adds a value only while length + 1 + digits < 2048: 186 ten-digit ASNs fit
    assert path == "-".join(str(a) for a in range(4000000000, 4000000186))
    assert len(path) == 2045


def test_sflowtool_router_user_url():
    assert _tool(SAMPLES[(0, 1002)]) == {
        "extendedType": "ROUTER", "nextHop": "45.90.161.46", "srcSubnetMask": "20", "dstSubnetMask": "27"}
    assert _tool(SAMPLES[(0, 1004)]) == {
        "extendedType": "USER", "src_user_charset": "106", "dst_user_charset": "3", "src_user": "source user",
        "dst_user": "destination user"}
    # extended_user always prints both names, even empty; long strings keep 199 bytes
    out = _tool(ExtendedUser(0, "", 0, "u" * 300))
    assert out["src_user"] == "" and out["dst_user"] == "u" * 199
    assert _tool(SAMPLES[(0, 1005)]) == {
        "extendedType": "URL", "url_direction": "1", "url": "http://www.sflow.org", "host": "host1.sflow.org"}


def test_sflowtool_strings_stop_at_nul():
    assert _tool(ExtendedFunction("abc\0def")) == {"extendedType": "function", "symbol": "abc"}


def test_sflowtool_ethernet_ipv4_ipv6():
    assert _tool(SAMPLES[(0, 2)]) == {
        "flowSampleType": "ETHERNET", "ethernet_type": "2048", "ethernet_len": "1514",
        "ethernet_src": "002590a25358", "ethernet_dst": "001db5a25fc0"}
    # akvorado data-sflow-ipv4-data
    assert _tool(SAMPLES[(0, 3)]) == {
        "flowSampleType": "IPV4", "sampledPacketSize": "1344", "IPSize": "1344", "srcIP": "50.50.50.50",
        "dstIP": "51.51.51.51", "IPProtocol": "17", "IPTOS": "40", "UDPSrcPort": "46622", "UDPDstPort": "58631"}
    assert _tool(SAMPLES[(0, 4)]) == {
        "flowSampleType": "IPV6", "sampledPacketSize": "1280", "IPSize": "1280",
        "srcIP6": "2001:0db8:0000:0000:0000:0000:0000:0001", "dstIP6": "fe80:0000:0000:0000:0000:0000:0002:0003",
        "IPProtocol": "6", "priority": "5", "TCPSrcPort": "443", "TCPDstPort": "51000", "TCPFlags": "24"}


def test_sflowtool_tunnel_records_prefix_their_fields():
    # gopacket SFlowTestPacket6
    assert _tool(ExtendedIpv4TunnelIngress(0, 47, "192.168.0.84", "192.168.0.83", 0, 0, 0, 0)) == {
        "flowSampleType": "tunnel_ipv4_in_IPV4", "tunnel_ipv4_in_sampledPacketSize": "0",
        "tunnel_ipv4_in_IPSize": "0", "tunnel_ipv4_in_srcIP": "192.168.0.84",
        "tunnel_ipv4_in_dstIP": "192.168.0.83", "tunnel_ipv4_in_IPProtocol": "47", "tunnel_ipv4_in_IPTOS": "0"}
    assert _tool(SAMPLES[(0, 1021)], "discarded_") == {
        "discarded_flowSampleType": "tunnel_l2_out_ETHERNET", "discarded_tunnel_l2_out_ethernet_type": "34525",
        "discarded_tunnel_l2_out_ethernet_len": "1550", "discarded_tunnel_l2_out_ethernet_src": "020000000001",
        "discarded_tunnel_l2_out_ethernet_dst": "020000000002"}
    out = _tool(SAMPLES[(0, 1026)])
    assert out["flowSampleType"] == "tunnel_ipv6_in_IPV6"
    assert out["tunnel_ipv6_in_ICMPType"] == "8"
    assert _tool(SAMPLES[(0, 1027)]) == {"extendedType": "out_decap", "out_decap_inner_header_offset": "50"}
    assert _tool(SAMPLES[(0, 1028)], "discarded_") == {
        "discarded_extendedType": "in_decap", "discarded_in_decap_inner_header_offset": "54"}
    assert _tool(SAMPLES[(0, 1029)]) == {"extendedType": "out_VNI", "out_VNI": "5001"}
    assert _tool(SAMPLES[(0, 1030)]) == {"extendedType": "in_VNI", "in_VNI": "5002"}


def test_sflowtool_discard_details_with_prefix():
    # Cistern event_discarded_packet and goflow2 drop captures
    assert _tool(SAMPLES[(0, 1042)], "discarded_") == {
        "discarded_extendedType": "linux_reason", "discarded_linux_drop_reason": "NOT_SPECIFIED"}
    assert _tool(SAMPLES[(0, 1038)], "discarded_") == {
        "discarded_extendedType": "function", "discarded_symbol": "__udp4_lib_rcv+0xbed/0xd90"}
    assert _tool(SAMPLES[(0, 1036)], "discarded_") == {
        "discarded_extendedType": "egress_queue", "discarded_egress_queue_id": "42"}
    assert _tool(SAMPLES[(0, 1039)]) == {"extendedType": "transit_delay", "transit_delay_nS": "123456"}
    assert _tool(SAMPLES[(0, 1040)]) == {"extendedType": "queue_depth", "queue_depth_bytes": "65536"}
    assert _tool(SAMPLES[(0, 1041)]) == {
        "extendedType": "hw_trap", "hw_trap_group": "l3_drops", "hw_trap_name": "blackhole_route"}
    assert _tool(ExtendedHwTrap("", "t" * 100)) == {"extendedType": "hw_trap", "hw_trap_name": "t" * 63}
    assert _tool(ExtendedFunction("")) == {"extendedType": "function"}


def test_sflowtool_mpls_nat_and_vlan_tunnel():
    assert _tool(SAMPLES[(0, 1006)]) == {
        "extendedType": "MPLS", "mpls_nexthop": "2001:0db8:0000:0000:0000:0000:0000:00fe",
        "mpls_input_stack": "100.7.1.63-101.1.0.64", "mpls_output_stack": "62.0.1.255"}
    assert _tool(ExtendedMpls("10.0.0.1", (), ())) == {"extendedType": "MPLS", "mpls_nexthop": "10.0.0.1"}
    assert _tool(SAMPLES[(0, 1007)]) == {
        "extendedType": "NAT", "nat_src": "10.0.0.1", "nat_dst": "2001:0db8:0001:0000:0000:0000:0000:0007"}
    assert _tool(SAMPLES[(0, 1020)]) == {"extendedType": "NAT PORT", "nat_src_port": "40000", "nat_dst_port": "8443"}
    assert _tool(SAMPLES[(0, 1008)]) == {
        "mpls_tunnel_lsp_name": "lsp-east", "mpls_tunnel_id": "77", "mpls_tunnel_cos": "4"}
    assert _tool(ExtendedMplsVc("", 1, 2)) == {"mpls_vll_vc_id": "1", "mpls_vc_cos": "2"}
    assert _tool(SAMPLES[(0, 1010)]) == {"mpls_ftn_descr": "ftn", "mpls_ftn_mask": "4294967040"}
    assert _tool(SAMPLES[(0, 1011)]) == {"mpls_fec_addr_prefix_len": "24"}
    # "0x<TPID>" then "priority.CFI.vlan" with no separator, layers joined by '-'
    assert _tool(SAMPLES[(0, 1012)]) == {"vlan_tunnel": "0x88a80.0.100-0x81005.0.200"}
    assert _tool(ExtendedVlanTunnel(())) == {}


def test_sflowtool_80211():
    out = _tool(SAMPLES[(0, 1013)])
    assert out["cipher_suite"] == str(0x000FAC04)
    assert out["flowSampleType"] == "HEADER" and out["headerProtocol"] == "1"
    assert out["sampledPacketSize"] == "300" and out["headerLen"] == "40"
    assert out["headerBytes"] == FRAME[:40].hex("-").upper()
    assert _tool(SAMPLES[(0, 1014)]) == {
        "rx_SSID": "sflow-lab", "rx_BSSID": "a0b1c2d3e4f5", "rx_version": "4", "rx_channel": "36",
        "rx_speed": "300000000", "rx_rsni": "41", "rx_rcpi": "120", "rx_packet_uS": "250"}
    assert _tool(SAMPLES[(0, 1015)]) == {
        "tx_SSID": "sflow", "tx_BSSID": "0a0b0c0d0e0f", "tx_version": "3", "tx_transmissions": "2",
        "tx_packet_uS": "180", "tx_retrans_uS": "90", "tx_channel": "11", "tx_speed": "54000000",
        "tx_power_mW": "100"}
    assert "rx_SSID" not in _tool(Extended80211Rx("", "a0:b1:c2:d3:e4:f5", 1, 1, 1, 1, 1, 1))


def test_sflowtool_sockets():
    assert _tool(SAMPLES[(0, 2100)]) == {
        "extendedType": "socket4", "socket4_ip_protocol": "6", "socket4_local_ip": "10.1.2.3",
        "socket4_remote_ip": "10.4.5.6", "socket4_local_port": "80", "socket4_remote_port": "61000"}
    assert _tool(SAMPLES[(0, 2103)]) == {
        "extendedType": "proxy_socket6", "proxy_socket6_ip_protocol": "6",
        "proxy_socket6_local_ip": "fd00:0000:0000:0000:0000:0000:0000:0001",
        "proxy_socket6_remote_ip": "fd00:0000:0000:0000:0000:0000:0000:0002",
        "proxy_socket6_local_port": "46000", "proxy_socket6_remote_port": "8081"}


def test_sflowtool_memcache_url_encodes_the_key():
    assert url_encode("a b/c:D9") == "a+b%F2c%A3D9"  # sflowtool's hex digit order on little-endian hosts
    assert _tool(SAMPLES[(0, 2200)]) == {
        "flowSampleType": "memcache", "memcache_op_protocol": "1", "memcache_op_cmd": "7",
        "memcache_op_key": "user%A31234+name", "memcache_op_nkeys": "3", "memcache_op_value_bytes": "512",
        "memcache_op_duration_uS": "120", "memcache_op_status": "1"}
    assert "memcache_op_key" not in _tool(MemcacheOperation(0, 0, "", 0, 0, 0, 0))


def test_sflowtool_http():
    assert _tool(SAMPLES[(0, 2201)]) == {
        "flowSampleType": "http", "http_method": "2", "http_protocol": "1001", "http_uri": "/index.html",
        "http_host": "www.example.com", "http_referrer": "http://ref.example/", "http_useragent": "curl/8.0",
        "http_authuser": "alice", "http_mimetype": "text/html", "http_bytes": "2048",
        "http_duration_uS": "1500", "http_status": "200"}
    assert _tool(SAMPLES[(0, 2206)]) == {
        "flowSampleType": "http", "http_method": "4", "http_protocol": "2000", "http_uri": "/api/v1/items?id=5",
        "http_host": "api.example.com", "http_useragent": "python-requests/2.31", "http_xff": "203.0.113.9",
        "http_mimetype": "application/json", "http_request_bytes": "321", "http_bytes": "4567",
        "http_duration_uS": "890", "http_status": "4294967295"}


def test_sflowtool_application_records():
    assert _tool(SAMPLES[(0, 2202)]) == {
        "flowSampleType": "applicationOperation", "application": "payment", "operation": "get.balance",
        "attributes": "user=1234&currency=USD", "status_descr": "ok", "request_bytes": "100",
        "response_bytes": "2000", "duration_uS": "350", "status": "SUCCESS"}
    assert _tool(AppOperation("", "", "", "", 0, 0, 0, 10))["status"] == "UNATHORIZED"
    assert _tool(AppOperation("x" * 40, "", "", "", 0, 0, 0, 11)) == {
        "flowSampleType": "applicationOperation", "application": "x" * 31, "request_bytes": "0",
        "response_bytes": "0", "duration_uS": "0", "status": "<out-of-range=11>"}
    assert _tool(SAMPLES[(0, 2203)]) == {
        "server_context_application": "shop", "server_context_operation": "checkout",
        "server_context_attributes": "cart=77"}
    assert _tool(SAMPLES[(0, 2204)]) == {"actor_initiator": "user-1234"}
    assert _tool(SAMPLES[(0, 2205)]) == {"actor_target": "account-5678"}


def test_sflowtool_tcp_info_and_entities():
    assert _tool(SAMPLES[(0, 2209)]) == {
        "tcpinfo_direction": "sent", "tcpinfo_send_mss": "1448", "tcpinfo_receive_mss": "536",
        "tcpinfo_unacked_pkts": "3", "tcpinfo_lost_pkts": "1", "tcpinfo_retrans_pkts": "2",
        "tcpinfo_path_mtu": "1500", "tcpinfo_rtt_uS": "20000", "tcpinfo_rtt_uS_var": "5000",
        "tcpinfo_send_congestion_win": "10", "tcpinfo_reordering": "3", "tcpinfo_rtt_uS_min": "15000"}
    assert _tool(ExtendedTcpInfo(7, *range(11)))["tcpinfo_direction"] == "<bad value>"
    assert _tool(SAMPLES[(0, 2210)]) == {
        "extendedType": "entities", "entities_src_class": "3", "entities_src_index": "1001",
        "entities_dst_class": "3", "entities_dst_index": "1002"}


def test_sflowtool_switch():
    assert _tool(SAMPLES[(0, 1001)], "discarded_") == {
        "discarded_extendedType": "SWITCH", "discarded_in_vlan": "100", "discarded_in_priority": "3",
        "discarded_out_vlan": "200", "discarded_out_priority": "5"}


def test_sampled_header_with_unpadded_record_length_decodes():
    body = struct.pack(">IIII", 1, 64, 4, 5) + FRAME[:5]
    assert _decode((0, 1), body) == SampledHeader.of(1, 64, 4, FRAME[:5])
    with pytest.raises(DecodeError):
        _decode((0, 1), body[:-1])
