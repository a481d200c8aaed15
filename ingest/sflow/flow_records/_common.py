"""Helpers shared by the flow record families: the checked record reader and the codec builders."""

from __future__ import annotations

import struct
from socket import AF_INET, AF_INET6, inet_ntop

from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.layout import (
    U32S,
    Custom,
    Fixed,
    enc_address,
    enc_string,
    mac_from_wire,
    mac_to_wire,
    read_address,
)

_U64S = struct.Struct(">Q")
_I32S = struct.Struct(">i")


class _Reader:
    """Walks one record body [off, off + length): every read is checked against the record end.

    The XDR padding after a string or MAC may fall past an unpadded record length (the datagram
    layer pads record lengths to 4 bytes); ``done`` then requires the fields to fill the padded
    length exactly.
    """

    __slots__ = ("buf", "start", "pos", "end", "length", "what")

    def __init__(self, buf: memoryview, off: int, length: int, what: str) -> None:
        self.buf = buf
        self.start = self.pos = off
        self.end = off + length
        self.length = length
        self.what = what

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise DecodeError(pos, f"{self.what}: truncated, needs {n} bytes, {max(self.end - pos, 0)} left",
                              DecodeReason.TRUNCATED)
        self.pos = pos + n
        return pos

    def u32(self) -> int:
        return U32S.unpack_from(self.buf, self._need(4))[0]

    def i32(self) -> int:
        return _I32S.unpack_from(self.buf, self._need(4))[0]

    def u64(self) -> int:
        return _U64S.unpack_from(self.buf, self._need(8))[0]

    def u32s(self) -> tuple[int, ...]:
        """XDR ``unsigned int x<>``: a count, then that many values."""
        n = self.u32()
        if n > (self.end - self.pos) // 4:
            raise DecodeError(self.pos - 4, f"{self.what}: {n} values cannot fit in {self.end - self.pos} bytes",
                              DecodeReason.TRUNCATED)
        return struct.unpack_from(f">{n}I", self.buf, self._need(4 * n))

    def string(self) -> str:
        n = self.u32()
        if n > self.end - self.pos:
            raise DecodeError(self.pos - 4,
                              f"{self.what}: string length {n} exceeds the {self.end - self.pos} bytes left",
                              DecodeReason.BAD_LENGTH)
        pos = self.pos
        self.pos = pos + ((n + 3) & ~3)
        return bytes(self.buf[pos : pos + n]).decode("utf-8", "replace")

    def mac(self) -> str:
        pos = self._need(6)
        self.pos = pos + 8  # XDR pads a MAC to 8 bytes
        return mac_from_wire(bytes(self.buf[pos : pos + 6]))

    def address(self) -> str:
        a, self.pos = read_address(self.buf, self.pos, self.end, self.what)
        return a

    def done(self) -> None:
        if self.pos - self.start != ((self.length + 3) & ~3):
            raise DecodeError(self.pos, f"{self.what}: record length {self.length}, "
                                        f"its fields take {self.pos - self.start} bytes", DecodeReason.BAD_LENGTH)


# ---------------------------------------------------------------- fast decoders
# The fast decoders below read a record's happy path with struct.Struct.unpack_from and plain
# offsets, and hand anything their bounds checks refuse to the _Reader decoder, which raises
# exactly the error it always raised: the fast path decides nothing about a malformed record.

_IP4_TEXT: dict[bytes, str] = {}  # next hops repeat: their text is cached (bounded: cleared when full)
_IP6_TEXT: dict[bytes, str] = {}
_TEXT_CACHE_MAX = 1 << 12
_U32_COUNTS = tuple(struct.Struct(f">{n}I") for n in range(64))  # ``unsigned int x<n>`` for small n


def ip4_text(a: bytes) -> str:
    t = _IP4_TEXT.get(a)
    if t is None:
        if len(_IP4_TEXT) >= _TEXT_CACHE_MAX:
            _IP4_TEXT.clear()
        t = _IP4_TEXT[a] = inet_ntop(AF_INET, a)
    return t


def ip6_text(a: bytes) -> str:
    t = _IP6_TEXT.get(a)
    if t is None:
        if len(_IP6_TEXT) >= _TEXT_CACHE_MAX:
            _IP6_TEXT.clear()
        t = _IP6_TEXT[a] = inet_ntop(AF_INET6, a)
    return t


def u32_array(n: int) -> struct.Struct:
    return _U32_COUNTS[n] if n < 64 else struct.Struct(f">{n}I")


_FIXED, _STRING, _ADDRESS, _MAC, _U32S = range(5)
_FIXED_FMT = {"u32": "I", "i32": "i", "u64": "Q"}


def _steps(kinds: list[str]) -> tuple:
    """The fields as read steps: runs of fixed-size fields merged into one struct.Struct, a string's
    length word read with the run before it."""
    steps: list = []
    run = ""
    for k in kinds:
        if k in _FIXED_FMT:
            run += _FIXED_FMT[k]
            continue
        if k == "string":
            steps.append((_STRING, struct.Struct(">" + run + "I")))
            run = ""
            continue
        if run:
            steps.append((_FIXED, struct.Struct(">" + run)))
            run = ""
        steps.append(({"address": _ADDRESS, "mac": _MAC, "u32s": _U32S}[k], None))
    if run:
        steps.append((_FIXED, struct.Struct(">" + run)))
    return tuple(steps)


def _u32s(vals) -> bytes:
    return struct.pack(f">I{len(vals)}I", len(vals), *vals)


