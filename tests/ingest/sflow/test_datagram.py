"""Datagram and sample envelopes: encode -> decode round trips and precise errors."""

from __future__ import annotations

import struct

import pytest

from ingest.sflow import DecodeError, decode_datagram, encode_datagram
from ingest.sflow.counter_records import IfCounters
from ingest.sflow.flow_records import ExtendedSwitch, SampledHeader
from ingest.sflow.model import (
    CounterSample,
    Datagram,
    DiscardSample,
    FlowSample,
    UnknownRecord,
    UnknownSample,
)
from ingest.sflow.sflowtool import Meta, datagram_fields

ETH_IP_TCP = bytes.fromhex(
    "00d001ff5800" "00163cc2a9ab" "0800"
    "4500002c00004000400600000a0000010a000002" "04d20050000000010000000050180200" "00000000"
)


def sample_datagram(agent: str = "192.0.2.10") -> Datagram:
    ifc = IfCounters(7, 6, 10_000_000_000, 1, 3, 123456789012, 1, 2, 3, 4, 5, 6, 98765432109, 7, 8, 9, 10, 11, 0)
    return Datagram(5, agent, 3, 1234, 99_000, (
        FlowSample(False, 1, 0, 7, 1024, 5000, 0, 0, 7, 0, 9, (
            SampledHeader.of(1, 1518, 4, ETH_IP_TCP),
            ExtendedSwitch(100, 0, 200, 1),
        )),
        FlowSample(True, 2, 0, 70_000_000, 512, 6000, 2, 0, 70_000_000, 2, 3, (
            UnknownRecord(9999, 7, b"\x01\x02\x03\x04\x05"),
        )),
        CounterSample(False, 3, 0, 7, (ifc,)),
        CounterSample(True, 4, 0, 70_000_000, (ifc, UnknownRecord(4300, 1, b""))),
        DiscardSample(5, 0, 7, 11, 0, 7, 0, 0, 258, (SampledHeader.of(1, 60, 4, ETH_IP_TCP),)),
        UnknownSample(4300, 1002, b"\x00\x00\x00\x01"),
    ))


@pytest.mark.parametrize("agent", ["192.0.2.10", "2001:db8::1"])
def test_round_trip_every_sample_type(agent):
    dg = sample_datagram(agent)
    data = encode_datagram(dg)
    back = decode_datagram(data)
    # UnknownRecord keeps the unpadded bytes; everything else is equal field by field
    assert back == dg


def test_sflowtool_view_of_every_sample_type():
    d = datagram_fields(decode_datagram(encode_datagram(sample_datagram())), Meta("-", 0))
    kinds = [s["sampleType_tag"] for s in d["samples"]]
    assert kinds == ["0:1", "0:3", "0:2", "0:4", "0:5", "4300:1002"]
    assert d["samples"][1]["inputPort"] == "70000000" and d["samples"][1]["outputPort"] == "multiple 3"
    assert d["samples"][1]["elements"] == [{"flowBlock_tag": "9999:7"}]
    assert d["samples"][4]["discardReason"] == "acl"
    assert d["samples"][4]["elements"][0]["discarded_flowBlock_tag"] == "0:1"
    assert d["samples"][3]["sourceId"] == "0:70000000"


def test_every_truncation_is_a_decode_error():
    data = encode_datagram(sample_datagram())
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as e:
            decode_datagram(data[:cut])
        assert 0 <= e.value.offset <= len(data)


def test_errors_name_reason_and_offset():
    data = bytearray(encode_datagram(sample_datagram()))
    with pytest.raises(DecodeError, match="version 4"):
        decode_datagram(b"\x00\x00\x00\x04" + bytes(data[4:]))
    with pytest.raises(DecodeError, match="address type 3") as e:
        decode_datagram(bytes(data[:4]) + b"\x00\x00\x00\x03" + bytes(data[8:]))
    assert e.value.offset == 4
    # first sample's length field points past the end
    struct.pack_into(">I", data, 32, 0xFFFFFFF0)
    with pytest.raises(DecodeError, match="exceeds") as e:
        decode_datagram(bytes(data))
    assert e.value.offset == 32


def test_sample_length_must_match_contents():
    data = bytearray(encode_datagram(Datagram(5, "10.0.0.1", 0, 1, 1, (
        FlowSample(False, 1, 0, 1, 1, 1, 0, 0, 1, 0, 2, (ExtendedSwitch(1, 0, 1, 0),)),))))
    # claim one record fewer than present: the sample has 24 unread bytes
    struct.pack_into(">I", data, 28 + 8 + 28, 0)
    with pytest.raises(DecodeError, match="length error"):
        decode_datagram(bytes(data))


def test_trailing_bytes_after_last_sample_are_ignored():
    data = encode_datagram(sample_datagram())
    assert decode_datagram(data + b"\0" * 8) == decode_datagram(data)


def test_expanded_flow_sample_without_records_is_legal():
    """flow_sample_expanded (0:3) has an 11-word (44-byte) header; one carrying no flow records is
    legal and must decode (issue 13: the header was read as 48 bytes and such a sample refused)."""
    from ingest.sflow import decode_datagram, encode_datagram
    from ingest.sflow.model import Datagram, FlowSample

    sample = FlowSample(True, 7, 0, 1_000_000, 512, 5120, 0, 0, 3, 0, 4, ())
    data = encode_datagram(Datagram(5, "192.0.2.1", 0, 1, 1000, (sample,)))
    assert decode_datagram(data).samples == (sample,)


def test_decode_errors_carry_a_reason_code():
    """Each refusal names its kind with a DecodeReason (the ingest metric's label and the dead
    letter's reason), not a class guessed from the English message."""
    import pickle
    import struct

    import pytest

    from ingest.sflow import decode_datagram, encode_datagram
    from ingest.sflow.errors import DecodeError, DecodeReason
    from ingest.sflow.model import Datagram, FlowSample

    good = encode_datagram(Datagram(5, "192.0.2.1", 0, 1, 1000, (FlowSample(False, 7, 0, 3, 512, 5120, 0, 0, 3, 0, 4,
                                                                            ()),)))
    cases = {
        DecodeReason.UNSUPPORTED_VERSION: struct.pack(">I", 4) + good[4:],
        DecodeReason.TRUNCATED: good[:20],
        DecodeReason.BAD_ADDRESS: good[:4] + struct.pack(">I", 3) + good[8:],
        DecodeReason.BAD_LENGTH: good[:-4],  # the sample's length now exceeds what is left
    }
    for code, data in cases.items():
        with pytest.raises(DecodeError) as e:
            decode_datagram(data)
        assert e.value.code is code, (code, e.value)
        assert pickle.loads(pickle.dumps(e.value)).code is code  # crosses to the parent process intact
