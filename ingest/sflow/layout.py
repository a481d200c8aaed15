"""Record layouts that read like the spec.

A fixed-layout record is written once as a table of ``(attribute, kind, sflowtool name)`` rows;
the same table drives decoding, encoding and sflowtool-compatible output. Records with
variable parts (strings, lists, addresses) are small hand-written codecs with the same
four members: ``cls``, ``decode``, ``encode`` and ``sflowtool``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable, NamedTuple, Protocol

from ingest.sflow.errors import DecodeError, DecodeReason

_F32 = struct.Struct(">f")


class RecordCodec(Protocol):
    """What every record table entry offers."""

    name: str
    cls: type

    def decode(self, buf: memoryview, off: int, length: int) -> Any: ...

    def encode(self, rec: Any) -> bytes: ...

    def sflowtool(self, rec: Any, out: dict, p: str) -> None: ...


# ---------------------------------------------------------------- value formatting (sflowtool)


def fmt_float3(v: float) -> str:
    return "%.3f" % v


def float32(v: float) -> float:
    return _F32.unpack(_F32.pack(v))[0]


def fmt_percent(v: float | None) -> str:
    """sflowtool prints hundredths-of-a-percent as a float32 with two decimals."""
    if v is None:
        return "unknown"
    return "%.2f" % float32(v)


def fmt_mac(mac: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` -> sflowtool's ``aabbccddeeff``."""
    return mac.replace(":", "")


def ip6_full(addr: str) -> str:
    """sflowtool prints IPv6 uncompressed: eight groups of four lowercase hex digits."""
    b = socket.inet_pton(socket.AF_INET6, addr)
    h = b.hex()
    return ":".join(h[i : i + 4] for i in range(0, 32, 4))


def fmt_ip(addr: str) -> str:
    """An address as sflowtool prints it (IPv4 dotted quad, IPv6 uncompressed)."""
    return ip6_full(addr) if ":" in addr else addr


# ---------------------------------------------------------------- wire <-> model conversions


def mac_from_wire(b: bytes) -> str:
    return b.hex(":")


