"""The fast -j writer (ingest/sflow/sflowtool_json.py) prints what the general path prints, byte for
byte: on every capture, on encoder-built datagrams of every record type and sampled-header shape,
and on mutated datagrams; where it cannot, it hands the datagram back (None), never a wrong line."""

from __future__ import annotations

import io
import random
import struct

import pytest

from ingest import decode
from ingest.pcap import read_udp, read_udp_payloads, udp_payloads
from ingest.sflow import sflowtool_json
from ingest.sflow.counter_records import COUNTER_RECORDS, ETHERNET_COUNTERS, IF_COUNTERS
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.flow_records import (
    AS_SEQUENCE,
    AS_SET,
    FLOW_RECORDS,
    ExtendedGateway,
    ExtendedRouter,
    ExtendedSwitch,
    SampledHeader,
)
from ingest.sflow.model import CounterSample, Datagram, DiscardSample, FlowSample, UnknownRecord
from ingest.sflow.sflowtool import Meta, datagram_fields, error_fields, json_line
from ingest.sflow.sflowtool_json import datagram_line
from tests.conftest import capture_files
from tests.ingest import test_pcap as pcaps
from tests.ingest.sflow import test_counter_records as counters
from tests.ingest.sflow import test_flow_records as flows
from tests.ingest.sflow.test_datagram import sample_datagram
from tests.ingest.sflow.test_header import MAC_A, eth, icmp, ip4, ip6, tcp, udp


def general(data: bytes, meta: Meta) -> bytes:
    """The general path's line: data model, sflowtool's dict, orjson."""
    try:
        fields = datagram_fields(decode_datagram(data), meta)
    except DecodeError as e:
        fields = error_fields(e, meta)
    return json_line(fields)


def same(data: bytes, meta: Meta | None = None) -> bool:
    """The fast line equals the general one; returns whether the fast writer wrote it."""
    meta = meta or Meta("-", len(data), 0, 0, 1_300_000_000, 42)
    line = datagram_line(data, meta)
    if line is not None:
        assert line == general(data, meta), data.hex()
    assert datagram_line(memoryview(data), meta) == line  # the CLI hands the writer memoryviews of a capture
    return line is not None


@pytest.mark.parametrize("capture", capture_files(), ids=lambda p: p.name)
def test_every_capture_datagram(capture):
    for d in read_udp_payloads(str(capture)):
        same(d.payload, Meta("-", len(d.payload), 0, 0, d.ts_sec, d.ts_usec))


def test_the_cli_path_prints_what_the_general_path_prints(captures_dir):
    capture = captures_dir / "overflowd__sflow.pcap"
    out = io.BytesIO()
    with open(capture, "rb") as f:
        decode.run(decode.from_capture(f), "json", out, flush_each=False)
    expected = b"".join(general(d.payload, Meta("-", len(d.payload), 0, 0, d.ts_sec, d.ts_usec))
                        for d in read_udp_payloads(str(capture)))
    assert out.getvalue() == expected
    with open(capture, "rb") as f:  # and the fast writer did write them (not the fallback)
        assert all(datagram_line(p, Meta("-", len(p), 0, 0, s, u)) for s, u, p in udp_payloads(f))


def _dg(samples, agent="192.0.2.1") -> bytes:
    return encode_datagram(Datagram(5, agent, 0, 9, 123456, tuple(samples)))


def _flow(records, expanded=False, inp=(0, 3), out=(0, 4)) -> FlowSample:
    return FlowSample(expanded, 11, 0, 3, 1000, 50000, 2, inp[0], inp[1], out[0], out[1], tuple(records))


def test_sample_datagram_of_every_sample_type():
    for agent in ("192.0.2.10", "2001:db8::7"):
        same(encode_datagram(sample_datagram(agent)))


def test_every_flow_record_type_alone_and_after_a_header():
    header = SampledHeader.of(1, 1518, 4, eth(0x0800) + ip4(6, tcp()))
    for tag in flows.TAGS:
        rec = flows.SAMPLES[tag]
        for recs in ((rec,), (header, rec), (header, ExtendedSwitch(1, 2, 3, 4), rec)):
            assert same(_dg([_flow(recs), _flow(recs, expanded=True, inp=(1, 7), out=(2, 9)),
                             DiscardSample(3, 0, 4, 0, 0, 4, 1, 259, 0x100, recs)]))


