"""Counter records (counter_data): every codec of COUNTER_RECORDS round-trips, fails only with
DecodeError on bad lengths, and prints what sflowtool prints."""

from __future__ import annotations

import json
import random
import struct

import pytest

from ingest.pcap import read_udp_payloads
from ingest.sflow.counter_records import (
    COUNTER_RECORDS,
    HOST_CPU,
    I32_AS_U32,
    JVM_STATISTICS,
    U8,
    Adaptor,
    AppOperations,
    HostAdapters,
    HostCpu,
    HostDescr,
    JvmRuntime,
    JvmStatistics,
    LagPortStats,
    OfPort,
    PortName,
    Processor,
    Sfp,
    SfpLane,
)
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.layout import F32, F64, I32, IP4, IP6, MAC, PERCENT, U32, U64, Custom, Fixed
from ingest.sflow.model import CounterSample, Datagram, UnknownRecord
from tests.conftest import capture_files

# ---------------------------------------------------------------- instances with distinctive values


def _fixed_value(kind, i: int):
    """A distinctive, exactly representable, non-zero value of a field kind (i: field position)."""
    if kind is U32:
        return 0x01000000 * ((i % 200) + 1) + 0x010203 + i
    if kind is U64:
        return 0x0102030405060708 + (i << 40) + i
    if kind is I32:
        return -1000 - i
    if kind is I32_AS_U32:
        return -20000 - i
    if kind is U8:
        return 0x80 + i
    if kind in (F32, F64):
        return 1.25 + i / 4
    if kind is PERCENT:
        return 12.34 + i
    if kind is MAC:
        return f"02:00:5e:{i:02x}:a1:b2"
    if kind is IP4:
        return f"192.0.2.{i + 1}"
    if kind is IP6:
        return f"2001:db8::{i + 1:x}"
    if kind.fmt == "Q":  # e.g. the hex-printed datapath id
        return 0xFEDCBA9876543210 - i
    raise AssertionError(f"no test value for kind {kind}")


def _fixed_instance(codec: Fixed):
    return codec.cls(*(_fixed_value(f.kind, i) for i, f in enumerate(codec.fields)))


_LANE = SfpLane(1, 6500, 500, 10, 1000, 1310, 450, 5, 900, 1311)
CUSTOM_INSTANCES = {
    Sfp: Sfp(7, 4, 3300, -5125, (_LANE, SfpLane(2, 6600, 501, 11, 1001, 1330, 451, 6, 901, 1331))),
    PortName: PortName("xe-0/0/1.100"),
    HostDescr: HostDescr("fractal", "20d11d01-5150-11cb-957d-990521365ba3", 3, 2, "3.13.0-29-generic"),
    HostAdapters: HostAdapters((Adaptor(2, ("3c:97:0e:25:f0:56",)),
                                Adaptor(3, ("9c:4e:36:59:b2:54", "02:00:00:00:00:01")),
                                Adaptor(4, ()))),
    JvmRuntime: JvmRuntime("OpenJDK 64-Bit Server VM", "Eclipse Adoptium", "17.0.9+9"),
    AppOperations: AppOperations("checkout", *range(101, 112)),
}


def _instance(codec):
    if isinstance(codec, Fixed):
        return _fixed_instance(codec)
    return CUSTOM_INSTANCES[codec.cls]


ALL = sorted(COUNTER_RECORDS.items())
IDS = [f"{e}:{f}-{c.name}" for (e, f), c in ALL]


def _decode(codec, body: bytes):
    return codec.decode(memoryview(body), 0, len(body))


# ---------------------------------------------------------------- round trip and lengths


def test_every_sflowtool_counter_block_is_in_the_table():
    # every counter block sflowtool 6.x decodes (src/sflow.h SFLCounters_type_tag)
    assert set(COUNTER_RECORDS) == {
        (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 10), (0, 1001), (0, 1002), (0, 1004),
        (0, 1005), (0, 2000), (0, 2001), (0, 2002), (0, 2003), (0, 2004), (0, 2005), (0, 2006), (0, 2007),
        (0, 2008), (0, 2009), (0, 2010), (0, 2100), (0, 2101), (0, 2102), (0, 2103), (0, 2104), (0, 2105),
        (0, 2106), (0, 2200), (0, 2201), (0, 2202), (0, 2203), (0, 2204), (0, 2205), (0, 2206), (0, 2207),
        (5703, 1), (4413, 3),
    }
    assert len({c.cls for c in COUNTER_RECORDS.values()}) == len(COUNTER_RECORDS)


@pytest.mark.parametrize("key,codec", ALL, ids=IDS)
def test_round_trip(key, codec):
    rec = _instance(codec)
    body = codec.encode(rec)
    assert len(body) % 4 == 0
    assert _decode(codec, body) == rec
    # at an offset inside a larger buffer, with bytes after the record that must not be read
    buf = b"\xaa" * 12 + body + b"\x55" * 16
    assert codec.decode(memoryview(buf), 12, len(body)) == rec
    out: dict = {}
    codec.sflowtool(rec, out, "")
    assert out and all(isinstance(k, str) for k in out)


