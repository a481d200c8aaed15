"""The one error the flow definition language raises."""

class FlowSpecError(ValueError):
    """A flow definition, key or filter that does not parse; the message names the offending part."""