def _mac(mac: str) -> bytes:
    return mac_to_wire(mac) + b"\0\0"


_ENCODE = {"u32": U32S.pack, "i32": _I32S.pack, "u64": _U64S.pack, "string": enc_string, "address": enc_address,
           "mac": _mac, "u32s": _u32s}


def _var(name: str, cls: type, kinds: str, tool) -> Custom:
    """Codec for a record of variable-length fields, written as the XDR kinds of its fields in order:
    u32, i32, u64, string, address (sFlow address), mac, u32s (``unsigned int x<>``)."""
    kinds_ = kinds.split()
    attrs = cls.__struct_fields__
    assert len(kinds_) == len(attrs), (name, kinds_, attrs)
    readers = tuple(getattr(_Reader, k) for k in kinds_)
    writers = tuple(zip(attrs, (_ENCODE[k] for k in kinds_)))

    def checked(buf: memoryview, off: int, length: int):
        r = _Reader(buf, off, length, name)
        rec = cls(*[read(r) for read in readers])
        r.done()
        return rec

    steps = _steps(kinds_)
    u32 = U32S.unpack_from

    def decode(buf: memoryview, off: int, length: int):
        end = off + length
        pos = off
        vals: list = []
        for step, st in steps:
            if step == _FIXED:
                if end - pos < st.size:
                    return checked(buf, off, length)
                vals += st.unpack_from(buf, pos)
                pos += st.size
            elif step == _STRING:  # the fields before it, then its length
                if end - pos < st.size:
                    return checked(buf, off, length)
                vals += st.unpack_from(buf, pos)
                n = vals.pop()
                pos += st.size
                if n > end - pos:
                    return checked(buf, off, length)
                vals.append(str(buf[pos : pos + n], "utf-8", "replace"))
                pos += (n + 3) & ~3
            elif step == _ADDRESS:
                if end - pos < 4:
                    return checked(buf, off, length)
                t = u32(buf, pos)[0]
                if t == 1 and end - pos >= 8:
                    a = bytes(buf[pos + 4 : pos + 8])
                    vals.append(_IP4_TEXT.get(a) or ip4_text(a))
                    pos += 8
                elif t == 2 and end - pos >= 20:
                    vals.append(ip6_text(bytes(buf[pos + 4 : pos + 20])))
                    pos += 20
                else:
                    return checked(buf, off, length)
            elif step == _MAC:
                if end - pos < 6:
                    return checked(buf, off, length)
                vals.append(bytes(buf[pos : pos + 6]).hex(":"))
                pos += 8
            else:  # _U32S
                if end - pos < 4:
                    return checked(buf, off, length)
                n = u32(buf, pos)[0]
                pos += 4
                if n > (end - pos) // 4:
                    return checked(buf, off, length)
                vals.append(u32_array(n).unpack_from(buf, pos))
                pos += 4 * n
        if pos - off != (length + 3) & ~3:
            return checked(buf, off, length)
        return cls(*vals)

    decode.checked = checked  # the reference the tests compare the fast path with

    def encode(rec) -> bytes:
        return b"".join(enc(getattr(rec, a)) for a, enc in writers)

    return Custom(name, cls, decode, encode, tool)


def _cstr(s: str, buf_len: int) -> str:
    """A string as sflowtool's getString() keeps it: at most buf_len - 1 bytes, up to a NUL."""
    b = s.encode("utf-8")[: buf_len - 1]
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "replace")


_STRBUF = 2048  # sflowtool's MAX_STRBUF_LEN: its SFStr scratch strings silently stop there


class _SFStr:
    """sflowtool's bounded string builder, for the lists it prints (AS paths, label stacks...)."""

    __slots__ = ("parts", "n")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def append(self, s: str) -> None:
        s = s[: max(_STRBUF - self.n - 1, 0)]
        self.parts.append(s)
        self.n += len(s)

    def array32(self, vals, sep: str) -> None:
        for i, v in enumerate(vals):
            t = str(v)
            if self.n + 1 + len(t) >= _STRBUF:
                return
            if i:
                t = sep + t
            self.parts.append(t)
            self.n += len(t)

    def hex_0x(self, b: bytes) -> None:
        if _STRBUF - self.n < 3:
            return
        room = (_STRBUF - self.n - 2 - 1) // 2
        t = "0x" + b[:room].hex()
        self.parts.append(t)
        self.n += len(t)

    def __str__(self) -> str:
        return "".join(self.parts)


def _typed(codec: Fixed, extended_type: str) -> Custom:
    """A fixed-layout record whose sflowtool output starts with an extendedType line."""

    def tool(r, out: dict, p: str) -> None:
        out[p + "extendedType"] = extended_type
        codec.sflowtool(r, out, p)

    return Custom(codec.name, codec.cls, codec.decode, codec.encode, tool)


def _strings(cls: type, what: str, keys: tuple[str, ...], limits: tuple[int, ...], ext: str) -> Custom:
    """A record of strings only; sflowtool prints each non-empty one cut to its buffer (limit - 1 bytes)."""
    printed = tuple(zip(cls.__struct_fields__, keys, limits))

    def tool(rec, out: dict, p: str) -> None:
        if ext:
            out[p + "extendedType"] = ext
        for a, k, limit in printed:
            s = getattr(rec, a)
            if s:
                out[p + k] = _cstr(s, limit)

    return _var(what, cls, " ".join(["string"] * len(keys)), tool)
