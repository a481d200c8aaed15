"""The one error the sFlow decoder raises, with a code saying what kind of fault it found."""

from __future__ import annotations

import enum


class DecodeReason(str, enum.Enum):
    """Why a datagram was refused, as a small fixed set: the ingest metric's ``reason`` label and
    the dead letter's ``error`` prefix (the message beside it says where and what exactly)."""

    UNSUPPORTED_VERSION = "unsupported_version"  # not sFlow version 5
    TRUNCATED = "truncated"  # a structure runs past the end of its datagram, sample or record
    BAD_LENGTH = "bad_length"  # a length or count field contradicts the bytes around it
    BAD_ADDRESS = "bad_address"  # an address type other than IPv4 or IPv6
    INVALID = "invalid"  # a field's contents cannot be read (the record's own decoder refused it)


class DecodeError(ValueError):
    """A datagram that cannot be decoded: where (byte offset), why (text) and what kind (code)."""

    def __init__(self, offset: int, reason: str, code: DecodeReason = DecodeReason.INVALID) -> None:
        super().__init__(f"{reason} (at byte {offset})")
        self.offset = offset
        self.reason = reason
        self.code = DecodeReason(code)

    def __reduce__(self):
        return (DecodeError, (self.offset, self.reason, self.code))
