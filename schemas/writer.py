"""A schema-compiled Avro binary writer: the same bytes as fastavro's schemaless_writer, faster.

``compile_writer(parsed_schema)`` turns a schema into a function ``datum -> bytes``. Arrays of
scalars (the columns of a columnar batch) are written by a C-level ``map`` over per-column
caches of already-encoded values, so a column of ports, protocols or addresses costs a dict
lookup per value instead of a Python-level varint encoding; a column holding one value (a batch
of one agent repeats many: its sub-agent, sampling rate, header protocol, the nulls of absent
records) costs a C-level ``count`` and a multiplication; a value seen for the first time is
encoded from tables of 14-bit varint groups. Anything the compiler does not
specialise (maps, enums, fixed) falls back to fastavro for that value. Datums use fastavro's
conventions: records as dicts (a union branch named by ``"-type"`` or a ``(name, datum)`` tuple).
"""

from __future__ import annotations

import io
import struct
from itertools import chain, repeat
from operator import and_, itemgetter, rshift
from typing import Any, Callable

import fastavro

Writer = Callable[[Any], bytes]

_F32 = struct.Struct("<f").pack
_F64 = struct.Struct("<d").pack
_CACHE_LIMIT = 200_000


def encode_long(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint, least significant group first."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]
_LEN = [encode_long(i) for i in range(4096)]


def _len(n: int) -> bytes:
    return _LEN[n] if n < 4096 else encode_long(n)


# 14 bits of a zig-zagged long: its varint when they are all there is (_V14), its two continued
# groups when more follow (_C14). Built on first use (~1 MB, ~10 ms): a process that only reads
# Avro does not pay for them.
_V14: list[bytes] = []
_C14: list[bytes] = []
_C14E: list[bytes] = []  # _C14 of 2 * i: a non-negative long's first group by its low 13 bits


def _tables() -> None:
    if not _V14:
        _C14.extend(bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(1 << 14))
        _C14E.extend(_C14[0::2])
        _V14.extend(_SMALL)
        _V14.extend(bytes(((z & 0x7F) | 0x80, z >> 7)) for z in range(0x80, 1 << 14))


def _long(n: int) -> bytes:
    """encode_long from the tables: one lookup per 14 bits."""
    z = (n << 1) ^ (n >> 63)
    if z < 16384:
        return _V14[z]
    if z < 268435456:
        return _C14[z & 0x3FFF] + _V14[z >> 14]
    if z < 4398046511104:  # 2**42
        return _C14[z & 0x3FFF] + _C14[(z >> 14) & 0x3FFF] + _V14[z >> 28]
    if z < 72057594037927936:  # 2**56
        return _C14[z & 0x3FFF] + _C14[(z >> 14) & 0x3FFF] + _C14[(z >> 28) & 0x3FFF] + _V14[z >> 42]
    out = [_C14[z & 0x3FFF]]
    z >>= 14
    while z >= 16384:
        out.append(_C14[z & 0x3FFF])
        z >>= 14
    out.append(_V14[z])
    return b"".join(out)


def _longs(v) -> bytes | None:
    """The varints of a column of non-negative longs that all take the same number of 14-bit groups
    (a batch's sample pools, sequence numbers, receive times), by C-level maps over the column: a
    lookup per group with no Python frame per value. None for any other column."""
    lo, hi = min(v), max(v)
    if lo < 8192 or not isinstance(lo, int) or not isinstance(hi, int):
        return None
    # a non-negative n zig-zags to 2n: its first group is the table entry of 2 * (n & 0x1FFF)
    # (_C14E), the next ones of (n >> 13), (n >> 27)... as for any zig-zagged value
    if hi < 1 << 27:
        groups = [map(_C14E.__getitem__, map(and_, v, repeat(0x1FFF))), map(_V14.__getitem__, map(rshift, v, repeat(13)))]
    elif lo >= 1 << 27 and hi < 1 << 41:
        groups = [map(_C14E.__getitem__, map(and_, v, repeat(0x1FFF))),
                  map(_C14.__getitem__, map(and_, map(rshift, v, repeat(13)), repeat(0x3FFF))),
                  map(_V14.__getitem__, map(rshift, v, repeat(27)))]
    elif lo >= 1 << 41 and hi < 1 << 55:
        groups = [map(_C14E.__getitem__, map(and_, v, repeat(0x1FFF))),
                  map(_C14.__getitem__, map(and_, map(rshift, v, repeat(13)), repeat(0x3FFF))),
                  map(_C14.__getitem__, map(and_, map(rshift, v, repeat(27)), repeat(0x3FFF))),
                  map(_V14.__getitem__, map(rshift, v, repeat(41)))]
    else:
        return None
    return b"".join(chain.from_iterable(zip(*groups)))


def long_writer() -> Writer:
    """The fastest ``encode_long`` (its tables built now if they were not)."""
    _tables()
    return _long


class _Cache(dict):
    """value -> its encoded bytes, filled on first use, bounded."""

    def __init__(self, encode: Writer) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, key):
        v = self.encode(key)
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = v
        return v


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return _len(len(b)) + b


