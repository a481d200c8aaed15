"""Schemas and codecs: framing, fingerprints, the compiled writer's bytes, schema evolution,
and the Confluent Schema Registry wire format."""

from __future__ import annotations

import io
import json
import random
import shutil
import struct

import fastavro
import pytest
from fastavro.schema import fingerprint

from ingest.batches import AgentBatches
from ingest.generate import Generator
from ingest.pcap import read_udp_payloads
from ingest.sflow import decode_datagram
from schemas import definitions
from schemas.codec import (SCHEMA_DIR, AvroCodec, Codec, CodecError, RegistryUnavailable, SchemaSet, decode_any,
                           schema_set)
from schemas.examples import DIR as EXAMPLES, from_jsonable, to_jsonable
from schemas.generate import render, versions
from schemas.writer import compile_writer, encode_long
from tests.conftest import capture_files
from tests.schema_registry import registry_url  # noqa: F401 (fixture)


def batches_from(payloads) -> list:
    b = AgentBatches(300, 1e9)
    out = []
    for p in payloads:
        try:
            out += b.add(decode_datagram(p), "192.0.2.9", 1_700_000_000_123_456)
        except Exception:
            continue
    return out + b.drain()


def all_batches() -> list:
    gen = Generator(agents=2, counter_interval=0.2, seed=9)
    payloads = [gen.datagram(now=i * 0.01) for i in range(200)]
    for path in capture_files():
        payloads += [d.payload for d in read_udp_payloads(str(path))]
    return batches_from(payloads)


STEMS = {"flow": "flow_sample_batch", "counters": "counter_sample_batch", "discards": "discard_sample_batch"}


def test_newest_schemas_match_the_data_model():
    """A model change must come with a new schema version (python -m schemas.generate)."""
    for stem, build in definitions.MESSAGES.items():
        newest = versions(stem)[-1][1]
        assert newest.read_text() == render(build()), f"{newest.name} is stale: run python -m schemas.generate"


def test_single_object_framing_and_fingerprint():
    codec = AvroCodec("raw_datagram")
    msg = codec.encode({"receive_time_us": 1, "exporter_address": "192.0.2.1", "exporter_port": 6343, "data": b"x"})
    assert msg[:2] == b"\xc3\x01"
    # the spec's CRC-64-AVRO of the Parsing Canonical Form, little-endian
    assert msg[2:10] == bytes.fromhex(fingerprint(codec.current.canonical, "CRC-64-AVRO"))
    body = fastavro.schemaless_reader(io.BytesIO(msg[10:]), codec.current.parsed)
    assert body["data"] == b"x" and codec.decode(msg) == body
    assert decode_any(msg)[0] == "raw_datagram"
    with pytest.raises(CodecError):
        codec.decode(b"\xc3\x01" + b"\0" * 8 + msg[10:])
    with pytest.raises(CodecError):
        codec.decode(msg[:12])


def test_compiled_writer_writes_fastavros_bytes():
    batches = all_batches()
    assert {b.kind for b in batches} >= {"flow", "counters"}
    for b in batches:
        sv = schema_set().newest(STEMS[b.kind])
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, sv.parsed, b.datum)
        assert sv.writer(b.datum) == ref.getvalue()


def test_longs_and_unions_edge_values():
    for n in [0, -1, 1, 63, -64, 64, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)] + [random.getrandbits(62) for _ in range(50)]:
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, "long", n)
        assert encode_long(n) == ref.getvalue()
    schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "a", "type": {"type": "array", "items": ["null", "string"]}},
        {"name": "b", "type": ["null", "long", "string"]},
        {"name": "c", "type": {"type": "array", "items": "double"}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
    ]})
    datum = {"a": [None, "é", "", None], "b": "s", "c": [1.5, -2.0], "e": "Y"}
    ref = io.BytesIO()
    fastavro.schemaless_writer(ref, schema, datum)
    assert compile_writer(schema)(datum) == ref.getvalue()