def mac_to_wire(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ip4_from_wire(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def ip4_to_wire(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, a)


# IPv4 addresses read as 32-bit words (next hops, which repeat), by value: bounded, cleared when full
IP4_WORD_TEXT: dict[int, str] = {}


def ip4_word_text(a: int) -> str:
    """The text of an IPv4 address read as a big-endian 32-bit word; look in IP4_WORD_TEXT first."""
    if len(IP4_WORD_TEXT) >= 4096:
        IP4_WORD_TEXT.clear()
    t = IP4_WORD_TEXT[a] = socket.inet_ntop(socket.AF_INET, a.to_bytes(4, "big"))
    return t


def ip6_from_wire(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def ip6_to_wire(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, a)


def pct_from_wire(v: int) -> float | None:
    return None if v == 0xFFFFFFFF else v / 100


def pct_to_wire(v: float | None) -> int:
    return 0xFFFFFFFF if v is None else int(round(v * 100))


class Kind(NamedTuple):
    """One field kind: its XDR struct format and its conversions."""

    fmt: str
    from_wire: Callable[[Any], Any] | None
    to_wire: Callable[[Any], Any] | None
    tool: Callable[[Any], str]


U32 = Kind("I", None, None, str)
I32 = Kind("i", None, None, str)
U64 = Kind("Q", None, None, str)
F32 = Kind("f", None, None, fmt_float3)
F64 = Kind("d", None, None, fmt_float3)
PERCENT = Kind("I", pct_from_wire, pct_to_wire, fmt_percent)  # hundredths of a percent, -1 = unknown
MAC = Kind("6s2x", mac_from_wire, mac_to_wire, fmt_mac)  # XDR pads a 6-byte MAC to 8
IP4 = Kind("4s", ip4_from_wire, ip4_to_wire, str)
IP6 = Kind("16s", ip6_from_wire, ip6_to_wire, ip6_full)


class F(NamedTuple):
    """A row of a layout table: model attribute, kind, sflowtool field name (None: not printed)."""

    attr: str
    kind: Kind
    tool: str | None


class Fixed:
    """Codec for a record that is a fixed sequence of fields.

    ``optional_tail``: how many trailing fields a shorter, older version of the record may
    lack (they decode as None), e.g. host_cpu before cpu_steal/guest/guest_nice existed.
    """

    def __init__(self, name: str, cls: type, fields: tuple[F, ...], optional_tail: int = 0,
                 tool_extra: Callable[[Any, dict, str], None] | None = None) -> None:
        self.name = name
        self.cls = cls
        self.fields = fields
        self.struct = struct.Struct(">" + "".join(f.kind.fmt for f in fields))
        self.size = self.struct.size
        self.short = None
        if optional_tail:
            head = fields[:-optional_tail]
            self.short = struct.Struct(">" + "".join(f.kind.fmt for f in head))
            self.tail_none = (None,) * optional_tail
        self.convert = tuple((i, f.kind.from_wire) for i, f in enumerate(fields) if f.kind.from_wire)
        self.unconvert = tuple((i, f.kind.to_wire) for i, f in enumerate(fields) if f.kind.to_wire)
        self.attrs = tuple(f.attr for f in fields)
        self.printed = tuple((f.attr, f.kind.tool, f.tool) for f in fields if f.tool)
        self.tool_extra = tool_extra
        assert tuple(cls.__struct_fields__) == self.attrs, (name, cls.__struct_fields__, self.attrs)

    def decode(self, buf: memoryview, off: int, length: int) -> Any:
        if length == self.size:
            vals = self.struct.unpack_from(buf, off)
        elif self.short is not None and length == self.short.size:
            vals = self.short.unpack_from(buf, off) + self.tail_none
        else:
            raise DecodeError(off, f"{self.name} record length {length}, expected {self.size}", DecodeReason.BAD_LENGTH)
        if self.convert:
            vals = list(vals)
            for i, conv in self.convert:
                if vals[i] is not None:
                    vals[i] = conv(vals[i])
        return self.cls(*vals)

    def encode(self, rec: Any) -> bytes:
        vals = [getattr(rec, a) for a in self.attrs]
        for i, conv in self.unconvert:
            vals[i] = conv(vals[i])
        if self.short is not None and vals[-1] is None:
            return self.short.pack(*vals[: len(vals) - len(self.tail_none)])
        return self.struct.pack(*vals)

    def sflowtool(self, rec: Any, out: dict, p: str) -> None:
        for attr, tool, key in self.printed:
            v = getattr(rec, attr)
            if v is not None or tool is fmt_percent:
                out[p + key] = tool(v)
        if self.tool_extra is not None:
            self.tool_extra(rec, out, p)


# ---------------------------------------------------------------- XDR helpers for hand-written codecs

U32S = struct.Struct(">I")
U64S = struct.Struct(">Q")


def need(buf: memoryview, off: int, n: int, end: int, what: str) -> None:
    """Fail unless n bytes from off stay within end (never read past a record's own length)."""
    if n < 0 or off + n > end:
        raise DecodeError(off, f"{what}: needs {n} bytes, {max(end - off, 0)} left", DecodeReason.TRUNCATED)


def read_u32(buf: memoryview, off: int, end: int, what: str) -> int:
    if off + 4 > end:
        raise DecodeError(off, f"{what}: truncated", DecodeReason.TRUNCATED)
    return U32S.unpack_from(buf, off)[0]


def read_opaque(buf: memoryview, off: int, end: int, what: str) -> tuple[bytes, int]:
    """XDR variable-length opaque: u32 length, bytes, pad to 4. Returns (bytes, next offset)."""
    n = read_u32(buf, off, end, what)
    off += 4
    padded = (n + 3) & ~3
    if n > end - off or padded > end - off:
        raise DecodeError(off, f"{what}: length {n} exceeds the {end - off} bytes left", DecodeReason.BAD_LENGTH)
    return bytes(buf[off : off + n]), off + padded


def read_string(buf: memoryview, off: int, end: int, what: str) -> tuple[str, int]:
    """XDR string, decoded as UTF-8 (invalid bytes replaced, never an error)."""
    raw, off = read_opaque(buf, off, end, what)
    return raw.decode("utf-8", "replace"), off


def pad4(b: bytes) -> bytes:
    r = len(b) & 3
    return b + b"\0" * (4 - r) if r else b


def enc_opaque(b: bytes) -> bytes:
    return U32S.pack(len(b)) + pad4(b)


def enc_string(s: str) -> bytes:
    return enc_opaque(s.encode("utf-8"))


def tool_string(s: str, limit: int) -> str:
    """sflowtool copies a string into a fixed buffer: it stops at a NUL and keeps ``limit`` chars."""
    i = s.find("\0")
    if i >= 0:
        s = s[:i]
    return s[:limit]


def read_address(buf: memoryview, off: int, end: int, what: str) -> tuple[str, int]:
    """sFlow address: u32 type (1 = IPv4, 2 = IPv6) then the address. Returns (text, next offset)."""
    t = read_u32(buf, off, end, what)
    off += 4
    if t == 1:
        need(buf, off, 4, end, what)
        return socket.inet_ntop(socket.AF_INET, buf[off : off + 4]), off + 4
    if t == 2:
        need(buf, off, 16, end, what)
        return socket.inet_ntop(socket.AF_INET6, buf[off : off + 16]), off + 16
    raise DecodeError(off - 4, f"{what}: unknown address type {t}", DecodeReason.BAD_ADDRESS)


def enc_address(a: str) -> bytes:
    if ":" in a:
        return U32S.pack(2) + socket.inet_pton(socket.AF_INET6, a)
    return U32S.pack(1) + socket.inet_pton(socket.AF_INET, a)


class Custom:
    """A hand-written codec: decode(buf, off, length), encode(rec), sflowtool(rec, out, prefix)."""

    def __init__(self, name: str, cls: type, decode, encode, sflowtool) -> None:
        self.name = name
        self.cls = cls
        self.decode = decode
        self.encode = encode
        self.sflowtool = sflowtool
