"""schemas/prefix_reader.py: the datum fastavro reads, from the same bytes, or a CodecError."""

from __future__ import annotations

import io
import random

import fastavro
import pytest

from schemas import definitions
from schemas.codec import Codec, CodecError, SchemaSet, schema_set
from schemas.examples import DIR as EXAMPLES
from schemas.prefix_reader import PrefixReader
from tests.schemas.test_codec import all_batches

HOT = definitions.hot_field_count()


def fastavro_prefix(fields: list[dict], message: bytes, start: int):
    schema = fastavro.parse_schema({"type": "record", "name": "P", "namespace": "sflowpipe", "fields": fields})
    return fastavro.schemaless_reader(io.BytesIO(message[start:]), schema, None, return_record_name=True,
                                      return_record_name_override=True)


def same(fields: list[dict], message: bytes, start: int = 10) -> None:
    got = PrefixReader(fields).read(message, start)
    want = fastavro_prefix(fields, message, start)
    assert got == want
    assert list(got) == list(want)
    for k, v in got.items():  # the same Python types (a bool is not an int, no numpy scalars)
        if isinstance(v, list):
            assert [type(x) for x in v] == [type(x) for x in want[k]], k


def test_every_released_flow_batch_example_reads_as_fastavro_does():
    for sv in schema_set().by_stem["flow_sample_batch"] + schema_set().by_stem["enriched_flow_sample_batch"]:
        message = (EXAMPLES / f"{sv.stem}.v{sv.version}.avro").read_bytes()
        assert message[:10] == sv.prefix
        for n in (1, 3, 10, 17, 23, 40, HOT, len(sv.raw["fields"])):
            same(sv.raw["fields"][:n], message)


def test_batches_of_the_ingest_path_read_as_fastavro_does():
    """Generated traffic and every capture (VLAN tags, VXLAN inner headers, ICMP, IPv6...)."""
    sv = schema_set().newest("flow_sample_batch")
    for b in all_batches():
        if b.kind == "flow":
            message = sv.prefix + sv.writer(b.datum)
            same(sv.raw["fields"][:HOT], message)
            same(sv.raw["fields"], message)  # cold columns too: fastavro reads those it does not cover


def test_random_columns_read_as_fastavro_does():
    """Mixed nulls, 1- to 10-byte varints, extreme longs, UTF-8, empty and long batches."""
    rng = random.Random(16)
    fields = [
        {"name": "a", "type": "string"},
        {"name": "l", "type": {"type": "array", "items": "long"}},
        {"name": "i", "type": {"type": "array", "items": "int"}},
        {"name": "b", "type": {"type": "array", "items": "boolean"}},
        {"name": "nl", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "ns", "type": {"type": "array", "items": ["null", "string"]}},
        {"name": "s", "type": "string"},
        {"name": "nl2", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "v", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "r", "type": {"type": "array", "items": ["null", {"type": "record", "name": "R", "fields": [
            {"name": "x", "type": "long"}]}]}},
        {"name": "nl3", "type": {"type": "array", "items": ["null", "long"]}},
    ]
    schema = fastavro.parse_schema({"type": "record", "name": "P", "namespace": "sflowpipe", "fields": fields})

    def long_():
        return rng.choice([0, 1, -1, 63, -64, 64, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 4294967295,
                           rng.getrandbits(rng.randint(1, 62)) * rng.choice([1, -1])])

    def string():
        return rng.choice(["", "192.0.2.1", "2001:db8::1", "é", "日本", "x" * 70, "00:1c:c4:47:d3:f9"])

    reader = PrefixReader(fields)
    for _ in range(300):
        n = rng.choice([0, 1, 2, 3, 7, 64, 500])
        null_share = rng.choice([0.0, 1.0, 0.1, 0.5, 0.9])

        def maybe(make):
            return [None if rng.random() < null_share else make() for _ in range(n)]

        datum = {"a": string(), "l": [long_() for _ in range(n)], "i": [rng.randint(-2**31, 2**31 - 1) for _ in range(n)],
                 "b": [rng.random() < 0.5 for _ in range(n)], "nl": maybe(long_), "ns": maybe(string),
                 "s": string(), "nl2": maybe(lambda: rng.randint(0, 3)),
                 "v": [[] if rng.random() < 0.9 or null_share == 1.0 else [long_()] for _ in range(n)],
                 "r": maybe(lambda: {"x": long_()}), "nl3": maybe(long_)}
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, datum)
        message = b"HEADER" + out.getvalue()
        got = reader.read(message, 6)  # the same reader: the token windows it learnt must not matter
        assert got == fastavro_prefix(fields, message, 6) == datum


