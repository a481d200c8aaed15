"""A faster reader of the flow-sample batch's hot prefix: the same Avro bytes, the same datum.

The processors read the first fields of every flow-sample batch (schemas.definitions
hot_field_count): two strings, then one array per column, most of them arrays of longs or of
nullable longs. fastavro reads them value by value (~60 % of a worker's time); this reader is
compiled once from the prefix schema and reads a whole column at a time:

- the varints of a message are found and decoded once with numpy (every byte below 0x80 ends
  one), so an array of longs is a slice of that table, zig-zag decoded in one go;
- an array of nullable longs is a chain of tokens (union index, then a value when the index
  is 1): an all-null or all-set column is a strided slice; a mixed one is walked by pointer
  jumping (log2(n) numpy steps) rather than one Python step per value;
- arrays of strings are a tight Python loop (they are few and short);
- an array of arrays that are all empty, or of nullable records that are all null, is one check.

Anything else (another type, more than one block, a varint of 10 bytes, an index other than 0
or 1, a boolean other than 0 or 1, bytes that are not UTF-8, a value past the end) is not
guessed at: fastavro reads that column from the same offset. So the datum is fastavro's for
every input fastavro reads, and corrupt input fails in fastavro, as before (CodecError).
"""

from __future__ import annotations

import io
from typing import Any, Callable

import fastavro
import numpy as np

_U8 = np.uint8
_I64 = np.int64
_U64 = np.uint64
_ONE = np.uint64(1)


class _Irregular(Exception):
    """The fast path does not cover this column here: fastavro reads it."""


class _Short(Exception):
    """The token table ends before the column does: read it again over the rest of the message."""


