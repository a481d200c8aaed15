"""ingest/rows.py against the data model: the ingester's direct decode publishes exactly what the
model path (decode_datagram, flow_row) publishes: the same messages, byte for byte, the same dead
letters and the same counts, for real captures, generated traffic, datagrams with every flow record,
headers of every shape the parse knows, and malformed datagrams."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import pipeline, rows
from ingest.batches import flow_row, full_row
from ingest.generate import Generator
from ingest.pcap import read_udp_payloads
from ingest.pipeline import IngestPipeline
from ingest.sflow import DecodeError, decode_datagram, encode_datagram
from ingest.sflow.flow_records import ExtendedRouter, ExtendedSwitch, SampledHeader
from ingest.sflow.model import Datagram, DiscardSample, FlowSample
from schemas.codec import Codec
from sflowpipe.metrics import Metrics
from sflowpipe.settings import load_settings
from tests.conftest import capture_files
from tests.ingest.sflow.test_datagram import ETH_IP_TCP, sample_datagram
from tests.ingest.sflow.test_flow_records import SAMPLES
from tests.ingest.sflow.test_header import eth, icmp, ip4, ip6, tcp, udp


class RecordingPublisher:
    def __init__(self):
        self.messages = []

    def publish(self, topic, key, value):
        self.messages.append((topic, key, value))

    def service(self):
        pass


def _model_only(*_):
    raise rows.Unhandled


def _run(datagrams: list[bytes], model: bool, monkeypatch, max_samples: int = 500):
    """What a pipeline publishes and counts for these datagrams: through ingest/rows.py, or (``model``)
    with every datagram handed to the model's decode."""
    with monkeypatch.context() as mp:
        if model:
            mp.setattr(pipeline, "decode_rows", _model_only)
        s = load_settings()
        s.ingest.batch_max_samples = max_samples
        pub, m = RecordingPublisher(), Metrics()
        p = IngestPipeline(s.ingest, s.kafka, s.topics, pub, m, Codec())
        for i, data in enumerate(datagrams):
            p.handle(data, f"192.0.2.{i % 3}", 6343 + i % 2, 1_700_000_000_000_000 + i)
        p.drain()
    counts = [line for line in m.text().splitlines() if "decode_seconds" not in line]
    agents = {a: {k: v for k, v in c.items() if k not in ("firstSeen", "lastSeen")}
              for a, c in p.agents.snapshot().items()}
    return pub.messages, counts, agents


def same_as_model(datagrams: list[bytes], monkeypatch, max_samples: int = 500) -> list:
    direct = _run(datagrams, False, monkeypatch, max_samples)
    model = _run(datagrams, True, monkeypatch, max_samples)
    assert direct[0] == model[0]  # every message, in order, byte for byte
    assert direct[1] == model[1]  # every count (dead letters and malformed reasons included)
    assert direct[2] == model[2]  # the agents' session counters
    return direct[0]


def _capture_payloads() -> list[bytes]:
    return [d.payload for path in capture_files() for d in read_udp_payloads(str(path))]


def test_real_captures(monkeypatch):
    payloads = _capture_payloads()
    if not payloads:
        pytest.skip("interop captures (../shared/captures) are not beside this checkout")
    messages = same_as_model(payloads, monkeypatch)
    assert sum(t == "sflow.flow-samples" for t, _, _ in messages) > 1
    same_as_model(payloads, monkeypatch, max_samples=7)  # batches cut inside datagrams


def test_generated_traffic(monkeypatch):
    g = Generator(agents=3, seed=7, counter_interval=0.5, flood_target="198.51.100.7")
    same_as_model([g.datagram(1_700_000_000 + i / 100) for i in range(300)], monkeypatch, max_samples=100)


def _flow(records: tuple, expanded: bool = False, seq: int = 1) -> FlowSample:
    return FlowSample(expanded, seq, 0, 7, 1024, 5000, 0, 0, 7, 0, 9, records)


