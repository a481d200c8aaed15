"""Flow definitions: FlowDef, parse_definition, and CompiledFlow (keys, filter and value evaluated per batch)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from processors.flowspec.context import EvalContext, _field, collecting_needs, note_needs
from processors.flowspec.errors import FlowSpecError
from processors.flowspec.filters import compile_filter
from processors.flowspec.functions import compile_key
from processors.flowspec.payload_keys import v_requests

VALUES = ("bytes", "frames", "bps", "fps", "requests")


@dataclass(frozen=True)
class FlowDef:
    name: str
    keys: tuple[str, ...]
    value: str = "bytes"
    filter: str | None = None
    t: float = 2.0
    n: int = 5
    fs: str = ","


def _split_keys(spec: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in spec:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [k.strip() for k in out]


def _number(name: str, attr: str, v: Any, default: float) -> float:
    if v is None:
        return default
    if isinstance(v, bool):
        raise FlowSpecError(f"flow {name!r}: {attr} must be a number, not {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise FlowSpecError(f"flow {name!r}: {attr} must be a number, not {v!r}") from None
    if math.isnan(x):
        raise FlowSpecError(f"flow {name!r}: {attr} must be a number, not {v!r}")
    return x


_DEF_ATTRS = {"keys", "value", "filter", "t", "n", "fs", "name", "values", "log", "flowStart",
              "activeTimeout", "dropped", "ipfixCollectors"}


def parse_definition(name: str, d: dict) -> FlowDef:
    """Validate a flow definition (sFlow-RT's /flow/{name}/json body) into a :class:`FlowDef`.

    ``t`` is clamped to 0.2..600 s and ``n`` to 5..20 as sFlow-RT does; keys and filter are compiled
    here so that every error surfaces as :class:`FlowSpecError`.
    """
    if not isinstance(name, str) or not name:
        raise FlowSpecError("flow name must be a non-empty string")
    if not isinstance(d, dict):
        raise FlowSpecError(f"flow {name!r}: definition must be an object")
    unknown = set(d) - _DEF_ATTRS
    if unknown:
        raise FlowSpecError(f"flow {name!r}: unknown attribute {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    if d.get("dropped"):
        raise FlowSpecError(f"flow {name!r}: 'dropped' (discarded packet flows) is not supported")
    keys_spec = d.get("keys")
    if isinstance(keys_spec, str):
        keys = _split_keys(keys_spec)
    elif isinstance(keys_spec, (list, tuple)) and all(isinstance(k, str) for k in keys_spec):
        keys = [k.strip() for k in keys_spec]
    else:
        raise FlowSpecError(f"flow {name!r}: keys must be a string or a list of strings")
    if not keys or any(not k for k in keys):
        raise FlowSpecError(f"flow {name!r}: empty flow key in keys {keys_spec!r}")
    offset = 0
    for i, k in enumerate(keys):
        try:
            compile_key(k)
        except FlowSpecError as e:  # point at the key in what the user wrote
            if isinstance(keys_spec, str):
                at = keys_spec.find(k, offset)
                raise e.located("keys", max(at, 0), k) from None
            raise e.located(f"keys[{i}]", 0, k) from None
        if isinstance(keys_spec, str):
            offset = keys_spec.find(k, offset) + len(k)
    value = d.get("value", "bytes")
    if value not in VALUES:
        raise FlowSpecError(f"flow {name!r}: unknown flow value {value!r} (want one of {', '.join(VALUES)})",
                            field="value", token=str(value), position=0)
    flt = d.get("filter")
    if flt is not None:
        if not isinstance(flt, str):
            raise FlowSpecError(f"flow {name!r}: filter must be a string")
        if flt.strip() == "":
            flt = None
        else:
            try:
                compile_filter(flt)
            except FlowSpecError as e:
                raise e.located("filter") from None
    t = min(600.0, max(0.2, _number(name, "t", d.get("t"), 2.0)))
    n = int(min(20, max(5, _number(name, "n", d.get("n"), 5))))
    fs = d.get("fs", ",")
    if not isinstance(fs, str):
        raise FlowSpecError(f"flow {name!r}: fs must be a string")
    return FlowDef(name=name, keys=tuple(keys), value=value, filter=flt, t=t, n=n, fs=fs)


class CompiledFlow:
    """A flow definition compiled for column-wise evaluation over flow sample batches."""

    __slots__ = ("fd", "keys", "filter", "_value", "_fs", "needs")

    def __init__(self, fd: FlowDef) -> None:
        self.fd = fd
        with collecting_needs() as needs:
            self.keys = tuple(compile_key(k) for k in fd.keys)
            self.filter = compile_filter(fd.filter) if fd.filter else None
            self._value = _VALUE_FNS[fd.value]
            note_needs(self._value)
        # the cold batch columns (beyond schemas.definitions.HOT_DECODED) its keys, filter and value read
        self.needs: frozenset[str] = frozenset(needs)
        self._fs = fd.fs

    def evaluate(self, batch: dict, enrich: Any = None, ctx: EvalContext | None = None) -> list[tuple[int, str, float]]:
        """``(sample index, flow key, contribution)`` for each sample that passes the filter and has every key.

        Pass one shared ``ctx`` (``EvalContext(batch, enrich)``) when evaluating several flows on one
        batch: keys common to them are then computed once.
        """
        if ctx is None:
            ctx = EvalContext(batch, enrich)
        if self.filter is not None:
            m = self.filter.mask_ctx(ctx)
            if not any(m):
                return []
        else:
            m = None
        vals = self._value(ctx)
        keys = self.keys
        if len(keys) == 1:
            kc = keys[0].col(ctx)
            if m is None:
                return [(i, k, v) for i, (k, v) in enumerate(zip(kc, vals)) if k is not None and v is not None]
            return [
                (i, k, v) for i, (k, v, ok) in enumerate(zip(kc, vals, m)) if ok and k is not None and v is not None
            ]
        cols = [k.col(ctx) for k in keys]
        join = self._fs.join
        if m is None:
            m = repeat(True)
        return [
            (i, join(t), v)
            for i, (v, ok, *t) in enumerate(zip(vals, m, *cols))
            if ok and v is not None and None not in t
        ]


def _v_frames(ctx: EvalContext) -> list:
    return _field(ctx, 0, "sampling_rate")


def _v_bytes(ctx: EvalContext) -> list:
    return [
        f * r if f is not None else None
        for f, r in zip(_field(ctx, 0, "frame_length"), _field(ctx, 0, "sampling_rate"))
    ]


def _v_bps(ctx: EvalContext) -> list:
    return [
        f * r * 8 if f is not None else None
        for f, r in zip(_field(ctx, 0, "frame_length"), _field(ctx, 0, "sampling_rate"))
    ]


_VALUE_FNS = {"bytes": _v_bytes, "frames": _v_frames, "bps": _v_bps, "fps": _v_frames, "requests": v_requests}


def compile_flow(fd: FlowDef) -> CompiledFlow:
    return CompiledFlow(fd)
