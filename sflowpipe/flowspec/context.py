"""The batch being evaluated (EvalContext, its per-batch column cache) and column access by tunnel level."""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

CACHE_LIMIT = 1 << 16  # distinct values kept in a formatting / matching cache before it is cleared


class BudgetExceeded(Exception):
    """The definition being evaluated ran past its budget on this batch, or was cancelled (deleted)."""


class Budget:
    """CPU time one definition may spend on one batch (thread time: another process's load does not
    count against it). Loops that can be long (pattern matching) call ``check`` between values;
    another thread may set ``cancelled`` (the definition was deleted or redefined meanwhile)."""

    __slots__ = ("seconds", "start", "deadline", "cancelled")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.thread_time()
        self.deadline = self.start + seconds
        self.cancelled = False

    def spent(self) -> float:
        return time.thread_time() - self.start

    def check(self) -> None:
        if self.cancelled or time.thread_time() > self.deadline:
            raise BudgetExceeded()


class EvalContext:
    """One batch being evaluated: the columns computed so far, by canonical key text."""

    __slots__ = ("batch", "enrich", "topology", "n", "cache", "budget")

    def __init__(self, batch: dict, enrich: Any = None, topology: Any = None) -> None:
        self.batch = batch
        self.enrich = enrich
        self.topology = topology  # sflowpipe.topology.Topology (link: keys) or None
        rt = batch.get("sampling_rate")
        self.n = len(rt) if rt is not None else len(batch.get("frame_length") or ())
        self.cache: dict = {}
        self.budget: Budget | None = None  # set by the engine around each definition's evaluation


Column = list  # list[str | None] for keys, list[bool] for filters
ColFn = Callable[[EvalContext], Column]

# ---------------------------------------------------------------- cold columns
# The processors decode only the hot prefix of a flow batch (schemas/definitions.py HOT_DECODED);
# a column function that reads cold columns (the raw ``header``, ``records``, ``ip_offset``...)
# says so with a ``needs`` attribute (see ``needing``). Compiling a flow inside ``collecting_needs``
# gathers what its keys, filter and value need, so the app decodes whole batches only while some
# definition needs them.
_NEEDS: ContextVar[set | None] = ContextVar("flowspec_needs", default=None)


def needing(columns: frozenset[str], fn: ColFn) -> ColFn:
    """``fn``, marked as reading these cold columns of the batch."""
    fn.needs = columns  # type: ignore[attr-defined]
    return fn


def note_needs(fn: Any) -> None:
    """Record the cold columns ``fn`` reads (if marked) in the compile being collected."""
    needs = getattr(fn, "needs", None)
    if needs:
        s = _NEEDS.get()
        if s is not None:
            s.update(needs)


@contextmanager
def collecting_needs() -> Iterator[set]:
    """The set of cold columns the keys, filters and values compiled inside the block read."""
    s: set = set()
    token = _NEEDS.set(s)
    try:
        yield s
    finally:
        _NEEDS.reset(token)
        outer = _NEEDS.get()
        if outer is not None:
            outer.update(s)


def column_at(ctx: EvalContext, level: int, name: str) -> list:
    """The column ``name`` of the packet at tunnel depth ``level`` (0 outer, 1 the ``inner`` header...)."""
    if level == 0:
        col = ctx.batch.get(name)
        if col is None or (not col and ctx.n):  # absent, or a column newer than the message's schema (default [])
            col = [None] * ctx.n
        return col
    ck = ("#f", level, name)
    col = ctx.cache.get(ck)
    if col is None:
        inner = inner_headers(ctx, level)
        col = ctx.cache[ck] = [d.get(name) if d is not None else None for d in inner]
    return col


def inner_headers(ctx: EvalContext, level: int) -> list:
    ck = ("#inner", level)
    col = ctx.cache.get(ck)
    if col is None:
        if level == 1:
            col = ctx.batch.get("inner") or [None] * ctx.n
        else:
            col = [d.get("inner") if d is not None else None for d in inner_headers(ctx, level - 1)]
        ctx.cache[ck] = col
    return col