class _Tokens:
    """The varints of bytes ``lo:hi`` of a message body, as if one started after every byte below
    0x80 (a varint ends at its first byte below 0x80).

    In a run of varint columns every varint starts where the table says; ``first`` checks that a
    column's first byte is one of those starts (it is not after a string ending in a byte >= 0x80)."""

    __slots__ = ("ends", "raw", "long_ok", "n", "lo", "hi", "whole")

    def __init__(self, body: np.ndarray, lo: int, hi: int) -> None:
        self.lo, self.hi, self.whole = lo, hi, hi >= len(body)
        window = body[lo:hi]
        ends = np.flatnonzero(window < 0x80)
        self.n = n = len(ends)
        if n == 0:
            self.ends = ends
            self.raw = np.zeros(0, _U64)
            self.long_ok = np.zeros(0, bool)
            return
        starts = np.empty(n, _I64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts + 1
        # a varint of 10 bytes or more is left to fastavro (it may not fit 64 bits)
        self.long_ok = lengths < 10
        width = int(lengths.max())
        if width == 1:  # every token is one byte
            self.raw = window[ends].astype(_U64)
        else:
            last = int(ends[-1]) + 1
            chunk = window[:last].astype(_U64)
            chunk &= np.uint64(0x7F)
            position = np.arange(last, dtype=_I64)
            position -= np.repeat(starts, lengths)
            np.minimum(position, 9, out=position)
            position *= 7
            chunk <<= position.view(_U64)
            self.raw = np.bitwise_or.reduceat(chunk, starts)
            # never 0 nor 2 (a union index) nor even (a count): such a token is left to fastavro
            self.raw[~self.long_ok] = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
        self.ends = ends + lo

    def first(self, offset: int) -> int:
        """The index of the token that starts at body offset ``offset``."""
        if not self.lo <= offset < self.hi:
            raise _Short()
        k = int(np.searchsorted(self.ends, offset))
        if (int(self.ends[k - 1]) + 1 if k else self.lo) != offset:
            raise _Irregular()  # starts mid-token (after a byte >= 0x80): rare, left to fastavro
        self.need(k + 1)
        return k

    def need(self, stop: int) -> None:
        """Tokens up to ``stop`` (excluded) are in the table."""
        if stop > self.n:
            raise _Irregular() if self.whole else _Short()


def _zigzag(raw: np.ndarray) -> np.ndarray:
    return ((raw >> _ONE) ^ (np.uint64(0) - (raw & _ONE))).view(_I64)


class _Message:
    __slots__ = ("data", "body", "base", "end", "tokens")

    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.base = base
        self.end = len(data)
        self.body = np.frombuffer(data, _U8, offset=base) if base < len(data) else np.zeros(0, _U8)
        self.tokens = _NO_TOKENS


_NO_TOKENS = _Tokens(np.zeros(0, _U8), 0, 0)
Reader = Callable[[_Message, int], tuple[Any, int]]


def _read_string(m: _Message, p: int) -> tuple[str, int]:
    data = m.data
    if p >= m.end:
        raise _Irregular()
    z = data[p]
    if z >= 0x80 or z & 1:
        raise _Irregular()
    p += 1
    q = p + (z >> 1)
    if q > m.end:
        raise _Irregular()
    try:
        return data[p:q].decode("utf-8"), q
    except UnicodeDecodeError:
        raise _Irregular() from None


def _block(m: _Message, k: int) -> tuple[int, int]:
    """The item count of the array whose count token is ``k`` (one block only) and its first item."""
    t = m.tokens
    raw = int(t.raw[k])
    if raw & 1:  # a negative count: a block with its size in bytes
        raise _Irregular()
    return raw >> 1, k + 1


def _end_of(m: _Message, k: int) -> int:
    """The byte after the array's 0 count token ``k``."""
    t = m.tokens
    t.need(k + 1)
    if t.raw[k] != 0:
        raise _Irregular()  # another block follows
    return int(t.ends[k]) + 1 + m.base


def _read_longs(m: _Message, p: int) -> tuple[list, int]:
    t = m.tokens
    count, k = _block(m, t.first(p - m.base))
    if count == 0:
        return [], int(t.ends[k - 1]) + 1 + m.base
    stop = k + count
    t.need(stop)
    if not t.long_ok[k:stop].all():
        raise _Irregular()
    return _zigzag(t.raw[k:stop]).tolist(), _end_of(m, stop)


def _read_booleans(m: _Message, p: int) -> tuple[list, int]:
    t = m.tokens
    count, k = _block(m, t.first(p - m.base))
    if count == 0:
        return [], int(t.ends[k - 1]) + 1 + m.base
    stop = k + count
    t.need(stop)
    raw = t.raw[k:stop]
    # a boolean is one byte: with every byte below 2, each one is its own token
    if int(t.ends[stop - 1]) - int(t.ends[k - 1]) != count or (raw > 1).any():
        raise _Irregular()
    return raw.astype(bool).tolist(), _end_of(m, stop)


def _chain(index_is_set: np.ndarray, n: int) -> np.ndarray:
    """Token positions of ``n`` union indices from token 0, where a set index (1) is followed by
    its value: pointer jumping (positions 2^i.. from 0.. by jumps of 2^i), log2(n) numpy steps."""
    size = len(index_is_set)
    jump = np.empty(size + 1, _I64)
    jump[:size] = np.arange(1, size + 1) + index_is_set
    jump[size] = size
    np.minimum(jump, size, out=jump)
    pos = np.empty(n, _I64)
    pos[0] = 0
    done = 1
    while done < n:
        step = min(done, n - done)
        pos[done:done + step] = jump[pos[:step]]
        done += step
        if done < n:
            jump = jump[jump]
    return pos


def _read_nullable_longs(m: _Message, p: int) -> tuple[list, int]:
    t = m.tokens
    count, k = _block(m, t.first(p - m.base))
    if count == 0:
        return [], int(t.ends[k - 1]) + 1 + m.base
    t.need(k + count + 1)  # every item has an index
    if not t.raw[k:k + count].any():  # all null
        return [None] * count, _end_of(m, k + count)
    if not t.whole:
        t.need(k + 2 * count)  # an item is at most 2 tokens
    window = t.raw[k:k + 2 * count]
    ok = t.long_ok[k:k + 2 * count]
    if len(window) == 2 * count and (window[0::2] == 2).all() and ok[1::2].all():  # all set
        return _zigzag(window[1::2]).tolist(), _end_of(m, k + 2 * count)
    is_set = window == 2
    pos = _chain(is_set.astype(_I64), count)
    last = int(pos[-1])
    if last >= len(window):
        raise _Irregular()
    index = window[pos]
    if not ((index == 0) | (index == 2)).all():
        raise _Irregular()
    stop = last + 1 + int(index[-1] == 2)
    if stop > len(window):
        raise _Irregular()
    where = np.flatnonzero(index == 2)
    value_at = pos[where] + 1
    if not ok[value_at].all():
        raise _Irregular()
    out = np.full(count, None, dtype=object)
    out[where] = _zigzag(window[value_at]).tolist()
    return out.tolist(), _end_of(m, k + stop)


def _read_nullable_strings(m: _Message, p: int) -> tuple[list, int]:
    data, end = m.data, m.end
    count, p = _count(data, p, end)
    if count == 0:
        return [], p
    if count > end - p:
        raise _Irregular()
    if data[p] == 2 and data[p + 1] < 0x80:  # every string of one length (MAC addresses): strided
        same = _same_length_strings(m, p, count, data[p + 1] >> 1)
        if same is not None:
            return same
    out: list = [None] * count
    try:
        for i in range(count):
            b = data[p]
            if b == 2:
                z = data[p + 1]
                if z >= 0x80 or z & 1:
                    raise _Irregular()
                p += 2
                q = p + (z >> 1)
                if q > end:
                    raise _Irregular()
                out[i] = data[p:q].decode("utf-8")
                p = q
            elif b == 0:
                p += 1
            else:
                raise _Irregular()
    except (IndexError, UnicodeDecodeError):
        raise _Irregular() from None
    if p >= end or data[p] != 0:
        raise _Irregular()  # another block follows (or the data ends)
    return out, p + 1


def _same_length_strings(m: _Message, p: int, count: int, length: int) -> tuple[list, int] | None:
    """``count`` set ASCII strings of ``length`` bytes from ``p`` (each: index 1, length, bytes), or None."""
    step = length + 2
    stop = p + count * step
    if stop >= m.end or m.data[stop] != 0:
        return None
    cells = m.body[p - m.base:stop - m.base].reshape(count, step)
    if (cells[:, 0] != 2).any() or (cells[:, 1] != length << 1).any() or (cells >= 0x80).any():
        return None
    text = m.data[p:stop].decode("ascii")
    return [text[i:i + length] for i in range(2, count * step + 2, step)], stop + 1


def _count(data: bytes, p: int, end: int) -> tuple[int, int]:
    """A one-block array's count, read as a varint of up to 3 bytes (larger: irregular here)."""
    if p >= end:
        raise _Irregular()
    z = data[p]
    p += 1
    if z >= 0x80:
        if p >= end:
            raise _Irregular()
        z2 = data[p]
        p += 1
        z = (z & 0x7F) | ((z2 & 0x7F) << 7)
        if z2 >= 0x80:
            if p >= end or data[p] >= 0x80:
                raise _Irregular()
            z |= data[p] << 14
            p += 1
    if z & 1:
        raise _Irregular()
    return z >> 1, p


def _read_all_empty(m: _Message, p: int) -> tuple[list, int]:
    """An array of arrays, every item empty (a zero count byte each), e.g. no VLAN tags."""
    count, p = _count(m.data, p, m.end)
    if count == 0:
        return [], p
    stop = p + count
    if stop >= m.end or m.body[p - m.base:stop - m.base].any() or m.data[stop] != 0:
        raise _Irregular()
    return [[] for _ in range(count)], stop + 1


def _read_all_null(m: _Message, p: int) -> tuple[list, int]:
    """An array of a nullable complex type, every item null (a zero index byte each)."""
    count, p = _count(m.data, p, m.end)
    if count == 0:
        return [], p
    stop = p + count
    if stop >= m.end or m.body[p - m.base:stop - m.base].any() or m.data[stop] != 0:
        raise _Irregular()
    return [None] * count, stop + 1


def _fastavro_column(name: str, schema: Any) -> Reader:
    """fastavro reading one column at an offset (a record of that one field: a parsed record
    schema keeps its named types, so fastavro does not parse it again on every read)."""
    def read(m: _Message, p: int) -> tuple[Any, int]:
        f = io.BytesIO(memoryview(m.data)[p:])
        value = fastavro.schemaless_reader(f, schema, None, return_record_name=True,
                                           return_record_name_override=True)
        return value[name], p + f.tell()
    return read


def _is_long(t: Any) -> bool:
    return t in ("long", "int")


def _nullable_of(t: Any) -> Any:
    if isinstance(t, list) and len(t) == 2 and t[0] == "null":
        return t[1]
    return None


def _fast_reader(t: Any) -> Reader | None:
    if t == "string":
        return _read_string
    if not (isinstance(t, dict) and t.get("type") == "array"):
        return None
    items = t["items"]
    if _is_long(items):
        return _read_longs
    if items == "boolean":
        return _read_booleans
    inner = _nullable_of(items)
    if _is_long(inner):
        return _read_nullable_longs
    if inner == "string":
        return _read_nullable_strings
    if isinstance(items, dict) and items.get("type") == "array":
        return _read_all_empty
    if inner is not None:
        return _read_all_null
    return None


_TOKEN_READERS = frozenset((_read_longs, _read_booleans, _read_nullable_longs))


class PrefixReader:
    """Reads fields of a record schema (its first ones, e.g.) from a message body, a column at a time."""

    def __init__(self, fields: list[dict]) -> None:
        named: dict = {}
        self.columns: list[tuple[str, Reader | None, Reader, bool]] = []
        for i, f in enumerate(fields):
            # parsed in order, as in the record, so named types are defined before they are used
            column = {"type": "record", "name": f"sflowpipe.prefix_reader.Column{i}", "fields": [f]}
            parsed = fastavro.parse_schema(column, named_schemas=named)
            fast = _fast_reader(f["type"])
            self.columns.append((f["name"], fast, _fastavro_column(f["name"], parsed), fast in _TOKEN_READERS))
        # bytes per item of each run of varint columns (by its first column), seen last time: the
        # token table of a run covers about that much, not the whole message
        self.run_bytes: dict[int, float] = {}
        self.slow_reads: dict[str, int] = {}  # columns fastavro read, by name (for tests, profiles)

    def read(self, data: bytes, start: int) -> dict:
        """The datum of the fields; fastavro's errors propagate (the caller maps them)."""
        m = _Message(data, start)
        p = start
        out = {}
        run = -1  # the first column of the current run of varint columns
        items = 0
        for i, (name, fast, slow, tokens) in enumerate(self.columns):
            if fast is not None:
                try:
                    if tokens:
                        if run < 0:
                            run = i
                            items = _count(data, p, m.end)[0]
                            per = self.run_bytes.get(i)
                            off = p - start
                            size = len(m.body) if per is None else off + int(per * items * 1.25) + 64
                            m.tokens = _Tokens(m.body, off, size)
                        try:
                            out[name], p = fast(m, p)
                        except _Short:
                            m.tokens = _Tokens(m.body, m.tokens.lo, len(m.body))
                            out[name], p = fast(m, p)
                        self.run_bytes[run] = (p - start - m.tokens.lo) / max(items, 1)
                    else:
                        run = -1
                        out[name], p = fast(m, p)
                    continue
                except _Irregular:
                    pass
            run = -1
            self.slow_reads[name] = self.slow_reads.get(name, 0) + 1
            out[name], p = slow(m, p)
        return out
