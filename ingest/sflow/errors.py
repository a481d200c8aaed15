"""The one error the sFlow decoder raises."""


class DecodeError(ValueError):
    """A datagram that cannot be decoded: where (byte offset) and why."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"{reason} (at byte {offset})")
        self.offset = offset
        self.reason = reason

    def __reduce__(self):
        return (DecodeError, (self.offset, self.reason))