def test_every_counter_record_type():
    for (e, f), codec in counters.ALL:
        rec = counters._instance(codec)
        assert same(_dg([CounterSample(False, 5, 0, 9, (rec,)), CounterSample(True, 6, 1, 70000, (rec, rec))]))


def test_unknown_records_and_samples():
    assert same(_dg([_flow((UnknownRecord(9, 9, b"abc"),)),
                     CounterSample(False, 1, 0, 1, (UnknownRecord(4300, 1, b""),))]))


HEADERS = {
    "tcp": eth(0x0800) + ip4(6, tcp()),
    "tcp cut before the flags": (eth(0x0800) + ip4(6, tcp()))[:44],
    "tcp ports only": (eth(0x0800) + ip4(6, tcp()))[:42],
    "udp": eth(0x0800) + ip4(17, udp(payload=b"x" * 30)),
    "icmp": eth(0x0800) + ip4(1, icmp(3, 1)),
    "gre": eth(0x0800) + ip4(47, b"\0" * 20),
    "fragment": eth(0x0800) + ip4(17, udp(), flags_frag=0x0010),
    "more fragments": eth(0x0800) + ip4(17, udp(), flags_frag=0x2000),
    "options": eth(0x0800) + ip4(6, tcp(), options=b"\x01\x01\x01\x00"),
    "ihl past the end": (eth(0x0800) + ip4(6, b"", options=b"\x01" * 40))[:40],
    "not v4": eth(0x0800) + b"\x65" + ip4(6, tcp())[1:],
    "short ip": (eth(0x0800) + ip4(6, tcp()))[:30],
    "vlan": eth(0x0800, tags=((0x8100, 0x2064),)) + ip4(17, udp()),
    "qinq": eth(0x0800, tags=((0x88A8, 0x0010), (0x8100, 0x2064))) + ip4(6, tcp()),
    "tags to the end": eth(0x8100)[:12] + struct.pack(">HHH", 0x8100, 5, 0x8100),
    "ipv6 tcp": eth(0x86DD) + ip6(6, tcp()),
    "ipv6 udp jumbo": eth(0x86DD) + ip6(17, udp(), plen=0),
    "ipv6 icmpv6": eth(0x86DD) + ip6(58, icmp(128)),
    "ipv6 hop-by-hop": eth(0x86DD) + ip6(0, bytes([6, 0]) + b"\0" * 6 + tcp()),
    "ipv6 two extension headers": eth(0x86DD) + ip6(0, bytes([60, 0]) + b"\0" * 6 + bytes([17, 1]) + b"\0" * 14
                                                 + udp()),
    "ipv6 fragment header": eth(0x86DD) + ip6(44, bytes([17, 0, 0, 9]) + b"\0" * 4 + udp()),
    "ipv6 extension past the end": eth(0x86DD) + ip6(0, bytes([6, 200]) + b"\0" * 6),
    "ipv6 extension cut": eth(0x86DD) + ip6(43, b"\x06"),
    "ipv6 short": (eth(0x86DD) + ip6(6, tcp()))[:40],
    "ipv6 not v6": eth(0x86DD) + b"\x45" + ip6(6, tcp())[1:],
    "arp": eth(0x0806) + b"\0" * 28,
    "llc snap": eth(40) + bytes.fromhex("aaaa03000000") + b"\x08\x00" + ip4(6, tcp()),
    "ipx": eth(0x0600) + b"\xff\xff\x00\x40" + b"\0" * 60,
    "runt": MAC_A + MAC_A[:4],
    "short frame": eth(0x0800)[:16],
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(HEADERS))
@pytest.mark.parametrize("protocol", [1, 11, 12, 15, 2])
def test_sampled_header_shapes(name, protocol):
    frame = HEADERS[name]
    if protocol in (11, 12):
        frame = frame[14:]
    for size, stripped in ((1518, 4), (60, 0), (10, 4), (0, 0)):  # IPSize below 0 too
        hdr = SampledHeader.of(protocol, size, stripped, frame)
        assert same(_dg([_flow((hdr,)), _flow((hdr, ExtendedSwitch(1, 2, 3, 4))),
                         _flow((ExtendedSwitch(1, 2, 3, 4), hdr), expanded=True)]))


