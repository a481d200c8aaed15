"""Helpers shared by the counter record families: local field kinds, sflowtool's string cut, row tables."""

from __future__ import annotations

from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.layout import F, Fixed, Kind, tool_string

U8 = Kind("B", None, None, str)
# a signed 32-bit field that sflowtool prints with %u
I32_AS_U32 = Kind("i", None, None, lambda v: str(v & 0xFFFFFFFF))
# a 64-bit id that sflowtool prints as 16 lowercase hex digits
HEX64 = Kind("Q", None, None, lambda v: f"{v:016x}")


def _tool_str(s: str, limit: int) -> str:
    """sflowtool's getString into a buffer of ``limit + 1`` bytes, printed with %s.

    Truncates on bytes (not characters) like the C code, and stops at an embedded NUL."""
    b = s.encode("utf-8")
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    if len(b) <= limit:
        return tool_string(b.decode("utf-8", "replace"), limit)
    return b[:limit].decode("utf-8", "replace")


def _end_check(off: int, end: int, what: str) -> None:
    if off != end:
        raise DecodeError(off, f"{what}: record length leaves {end - off} bytes undecoded", DecodeReason.BAD_LENGTH)


def _fixed(name: str, cls: type, rows: tuple, optional_tail: int = 0) -> Fixed:
    return Fixed(name, cls, tuple(F(*r) for r in rows), optional_tail)
