"""Flow definitions: FlowDef, parse_definition, and CompiledFlow (keys, filter and value evaluated per batch)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sflowpipe.flowspec.context import EvalContext, column_at, collecting_needs, note_needs
from sflowpipe.flowspec.errors import FlowSpecError
from sflowpipe.flowspec.filters import compile_filter
from sflowpipe.flowspec.functions import compile_key
from sflowpipe.flowspec.keys import DROP_KEYS
from sflowpipe.flowspec.payload_keys import v_requests
from sflowpipe.names import split_keys

VALUES = ("bytes", "frames", "bps", "fps", "requests")


# sFlow-RT's aggMode of a flow (InMon's apps write 'edge' and 'AGENT'; compared case-insensitively):
# edge  counts a packet once, where it enters the network: samples taken on ingress
#       (direction=ingress) on a port that is no topology link's end (link:inputifindex=null);
# agent pools the agent's data sources into one, data source "0" (sFlow's "all ports" index), for
#       keys such as outputifindex that ingress sampling on any port sees.
AGG_MODES = ("edge", "agent")


@dataclass(frozen=True)
class FlowDef:
    name: str
    keys: tuple[str, ...]  # empty: the flow has one key, "" (sFlow-RT's flow without keys: a total)
    value: str = "bytes"
    filter: str | None = None
    t: float = 2.0
    n: int = 5
    fs: str = ","
    agg_mode: str | None = None  # one of AGG_MODES
    dropped: bool = False  # over discarded-packet notifications instead of packet samples


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
              "activeTimeout", "dropped", "ipfixCollectors", "aggMode"}


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
    dropped = d.get("dropped", False)
    if dropped is None:
        dropped = False
    if not isinstance(dropped, bool):
        raise FlowSpecError(f"flow {name!r}: dropped must be true or false, not {dropped!r}", field="dropped",
                            token=str(dropped), position=0)
    agg_mode = d.get("aggMode")
    if agg_mode is not None:
        if not isinstance(agg_mode, str) or agg_mode.lower() not in AGG_MODES:
            raise FlowSpecError(f"flow {name!r}: unknown aggMode {agg_mode!r} (want one of {', '.join(AGG_MODES)})",
                                field="aggMode", token=str(agg_mode), position=0)
        agg_mode = agg_mode.lower()
    keys_spec = d.get("keys")
    if keys_spec is None or (isinstance(keys_spec, str) and not keys_spec.strip()) or keys_spec == []:
        keys = []  # sFlow-RT allows a flow without keys: one flow, the total of what the filter keeps
    elif isinstance(keys_spec, str):
        keys = split_keys(keys_spec)
    elif isinstance(keys_spec, (list, tuple)) and all(isinstance(k, str) for k in keys_spec):
        keys = [k.strip() for k in keys_spec]
    else:
        raise FlowSpecError(f"flow {name!r}: keys must be a string or a list of strings")
    if any(not k for k in keys):
        raise FlowSpecError(f"flow {name!r}: empty flow key in keys {keys_spec!r}")
    offset = 0
    with collecting_needs() as key_needs:  # the columns the keys read (DROP_KEYS': discard notifications only)
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
    filter_needs: set = set()
    if flt is not None:
        if not isinstance(flt, str):
            raise FlowSpecError(f"flow {name!r}: filter must be a string")
        if flt.strip() == "":
            flt = None
        else:
            try:
                with collecting_needs() as filter_needs:
                    compile_filter(flt)
            except FlowSpecError as e:
                raise e.located("filter") from None
    for where, needs, text in (("keys", key_needs, ",".join(keys) if not isinstance(keys_spec, str) else keys_spec),
                               ("filter", filter_needs, flt or "")):
        drop_only = sorted(needs & DROP_KEYS)
        if drop_only and not dropped:
            tok = drop_only[0]
            raise FlowSpecError(f"flow {name!r}: {tok!r} is a key of discarded-packet notifications: set dropped: true",
                                field=where, token=tok, position=max(text.find(tok), 0))
    t = min(600.0, max(0.2, _number(name, "t", d.get("t"), 2.0)))
    n = int(min(20, max(5, _number(name, "n", d.get("n"), 5))))
    fs = d.get("fs", ",")
    if not isinstance(fs, str):
        raise FlowSpecError(f"flow {name!r}: fs must be a string")
    return FlowDef(name=name, keys=tuple(keys), value=value, filter=flt, t=t, n=n, fs=fs, agg_mode=agg_mode,
                   dropped=dropped)


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
        if not keys:  # a flow without keys: every sample that passes the filter counts for key ""
            if m is None:
                return [(i, "", v) for i, v in enumerate(vals) if v is not None]
            return [(i, "", v) for i, (v, ok) in enumerate(zip(vals, m)) if ok and v is not None]
        if len(keys) == 1:
            kc = keys[0].col(ctx)
            if m is None:
                return [(i, k, v) for i, (k, v) in enumerate(zip(kc, vals)) if k is not None and v is not None]
            return [
                (i, k, v) for i, (k, v, ok) in enumerate(zip(kc, vals, m)) if ok and k is not None and v is not None
            ]
        rows = zip(*(k.col(ctx) for k in keys))  # each sample's key values as a tuple (C-level, no unpacking)
        join = self._fs.join
        if m is None:
            return [(i, join(t), v) for i, (v, t) in enumerate(zip(vals, rows)) if v is not None and None not in t]
        return [
            (i, join(t), v)
            for i, (v, ok, t) in enumerate(zip(vals, m, rows))
            if ok and v is not None and None not in t
        ]


def _v_frames(ctx: EvalContext) -> list:
    return column_at(ctx, 0, "sampling_rate")


def _v_bytes(ctx: EvalContext) -> list:
    return [
        f * r if f is not None else None
        for f, r in zip(column_at(ctx, 0, "frame_length"), column_at(ctx, 0, "sampling_rate"))
    ]


def _v_bps(ctx: EvalContext) -> list:
    return [
        f * r * 8 if f is not None else None
        for f, r in zip(column_at(ctx, 0, "frame_length"), column_at(ctx, 0, "sampling_rate"))
    ]


_VALUE_FNS = {"bytes": _v_bytes, "frames": _v_frames, "bps": _v_bps, "fps": _v_frames, "requests": v_requests}


def compile_flow(fd: FlowDef) -> CompiledFlow:
    return CompiledFlow(fd)
