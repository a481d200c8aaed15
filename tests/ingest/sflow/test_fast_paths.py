"""The decoder's fast paths build exactly what its general path builds, and fail exactly as it fails.

The fast paths: the sampled header parse for Ethernet/IPv4/IPv6 TCP/UDP, untagged or behind one
802.1Q tag (header._decode before _decode_general); flow samples decoded in line (datagram.py: one unpack for the usual
sampled header + extended_switch sample, and those two records in line in any other); the
struct-based record decoders (flow_records: the ``_var`` codecs, extended_gateway) that hand what
their checks refuse to their ``_Reader`` decoder. Each is compared with the general
path (the same model objects; the same DecodeError offset, reason and message) on every capture, on
encoder-built datagrams and on mutations of both.
"""

from __future__ import annotations

import random
import struct

import pytest

from bench.decode import router_mix
from ingest.pcap import read_udp_payloads
from ingest.sflow import datagram, header
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.flow_records import (
    AS_SEQUENCE,
    AS_SET,
    FLOW_RECORDS,
    ExtendedGateway,
    ExtendedRouter,
    ExtendedSwitch,
    ExtendedUrl,
    ExtendedUser,
    SampledHeader,
    extended,
    packet,
)
from ingest.sflow.layout import Custom
from ingest.sflow.model import Datagram, FlowSample
from tests.conftest import capture_files
from tests.ingest.sflow.test_datagram import sample_datagram
from tests.ingest.sflow.test_flow_records import SAMPLES


def _reference_header(protocol: int, data: bytes):
    """The general parse all the way down (a tunnel's inner packet too)."""
    fast = header._decode
    header._decode = header._decode_general
    try:
        return header._decode_general(data, protocol, 0, len(data), 0)
    finally:
        header._decode = fast


def _checked(codec):
    """The codec with its general (``_Reader``) decoder instead of its fast one."""
    if codec.decode is extended._decode_gateway:
        return Custom(codec.name, codec.cls, extended._decode_gateway_checked, codec.encode, codec.sflowtool)
    checked = getattr(codec.decode, "checked", None)
    return codec if checked is None else Custom(codec.name, codec.cls, checked, codec.encode, codec.sflowtool)


@pytest.fixture
def general(monkeypatch):
    """decode_datagram with every fast path below the sample level swapped for the general one."""
    table = {tag: _checked(c) for tag, c in datagram._FLOW_BY_TAG.items()}

    def records(buf, off, end, n):
        return datagram._records(buf, off, end, n, table, "flow_sample")

    def decode(data):
        with monkeypatch.context() as m:
            m.setattr(datagram, "_IN_LINE", -1)
            m.setattr(datagram, "_FLOW_BY_TAG", table)
            m.setattr(datagram, "_flow_records", records)
            m.setattr(packet, "decode_header", _reference_header)
            m.setattr(datagram, "decode_header", _reference_header)
            return _outcome(data)

    return decode


def _outcome(data):
    try:
        return datagram.decode_datagram(data)
    except DecodeError as e:
        return ("DecodeError", e.offset, e.reason, str(e))


def _mutations(data: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(4)
            if not b:
                break
            i = rng.randrange(len(b))
            if op == 0:
                b[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del b[i:]
            elif op == 2:  # a length or count field overwritten with a small or a huge value
                j = i & ~3
                b[j : j + 4] = struct.pack(">I", rng.choice([0, 1, 2, 3, 4, 7, 8, 16, 20, 24, 0xFFFFFFFF,
                                                              rng.randrange(256)]))
            else:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 8])))
        out.append(bytes(b))
    return out


def _flow(*records, expanded: bool = False) -> FlowSample:
    return FlowSample(expanded, 7, 0, 3, 512, 90_000, 0, 0, 3, 0, 9, records)


ETH_IP4_TCP = (bytes.fromhex("001122334455 66778899aabb 0800") + bytes.fromhex(
    "45000034 1c4a4000 4006 0000 c0000201 c6336407") + struct.pack(">HHIIBBH", 443, 51000, 1, 2, 0x50, 0x18, 1000)
    + b"\0" * 16)