@pytest.mark.parametrize("key,codec", ALL, ids=IDS)
def test_wrong_length_raises_decode_error(key, codec):
    rec = _instance(codec)
    body = codec.encode(rec)
    for n in range(len(body)):
        if isinstance(codec, Fixed) and codec.short is not None and n == codec.short.size:
            continue  # the older, shorter version of the record
        with pytest.raises(DecodeError):
            _decode(codec, body[:n])
        # truncated by the record length, with the rest of the bytes still in the buffer
        with pytest.raises(DecodeError):
            codec.decode(memoryview(body + b"\0" * 64), 0, n)
    for extra in (4, 8, 100):
        with pytest.raises(DecodeError):
            _decode(codec, body + b"\0" * extra)


@pytest.mark.parametrize("key,codec", [kc for kc in ALL if isinstance(kc[1], Custom)],
                         ids=[i for i, kc in zip(IDS, ALL) if isinstance(kc[1], Custom)])
def test_random_and_mutated_bodies_raise_only_decode_error(key, codec):
    rnd = random.Random(key[1])
    body = codec.encode(_instance(codec))
    for _ in range(400):
        if rnd.random() < 0.3:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(64)))
        else:
            data = bytearray(body)
            for _ in range(rnd.randrange(1, 4)):
                i = rnd.randrange(len(data)) & ~3
                data[i : i + 4] = struct.pack(">I", rnd.choice((0, 1, 2, 3, 7, 255, 0x7FFFFFFF, 0xFFFFFFFF,
                                                                 rnd.randrange(1 << 32))))
            data = bytes(data)
        try:
            rec = _decode(codec, data)
        except DecodeError:
            continue
        # re-encoding may differ in bytes (invalid UTF-8 replaced, padding zeroed), never in the model
        assert _decode(codec, codec.encode(rec)) == rec
        codec.sflowtool(rec, {}, "")


def test_optional_tails():
    cpu = _fixed_instance(HOST_CPU)
    old = HostCpu(*[getattr(cpu, a) for a in HostCpu.__struct_fields__[:17]])
    assert old.cpu_steal is None and len(HOST_CPU.encode(old)) == 68
    assert _decode(HOST_CPU, HOST_CPU.encode(old)) == old
    out: dict = {}
    HOST_CPU.sflowtool(old, out, "")
    assert "cpu_steal" not in out and "cpu_contexts" in out

    jmx = _fixed_instance(JVM_STATISTICS)
    old = JvmStatistics(*[getattr(jmx, a) for a in JvmStatistics.__struct_fields__[:17]])
    assert len(JVM_STATISTICS.encode(old)) == 100
    assert _decode(JVM_STATISTICS, JVM_STATISTICS.encode(old)) == old
    out = {}
    JVM_STATISTICS.sflowtool(jmx, out, "")
    assert out["fds_open"] == str(jmx.fd_open_count)


def test_counter_sample_with_every_record_round_trips_through_datagrams():
    records = tuple(_instance(c) for _, c in ALL)
    dg = Datagram(5, "192.0.2.1", 1, 2, 3, (CounterSample(False, 9, 0, 5, records),
                                             CounterSample(True, 10, 2, 70000, records[::-1])))
    assert decode_datagram(encode_datagram(dg)) == dg


# ---------------------------------------------------------------- sflowtool output, by hand


def _tool(rec) -> dict:
    codec = next(c for c in COUNTER_RECORDS.values() if c.cls is type(rec))
    out: dict = {}
    codec.sflowtool(rec, out, "")
    return out


def test_sflowtool_host_adapters():
    assert _tool(CUSTOM_INSTANCES[HostAdapters]) == {"adaptor_list": [
        {"ifIndex": "2", "MACs": "1", "mac_list": ["3c970e25f056"]},
        {"ifIndex": "3", "MACs": "2", "mac_list": ["9c4e3659b254", "020000000001"]},
        {"ifIndex": "4", "MACs": "0", "mac_list": []},
    ]}


def test_sflowtool_host_descr_strings():
    assert _tool(CUSTOM_INSTANCES[HostDescr]) == {
        "hostname": "fractal", "UUID": "20d11d01-5150-11cb-957d-990521365ba3", "machine_type": "3",
        "os_name": "2", "os_release": "3.13.0-29-generic"}
    # empty strings are not printed; long ones are cut to sflowtool's buffers (size - 1 bytes)
    out = _tool(HostDescr("", "00000000-0000-0000-0000-000000000000", 0, 0, ""))
    assert "hostname" not in out and "os_release" not in out
    out = _tool(HostDescr("h" * 100, "00000000-0000-0000-0000-000000000000", 0, 0, "r" * 40))
    assert out["hostname"] == "h" * 63 and out["os_release"] == "r" * 31
    # a NUL ends the C string, but the (non-empty) field is still printed
    assert _tool(HostDescr("\0x", "00000000-0000-0000-0000-000000000000", 0, 0, ""))["hostname"] == ""
    assert _tool(PortName("p" * 300)) == {"ifName": "p" * 254}
    assert _tool(PortName("")) == {}
    assert _tool(JvmRuntime("n" * 70, "", "v" * 40)) == {"jvm_name": "n" * 63, "jvm_version": "v" * 31}
    out = _tool(AppOperations("a" * 40, *range(11)))
    assert out["application"] == "a" * 31 and out["status_OK"] == "0" and out["errors_UNAUTHORIZED"] == "10"
    assert "application" not in _tool(AppOperations("", *range(11)))