def test_round_trip_through_codec_and_unrolled_rows():
    for b in all_batches()[:20]:
        codec = AvroCodec(STEMS[b.kind])
        back = codec.decode(codec.encode(b.datum))
        assert back["agent_address"] == b.agent
        if b.kind == "flow":
            assert len(back["sequence_number"]) == b.samples
            assert back["header"] == b.datum["header"]


def test_every_example_reads_with_the_newest_reader():
    examples = sorted(EXAMPLES.glob("*.avro"))
    assert {p.name.split(".v")[0] for p in examples} == set(definitions.MESSAGES)
    for p in examples:
        stem = p.name.split(".v")[0]
        datum = AvroCodec(stem).decode(p.read_bytes())
        datum = from_jsonable(json.loads(json.dumps(to_jsonable(datum))))  # tuples as JSON keeps them
        expected = from_jsonable(json.loads(p.with_suffix(".json").read_text()))
        for k, v in expected.items():  # fields of the older version keep their values
            assert _older_fields_kept(datum[k], v), (p.name, k)


def _older_fields_kept(got, expected) -> bool:
    """``got`` (read with the newest reader) holds ``expected`` (an older version's datum): equal,
    except that records, at any depth, may have gained fields."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return all(k in got and _older_fields_kept(got[k], v) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(_older_fields_kept(g, e) for g, e in zip(got, expected))
    return got == expected


def test_evolution_new_field_with_default(tmp_path):
    """v2 adds a field with a default: messages written with v1 read with v2."""
    shutil.copy(SCHEMA_DIR / "raw_datagram.v1.avsc", tmp_path / "raw_datagram.v1.avsc")
    v2 = json.loads((SCHEMA_DIR / "raw_datagram.v1.avsc").read_text())
    v2["fields"].append({"name": "ingester", "type": "string", "default": "unknown"})
    (tmp_path / "raw_datagram.v2.avsc").write_text(json.dumps(v2))
    old = SchemaSet(tmp_path)
    v1_msg = old.by_stem["raw_datagram"][0].prefix + old.by_stem["raw_datagram"][0].writer(
        {"receive_time_us": 5, "exporter_address": "::1", "exporter_port": 1, "data": b"d"})
    got = AvroCodec("raw_datagram", old).decode(v1_msg)
    assert got["ingester"] == "unknown" and got["receive_time_us"] == 5


def test_confluent_wire_format(registry_url):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    b = [x for x in all_batches() if x.kind == "counters"][0]
    codec = Codec(registry_url, {"counter_sample_batch": "sflow.counter-samples-value"})
    msg = codec.encode("counter_sample_batch", b.datum)
    ctx = SerializationContext("sflow.counter-samples", MessageField.VALUE)
    client = SchemaRegistryClient({"url": registry_url})
    sid = struct.unpack(">I", msg[1:5])[0]
    assert msg[0] == 0 and json.loads(client.get_schema(sid).schema_str) == codec.current("counter_sample_batch").raw
    theirs = AvroDeserializer(client)(msg, ctx)
    assert theirs["agent_address"] == b.agent and len(theirs["samples"]) == b.samples
    # byte-identical to confluent-kafka's own serializer
    ser = AvroSerializer(client, json.dumps(codec.current("counter_sample_batch").raw),
                         conf={"auto.register.schemas": True})
    assert ser(b.datum, ctx) == msg



def test_both_framings_decode_to_the_same_datum(registry_url):
    """Registry mode: a reader gets what the single-object path gives, unions of records as
    (record name, dict) included (confluent-kafka's AvroDeserializer returns them bare)."""
    subjects = {"counter_sample_batch": "c-value", "flow_sample_batch": "f-value"}
    confluent, plain = Codec(registry_url, subjects), Codec()
    for b in [x for x in all_batches() if x.kind in ("counters", "flow")][:6]:
        stem = "counter_sample_batch" if b.kind == "counters" else "flow_sample_batch"
        framed, single = confluent.encode(stem, b.datum), plain.encode(stem, b.datum)
        assert framed[:1] == b"\x00" and single[:2] == b"\xc3\x01"
        want = plain.decode(single)
        # any reader with the registry reads either framing, and one without it the single-object one
        assert Codec(registry_url).decode(framed) == want == confluent.decode(single)
        assert isinstance(want[1]["samples"][0]["records"][0], tuple) if stem == "counter_sample_batch" else True
        assert Codec(registry_url).decode_prefix(stem, framed, 3) == plain.decode_prefix(stem, single, 3)


def test_registry_and_decoder_faults_are_codec_errors(registry_url):
    b = [x for x in all_batches() if x.kind == "counters"][0]
    framed = Codec(registry_url, {"counter_sample_batch": "c-value"}).encode("counter_sample_batch", b.datum)
    with pytest.raises(CodecError, match="schema_registry_url"):
        Codec().decode(framed)  # Confluent framing without a registry configured
    with pytest.raises(CodecError, match="schema id 99") as unknown:
        Codec(registry_url).decode(b"\x00" + struct.pack(">I", 99) + framed[5:])  # unknown id (404)
    assert not isinstance(unknown.value, RegistryUnavailable)  # for good: a consumer skips it
    with pytest.raises(CodecError, match="corrupt"):
        Codec(registry_url).decode(framed[:5] + b"\xff" * 8)
    down = Codec("http://127.0.0.1:9", {"counter_sample_batch": "c-value"}, registry_conf={"max.retries": 0})
    with pytest.raises(CodecError, match="127.0.0.1:9"):
        down.encode("counter_sample_batch", b.datum)
    with pytest.raises(RegistryUnavailable, match="127.0.0.1:9"):  # a CodecError a consumer retries
        down.decode(framed)
    with pytest.raises(CodecError):
        Codec().decode(b"\x01garbage")


def test_codec_survives_pickling(registry_url):
    import pickle

    codec = Codec(registry_url, {"event": "e-value"})
    ev = {"eventID": 1, "thresholdID": "t", "agent": "a", "dataSource": "1", "metric": "m", "value": 1.0,
          "threshold": 0.5, "flowKey": None, "timestamp": 1}
    msg = codec.encode("event", ev)
    again = pickle.loads(pickle.dumps(codec))
    assert again.decode(msg) == ("event", ev) and again.framing == "confluent"


def test_compiled_writer_shortcuts_write_fastavros_bytes():
    """The writer's shortcuts (a column of one value, of nulls only, of empty arrays only; sampled
    headers; longs from the 14-bit tables) against fastavro, on columns that take them and columns
    that just miss them."""
    from schemas.writer import long_writer

    fast_long = long_writer()
    for n in [0, -1, 63, -64, 64, 8191, -8192, 8192, 2**27, 2**28, -(2**28), 2**41, 2**42, 2**62, 2**63 - 1,
              -(2**63)] + [random.getrandbits(b) * random.choice((1, -1)) for b in range(1, 64) for _ in range(5)]:
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, "long", n)
        assert fast_long(n) == encode_long(n) == ref.getvalue(), n
    schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "longs", "type": {"type": "array", "items": "long"}},
        {"name": "flags", "type": {"type": "array", "items": "boolean"}},
        {"name": "opt", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "text", "type": {"type": "array", "items": ["null", "string"]}},
        {"name": "blobs", "type": {"type": "array", "items": ["null", "bytes"]}},
        {"name": "lists", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "recs", "type": {"type": "array", "items": ["null", {"type": "record", "name": "R", "fields": [
            {"name": "x", "type": "long"}]}]}},
        {"name": "doubles", "type": {"type": "array", "items": "double"}},
    ]})
    writer = compile_writer(schema)
    big = bytes(range(256)) * 20  # a length beyond the writer's table of lengths
    columns = [
        {"longs": [7] * 5, "flags": [True] * 3, "opt": [None] * 4, "text": ["a"] * 3, "blobs": [b"ab", b"cd"],
         "lists": [[], [], []], "recs": [None, None], "doubles": [1.5, 1.5]},
        {"longs": [7, 7, 8, 2**40, -3], "flags": [True, False], "opt": [None, 1, None, 2**33], "text": [None, "é", ""],
         "blobs": [b"", None, big, b"x"], "lists": [[], [1, 2**35], []], "recs": [None, {"x": 3}], "doubles": []},
        {"longs": [], "flags": [], "opt": [], "text": [], "blobs": [big, big, b""], "lists": [], "recs": [],
         "doubles": [0.0]},
        {"longs": [1], "flags": [False], "opt": [5], "text": [None], "blobs": [None], "lists": [[4]], "recs": [{"x": -1}],
         "doubles": [2.0]},
    ]
    for datum in columns:
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, schema, datum)
        assert writer(datum) == ref.getvalue(), datum
        as_tuples = {k: tuple(v) for k, v in datum.items()}  # columns transposed from rows come as tuples
        assert writer(as_tuples) == ref.getvalue()


