"""For ANY bytes the decoder returns a Datagram or raises DecodeError: nothing else, no hang.

Random bytes, and mutations (bit flips, truncations, insertions, overwritten length fields) of
encoder-built datagrams and of every real capture. Bounded to well under a minute.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.pcap import read_udp_payloads
from ingest.sflow import DecodeError, decode_datagram, encode_datagram
from ingest.sflow.model import Datagram
from ingest.sflow.sflowtool import Meta, datagram_fields, json_line
from tests.conftest import capture_files
from tests.ingest.sflow.test_datagram import sample_datagram

# thousands of generated datagrams: tens of seconds on a busy machine, so in `make test` and not in
# the development loop's `make test-unit`
pytestmark = pytest.mark.slow

SEEDS = [encode_datagram(sample_datagram()), encode_datagram(sample_datagram("2001:db8::7"))]
for _path in capture_files():
    SEEDS.extend(d.payload for d in read_udp_payloads(str(_path))[:20])


def check(data: bytes) -> None:
    try:
        dg = decode_datagram(data)
    except DecodeError as e:
        assert isinstance(e.offset, int) and 0 <= e.offset <= len(data) and e.reason
        return
    assert isinstance(dg, Datagram)
    # whatever decodes must also render (sflowtool view) without error
    json_line(datagram_fields(dg, Meta("-", len(data))))


@settings(max_examples=1500)
@given(st.binary(max_size=1500))
def test_random_bytes(data):
    check(data)


@settings(max_examples=600)
@given(st.binary(min_size=28, max_size=600))
def test_random_bytes_with_a_valid_v5_header(data):
    check(struct.pack(">II", 5, 1) + data)


@st.composite
def mutated(draw):
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        if not seed:
            break
        pos = draw(st.integers(0, len(seed) - 1))
        if op == 0:
            seed[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            del seed[pos:]
        elif op == 2:
            seed[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        else:
            # overwrite an aligned 32-bit word (lengths, counts, tags) with a hostile value
            pos &= ~3
            value = draw(st.sampled_from([0, 1, 3, 4, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFC, len(seed), 1 << 20]))
            if pos + 4 <= len(seed):
                struct.pack_into(">I", seed, pos, value)
    return bytes(seed)


@settings(max_examples=3000)
@given(mutated())
def test_mutated_datagrams(data):
    check(data)


def test_seeds_themselves():
    for s in SEEDS:
        check(s)