def _bytes(b: bytes) -> bytes:
    return _len(len(b)) + b


def _boolean(v) -> bytes:
    return b"\x01" if v else b"\x00"


def _null(v) -> bytes:
    return b""


_SCALARS: dict[str, Writer] = {
    "null": _null, "boolean": _boolean, "int": _long, "long": _long,
    "float": _F32, "double": _F64, "bytes": _bytes, "string": _string,
}
# scalar types worth a per-column cache (repeating values)
_CACHEABLE = {"boolean", "int", "long", "string"}


def _type_name(s: Any) -> str | None:
    if isinstance(s, str):
        return s
    if isinstance(s, dict):
        if s.get("logicalType"):
            return s["type"] if isinstance(s["type"], str) and s["type"] in _SCALARS else None
        t = s["type"]
        return t if isinstance(t, str) and t in _SCALARS else None
    return None


class _Compiler:
    def __init__(self, named: dict) -> None:
        self.named = named  # full name -> compiled writer (filled lazily for recursion)
        self.schemas: dict[str, dict] = {}

    def compile(self, s: Any) -> Writer:
        if isinstance(s, str):
            if s in _SCALARS:
                return _SCALARS[s]
            return self._ref(s)
        if isinstance(s, list):
            return self._union(s)
        t = s["type"]
        if t in _SCALARS:
            return _SCALARS[t]
        if t == "record" or t == "error":
            return self._record(s)
        if t == "array":
            return self._array(s["items"])
        return self._fallback(s)

    def _ref(self, name: str) -> Writer:
        cell: list[Writer] = []

        def ref(v):
            if not cell:
                cell.append(self.named[name])
            return cell[0](v)

        return ref

    def _fallback(self, s: Any) -> Writer:
        parsed = s

        def fallback(v):
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, v)
            return buf.getvalue()

        return fallback

    def _record(self, s: dict) -> Writer:
        name = s["name"]
        self.schemas[name] = s
        fields = []
        for f in s["fields"]:
            fields.append((f["name"], self.compile(f["type"]), f.get("default")))
        names = tuple(n for n, _, _ in fields)
        parts = _parts(fields)

        def record(v):
            if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], dict):
                v = v[1]
            if parts is not None:
                try:
                    return b"".join([part(v) for part in parts])
                except KeyError:  # a field left out (its default, or null): the general way below
                    pass
            get = v.get
            return b"".join([w(get(n, d)) for n, w, d in fields])

        record.field_names = names  # type: ignore[attr-defined]
        self.named[name] = record
        return record

    def _union(self, branches: list) -> Writer:
        names = [_type_name(b) or (b if isinstance(b, str) else b.get("name")) for b in branches]
        writers = [self.compile(b) for b in branches]
        if len(branches) == 2 and names[0] == "null":
            w = writers[1]

            def nullable(v):
                return b"\x00" if v is None else b"\x02" + w(v)

            nullable.nullable_of = branches[1]  # type: ignore[attr-defined]
            return nullable
        index = {n: i for i, n in enumerate(names)}
        short = {n.rsplit(".", 1)[-1]: i for n, i in index.items()}
        null_index = index.get("null")

        def union(v):
            if v is None:
                return encode_long(null_index) if null_index is not None else _unmatched(v)
            if isinstance(v, tuple):
                i = index.get(v[0], short.get(v[0]))
                return encode_long(i) + writers[i](v[1])
            if isinstance(v, dict):
                tname = v.get("-type")
                if tname is not None:
                    i = index.get(tname, short.get(tname))
                    return encode_long(i) + writers[i](v)
            for i, b in enumerate(names):  # scalars: first branch of a fitting Python type
                if _fits(b, v):
                    return encode_long(i) + writers[i](v)
            return _unmatched(v)

        return union

    def _array(self, items: Any) -> Writer:
        scalar = _type_name(items)
        if scalar in _CACHEABLE:
            return _cached_array(_Cache(_SCALARS[scalar]), longs=scalar in ("int", "long"))
        if isinstance(items, list) and len(items) == 2 and items[0] == "null" and _type_name(items[1]) in _CACHEABLE:
            inner = _SCALARS[_type_name(items[1])]
            return _cached_array(_Cache(lambda x: _NULL if x is None else _SOME + inner(x)))
        if isinstance(items, list) and len(items) == 2 and items[0] == "null" and _type_name(items[1]) == "bytes":
            return _nullable_bytes_array
        w = self.compile(items)
        if _is_array(items):
            def array_of_arrays(v):
                if not v:
                    return b"\x00"
                if not any(v):  # every item empty (the ``records`` of samples with no other record)
                    return _len(len(v)) + b"\x00" * (len(v) + 1)
                return _len(len(v)) + b"".join(map(w, v)) + b"\x00"

            return array_of_arrays
        if isinstance(items, list) and items and items[0] == "null":
            def array_of_nullables(v):
                if not v:
                    return b"\x00"
                if v.count(None) == len(v):  # every item null (``inner`` of samples without a tunnel)
                    return _len(len(v)) + b"\x00" * (len(v) + 1)
                return _len(len(v)) + b"".join(map(w, v)) + b"\x00"

            return array_of_nullables

        def array(v):
            if not v:
                return b"\x00"
            return _len(len(v)) + b"".join(map(w, v)) + b"\x00"

        return array


