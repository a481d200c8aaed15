"""Avro message codecs: each schema parsed once; Avro single-object encoding by default.

Single-object encoding (Avro spec): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO
fingerprint of the writer schema's Parsing Canonical Form + the binary body. Any reader holding
the .avsc files resolves the writer schema from the fingerprint, no server needed; sflowpipe's
readers know every released version and read with the newest (schema resolution fills added
fields from their defaults).

With a Confluent-compatible Schema Registry configured, ``ConfluentCodec`` uses confluent-kafka's
registry client and AvroDeserializer, and the Confluent wire format (``00`` + 4-byte schema id +
body); the body is the same Avro binary either way.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas.writer import compile_writer

SCHEMA_DIR = Path(__file__).resolve().parent
MAGIC = b"\xc3\x01"


class CodecError(ValueError):
    """A message this codec cannot read (unknown schema, corrupt body)."""


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (0xC15D213AA4D7A795 & -(fp & 1))
        table.append(fp)
    return table


_CRC64 = _crc64_table()


def fingerprint64(schema_json: str) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of a schema's canonical form, as the Avro spec defines it."""
    fp = 0xC15D213AA4D7A795
    for b in schema_json.encode("utf-8"):
        fp = (fp >> 8) ^ _CRC64[(fp ^ b) & 0xFF]
    return fp


class SchemaVersion:
    """One .avsc file: parsed once, with its fingerprint and compiled writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stem, v = path.name[:-5].rsplit(".v", 1)
        self.version = int(v)
        self.raw = json.loads(path.read_text())
        self.parsed = fastavro.parse_schema(self.raw)
        self.canonical = to_parsing_canonical_form(self.raw)
        self.fingerprint = fingerprint64(self.canonical)
        self.prefix = MAGIC + struct.pack("<Q", self.fingerprint)
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            self._writer = compile_writer(self.parsed)
        return self._writer


class SchemaSet:
    """Every released schema version in a directory, by name and by fingerprint."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.by_stem: dict[str, list[SchemaVersion]] = {}
        self.by_fingerprint: dict[int, SchemaVersion] = {}
        for p in sorted(directory.glob("*.v*.avsc")):
            sv = SchemaVersion(p)
            self.by_stem.setdefault(sv.stem, []).append(sv)
            self.by_fingerprint[sv.fingerprint] = sv
        for versions in self.by_stem.values():
            versions.sort(key=lambda s: s.version)

    def newest(self, stem: str) -> SchemaVersion:
        try:
            return self.by_stem[stem][-1]
        except KeyError:
            raise CodecError(f"no schema named {stem!r} in {SCHEMA_DIR}") from None


_default: SchemaSet | None = None


def schema_set() -> SchemaSet:
    global _default
    if _default is None:
        _default = SchemaSet()
    return _default


