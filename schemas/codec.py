"""Avro message codecs: each schema parsed once; Avro single-object encoding by default.

Single-object encoding (Avro spec): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO
fingerprint of the writer schema's Parsing Canonical Form + the binary body. Any reader holding
the .avsc files resolves the writer schema from the fingerprint, no server needed; sflowpipe's
readers know every released version and read with the newest (schema resolution fills added
fields from their defaults).

With a Confluent-compatible Schema Registry configured (``kafka.schema_registry_url``), messages
are written in the Confluent wire format (``00`` + 4-byte big-endian schema id + body); the body is
the same Avro binary either way, so both framings decode through the same fastavro reader into the
same datum shape. ``Codec`` is the one object a process uses for both (built by the composition
root, sflowpipe/cli.py, and handed to every component); ``AvroCodec`` is its single-object,
single-schema core, for tools and tests.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas.prefix_reader import PrefixReader
from schemas.writer import compile_writer

SCHEMA_DIR = Path(__file__).resolve().parent
MAGIC = b"\xc3\x01"


class CodecError(ValueError):
    """A message this codec cannot read (unknown schema, corrupt body)."""


class RegistryUnavailable(CodecError):
    """The schema registry did not answer a lookup (unreachable, 5xx, 429): the message may well be
    sound, so a consumer reads it again later rather than skip it as undecodable."""


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


class Codec:
    """Every sflowpipe message's wire format: encode by schema name, decode whatever was written.

    Without a registry it writes Avro single-object encoding. With ``registry_url`` it writes the
    Confluent wire format, each schema registered (once, on first use or ``prepare``) under its
    topic's subject (``subjects``: schema name -> subject, e.g. ``sflow.flow-samples-value``).
    Decoding accepts both framings (a Confluent-framed message needs the registry to name its
    schema id), always returns unions of records as ``(record name, dict)``, and raises only
    ``CodecError``: registry and fastavro errors are mapped to it. Picklable (worker processes
    get a fresh registry client)."""

    def __init__(self, registry_url: str | None = None, subjects: dict[str, str] | None = None,
                 schemas: SchemaSet | None = None, registry_conf: dict[str, Any] | None = None) -> None:
        self.registry_url = registry_url or None
        self.registry_conf = dict(registry_conf or {})  # more SchemaRegistryClient settings (retries...)
        self.subjects = dict(subjects or {})
        self.schemas = schemas or schema_set()
        self._client = None
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}  # schema name -> registry id of its current version
        self._by_id: dict[int, SchemaVersion] = {}
        self._prefix_readers: dict[tuple[str, int], PrefixReader] = {}

    def __getstate__(self) -> dict:
        return {"registry_url": self.registry_url, "subjects": self.subjects, "registry_conf": self.registry_conf}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["registry_url"], state["subjects"], registry_conf=state["registry_conf"])

    @property
    def framing(self) -> str:
        return "confluent" if self.registry_url else "single-object"

    def current(self, stem: str) -> SchemaVersion:
        return self.schemas.newest(stem)

    # ---------------------------------------------------------------- writing

    def prepare(self, stems: list[str]) -> None:
        """Register these schemas now (a producer's start), so a registry fault shows at once."""
        for stem in stems:
            self.prefix(stem)

    def prefix(self, stem: str) -> bytes:
        """The framing header this codec writes before a body of ``stem``'s current version."""
        current = self.current(stem)
        if not self.registry_url:
            return current.prefix
        sid = self._ids.get(stem)
        if sid is None:
            sid = self._register(stem, current)
        return b"\x00" + struct.pack(">I", sid)

    def encode(self, stem: str, datum: Any) -> bytes:
        body = self.current(stem).writer(datum)
        return self.prefix(stem) + body

    def _register(self, stem: str, current: SchemaVersion) -> int:
        from confluent_kafka.schema_registry import Schema

        subject = self.subjects.get(stem)
        if subject is None:
            raise CodecError(f"no registry subject for {stem} messages")
        try:
            sid = self._registry().register_schema(subject, Schema(json.dumps(current.raw), "AVRO"))
        except Exception as e:  # SchemaRegistryError, connection errors
            raise CodecError(f"schema registry {self.registry_url}: cannot register {subject}: {_one_line(e)}") from None
        self._ids[stem] = sid
        self._by_id[sid] = current
        return sid

    def _registry(self):
        with self._lock:
            if self._client is None:
                from confluent_kafka.schema_registry import SchemaRegistryClient

                self._client = SchemaRegistryClient({"url": self.registry_url, **self.registry_conf})
            return self._client

    # ---------------------------------------------------------------- reading

    def writer_of(self, message: bytes) -> tuple[SchemaVersion, int]:
        """The schema version a message was written with, and where its Avro body starts."""
        if len(message) >= 10 and message[:2] == MAGIC:
            fp = struct.unpack_from("<Q", message, 2)[0]
            writer = self.schemas.by_fingerprint.get(fp)
            if writer is None:
                raise CodecError(f"unknown writer schema fingerprint {fp:016x}")
            return writer, 10
        if len(message) >= 5 and message[:1] == b"\x00":
            sid = struct.unpack_from(">I", message, 1)[0]
            writer = self._by_id.get(sid)
            if writer is None:
                writer = self._lookup(sid)
            return writer, 5
        raise CodecError("neither Avro single-object encoding nor Confluent framing")

    def needs_lookup(self, message: bytes) -> bool:
        """Whether reading ``message`` asks the registry (a Confluent schema id not seen yet): a
        network call, with the registry client's retries, that an event loop runs off its thread."""
        return len(message) >= 5 and message[:1] == b"\x00" and struct.unpack_from(">I", message, 1)[0] not in self._by_id

    def _lookup(self, sid: int) -> SchemaVersion:
        if not self.registry_url:
            raise CodecError(f"Confluent-framed message (schema id {sid}) but no kafka.schema_registry_url is set")
        try:  # the registry client retries transient faults itself (max.retries, with backoff)
            raw = json.loads(self._registry().get_schema(sid).schema_str)
        except Exception as e:  # SchemaRegistryError, connection errors, a body that is not JSON
            status = getattr(e, "http_status_code", None)
            away = status >= 500 or status == 429 if isinstance(status, int) else not isinstance(e, ValueError)
            raise (RegistryUnavailable if away else CodecError)(
                f"schema registry {self.registry_url}: schema id {sid}: {_one_line(e)}") from None
        writer = self.schemas.by_fingerprint.get(fingerprint64(to_parsing_canonical_form(raw)))
        if writer is None:
            raise CodecError(f"schema id {sid} ({raw.get('name')}) is not a released sflowpipe schema")
        self._by_id[sid] = writer
        return writer

    def decode(self, message: bytes) -> tuple[str, Any]:
        """(schema name, datum) of a message of any sflowpipe schema, in either framing."""
        writer, start = self.writer_of(message)
        return writer.stem, self._read(writer, message, start)

    def decode_as(self, stem: str, message: bytes) -> Any:
        """A message that must be of schema ``stem`` (CodecError otherwise)."""
        writer, start = self.writer_of(message)
        if writer.stem != stem:
            raise CodecError(f"a {writer.stem} message where {stem} was expected")
        return self._read(writer, message, start)

    def decode_prefix(self, stem: str, message: bytes, fields: int) -> Any:
        """Only the first ``fields`` fields of the record (the rest is not even parsed) when the
        message was written with the current schema version; otherwise the whole message."""
        writer, start = self.writer_of(message)
        current = self.current(stem)
        if writer is not current:
            return self.decode_as(stem, message)
        reader = self._prefix_readers.get((stem, fields))
        if reader is None:
            reader = self._prefix_readers[(stem, fields)] = PrefixReader(current.raw["fields"][:fields])
        try:
            return reader.read(message, start)
        except Exception as e:  # fastavro's assorted errors on corrupt input, for a column it read
            raise CodecError(f"corrupt {stem} message: {e}") from None

    def _read(self, writer: SchemaVersion, message: bytes, start: int) -> Any:
        current = self.current(writer.stem)
        return _read_body(writer.stem, message, start, writer.parsed, None if writer is current else current.parsed)


def _read_body(stem: str, message: bytes, start: int, writer, reader) -> Any:
    try:
        return fastavro.schemaless_reader(io.BytesIO(memoryview(message)[start:]), writer, reader,
                                          return_record_name=True, return_record_name_override=True)
    except Exception as e:  # fastavro raises assorted errors on corrupt input
        raise CodecError(f"corrupt {stem} message: {e}") from None


def _one_line(err: object) -> str:
    return " ".join(str(err).split())[:300]