def test_every_flow_record(monkeypatch):
    """Each flow record type alone, after a sampled header and an extended switch, twice in a sample
    (the second one goes to ``records``), and in a discard sample."""
    header = SampledHeader.of(1, 1518, 4, ETH_IP_TCP)
    switch = ExtendedSwitch(100, 0, 200, 1)
    datagrams = []
    for i, rec in enumerate(SAMPLES.values()):
        samples = (_flow((rec,), seq=1), _flow((header, switch, rec), seq=2), _flow((rec, header, rec, switch), True, 3),
                   DiscardSample(4, 0, 7, 11, 0, 7, 0, 0, 258, (rec,)))
        datagrams.append(encode_datagram(Datagram(5, "192.0.2.10", 0, i, 99_000, samples)))
    datagrams.append(encode_datagram(sample_datagram()))
    datagrams.append(encode_datagram(sample_datagram("2001:db8::1")))
    same_as_model(datagrams, monkeypatch)


def test_router_first_of_its_kind_goes_to_the_columns(monkeypatch):
    router = ExtendedRouter("10.1.2.3", 24, 16)
    dg = Datagram(5, "192.0.2.10", 0, 1, 99_000, (_flow((SampledHeader.of(1, 1518, 4, ETH_IP_TCP), router,
                                                          ExtendedRouter("2001:db8::9", 64, 48))),))
    data = encode_datagram(dg)
    r = rows.decode_rows(data, 1)
    assert list(map(full_row, r.flows)) == [flow_row(decode_datagram(data), decode_datagram(data).samples[0], 1)]
    same_as_model([data], monkeypatch)


def _truncations_and_flips(seed: bytes, n: int, rng: random.Random) -> list[bytes]:
    out = [seed[:i] for i in range(len(seed))]
    for _ in range(n):
        b = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out


def test_malformed_datagrams(monkeypatch):
    """Every truncation and random bit flips of encoder-built datagrams and of a real one: the same
    dead letters (reason code, offset, text) and malformed counts."""
    rng = random.Random(16)
    seeds = [encode_datagram(sample_datagram()), encode_datagram(sample_datagram("2001:db8::1"))]
    seeds += _capture_payloads()[:3]
    datagrams = [b"", b"\x00\x00\x00\x04garbage", b"\x00\x00\x00\x05\x00\x00\x00\x03" + bytes(30)]
    for seed in seeds:
        datagrams += _truncations_and_flips(seed, 150, rng)
    messages = same_as_model(datagrams, monkeypatch)
    assert sum(t == "sflow.deadletter" for t, _, _ in messages) > 100


def test_raw_envelope_is_the_codecs():
    s = load_settings()
    codec = Codec()
    pub = RecordingPublisher()
    p = IngestPipeline(s.ingest, s.kafka, s.topics, pub, Metrics(), codec)
    for data, exporter, port, t in ((b"", "192.0.2.1", 0, 0), (b"x" * 5000, "2001:db8::1", 65535, 2**62),
                                    (bytes(range(256)), "10.0.0.1", 6343, 1_700_000_000_123_456)):
        p.handle(data, exporter, port, t)
        raw = [v for tp, _, v in pub.messages if tp == "sflow.raw"][-1]
        assert raw == codec.encode("raw_datagram", {"receive_time_us": t, "exporter_address": exporter,
                                                    "exporter_port": port, "data": data})


# ---------------------------------------------------------------- the sampled header's parse


def _model_header_columns(proto: int, h: bytes) -> tuple:
    """HEADER_COLUMNS + DECODED_COLUMNS of a header as ingest.batches.flow_row writes them."""
    dg = Datagram(5, "192.0.2.1", 0, 1, 1, (_flow((SampledHeader.of(proto, 1000, 4, h),)),))
    return flow_row(dg, dg.samples[0], 1)[15:51]


def _rows_of(h: bytes, proto: int = 1) -> tuple[list, list]:
    """(direct rows, model rows) of a datagram whose one sample holds the header and a switch record
    (the shape of the direct path's one-unpack case), and of one holding the header alone."""
    out = ([], [])
    for records in ((SampledHeader(proto, 1000, 4, h), ExtendedSwitch(1, 2, 3, 4)), (SampledHeader(proto, 1000, 4, h),)):
        data = encode_datagram(Datagram(5, "192.0.2.1", 0, 1, 1, (_flow(records),)))
        dg = decode_datagram(data)
        out[0].extend(map(full_row, rows.decode_rows(data, 1).flows))
        out[1].append(flow_row(dg, dg.samples[0], 1))
    return out