def test_compiled_writer_without_its_cache_and_with_runs_of_longs():
    """Columns of new values each time (written without the cache after a while), nullable ones with
    nulls among them, and records of long fields (one map over their values; a field left to its
    default the general way), against fastavro."""
    schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "seq", "type": {"type": "array", "items": "long"}},
        {"name": "opt", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "names", "type": {"type": "array", "items": "string"}},
        {"name": "blocks", "type": {"type": "array", "items": {"type": "record", "name": "B", "fields": [
            {"name": "a", "type": "long"}, {"name": "b", "type": "long"}, {"name": "on", "type": "boolean"},
            {"name": "c", "type": "long"}, {"name": "d", "type": "long", "default": 7},
            {"name": "e", "type": "long"}, {"name": "f", "type": "int"}]}}},
    ]})
    writer = compile_writer(schema)
    rng = random.Random(5)
    for i in range(200):
        n = rng.choice((1, 15, 16, 40))
        datum = {"seq": [rng.getrandbits(rng.randrange(1, 63)) for _ in range(n)],
                 "opt": [None if rng.random() < 0.3 else rng.getrandbits(40) for _ in range(n)],
                 "names": [f"agent-{rng.getrandbits(30)}" for _ in range(n)],
                 "blocks": [{"a": i, "b": -i, "on": i % 2 == 0, "c": 2**40 + i, "e": 5, "f": -1} | ({"d": i} if i % 3 else {})
                            for _ in range(rng.randrange(3))]}
        ref = io.BytesIO()
        fastavro.schemaless_writer(ref, schema, datum)
        assert writer(datum) == ref.getvalue(), (i, datum)


def test_columns_of_longs_by_groups_are_the_plain_encoding():
    """schemas/writer.py _longs (a column of longs of one size, a group at a time) against the writer's
    long encoding (itself against fastavro above), at every boundary of a 14-bit group."""
    from schemas.writer import _longs, long_writer

    fast_long = long_writer()
    rng = random.Random(3)
    edges = [2**13, 2**27, 2**41, 2**55]
    columns: list[list[int]] = []
    for e in edges:
        columns += [[e - 1, e], [e, e + 1], [e, 2 * e - 1], [e // 2, e - 1], [e, 8 * e]]
    for _ in range(500):
        bits = rng.choice((13, 14, 20, 27, 28, 35, 41, 42, 50, 55, 56, 62))
        lo = rng.randrange(0, 2**bits)
        columns.append([rng.randrange(lo, lo + rng.choice((1, 100, 2**bits))) for _ in range(rng.choice((1, 2, 50)))])
    taken = 0
    for v in columns:
        body = _longs(v)
        if body is not None:
            taken += 1
            assert body == b"".join(map(fast_long, v)), v
    assert taken > 100