ETH_IP6_UDP = (bytes.fromhex("001122334455 66778899aabb 86dd") + struct.pack(">IHBB", 0x6A812345, 30, 17, 60)
               + bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HHHH", 5353, 53, 30, 0) + b"\x01" * 22)

# VXLAN: the inner Ethernet frame starts at offset 50 (the fast path's offsets are counted from the header start)
VXLAN_IP4_TCP = (bytes.fromhex("0a0b0c0d0e0f 0a0b0c0d0e10 0800") + struct.pack(">BBHHHBBH4s4s", 0x45, 0, 50 + len(
    ETH_IP4_TCP), 1, 0, 64, 17, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02") + struct.pack(">HHHH", 40000, 4789, 0, 0)
    + struct.pack(">II", 0x08000000, 5001 << 8) + ETH_IP4_TCP)
VXLAN_IP6_UDP = VXLAN_IP4_TCP[:50] + ETH_IP6_UDP


def _router_mix() -> list[bytes]:
    """Flow samples as a router exports them: header, switch, router, gateway (and user/URL)."""
    gw4 = ExtendedGateway("192.0.2.254", 65001, 64500, 64600, ((AS_SEQUENCE, (64600, 3356, 1299)),
                                                               (AS_SET, (15169, 8075))), (65001 << 16 | 100,), 100)
    gw6 = ExtendedGateway("2001:db8::fe", 65001, 0, 0, (), (), 0)
    gw_empty_segment = ExtendedGateway("198.51.100.1", 1, 2, 3, ((AS_SEQUENCE, ()),), (1, 2, 3), 4)
    samples = (
        _flow(SampledHeader.of(1, 1500, 4, ETH_IP4_TCP), ExtendedSwitch(10, 0, 20, 0),
              ExtendedRouter("192.0.2.1", 24, 16), gw4),
        _flow(SampledHeader.of(1, 800, 4, ETH_IP6_UDP), ExtendedSwitch(10, 0, 20, 0),
              ExtendedRouter("2001:db8::1", 48, 64), gw6, expanded=True),
        _flow(ExtendedUrl(1, "http://www.example.com/", "www.example.com"), ExtendedUser(106, "alice", 0, ""),
              gw_empty_segment, SampledHeader.of(11, 60, 0, ETH_IP4_TCP[14:])),
        _flow(*SAMPLES.values()),
    )
    return [encode_datagram(Datagram(5, agent, 0, 1, 2, samples)) for agent in ("192.0.2.10", "2001:db8::9")] + [
        encode_datagram(sample_datagram())]


def _seeds() -> list[bytes]:
    seeds = _router_mix()
    for path in capture_files():
        seeds.extend(d.payload for d in read_udp_payloads(str(path))[:20])
    return seeds + router_mix(datagrams=10)  # the decoder benchmark's router mix


SEEDS = _seeds()


def test_router_mix_decodes_to_what_was_encoded():
    mix = ["SampledHeader", "ExtendedSwitch", "ExtendedRouter", "ExtendedGateway"]
    for data in _router_mix()[:2]:
        dg = datagram.decode_datagram(data)
        assert [type(r).__name__ for r in dg.samples[0].records] == mix
        assert encode_datagram(dg) == data
    for data in router_mix(datagrams=5):
        dg = datagram.decode_datagram(data)
        assert all([type(r).__name__ for r in s.records] == mix for s in dg.samples if isinstance(s, FlowSample))
        assert encode_datagram(dg) == data


def test_captures_and_encoder_built_datagrams_match_the_general_path(general):
    assert len(SEEDS) > 50
    for data in SEEDS:
        fast = _outcome(data)
        assert fast == general(data)
        # bytes, bytearray and memoryview inputs give the same result
        assert _outcome(bytearray(data)) == fast and _outcome(memoryview(data)) == fast


def test_mutated_datagrams_match_the_general_path(general):
    rng = random.Random(16)
    errors = 0
    for data in SEEDS:
        for m in _mutations(data, rng, 100):
            fast = _outcome(m)
            assert fast == general(m), m.hex()
            errors += isinstance(fast, tuple)
    assert errors  # the mutations do reach the error paths


def test_every_flow_record_fast_decoder_matches_its_checked_decoder():
    rng = random.Random(1003)
    for tag, rec in SAMPLES.items():
        codec = FLOW_RECORDS[tag]
        ref = _checked(codec)
        if ref is codec:
            continue
        body = codec.encode(rec)
        bodies = [body] + _mutations(body, rng, 300)
        for b in bodies:
            for length in {len(b), len(b) - 1, len(b) + 3}:
                buf = b"\xee" * 4 + b + b"\0" * 8  # inside a larger buffer, as in a datagram
                if length < 0 or length > len(b) + 3:
                    continue
                outcomes = []
                for decode in (codec.decode, ref.decode):
                    try:
                        outcomes.append(decode(buf, 4, length))
                    except DecodeError as e:
                        outcomes.append((e.offset, e.reason, str(e)))
                assert outcomes[0] == outcomes[1], (tag, b.hex(), length)


def _headers() -> list[tuple[int, bytes]]:
    vlan_ip4_tcp = ETH_IP4_TCP[:12] + bytes.fromhex("8100 a064") + ETH_IP4_TCP[12:]  # priority 5, VLAN 100
    vlan_ip4_udp = vlan_ip4_tcp[:27] + b"\x11" + vlan_ip4_tcp[28:]
    out = [(1, ETH_IP4_TCP), (1, ETH_IP6_UDP), (11, ETH_IP4_TCP[14:]), (1, VXLAN_IP4_TCP), (1, VXLAN_IP6_UDP),
           (1, vlan_ip4_tcp), (1, vlan_ip4_udp)]
    for data in SEEDS:
        try:
            dg = datagram.decode_datagram(data)
        except DecodeError:
            continue
        for s in dg.samples:
            for r in getattr(s, "records", ()):
                if isinstance(r, SampledHeader):
                    out.append((r.header_protocol, r.header))
    return out


def test_header_fast_path_matches_the_general_parse():
    rng = random.Random(34)
    headers = _headers()
    assert len(headers) > 100
    seen = set()
    for proto, h in headers:
        if (proto, h) in seen:
            continue
        seen.add((proto, h))
        variants = [h[:cut] for cut in range(len(h) + 1)]
        for _ in range(40):  # the bytes the fast path looks at: Ethernet type, IP version/IHL/flags, protocol, ports
            b = bytearray(h)
            if not b:
                break
            i = rng.choice([12, 13, 14, 20, 21, 23, 20 + 14, 36, 37, 54, 56, 57, 62, 63, 64, 70, 73, 86, 87,
                            16, 17, 18, 24, 27, 40, 41] + [rng.randrange(len(b))])
            if i < len(b):
                b[i] = rng.choice([0, 4, 6, 17, 0x08, 0x12, 0x45, 0x46, 0x4F, 0x60, 0x81, 0x86, 0xDD, 0xB5, 0xFF,
                                   rng.randrange(256)])
            variants.append(bytes(b))
        for v in variants:
            assert header.decode_header(proto, v) == _reference_header(proto, v), (proto, v.hex())