def test_sflowtool_sfp_prints_every_lane_value_twice():
    out = _tool(CUSTOM_INSTANCES[Sfp])
    assert out["sfp_module_temperature"] == str(2**32 - 5125)  # sflowtool prints the int32 with %u
    assert out["sfp_module_active_lanes"] == "2"
    lane1 = out["sfp_lanes"][1]
    assert lane1["index"] == "2" and lane1["sfp_lane_index.1"] == "2"
    assert lane1["tx_bias_current_uA"] == "6600" and lane1["sfp_lane_tx_bias_current_uA.1"] == "6600"
    # field names with a literal %u, as in sflowtool's source
    assert lane1["tx_power_uW.%u"] == "501" and lane1["sfp_lane_tx_power_uW.%u.1"] == "501"
    assert lane1["rx_wavelength_nM.%u"] == "1331" and lane1["sfp_lane_rx_wavelength_nM.%u.1"] == "1331"
    assert len(lane1) == 20


def test_sflowtool_lag_port_state_bytes_in_wire_order():
    body = (bytes.fromhex("7e6069738f420000") + bytes(8) + struct.pack(">I", 1) + bytes([5, 117, 9, 61])
            + struct.pack(">8I", 0, 1, 2, 3, 4, 1173, 6, 7))
    rec = COUNTER_RECORDS[(0, 7)].decode(memoryview(body), 0, len(body))
    assert isinstance(rec, LagPortStats) and rec.actor_system_id == "7e:60:69:73:8f:42"
    out = _tool(rec)
    assert (out["actorAdminPortState"], out["actorOperPortState"], out["partnerAdminPortState"],
            out["partnerOperPortState"]) == ("5", "117", "9", "61")
    assert out["actorSystemID"] == "7e6069738f42" and out["partnerSystemID"] == "000000000000"
    assert out["LACPDUsTx"] == "1173"


def test_sflowtool_processor_and_of_port():
    assert _tool(Processor(None, 5.5, 100.0, 1 << 33, 12)) == {
        "5s_cpu": "unknown", "1m_cpu": "5.50", "5m_cpu": "100.00", "total_memory_bytes": str(1 << 33),
        "free_memory_bytes": "12"}
    assert _tool(OfPort(0x1234, 7)) == {"openflow_datapath_id": "0000000000001234", "openflow_port": "7"}


# ---------------------------------------------------------------- sflowtool output, from the real captures


def _has_counter_blocks(capture) -> bool:
    """sflowtool printed counter blocks (not only in the partial output of an aborted datagram)."""
    lines = (capture.parent / "reference" / f"{capture.name}.sflowtool.jsonl").read_text().splitlines()
    return any("counterBlock_tag" in line and "sflowtool_abort" not in line for line in lines)


COUNTER_CAPTURES = [p for p in capture_files() if _has_counter_blocks(p)]


@pytest.mark.interop
@pytest.mark.parametrize("capture", COUNTER_CAPTURES, ids=lambda p: p.name)
def test_counter_blocks_match_sflowtool(capture, captures_dir):
    reference = [json.loads(x) for x in (captures_dir / "reference" / f"{capture.name}.sflowtool.jsonl").open()]
    by_seq = {(r["agent"], r["packetSequenceNo"]): r for r in reference if "agent" in r}
    tags = {c.cls: f"{e}:{f}" for (e, f), c in COUNTER_RECORDS.items()}
    compared = 0
    for udp in read_udp_payloads(str(capture)):
        try:
            dg = decode_datagram(udp.payload)
        except DecodeError:
            continue
        ref = by_seq.get((dg.agent_address, str(dg.sequence_number)))
        if ref is None:
            continue
        for sample, ref_sample in zip(dg.samples, ref["samples"]):
            if not isinstance(sample, CounterSample):
                continue
            for rec, ref_el in zip(sample.records, ref_sample["elements"], strict=True):
                if isinstance(rec, UnknownRecord):
                    continue
                tag = tags[type(rec)]
                el = {"counterBlock_tag": tag}
                COUNTER_RECORDS[tuple(int(x) for x in tag.split(":"))].sflowtool(rec, el, "")
                assert el == ref_el
                compared += 1
    assert compared
