"""The batch being evaluated (EvalContext, its per-batch column cache) and column access by tunnel level."""

from __future__ import annotations

from typing import Any, Callable

_CACHE_LIMIT = 1 << 16  # distinct values kept in a formatting / matching cache before it is cleared


class EvalContext:
    """One batch being evaluated: the columns computed so far, by canonical key text."""

    __slots__ = ("batch", "enrich", "topology", "n", "cache")

    def __init__(self, batch: dict, enrich: Any = None, topology: Any = None) -> None:
        self.batch = batch
        self.enrich = enrich
        self.topology = topology  # processors.topology.Topology (link: keys) or None
        rt = batch.get("sampling_rate")
        self.n = len(rt) if rt is not None else len(batch.get("frame_length") or ())
        self.cache: dict = {}


Column = list  # list[str | None] for keys, list[bool] for filters
ColFn = Callable[[EvalContext], Column]


def _field(ctx: EvalContext, level: int, name: str) -> list:
    """The column ``name`` of the packet at tunnel depth ``level`` (0 outer, 1 the ``inner`` header...)."""
    if level == 0:
        col = ctx.batch.get(name)
        if col is None or (not col and ctx.n):  # absent, or a column newer than the message's schema (default [])
            col = [None] * ctx.n
        return col
    ck = ("#f", level, name)
    col = ctx.cache.get(ck)
    if col is None:
        inner = _inner(ctx, level)
        col = ctx.cache[ck] = [d.get(name) if d is not None else None for d in inner]
    return col


def _inner(ctx: EvalContext, level: int) -> list:
    ck = ("#inner", level)
    col = ctx.cache.get(ck)
    if col is None:
        if level == 1:
            col = ctx.batch.get("inner") or [None] * ctx.n
        else:
            col = [d.get("inner") if d is not None else None for d in _inner(ctx, level - 1)]
        ctx.cache[ck] = col
    return col