GATEWAYS = [
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SEQUENCE, (65001,)),), (), 100),
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SET, (4294967295,)),), (5,), 100),
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SEQUENCE, (3, 4, 5)),), (), 100),
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SET, (3, 4)),), (1, 2, 4294967295), 0),
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SEQUENCE, ()),), (7,), 0),
    ExtendedGateway("192.0.2.1", 64500, 1, 2, ((AS_SEQUENCE, (1,)), (AS_SET, (2, 3)), (AS_SEQUENCE, ())), (), 5),
    ExtendedGateway("2001:db8::1", 1, 2, 3, ((AS_SET, ()), (AS_SEQUENCE, (7, 8))), (9,), 1),
    ExtendedGateway("0.0.0.0", 0, 0, 0, (), (), 0),
    ExtendedGateway("10.0.0.1", 1, 2, 3, ((AS_SEQUENCE, tuple(range(4000000000, 4000000400))),), (), 0),
    ExtendedGateway("10.0.0.1", 1, 2, 3, ((AS_SEQUENCE, tuple(range(63))),), tuple(range(63)), 0),
    ExtendedGateway("10.0.0.1", 1, 2, 3, ((AS_SEQUENCE, tuple(range(64))),), tuple(range(300)), 0),
]


@pytest.mark.parametrize("gateway", GATEWAYS, ids=range(len(GATEWAYS)))
def test_router_records(gateway):
    hdr = SampledHeader.of(1, 1518, 4, HEADERS["tcp"])
    for router in (ExtendedRouter("192.0.2.9", 24, 16), ExtendedRouter("2001:db8::9", 64, 48)):
        assert same(_dg([_flow((hdr, ExtendedSwitch(1, 0, 2, 0), router, gateway)), _flow((gateway, router))]))


def test_the_benchmark_router_mix():
    from bench.decode import router_mix

    assert all(same(d) for d in router_mix(datagrams=20))


def test_meta_of_a_live_datagram():
    data = encode_datagram(sample_datagram())
    same(data, Meta("192.0.2.7", len(data), 1_700_000_000, 999))
    same(data, Meta("2001:db8::1", len(data), 1_700_000_000, 999))
    assert datagram_line(data, Meta('a"b', len(data))) is None  # would need escaping: the general path


def _seeds() -> list[bytes]:
    from bench.decode import router_mix

    seeds = [encode_datagram(sample_datagram()), encode_datagram(sample_datagram("2001:db8::7"))]
    seeds += router_mix(datagrams=3)
    seeds.append(_dg([_flow((SampledHeader.of(1, 1518, 4, h), ExtendedSwitch(1, 2, 3, 4), g))
                      for h, g in zip(HEADERS.values(), GATEWAYS * 3)]))
    for path in capture_files():
        seeds += [d.payload for d in read_udp_payloads(str(path))[:3]]
    hdr = SampledHeader.of(1, 1518, 4, HEADERS["tcp"])
    for s, t in ((b"http://a.example/\xff", b"h\0st"), (b"", "é".encode() * 70)):
        seeds.append(_dg([_flow([hdr] + _string_records(s, t)), _discard([hdr] + _string_records(t, s)),
                          CounterSample(False, 1, 0, 1, (_host_descr(s, t),))]))
    return seeds