HEADERS = {
    "tcp": eth(0x0800) + ip4(6, tcp()),
    "tcp cut in the flags": eth(0x0800) + ip4(6, tcp())[:20 + 10],
    "tcp ports only": eth(0x0800) + ip4(6, tcp())[:20 + 8],
    "udp": eth(0x0800) + ip4(17, udp()),
    "udp cut": eth(0x0800) + ip4(17, udp())[:25],
    "vxlan": eth(0x0800) + ip4(17, udp(dport=4789, payload=bytes([8, 0, 0, 0, 0, 1, 0, 0]) + eth(0x0800) + ip4(6, tcp()))),
    "vxlan port, no flag": eth(0x0800) + ip4(17, udp(dport=4789, payload=bytes(16))),
    "geneve": eth(0x0800) + ip4(17, udp(dport=6081, payload=bytes([0, 0, 0x65, 0x58, 0, 0, 1, 0]) + eth(0x0800))),
    "icmp echo": eth(0x0800) + ip4(1, icmp(8, 0)),
    "icmp error": eth(0x0800) + ip4(1, icmp(3, 1) + ip4(17, udp())),
    "icmpv6 in ipv4": eth(0x0800) + ip4(58, icmp(1, 0) + ip6(17, udp())),
    "gre": eth(0x0800) + ip4(47, bytes([0, 0, 8, 0]) + ip4(6, tcp())),
    "ip in ip": eth(0x0800) + ip4(4, ip4(6, tcp())),
    "other protocol": eth(0x0800) + ip4(89, bytes(20)),
    "ipv4 options": eth(0x0800) + bytes([0x46]) + ip4(6, tcp())[1:20] + bytes(4) + tcp(),
    "ipv4 fragment": eth(0x0800) + ip4(6, tcp())[:6] + b"\x00\x10" + ip4(6, tcp())[8:],
    "vlan": eth(0x0800, tags=((0x8100, 100),)) + ip4(6, tcp()),
    "qinq": eth(0x0800, tags=((0x88A8, 10), (0x8100, 20))) + ip4(17, udp()),
    "vlan cut": eth(0x0800, tags=((0x8100, 100), (0x8100, 200)))[:16] + bytes(20),
    "ipv6 tcp": eth(0x86DD) + ip6(6, tcp()),
    "ipv6 udp": eth(0x86DD) + ip6(17, udp()),
    "ipv6 icmp": eth(0x86DD) + ip6(58, icmp(128, 0)),
    "ipv6 icmp error": eth(0x86DD) + ip6(58, icmp(1, 4) + ip6(6, tcp())),
    "ipv6 hop by hop": eth(0x86DD) + ip6(0, bytes([17, 0]) + bytes(6) + udp()),
    "ipv6 cut": eth(0x86DD) + ip6(6, tcp())[:30],
    "ipv6 in ipv6": eth(0x86DD) + ip6(41, ip6(6, tcp())),
    "arp": eth(0x0806) + bytes(28),
    "llc snap": eth(40) + bytes([0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]) + ip4(6, tcp()),
    "short": eth(0x0800)[:13],
    "not ip behind 0x0800": eth(0x0800) + bytes(40),
}


@pytest.mark.parametrize("name", HEADERS)
def test_header_shapes(name):
    h = HEADERS[name]
    for proto in (1, 11, 12, 15, 2):
        assert rows._header_columns(proto, 1000, 4, h) == _model_header_columns(proto, h), proto
    for cut in range(0, len(h) + 1):
        assert rows._header_columns(1, 1000, 4, h[:cut]) == _model_header_columns(1, h[:cut]), cut
        direct, model = _rows_of(h[:cut])
        assert direct == model, cut


@st.composite
def headers(draw):
    """Headers of the shapes the direct parse reads, with random fields, then randomly cut or mutated."""
    l4 = draw(st.sampled_from([6, 17, 1, 58, 47, 4, 41, 89]))
    sport, dport = draw(st.integers(0, 65535)), draw(st.sampled_from([53, 80, 4789, 6081, 443]))
    payload = {6: lambda: tcp(sport, dport, draw(st.integers(0, 255))), 17: lambda: udp(sport, dport),
               1: lambda: icmp(draw(st.integers(0, 20)), draw(st.integers(0, 5))),
               58: lambda: icmp(draw(st.integers(0, 140)), 0)}.get(l4, lambda: draw(st.binary(max_size=40)))()
    payload += draw(st.binary(max_size=40))
    if draw(st.booleans()):
        h = eth(0x0800, tags=tuple((draw(st.sampled_from([0x8100, 0x88A8])), draw(st.integers(0, 0xFFFF)))
                                   for _ in range(draw(st.integers(0, 2))))) + ip4(l4, payload)
    else:
        h = eth(0x86DD) + ip6(l4, payload)
    h = bytearray(h)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(h) - 1))
        h[i] = draw(st.integers(0, 255))
    return bytes(h[: draw(st.integers(0, len(h)))])