def _cached_array(cache: _Cache, longs: bool = False) -> Writer:
    """An array of values encoded through a cache. A column whose values are mostly new each time
    (sequence numbers, sample pools, IP ids) is written without it: a miss costs about twice a plain
    encoding; the cache is tried again every so often. ``longs``: a column of longs, which may then
    go through ``_longs``."""
    get = cache.__getitem__
    encode = cache.encode
    state = [0]  # > 0: batches left to write without the cache

    def array_cached(v):
        if not v:
            return b"\x00"
        n = len(v)
        first = v[0]
        # one value throughout (equal values share a cache entry: the same bytes either way)
        if n > 1 and v[-1] == first and v.count(first) == n:
            return _len(n) + get(first) * n + b"\x00"
        if state[0]:
            state[0] -= 1
            body = _longs(v) if longs else None
            return _len(n) + (body if body is not None else b"".join(map(encode, v))) + b"\x00"
        before = len(cache)
        body = b"".join(map(get, v))
        if n >= 16 and len(cache) - before > n // 2:
            state[0] = 64
        return _len(n) + body + b"\x00"

    return array_cached


_NULL = b"\x00"
_SOME = b"\x02"


def _nullable_bytes_array(v) -> bytes:
    """An array of ["null", "bytes"] (the sampled headers): branch, length, bytes for each, in C."""
    if not v:
        return b"\x00"
    n = len(v)
    if v.count(None):
        body = b"".join([_NULL if b is None else _SOME + _len(len(b)) + b for b in v])
    else:
        sizes = list(map(len, v))
        lengths = map(_LEN.__getitem__ if max(sizes) < len(_LEN) else _len, sizes)
        body = b"".join(chain.from_iterable(zip(repeat(_SOME, n), lengths, v)))
    return _len(n) + body + b"\x00"


def _is_array(s: Any) -> bool:
    return isinstance(s, dict) and s.get("type") == "array"


def _parts(fields: list) -> list[Writer] | None:
    """A record's fields as parts, each a function of the record's dict, where runs of longs (a counter
    block is nothing else) are one C-level map over an itemgetter; None without such a run."""
    parts: list[Writer] = []
    run: list[str] = []
    runs = 0

    def end_run() -> None:
        nonlocal runs
        if len(run) == 1:
            get_one = itemgetter(run[0])
            parts.append(lambda v: _long(get_one(v)))
        elif run:
            get_all = itemgetter(*run)
            parts.append(lambda v: b"".join(map(_long, get_all(v))))
            runs += 1
        run.clear()

    for name, w, _ in fields:
        if w is _long:
            run.append(name)
            continue
        end_run()
        get = itemgetter(name)
        parts.append(lambda v, w=w, get=get: w(get(v)))
    end_run()
    return parts if runs else None


def _fits(branch: str | None, v: Any) -> bool:
    if branch in ("int", "long"):
        return isinstance(v, int) and not isinstance(v, bool)
    if branch in ("float", "double"):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if branch == "string":
        return isinstance(v, str)
    if branch == "bytes":
        return isinstance(v, (bytes, bytearray))
    if branch == "boolean":
        return isinstance(v, bool)
    return False


def _unmatched(v):
    raise ValueError(f"value {v!r} matches no branch of the union")


def compile_writer(schema: dict) -> Writer:
    """A function writing datums of ``schema`` (as fastavro.parse_schema returns it)."""
    _tables()
    return _Compiler({}).compile(schema)