def test_mutated_datagrams_never_print_a_different_line():
    """Bit flips, cuts, insertions and hostile 32-bit words: the fast writer prints the general
    path's line or hands the datagram back."""
    rng = random.Random(16)
    seeds = _seeds()
    written = 0
    for _ in range(3000):
        d = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(d))
            op = rng.randrange(4)
            if op == 0:
                d[pos] ^= 1 << rng.randrange(8)
            elif op == 1:
                del d[pos:]
            elif op == 2:
                d[pos:pos] = rng.randbytes(rng.randint(1, 8))
            else:
                pos &= ~3
                d[pos:pos + 4] = struct.pack(">I", rng.choice((0, 1, 2, 3, 4, 0x7FFFFFFF, 0xFFFFFFFF,
                                                               rng.randrange(1 << 32))))
            if not d:
                break
        written += same(bytes(d))
    assert written > 500  # most mutations still print (the test is not vacuous)


def test_counter_layouts_match_the_record_tables():
    for fields, codec in ((sflowtool_json.IF_COUNTERS_FIELDS, IF_COUNTERS),
                          (sflowtool_json.ETHERNET_COUNTERS_FIELDS, ETHERNET_COUNTERS)):
        assert fields == tuple((f.kind.fmt, f.tool) for f in codec.fields)
        assert all(f.kind.tool is str and f.kind.from_wire is None for f in codec.fields)
    assert COUNTER_RECORDS[(0, 1)] is IF_COUNTERS and COUNTER_RECORDS[(0, 2)] is ETHERNET_COUNTERS


def test_record_classes_are_one_per_tag():
    """The general path prints a record's tag from its class: the fast one from the wire."""
    for table in (FLOW_RECORDS, COUNTER_RECORDS):
        classes = [c.cls for c in table.values()]
        assert len(set(classes)) == len(classes)


# ---------------------------------------------------------------- the capture reader