@settings(max_examples=400, deadline=None)
@given(headers())
def test_header_parse_is_the_models(h):
    assert rows._header_columns(1, 1000, 4, h) == _model_header_columns(1, h)
    direct, model = _rows_of(h)
    assert direct == model


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_any_header_bytes(h):
    assert rows._header_columns(1, 1000, 4, h) == _model_header_columns(1, h)


def test_record_lengths_around_the_sampled_header(monkeypatch):
    """The one-unpack case checks what _records and decode_sampled_header check: a header length
    that does not fill its record, a record longer than its sample, a switch record of the wrong
    length, records that do not fill the sample."""
    dg = Datagram(5, "192.0.2.1", 0, 1, 1, (_flow((SampledHeader.of(1, 1000, 4, HEADERS["tcp"]),
                                                   ExtendedSwitch(1, 2, 3, 4))),))
    data = encode_datagram(dg)
    hdr_len_at = 28 + 8 + 32 + 8 + 12  # datagram head, sample tag+length, flow_sample, record tag+length
    variants = []
    for field_at in (28 + 4, 28 + 8 + 28, 28 + 8 + 32 + 4, hdr_len_at):  # sample length, record count, record length, header length
        value = struct.unpack_from(">I", data, field_at)[0]
        for delta in (-8, -4, -3, -1, 1, 3, 4, 8):
            b = bytearray(data)
            struct.pack_into(">I", b, field_at, (value + delta) & 0xFFFFFFFF)
            variants.append(bytes(b))
    switch_len_at = len(data) - 16 - 4
    for v in (0, 12, 15, 17, 20):
        b = bytearray(data)
        struct.pack_into(">I", b, switch_len_at, v)
        variants.append(bytes(b))
    same_as_model(variants, monkeypatch)
    for v in variants:
        try:
            decode_datagram(v)
        except DecodeError:
            with pytest.raises(rows.Unhandled):
                rows.decode_rows(v, 1)


def test_the_commonest_sample_takes_the_short_row(monkeypatch):
    """[sampled_header (Ethernet/IPv4/TCP or UDP), extended_switch] becomes a short row; batches of
    short rows alone, of full rows alone and of both write the same bytes as the model's."""
    from ingest.batches import HOT_COLUMNS

    datagrams = []
    for i, h in enumerate((HEADERS["tcp"], HEADERS["udp"] + bytes(20), HEADERS["vlan"], HEADERS["tcp"])):
        data = encode_datagram(Datagram(5, "192.0.2.1", 0, i, 1, (_flow((SampledHeader(1, 1000, 4, h),
                                                                          ExtendedSwitch(1, 2, 3, 4)), seq=i),)))
        assert (len(rows.decode_rows(data, 1).flows[0]) == len(HOT_COLUMNS)) == (i != 2)
        datagrams.append(data)
    same_as_model(datagrams, monkeypatch, max_samples=2)  # [short, short], [full, short]
    same_as_model(datagrams[:2], monkeypatch)


def test_every_counter_record(monkeypatch):
    """Counter samples of every counter record (those of plain numbers read straight into their
    datum), plain and expanded, whole, cut and with bits flipped."""
    from ingest.sflow.model import CounterSample, UnknownRecord
    from tests.ingest.sflow.test_counter_records import ALL, _instance

    records = tuple(_instance(c) for _, c in ALL) + (UnknownRecord(4300, 9, b"\x01\x02"),)
    datagrams = [encode_datagram(Datagram(5, "192.0.2.1", 1, i, 3, (
        CounterSample(False, 9 + i, 0, 5, records[i:]), _flow((SampledHeader.of(1, 1518, 4, ETH_IP_TCP),)),
        CounterSample(True, 10 + i, 2, 70000, records[::-1][i:])))) for i in range(0, len(records), 5)]
    same_as_model(datagrams, monkeypatch)
    same_as_model(_truncations_and_flips(datagrams[0], 300, random.Random(9))[::7], monkeypatch)
