"""Which flow keys had values, and when last: what sFlow-RT's /flowkeys/json lists.

Every worker publishes, each report interval, one JSON message to the status topic:
``{"kind": "flowkeys", "worker": ID, "time": EPOCH_MS, "keys": {KEY: EPOCH_MS_LAST_SEEN}}``; the
API merges the workers' messages and answers sFlow-RT's shape (key -> ms since last seen).

Kept cheap: at most one batch per ``every`` seconds is examined, and of it at most ``rows``
samples spread over the batch (about 1 ms a second per worker); inner-packet keys (``ipsource.1``...)
only when those samples have tunnelled packets. A key seen on a sliver of the traffic is found
within a few intervals.
"""

from __future__ import annotations

import time
from typing import Callable

from sflowpipe.flowspec.context import EvalContext
from sflowpipe.flowspec.functions import compile_key
from sflowpipe.flowspec.keys import BASE_KEYS, DROP_KEYS

_COMPILED: dict[int, tuple[tuple, tuple]] = {}


def _keys() -> tuple[tuple, tuple]:
    """(outer, inner) compiled base keys; rebuilt if the key table grew (keys of other modules)."""
    got = _COMPILED.get(len(BASE_KEYS))
    if got is None:
        outer = tuple((name, compile_key(name)) for name in sorted(BASE_KEYS))
        inner = tuple((f"{name}.1", compile_key(f"{name}.1")) for name, (_, nestable) in sorted(BASE_KEYS.items())
                      if nestable)
        _COMPILED.clear()
        got = _COMPILED[len(BASE_KEYS)] = (outer, inner)
    return got


class FlowKeysSeen:
    """Owns the last time each flow key had a value on a sampled batch of this worker."""

    def __init__(self, clock: Callable[[], float] = time.time, every: float = 1.0, forget_after: float = 3600.0,
                 rows: int = 64):
        self.clock = clock
        self.every = every
        self.rows = rows
        self.forget_after = forget_after
        self.last: dict[str, float] = {}
        self._next = {False: 0.0, True: 0.0}  # packet samples / discards: the next time a batch is examined

    def observe(self, ctx: EvalContext, now: float, dropped: bool = False) -> None:
        if now < self._next[dropped] or not ctx.n:
            return
        self._next[dropped] = now + self.every
        if ctx.n > self.rows:  # a spread of the samples, in a context of its own
            step = ctx.n // self.rows
            ctx = EvalContext({k: v[::step] if isinstance(v, list) else v for k, v in ctx.batch.items()})
        last = self.last
        outer, inner_keys = _keys()
        for name, key in outer:
            if not dropped and name in DROP_KEYS:
                continue
            if any(v is not None for v in key.col(ctx)):
                last[name] = now
        inner = ctx.batch.get("inner")
        if inner and any(d is not None for d in inner):
            for name, key in inner_keys:
                if any(v is not None for v in key.col(ctx)):
                    last[name] = now

    def message(self, worker: str, now: float | None = None) -> dict:
        """The status-topic message (keys last seen within ``forget_after``)."""
        now = self.clock() if now is None else now
        stale = [k for k, t in self.last.items() if now - t > self.forget_after]
        for k in stale:
            del self.last[k]
        return {"kind": "flowkeys", "worker": worker, "time": int(now * 1000),
                "keys": {k: int(t * 1000) for k, t in sorted(self.last.items())}}
