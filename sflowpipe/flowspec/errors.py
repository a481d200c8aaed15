"""The one error the flow definition language raises."""

from __future__ import annotations


class FlowSpecError(ValueError):
    """A flow definition, key or filter that does not parse; the message names the offending part.

    ``field`` (keys, value, filter, ...), ``token`` (the offending text) and ``position`` (its
    character offset in that field) are set where known, so an API can point at the fault.
    """

    def __init__(self, message: str, *, field: str | None = None, token: str | None = None,
                 position: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.token = token
        self.position = position

    def located(self, field: str, offset: int = 0, text: str | None = None) -> "FlowSpecError":
        """This error placed in ``field`` at ``offset`` (+ the token's place in ``text``)."""
        pos = self.position
        if pos is None and text is not None and self.token:
            found = text.find(self.token)
            pos = found if found >= 0 else None
        self.field = self.field or field
        self.position = offset + (pos or 0)
        return self

    def detail(self) -> dict:
        """The JSON body of a refusal: message and, where known, field, token and position."""
        out: dict = {"error": str(self)}
        for k in ("field", "token", "position"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out