class AvroCodec:
    """Encode with the newest version of one schema; decode any known version of it.

    Decoded unions of several record types come back as ``(full record name, dict)`` (e.g. a
    counter sample's records), so a reader knows each record's type; other values are plain."""

    def __init__(self, stem: str, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas or schema_set()
        self.stem = stem
        self.current = self.schemas.newest(stem)
        self._prefixes: dict[int, Any] = {}

    def encode(self, datum: Any) -> bytes:
        return self.current.prefix + self.current.writer(datum)

    def decode(self, message: bytes) -> Any:
        if len(message) < 10 or message[:2] != MAGIC:
            raise CodecError("not an Avro single-object encoded message")
        fp = struct.unpack_from("<Q", message, 2)[0]
        writer = self.schemas.by_fingerprint.get(fp)
        if writer is None or writer.stem != self.stem:
            raise CodecError(f"unknown writer schema fingerprint {fp:016x} for {self.stem}")
        try:
            reader = None if writer is self.current else self.current.parsed
            return fastavro.schemaless_reader(io.BytesIO(message[10:]), writer.parsed, reader,
                                              return_record_name=True, return_record_name_override=True)
        except Exception as e:  # fastavro raises assorted errors on corrupt input
            raise CodecError(f"corrupt {self.stem} message: {e}") from None


    def decode_prefix(self, message: bytes, fields: int) -> Any:
        """Only the first ``fields`` fields of the record (the rest is not even parsed), when the
        message was written with the current schema; otherwise the whole message."""
        if len(message) < 10 or message[:10] != self.current.prefix:
            return self.decode(message)
        schema = self._prefixes.get(fields)
        if schema is None:
            raw = dict(self.current.raw, fields=self.current.raw["fields"][:fields])
            schema = self._prefixes[fields] = fastavro.parse_schema(raw)
        try:
            return fastavro.schemaless_reader(io.BytesIO(message[10:]), schema, None, return_record_name=True,
                                              return_record_name_override=True)
        except Exception as e:
            raise CodecError(f"corrupt {self.stem} message: {e}") from None


def decode_any(message: bytes, schemas: SchemaSet | None = None) -> tuple[str, Any]:
    """Decode a single-object encoded message of any sflowpipe schema: (schema name, datum)."""
    schemas = schemas or schema_set()
    if len(message) < 10 or message[:2] != MAGIC:
        raise CodecError("not an Avro single-object encoded message")
    fp = struct.unpack_from("<Q", message, 2)[0]
    writer = schemas.by_fingerprint.get(fp)
    if writer is None:
        raise CodecError(f"unknown writer schema fingerprint {fp:016x}")
    return writer.stem, AvroCodec(writer.stem, schemas).decode(message)


class MessageDecoder:
    """Decodes messages of any sflowpipe schema in either wire format: (schema name, datum)."""

    def __init__(self, registry_url: str | None = None, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas or schema_set()
        self.registry_url = registry_url
        self._deserializer = None
        self._stem_by_name = {v[-1].raw["namespace"] + "." + v[-1].raw["name"]: stem
                              for stem, v in self.schemas.by_stem.items()}
        self._stem_by_id: dict[int, str] = {}

    def decode(self, message: bytes) -> tuple[str, Any]:
        if message[:2] == MAGIC:
            return decode_any(message, self.schemas)
        if message[:1] == b"\x00" and len(message) >= 5 and self.registry_url:
            return self._confluent(message)
        raise CodecError("neither Avro single-object encoding nor (with a registry) Confluent framing")

    def _confluent(self, message: bytes) -> tuple[str, Any]:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        if self._deserializer is None:
            self._client = SchemaRegistryClient({"url": self.registry_url})
            self._deserializer = AvroDeserializer(self._client)
        sid = struct.unpack_from(">I", message, 1)[0]
        stem = self._stem_by_id.get(sid)
        if stem is None:
            raw = json.loads(self._client.get_schema(sid).schema_str)
            stem = self._stem_by_name.get(f"{raw.get('namespace', '')}.{raw['name']}", raw["name"])
            self._stem_by_id[sid] = stem
        return stem, self._deserializer(message, SerializationContext("", MessageField.VALUE))


class ConfluentCodec:
    """Confluent Schema Registry wire format, through confluent-kafka's registry client."""

    def __init__(self, stem: str, registry_url: str, subject: str, schemas: SchemaSet | None = None) -> None:
        from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        self.schemas = schemas or schema_set()
        self.current = self.schemas.newest(stem)
        self.client = SchemaRegistryClient({"url": registry_url})
        self.schema_id = self.client.register_schema(subject, Schema(json.dumps(self.current.raw), "AVRO"))
        self.prefix = b"\x00" + struct.pack(">I", self.schema_id)
        self._deserializer = AvroDeserializer(self.client)

    def encode(self, datum: Any) -> bytes:
        # the same bytes confluent's AvroSerializer writes, with the compiled writer for the body
        return self.prefix + self.current.writer(datum)

    def decode(self, message: bytes) -> Any:
        from confluent_kafka.serialization import MessageField, SerializationContext

        return self._deserializer(message, SerializationContext("", MessageField.VALUE))