@pytest.mark.parametrize("frames", [
    [pcaps.eth(pcaps.ipv4(pcaps.udp(b"one"))), pcaps.eth(pcaps.ipv4(pcaps.udp(b"two")), vlans=((0x8100, 5),)),
     pcaps.eth(pcaps.ipv6(pcaps.udp(b"six")), etype=0x86DD), pcaps.eth(pcaps.ipv4(b"tcp", proto=6)),
     pcaps.eth(pcaps.ipv4(pcaps.udp(b"x" * 40)[:20], frag=0x2000, ident=7)),
     pcaps.eth(pcaps.ipv4(pcaps.udp(b"x" * 40)[20:], frag=20 // 8, ident=7)),
     pcaps.eth(pcaps.ipv4(pcaps.udp(b""))), pcaps.eth(pcaps.ipv4(b"\0\0\0\0")),
     pcaps.eth(pcaps.ipv4(pcaps.udp(b"pad")) + b"\0" * 20),
     pcaps.eth(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 9999, 0, 0, 64, 17, 0, b"\1\2\3\4", b"\5\6\7\x08")
               + pcaps.udp(b"bad total length"))],
], ids=["mix"])
@pytest.mark.parametrize("kind", ["pcap", "pcap-be-ns", "pcap-cut", "pcapng", "raw", "empty"])
def test_udp_payloads_equal_read_udp(tmp_path, frames, kind):
    if kind == "pcap":
        data = pcaps.pcap(frames)
    elif kind == "pcap-be-ns":
        data = pcaps.pcap(frames, endian=">", nanos=True)
    elif kind == "pcap-cut":
        data = pcaps.pcap(frames)[:-7]
    elif kind == "pcapng":
        data = pcaps.pcapng(frames)
    elif kind == "raw":
        data = pcaps.pcap([f[14:] for f in frames], link=101)
    else:
        data = b""
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    expected = [(d.ts_sec, d.ts_usec, d.payload) for d in read_udp(io.BytesIO(data))]
    with open(path, "rb") as f:
        got = [(s, u, bytes(p)) for s, u, p in udp_payloads(f)]
    assert got == expected
    assert [(s, u, bytes(p)) for s, u, p in udp_payloads(io.BytesIO(data))] == expected  # a stream


def test_udp_payloads_of_every_capture():
    for capture in capture_files():
        with open(capture, "rb") as f:
            got = [(s, u, bytes(p)) for s, u, p in udp_payloads(f)]
        assert got == [(d.ts_sec, d.ts_usec, d.payload) for d in read_udp_payloads(str(capture))]


# ---------------------------------------------------------------- strings, discard samples, host counters

# XDR strings as sflowtool's getString keeps them and orjson escapes them: empty, NUL inside,
# quotes, backslashes, control characters, non-UTF-8, at and past every buffer size (64, 200,
# and the host name's 64 and release's 32), multi-byte characters cut by them
ODD_STRINGS = [
    b"", b"a", b"\0", b"a\0b", b"\0abc", b'q"uote', b"back\\slash", b"\n\t\r\b\f\x01\x1f\x7f ,\"{}:",
    "é".encode(), "日本語".encode(), "\u2028\ufeff".encode(), b"\xff", b"\xc3", b"\xed\xa0\x80", b"abc\xff\0def",
    b"\xe6\x97" * 3, b"\xff" * 70,
] + [c * n for c in (b"x", "é".encode(), b"a" + "日".encode(), b'"', b"\x01")
     for n in (30, 31, 32, 62, 63, 64, 65, 198, 199, 200, 201, 300)]


def _xdr(s: bytes) -> bytes:
    return struct.pack(">I", len(s)) + s + b"\0" * (-len(s) & 3)


def _string_records(s: bytes, t: bytes) -> list:
    """The flow records of strings, as raw bodies under their tags (the encoder takes str only)."""
    return [UnknownRecord(0, 1004, struct.pack(">I", 106) + _xdr(s) + struct.pack(">I", 0) + _xdr(t)),
            UnknownRecord(0, 1005, struct.pack(">I", 2) + _xdr(s) + _xdr(t)),
            UnknownRecord(0, 1038, _xdr(s)), UnknownRecord(0, 1041, _xdr(s) + _xdr(t)),
            UnknownRecord(0, 1042, _xdr(t))]


def _host_descr(name: bytes, release: bytes) -> UnknownRecord:
    return UnknownRecord(0, 2000, _xdr(name) + bytes(range(16)) + struct.pack(">II", 3, 2) + _xdr(release))


def _discard(records, reason=259) -> DiscardSample:
    return DiscardSample(3, 0, 4, 7, 0, 4, 1, 259, reason, tuple(records))


def test_odd_strings_are_printed_as_the_general_path_prints_them():
    hdr = SampledHeader.of(1, 1518, 4, HEADERS["tcp"])
    for i, s in enumerate(ODD_STRINGS):
        t = ODD_STRINGS[-1 - i]
        recs = _string_records(s, t)
        assert same(_dg([_flow(recs), _flow([hdr] + recs, expanded=True), _discard([hdr] + recs),
                         CounterSample(False, 1, 0, 1, (_host_descr(s, t), _host_descr(t, s)))]))


def test_strings_truncated_or_mis_sized():
    """String lengths past the record, padding past its length, bytes left over: the fast writer
    prints the general path's line (or its error line through the general path)."""
    for s in (b"", b"abc", b"abcd", b"x" * 201):
        for rec in _string_records(s, b"host") + [_host_descr(s, b"5.1")]:
            body = rec.data
            for cut in {len(body), len(body) - 1, len(body) - 4, 4, 3, 0}:
                for extra in (b"", b"\0", b"\0" * 4):
                    r = UnknownRecord(0, rec.format, body[:max(cut, 0)] + extra)
                    if rec.format == 2000:
                        same(_dg([CounterSample(False, 1, 0, 1, (r,))]))
                    else:
                        same(_dg([_flow((r,))]))
                        same(_dg([_discard((r,))]))
            bad = struct.pack(">I", 0xFFFFFFFF) + body[4:]
            same(_dg([_flow((UnknownRecord(0, rec.format, bad),))]))


def test_discard_samples_every_reason_and_record():
    from ingest.sflow.discard_reasons import SFLOWTOOL_REASONS

    hdr = SampledHeader.of(1, 1518, 4, HEADERS["ipv6 udp jumbo"])
    for reason in sorted(SFLOWTOOL_REASONS) + [16, 999, 0xFFFFFFFF]:
        assert same(_dg([_discard((), reason)]))
    for tag in flows.TAGS:
        assert same(_dg([_discard((flows.SAMPLES[tag], hdr, UnknownRecord(0, 1037, b""), UnknownRecord(7, 7, b"x")))]))
    for h in HEADERS.values():
        assert same(_dg([_discard((SampledHeader.of(1, 1518, 4, h),) + tuple(GATEWAYS[:3]))]))


def test_host_counters():
    from ingest.sflow.counter_records.host import Adaptor, HostAdapters, HostCpu, HostDiskIo

    cpu = (0.47, float("inf"), float("nan"), 2, 511, 4, 1200, 103412, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    recs = [HostAdapters(()), HostAdapters((Adaptor(2, ()), Adaptor(3, ("3c:97:0e:25:f0:56",)),
                                            Adaptor(0xFFFFFFFF, ("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff")))),
            HostCpu(*cpu), HostCpu(*cpu, 10, 11, 12), HostCpu(-1.5, 1e30, 3.4e38, *cpu[3:])]
    recs += [HostDiskIo(1, 2, pct, 3, 4, 5, 6, 7, 8) for pct in (None, 0.0, 56.39, 100.0, 0.01, 42949672.94)]
    assert same(_dg([CounterSample(False, 1, 0, 1, tuple(recs)), CounterSample(True, 2, 3, 4, tuple(recs[::-1]))]))
    for cut in (0, 4, 8, 12, 16, 20, 24):  # adapters: counts past the record, bytes left over
        body = COUNTER_RECORDS[(0, 2001)].encode(recs[1])
        for r in (UnknownRecord(0, 2001, body[:-cut] if cut else body), UnknownRecord(0, 2001, body + b"\0" * cut)):
            same(_dg([CounterSample(False, 1, 0, 1, (r,))]))


def test_the_string_and_drop_records_are_declared_as_the_tables_have_them():
    for tag in [1004, 1005] + list(sflowtool_json._STRING_RECORDS) + list(sflowtool_json._TYPED_RECORDS):
        assert (0, tag) in FLOW_RECORDS
    for tag in sflowtool_json._TAG_ONLY:
        assert (0, tag) not in FLOW_RECORDS


@pytest.mark.parametrize("name", ["SFlowTestPacket2", "Cistern-sflow__host_sample", "event_discarded_packet",
                                  "DropEgressQueue", "DropExtendedACL"])
def test_these_captures_are_written_without_the_general_path(monkeypatch, name):
    def no(*a):
        raise AssertionError("the general path")

    monkeypatch.setattr(sflowtool_json, "_general_record", no)
    monkeypatch.setattr(sflowtool_json, "_general_sample", no)
    (capture,) = [p for p in capture_files() if name in p.name]
    for d in read_udp_payloads(str(capture)):
        assert same(d.payload, Meta("-", len(d.payload), 0, 0, d.ts_sec, d.ts_usec))


def test_host_layouts_match_the_record_tables():
    for tag, layout in sflowtool_json.HOST_LAYOUTS.items():
        assert sflowtool_json.table_layout(COUNTER_RECORDS[(0, tag)]) == layout


@pytest.mark.e2e  # runs the CLI as a process
@pytest.mark.parametrize("name", ["SFlowTestPacket2", "Cistern-sflow__host_sample", "event_discarded_packet",
                                  "DropExtendedACL"])
def test_these_captures_load_no_data_model(name):
    """Start-up is part of every decode -j run: these captures are printed without the data model,
    the record tables or orjson (as tests/test_startup.py checks for overflowd's)."""
    from bench.startup import imported, packages

    (capture,) = [p for p in capture_files() if name in p.name]
    code, modules = imported(["decode", "-j", "-r", str(capture)])
    assert code == 0
    assert not packages(modules) & {"msgspec", "orjson"}, sorted(packages(modules))
    assert not {"ingest.sflow.model", "ingest.sflow.datagram", "ingest.sflow.sflowtool",
                "ingest.sflow.counter_records", "ingest.sflow.flow_records"} & modules
    assert "ingest.sflow.sflowtool_json" in modules


def _extremes(codec, i: int):
    """Field values at the edges of each kind (i: which set), for a Fixed layout."""
    from ingest.sflow.layout import MAC, PERCENT

    out = []
    for f in codec.fields:
        k = f.kind
        if k is PERCENT:
            out.append((None, 0.0, 12.34, 42949672.94)[i])
        elif k is MAC:
            out.append(("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "3c:97:0e:25:f0:56", "01:02:03:04:05:06")[i])
        elif k.fmt in ("f", "d"):
            out.append((float("nan"), -0.0005, 1e30, 0.0015)[i])
        elif k.fmt == "i":
            out.append((-1, -2**31, 2**31 - 1, 0)[i])
        else:
            bits = {"B": 8, "I": 32, "Q": 64}[k.fmt]
            out.append((0, 2**bits - 1, 2**(bits - 1), 7)[i])
    return out


def test_every_table_layout_at_the_edges_of_its_kinds():
    from ingest.sflow.layout import Fixed

    tried = 0
    for counters_, table in ((True, COUNTER_RECORDS), (False, FLOW_RECORDS)):
        for (e, f), codec in sorted(table.items()):
            if sflowtool_json.table_layout(codec) is None:
                continue
            assert isinstance(codec, Fixed)
            tried += 1
            for i in range(4):
                vals = _extremes(codec, i)
                recs = [codec.cls(*vals)]
                if codec.short is not None:
                    recs.append(codec.cls(*vals[:len(vals) - len(codec.tail_none)]))
                if counters_:
                    assert same(_dg([CounterSample(False, 1, 0, 1, tuple(recs))]))
                else:
                    assert same(_dg([_flow(recs), _discard(recs)]))
    assert tried >= 20


def test_port_names():
    """0:1005 port_name: sflowtool's 255-byte buffer, nothing printed for an empty name."""
    names = ODD_STRINGS + [c * n for c in (b"p", "é".encode()) for n in (126, 127, 128, 253, 254, 255, 256)]
    for s in names:
        r = UnknownRecord(0, 1005, _xdr(s))
        assert same(_dg([CounterSample(False, 1, 0, 1, (r, r)), CounterSample(True, 2, 0, 1, (r,))]))
    for body in (b"", b"\0\0\0", struct.pack(">I", 5) + b"abcd", struct.pack(">I", 1) + b"abcdefgh"):
        same(_dg([CounterSample(False, 1, 0, 1, (UnknownRecord(0, 1005, body),))]))


def test_tunnel_records():
    """0:1021-0:1026: the sampled Ethernet/IPv4/IPv6 structures under their own type and keys."""
    from ingest.sflow.flow_records.packet import (
        ExtendedIpv4TunnelEgress,
        ExtendedIpv4TunnelIngress,
        ExtendedIpv6TunnelEgress,
        ExtendedIpv6TunnelIngress,
        ExtendedL2TunnelEgress,
        ExtendedL2TunnelIngress,
    )

    recs = [ExtendedL2TunnelEgress(1514, "00:25:90:a2:53:58", "ff:ff:ff:ff:ff:ff", 0x86DD),
            ExtendedL2TunnelIngress(0, "00:00:00:00:00:00", "00:1d:b5:a2:5f:c0", 0)]
    for proto in (1, 6, 17, 47, 0):
        recs += [ExtendedIpv4TunnelEgress(1344, proto, "10.0.0.1", "255.255.255.255", 4789, 3, 0x12, 0xFF),
                 ExtendedIpv4TunnelIngress(0, proto, "0.0.0.0", "192.0.2.1", 0, 65535, 0, 0),
                 ExtendedIpv6TunnelEgress(1280, proto, "2001:db8::1", "::", 443, 8, 2, 7),
                 ExtendedIpv6TunnelIngress(2**32 - 1, proto, "fe80::2:3", "::ffff:192.0.2.1", 1, 2, 3, 2**32 - 1)]
    hdr = SampledHeader.of(1, 1518, 4, HEADERS["udp"])
    assert same(_dg([_flow([hdr] + recs), _flow(recs, expanded=True), _discard(recs + [hdr])]))