def test_several_blocks_and_negative_counts_read_as_fastavro_does():
    # fastavro writes one block; other writers may write several, or a negative count and a byte size
    fields = [{"name": "l", "type": {"type": "array", "items": "long"}},
              {"name": "nl", "type": {"type": "array", "items": ["null", "long"]}},
              {"name": "ns", "type": {"type": "array", "items": ["null", "string"]}}]
    body = (bytes([4, 2, 4, 2, 6, 0])  # [1, 2], [3]
            + bytes([3, 4, 2, 2, 0, 0])  # -2 items of 2 bytes: [1, None]
            + bytes([2, 2, 2]) + b"a" + bytes([2, 0, 0]))  # [a], [None]
    same(fields, body, 0)
    assert PrefixReader(fields).read(body, 0) == {"l": [1, 2, 3], "nl": [1, None], "ns": ["a", None]}


def test_corrupt_and_truncated_messages_are_codec_errors():
    codec = Codec()
    sv = codec.current("flow_sample_batch")
    message = next(sv.prefix + sv.writer(b.datum) for b in all_batches() if b.kind == "flow" and b.samples > 50)
    prefix_end = _prefix_end(sv, message)
    rng = random.Random(3)
    cuts = list(range(10, prefix_end, max(1, prefix_end // 300))) + [prefix_end - 1]
    for cut in cuts:
        with pytest.raises(CodecError):
            codec.decode_prefix("flow_sample_batch", message[:cut], HOT)
    for _ in range(400):
        bad = bytearray(message)
        for _ in range(rng.randint(1, 4)):
            bad[rng.randrange(10, prefix_end)] = rng.randrange(256)
        bad = bytes(bad)
        try:
            want = fastavro_prefix(sv.raw["fields"][:HOT], bad, 10)
        except Exception:
            want = CodecError
        if want is CodecError:
            with pytest.raises(CodecError):
                codec.decode_prefix("flow_sample_batch", bad, HOT)
        else:  # a flipped byte fastavro reads (a value changed): the same values
            assert codec.decode_prefix("flow_sample_batch", bad, HOT) == want


def test_huge_counts_fail_fast_without_allocating():
    fields = [{"name": "l", "type": {"type": "array", "items": "long"}},
              {"name": "ns", "type": {"type": "array", "items": ["null", "string"]}},
              {"name": "nl", "type": {"type": "array", "items": ["null", "long"]}}]
    huge = bytes([0xFE, 0xFF, 0xFF, 0xFF, 0x0F])  # 2^31 - 1 items
    for i in range(3):
        body = b"".join(bytes([0]) if j != i else huge + b"\x02" for j in range(3))
        with pytest.raises(Exception):
            PrefixReader(fields).read(body, 0)


def test_older_versions_still_read_whole():
    """decode_prefix of an older version's message reads it whole (schema resolution), as before."""
    codec = Codec(schemas=SchemaSet())
    v1 = (EXAMPLES / "flow_sample_batch.v1.avro").read_bytes()
    assert codec.decode_prefix("flow_sample_batch", v1, HOT) == codec.decode_as("flow_sample_batch", v1)


def _prefix_end(sv, message: bytes) -> int:
    schema = fastavro.parse_schema(dict(sv.raw, fields=sv.raw["fields"][:HOT]))
    f = io.BytesIO(message[10:])
    fastavro.schemaless_reader(f, schema, None)
    return 10 + f.tell()
