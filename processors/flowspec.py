"""sFlow-RT's flow definition language (keys, key functions, filters), compiled column-wise.

A flow definition (sFlow-RT "Defining Flows") names ``keys`` (flow keys or key functions, joined with
``fs`` into the flow key string), a ``value`` (bytes, frames, bps, fps), an optional ``filter`` and the
smoothing / top-N parameters ``t`` and ``n``.

Everything here is compiled once into closures that work on whole columns of a decoded
``flow_sample_batch`` datum (a dict of per-sample lists): a key extractor returns the list of the key's
value for every sample (a ``str``, or ``None`` where the sample lacks the key), a filter returns a list of
booleans. Columns are cached per batch in an :class:`EvalContext` under the key's canonical text, so
flows and filters that share a key (on one batch) compute it once.

Value formats follow sFlow-RT's printing: decimal numbers (ports, protocols, ifIndex, vlan, ethernet
type), MACs as 12 upper-case hex digits without separators (``000C29A1B2C3``), ``tcpflags`` as the
9-bit binary string NS CWR ECE URG ACK PSH RST SYN FIN (``000010010`` is SYN+ACK), IPv4 dotted quad,
IPv6 RFC 5952 text as the decoder gives it.

Key functions (``<func>:<arg>:<arg>...``; nest with square brackets, ``country:[or:ipsource:ip6source]``,
or without them when the arity is fixed, ``country:or:ipsource:ip6source``):

``country:<key>``, ``asn:<key>``
    enrichment lookups (``enrich.country`` / ``enrich.asn``), missing when the lookup gives None.
``group:<key>:<groupset>[:<groupset>...]``
    the first group set (in order) that has a group containing the address.
``null:<key>:<default>``
    the key, or ``default`` where the sample lacks it.
``or:<key>:<key>[:<key>...]``
    the first of the keys that the sample has.
``mask:<key>:<bits>[:<bits6>]``
    the address's network prefix, ``10.1.2.0/24`` (IPv6 ``2001:db8::/48``; ``bits6`` for IPv6, else
    ``bits`` capped at the address length).
``prefix:<key>:<sep>:<n>``, ``suffix:<key>:<sep>:<n>``
    the first / last ``n`` ``sep``-separated tokens (``prefix:[x]:/:2`` of ``/metrics/json`` is ``/metrics``).

Filters: comparisons ``<key> = | != | ~ | !~ <v1>,<v2>,...`` (``~`` full-matches against any of the
patterns), combined with ``&`` (binds tighter), ``|`` and parentheses. A comparison on a key the sample
lacks is false whatever the operator (sFlow-RT only matches flows that have the keys; wrap the key in
``null:`` to compare a default instead).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Callable

from processors.flows import data_source

__all__ = [
    "FlowSpecError",
    "FlowDef",
    "CompiledFlow",
    "Filter",
    "EvalContext",
    "parse_definition",
    "compile_flow",
    "compile_filter",
    "compile_key",
    "KEY_NAMES",
    "FUNCTION_NAMES",
    "VALUES",
]


class FlowSpecError(ValueError):
    """A flow definition, key or filter that does not parse; the message names the offending part."""


# ------------------------------------------------------------------ evaluation context

_CACHE_LIMIT = 1 << 16  # distinct values kept in a formatting / matching cache before it is cleared


class EvalContext:
    """One batch being evaluated: the columns computed so far, by canonical key text."""

    __slots__ = ("batch", "enrich", "n", "cache")

    def __init__(self, batch: dict, enrich: Any = None) -> None:
        self.batch = batch
        self.enrich = enrich
        rt = batch.get("sampling_rate")
        self.n = len(rt) if rt is not None else len(batch.get("frame_length") or ())
        self.cache: dict = {}


Column = list  # list[str | None] for keys, list[bool] for filters
ColFn = Callable[[EvalContext], Column]

_S = tuple(str(i) for i in range(65536))  # int -> decimal text, for the 16-bit fields
_TCPFLAGS = tuple(format(i, "09b") for i in range(512))
_BIGINT: dict[int, str] = {}


def _istr(v: int) -> str:
    s = _BIGINT.get(v)
    if s is None:
        if len(_BIGINT) > _CACHE_LIMIT:
            _BIGINT.clear()
        s = _BIGINT[v] = str(v)
    return s


_MAC: dict[str, str] = {}


def _mac_col(col: list) -> list:
    c = _MAC
    if len(c) > _CACHE_LIMIT:
        c.clear()
    for m in set(col):
        if m not in c and m is not None:
            c[m] = m.replace(":", "").replace("-", "").upper()
    c[None] = None  # type: ignore[index]
    return [c[m] for m in col]


def _field(ctx: EvalContext, level: int, name: str) -> list:
    """The column ``name`` of the packet at tunnel depth ``level`` (0 outer, 1 the ``inner`` header...)."""
    if level == 0:
        col = ctx.batch.get(name)
        if col is None:
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


# ------------------------------------------------------------------ base keys
# Each builder takes the tunnel level and returns ColFn. Keys marked outer_only have no ``.N`` form.


def _ip_key(field: str, version: int) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [
                s if v == version else None
                for s, v in zip(_field(ctx, level, field), _field(ctx, level, "ip_version"))
            ]

        return col

    return build


def _ip_int_key(field: str, version: int, conv: Callable[[int], int] | None = None) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        if conv is None:

            def col(ctx: EvalContext) -> list:
                S = _S
                return [
                    S[x] if v == version and x is not None else None
                    for x, v in zip(_field(ctx, level, field), _field(ctx, level, "ip_version"))
                ]

        else:

            def col(ctx: EvalContext) -> list:
                S = _S
                return [
                    S[conv(x)] if v == version and x is not None else None
                    for x, v in zip(_field(ctx, level, field), _field(ctx, level, "ip_version"))
                ]

        return col

    return build


def _l4_key(field: str, protos: tuple[int, ...], table: tuple = _S) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        if len(protos) == 1:
            proto = protos[0]

            def col(ctx: EvalContext) -> list:
                T = table
                return [
                    T[x] if p == proto and x is not None else None
                    for x, p in zip(_field(ctx, level, field), _field(ctx, level, "ip_protocol"))
                ]

        else:
            ps = frozenset(protos)

            def col(ctx: EvalContext) -> list:
                T = table
                return [
                    T[x] if p in ps and x is not None else None
                    for x, p in zip(_field(ctx, level, field), _field(ctx, level, "ip_protocol"))
                ]

        return col

    return build


def _icmp6_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                S[x] if p == 58 and v == 6 and x is not None else None
                for x, p, v in zip(
                    _field(ctx, level, field), _field(ctx, level, "ip_protocol"), _field(ctx, level, "ip_version")
                )
            ]

        return col

    return build


def _icmp4_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                S[x] if p == 1 and v == 4 and x is not None else None
                for x, p, v in zip(
                    _field(ctx, level, field), _field(ctx, level, "ip_protocol"), _field(ctx, level, "ip_version")
                )
            ]

        return col

    return build


def _mac_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        return lambda ctx: _mac_col(_field(ctx, level, field))

    return build


def _int16_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [S[x] if x is not None else None for x in _field(ctx, level, field)]

        return col

    return build


def _vlan_key(which: str, ext: str) -> Callable[[int], ColFn]:
    """vlan / priority: the outermost 802.1Q tag of the sampled header; for the outer packet, else
    the extended switch record's incoming VLAN (access ports sample untagged frames)."""

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            tags = _field(ctx, level, "vlans")
            if level == 0:
                sw = _field(ctx, 0, ext)
                return [
                    S[t[0][which]] if t else (S[x] if x is not None else None) for t, x in zip(tags, sw)
                ]
            return [S[t[0][which]] if t else None for t in tags]

        return col

    return build


def _agent_key(level: int) -> ColFn:
    return lambda ctx: [ctx.batch.get("agent_address")] * ctx.n


def _ifindex_key(field: str) -> Callable[[int], ColFn]:
    fmt_field = field + "_format"

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                (S[x] if x < 65536 else _istr(x)) if f == 0 and x is not None and x >= 0 else None
                for x, f in zip(_field(ctx, 0, field), _field(ctx, 0, fmt_field))
            ]

        return col

    return build


def _datasource_key(level: int) -> ColFn:
    def col(ctx: EvalContext) -> list:
        cache: dict = {}
        out = []
        for t, i in zip(_field(ctx, 0, "source_id_type"), _field(ctx, 0, "source_id_index")):
            k = (t, i)
            s = cache.get(k)
            if s is None:
                s = cache[k] = data_source(t, i) if t is not None and i is not None else ""
            out.append(s or None)
        return out

    return col


# name -> (builder, allows a ``.N`` tunnel level suffix)
_BASE_KEYS: dict[str, tuple[Callable[[int], ColFn], bool]] = {
    # data source and interfaces (outer only)
    "agent": (_agent_key, False),
    "datasource": (_datasource_key, False),
    "inputifindex": (_ifindex_key("input"), False),
    "outputifindex": (_ifindex_key("output"), False),
    # Ethernet
    "macsource": (_mac_key("src_mac"), True),
    "macdestination": (_mac_key("dst_mac"), True),
    "ethernetprotocol": (_int16_key("eth_type"), True),
    "vlan": (_vlan_key("vlan", "src_vlan"), True),
    "priority": (_vlan_key("priority", "src_priority"), True),
    # IPv4
    "ipsource": (_ip_key("src_ip", 4), True),
    "ipdestination": (_ip_key("dst_ip", 4), True),
    "ipprotocol": (_ip_int_key("ip_protocol", 4), True),
    "iptos": (_ip_int_key("tos", 4), True),
    "ipdscp": (_ip_int_key("tos", 4, lambda x: x >> 2), True),
    "ipecn": (_ip_int_key("tos", 4, lambda x: x & 3), True),
    "ipttl": (_ip_int_key("ttl", 4), True),
    # IPv6
    "ip6source": (_ip_key("src_ip", 6), True),
    "ip6destination": (_ip_key("dst_ip", 6), True),
    "ip6nexthdr": (_ip_int_key("ip_protocol", 6), True),
    "ip6tos": (_ip_int_key("tos", 6), True),
    "ip6dscp": (_ip_int_key("tos", 6, lambda x: x >> 2), True),
    "ip6ttl": (_ip_int_key("ttl", 6), True),
    # transport
    "tcpsourceport": (_l4_key("src_port", (6,)), True),
    "tcpdestinationport": (_l4_key("dst_port", (6,)), True),
    "tcpflags": (_l4_key("tcp_flags", (6,), _TCPFLAGS), True),
    "udpsourceport": (_l4_key("src_port", (17,)), True),
    "udpdestinationport": (_l4_key("dst_port", (17,)), True),
    "icmptype": (_icmp4_key("icmp_type"), True),
    "icmpcode": (_icmp4_key("icmp_code"), True),
    "icmp6type": (_icmp6_key("icmp_type"), True),
    "icmp6code": (_icmp6_key("icmp_code"), True),
}


def _vni_level(level: int) -> ColFn:  # vni of the packet at ``level`` (any width)
    def col(ctx: EvalContext) -> list:
        return [(_S[x] if 0 <= x < 65536 else _istr(x)) if x is not None else None for x in _field(ctx, level, "vni")]

    return col


_BASE_KEYS["vni"] = (_vni_level, True)  # VXLAN VNI / NVGRE VSID of the tunnel at that level
KEY_NAMES = frozenset(_BASE_KEYS)

_KEY_RE = re.compile(r"([a-z0-9]+)(?:\.([0-9]))?\Z")

# ------------------------------------------------------------------ key expressions


class _Key:
    """A compiled key (base key or function): ``canon`` text and ``col(ctx)`` (cached per batch)."""

    __slots__ = ("canon", "col", "_raw")

    def __init__(self, canon: str, raw: ColFn) -> None:
        self.canon = canon
        self._raw = raw
        ck = ("#k", canon)

        def col(ctx: EvalContext) -> list:
            c = ctx.cache
            r = c.get(ck)
            if r is None:
                r = c[ck] = raw(ctx)
            return r

        self.col = col


def _split_args(text: str, what: str) -> list[tuple[str, bool]]:
    """Split on ':' outside square brackets; a ``[...]`` argument comes back (inner text, True)."""
    out: list[tuple[str, bool]] = []
    depth = 0
    cur: list[str] = []
    bracketed = False
    closed = False
    for ch in text:
        if ch == "[":
            if depth == 0:
                if cur or bracketed:
                    raise FlowSpecError(f"{what}: unexpected '[' in {text!r}")
                bracketed = True
                depth = 1
                continue
            depth += 1
        elif ch == "]":
            if depth == 0:
                raise FlowSpecError(f"{what}: unbalanced ']' in {text!r}")
            depth -= 1
            if depth == 0:
                closed = True
                continue
        elif ch == ":" and depth == 0:
            out.append(("".join(cur), bracketed))
            cur, bracketed, closed = [], False, False
            continue
        if closed:
            raise FlowSpecError(f"{what}: unexpected {ch!r} after ']' in {text!r}")
        cur.append(ch)
    if depth:
        raise FlowSpecError(f"{what}: unbalanced '[' in {text!r}")
    out.append(("".join(cur), bracketed))
    return out


_MAX_DEPTH = 32


def compile_key(text: str, what: str = "key") -> _Key:
    """Compile a flow key or key function expression."""
    if not isinstance(text, str):
        raise FlowSpecError(f"{what}: flow key must be a string, not {type(text).__name__}")
    return _compile_key(text.strip(), what, 0)


def _compile_key(text: str, what: str, depth: int) -> _Key:
    if depth > _MAX_DEPTH:
        raise FlowSpecError(f"{what}: key functions nested too deeply in {text!r}")
    if not text:
        raise FlowSpecError(f"{what}: empty flow key")
    toks = _split_args(text, what)
    node, pos = _parse_key(toks, 0, what, depth, text)
    if pos != len(toks):
        raise FlowSpecError(f"{what}: unexpected argument {toks[pos][0]!r} in {text!r}")
    return node


def _parse_key(toks: list, pos: int, what: str, depth: int, text: str) -> tuple[_Key, int]:
    if depth > _MAX_DEPTH:
        raise FlowSpecError(f"{what}: key functions nested too deeply in {text!r}")
    if pos >= len(toks):
        raise FlowSpecError(f"{what}: missing flow key in {text!r}")
    tok, bracketed = toks[pos]
    if bracketed:
        return _compile_key(tok.strip(), what, depth + 1), pos + 1
    fn = _FUNCTIONS.get(tok)
    if fn is not None:
        return fn(toks, pos + 1, what, depth + 1, text)
    m = _KEY_RE.match(tok)
    if m is None or m.group(1) not in _BASE_KEYS:
        raise FlowSpecError(f"{what}: unknown flow key {tok!r}")
    build, nestable = _BASE_KEYS[m.group(1)]
    level = int(m.group(2)) if m.group(2) else 0
    if level and not nestable:
        raise FlowSpecError(f"{what}: unknown flow key {tok!r} ({m.group(1)} has no tunnel level)")
    return _Key(tok, build(level)), pos + 1


def _arg(toks: list, pos: int, what: str, fname: str, text: str, argname: str) -> str:
    if pos >= len(toks):
        raise FlowSpecError(f"{what}: function '{fname}' is missing its {argname} in {text!r}")
    tok, bracketed = toks[pos]
    if bracketed:
        raise FlowSpecError(f"{what}: function '{fname}': {argname} cannot be bracketed in {text!r}")
    return tok


def _int_arg(toks: list, pos: int, what: str, fname: str, text: str, argname: str, lo: int, hi: int) -> int:
    tok = _arg(toks, pos, what, fname, text, argname)
    if not tok.isdigit() or not tok.isascii() or not lo <= int(tok) <= hi:
        raise FlowSpecError(f"{what}: function '{fname}': bad {argname} {tok!r} (want {lo}..{hi})")
    return int(tok)


def _lookup_col(key: _Key, lookup: Callable[[EvalContext, str], Any]) -> ColFn:
    """Column of ``lookup(value)`` (as text, None kept), one lookup per distinct value per batch."""

    def col(ctx: EvalContext) -> list:
        src = key.col(ctx)
        memo: dict = {None: None}
        for v in set(src):
            if v not in memo:
                r = lookup(ctx, v)
                memo[v] = None if r is None or r == "" else (r if isinstance(r, str) else str(r))
        return [memo[v] for v in src]

    return col


def _f_country(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    canon = f"country:[{key.canon}]"
    return _Key(canon, _lookup_col(key, lambda ctx, v: ctx.enrich.country(v) if ctx.enrich else None)), pos


def _f_asn(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    canon = f"asn:[{key.canon}]"
    return _Key(canon, _lookup_col(key, lambda ctx, v: ctx.enrich.asn(v) if ctx.enrich else None)), pos


def _f_group(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    sets = []
    while pos < len(toks):
        sets.append(_arg(toks, pos, what, "group", text, "group set"))
        pos += 1
    if not sets or any(not s for s in sets):
        raise FlowSpecError(f"{what}: function 'group' needs group set names in {text!r}")
    gsets = tuple(sets)

    def lookup(ctx: EvalContext, v: str):
        if not ctx.enrich:
            return None
        for gs in gsets:
            g = ctx.enrich.group(gs, v)
            if g is not None:
                return g
        return None

    return _Key(f"group:[{key.canon}]:" + ":".join(gsets), _lookup_col(key, lookup)), pos


def _f_null(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    if pos >= len(toks):
        raise FlowSpecError(f"{what}: function 'null' is missing its default in {text!r}")
    default = ":".join(t if not b else f"[{t}]" for t, b in toks[pos:])
    pos = len(toks)

    def col(ctx: EvalContext) -> list:
        return [default if v is None else v for v in key.col(ctx)]

    return _Key(f"null:[{key.canon}]:{default}", col), pos


def _f_or(toks, pos, what, depth, text):
    keys = []
    while pos < len(toks):
        k, pos = _parse_key(toks, pos, what, depth, text)
        keys.append(k)
    if not keys:
        raise FlowSpecError(f"{what}: function 'or' needs flow keys in {text!r}")
    ks = tuple(keys)

    def col(ctx: EvalContext) -> list:
        out = ks[0].col(ctx)
        for k in ks[1:]:
            out = [a if a is not None else b for a, b in zip(out, k.col(ctx))]
        return out

    return _Key("or:" + ":".join(f"[{k.canon}]" for k in ks), col), pos


_MASK_CACHE: dict = {}


def _mask_one(v: str, b4: int, b6: int) -> str | None:
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        return None
    bits = b4 if a.version == 4 else b6
    bits = min(bits, a.max_prefixlen)
    return ipaddress.ip_network((a, bits), strict=False).with_prefixlen


def _f_mask(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    b4 = _int_arg(toks, pos, what, "mask", text, "mask bits", 0, 128)
    pos += 1
    b6 = b4
    if pos < len(toks) and toks[pos][0].isdigit() and not toks[pos][1]:
        b6 = _int_arg(toks, pos, what, "mask", text, "IPv6 mask bits", 0, 128)
        pos += 1
    cache = _MASK_CACHE.setdefault((b4, b6), {})

    def col(ctx: EvalContext) -> list:
        src = key.col(ctx)
        c = cache
        if len(c) > _CACHE_LIMIT:
            c.clear()
        for v in set(src):
            if v not in c:
                c[v] = _mask_one(v, b4, b6) if v is not None else None
        return [c[v] for v in src]

    canon = f"mask:[{key.canon}]:{b4}" + (f":{b6}" if b6 != b4 else "")
    return _Key(canon, col), pos


def _f_prefix_suffix(fname: str):
    def f(toks, pos, what, depth, text):
        key, pos = _parse_key(toks, pos, what, depth, text)
        sep = _arg(toks, pos, what, fname, text, "separator")
        if not sep:
            raise FlowSpecError(f"{what}: function '{fname}': empty separator in {text!r}")
        n = _int_arg(toks, pos + 1, what, fname, text, "token count", 0, 1 << 16)
        pos += 2
        if fname == "prefix":

            def one(v: str) -> str:
                return sep.join(v.split(sep)[:n])

        else:

            def one(v: str) -> str:
                return sep.join(v.split(sep)[-n:]) if n else ""

        def col(ctx: EvalContext) -> list:
            src = key.col(ctx)
            memo: dict = {None: None}
            for v in set(src):
                if v not in memo:
                    memo[v] = one(v)
            return [memo[v] for v in src]

        return _Key(f"{fname}:[{key.canon}]:{sep}:{n}", col), pos

    return f


_FUNCTIONS: dict[str, Callable] = {
    "country": _f_country,
    "asn": _f_asn,
    "group": _f_group,
    "null": _f_null,
    "or": _f_or,
    "mask": _f_mask,
    "prefix": _f_prefix_suffix("prefix"),
    "suffix": _f_prefix_suffix("suffix"),
}
FUNCTION_NAMES = frozenset(_FUNCTIONS)

# ------------------------------------------------------------------ filters

_OPS = ("!=", "!~", "=", "~")


class Filter:
    """A compiled filter expression: ``mask(batch, enrich)`` gives one bool per sample."""

    __slots__ = ("expr", "_fn")

    def __init__(self, expr: str, fn: Callable[[EvalContext], list]) -> None:
        self.expr = expr
        self._fn = fn

    def mask(self, batch: dict, enrich: Any = None, ctx: EvalContext | None = None) -> list[bool]:
        if ctx is None:
            ctx = EvalContext(batch, enrich)
        return self._fn(ctx)

    def mask_ctx(self, ctx: EvalContext) -> list[bool]:
        return self._fn(ctx)

    def __repr__(self) -> str:
        return f"Filter({self.expr!r})"


def _lex_filter(expr: str) -> list[tuple]:
    """Tokens: ('(' | ')' | '&' | '|', pos) and ('cmp', pos, key_text, op, values_text)."""
    toks: list[tuple] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()&|":
            toks.append((ch, i))
            i += 1
            continue
        if ch in "=!~":
            raise FlowSpecError(f"filter: unexpected token {ch!r} at {i}")
        # key text: up to an operator character, brackets nest
        start = i
        depth = 0
        while i < n:
            c = expr[i]
            if c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
            elif depth <= 0 and c in "=!~&|()":
                break
            i += 1
        key_text = expr[start:i].strip()
        if depth > 0:
            raise FlowSpecError(f"filter: unbalanced '[' in {key_text!r} at {start}")
        if i >= n or expr[i] in "&|()":
            tok = expr[i] if i < n else "end of filter"
            raise FlowSpecError(
                f"filter: expected a comparison operator after {key_text!r} at {i}, got {tok!r}"
            )
        if expr.startswith("!=", i) or expr.startswith("!~", i):
            op = expr[i : i + 2]
        elif expr[i] in "=~":
            op = expr[i]
        else:
            raise FlowSpecError(f"filter: unexpected token {expr[i]!r} at {i}")
        i += len(op)
        vstart = i
        while i < n and expr[i] not in "&|)":
            i += 1
        values = expr[vstart:i].strip()
        if not values:
            raise FlowSpecError(f"filter: missing value after {key_text}{op} at {vstart}")
        toks.append(("cmp", start, key_text, op, values))
    return toks


def _compile_cmp(tok: tuple) -> Callable[[EvalContext], list]:
    _, pos, key_text, op, values_text = tok
    key = compile_key(key_text, "filter")
    values = [v.strip() for v in values_text.split(",")]
    if op in ("=", "!="):
        vs = frozenset(values)
        if op == "=":
            if len(vs) == 1:
                (x,) = vs
                return lambda ctx: [v == x for v in key.col(ctx)]
            return lambda ctx: [v in vs for v in key.col(ctx)]
        return lambda ctx: [v is not None and v not in vs for v in key.col(ctx)]
    # regex: Java-style Pattern.matches, i.e. the whole value must match one of the patterns
    pats = []
    for v in values:
        try:
            pats.append(re.compile(v))
        except (re.error, RecursionError, OverflowError, ValueError) as e:
            raise FlowSpecError(f"filter: bad pattern {v!r} at {pos}: {e}") from None
    try:
        combined = re.compile("|".join(f"(?:{p.pattern})" for p in pats)) if len(pats) > 1 else pats[0]
        fm = combined.fullmatch

        def match(v: str) -> bool:
            return fm(v) is not None

    except (re.error, RecursionError, OverflowError, ValueError):  # e.g. group names repeated across patterns

        def match(v: str) -> bool:
            return any(p.fullmatch(v) is not None for p in pats)

    want = op == "~"
    memo: dict = {}

    def col(ctx: EvalContext) -> list:
        src = key.col(ctx)
        c = memo
        if len(c) > _CACHE_LIMIT:
            c.clear()
        for v in set(src):
            if v not in c:
                c[v] = False if v is None else (match(v) == want)
        return [c[v] for v in src]

    return col


def _and(a: Callable, b: Callable) -> Callable:
    def col(ctx: EvalContext) -> list:
        x = a(ctx)
        if not any(x):
            return x
        y = b(ctx)
        return [p and q for p, q in zip(x, y)]

    return col


def _or(a: Callable, b: Callable) -> Callable:
    def col(ctx: EvalContext) -> list:
        x = a(ctx)
        if all(x):
            return x
        y = b(ctx)
        return [p or q for p, q in zip(x, y)]

    return col


class _FilterParser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = _lex_filter(expr)
        self.i = 0
        self.depth = 0

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _unexpected(self, tok) -> FlowSpecError:
        if tok is None:
            return FlowSpecError(f"filter: unexpected end of filter at {len(self.expr)}")
        if tok[0] == "cmp":
            return FlowSpecError(f"filter: unexpected comparison {tok[2]}{tok[3]}{tok[4]!s} at {tok[1]}")
        return FlowSpecError(f"filter: unexpected token {tok[0]!r} at {tok[1]}")

    def parse(self) -> Callable:
        if not self.toks:
            raise FlowSpecError("filter: empty filter")
        fn = self._or()
        if self.i != len(self.toks):
            raise self._unexpected(self.toks[self.i])
        return fn

    def _or(self) -> Callable:
        fn = self._and()
        while (t := self._peek()) is not None and t[0] == "|":
            self.i += 1
            fn = _or(fn, self._and())
        return fn

    def _and(self) -> Callable:
        fn = self._atom()
        while (t := self._peek()) is not None and t[0] == "&":
            self.i += 1
            fn = _and(fn, self._atom())
        return fn

    def _atom(self) -> Callable:
        t = self._peek()
        if t is None:
            raise self._unexpected(None)
        if t[0] == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise FlowSpecError(f"filter: parentheses nested too deeply at {t[1]}")
            self.i += 1
            fn = self._or()
            c = self._peek()
            if c is None or c[0] != ")":
                if c is None:
                    raise FlowSpecError(f"filter: missing ')' for '(' at {t[1]}")
                raise self._unexpected(c)
            self.i += 1
            self.depth -= 1
            return fn
        if t[0] == "cmp":
            self.i += 1
            return _compile_cmp(t)
        raise self._unexpected(t)


def compile_filter(expr: str) -> Filter:
    """Compile a filter expression (raises :class:`FlowSpecError` naming the bad token)."""
    if not isinstance(expr, str):
        raise FlowSpecError(f"filter: must be a string, not {type(expr).__name__}")
    return Filter(expr, _FilterParser(expr).parse())


# ------------------------------------------------------------------ flow definitions

VALUES = ("bytes", "frames", "bps", "fps")


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
        raise FlowSpecError(f"flow {name!r}: unknown attribute {sorted(unknown)[0]!r}")
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
    for k in keys:
        compile_key(k)
    value = d.get("value", "bytes")
    if value not in VALUES:
        raise FlowSpecError(f"flow {name!r}: unknown flow value {value!r} (want one of {', '.join(VALUES)})")
    flt = d.get("filter")
    if flt is not None:
        if not isinstance(flt, str):
            raise FlowSpecError(f"flow {name!r}: filter must be a string")
        if flt.strip() == "":
            flt = None
        else:
            compile_filter(flt)
    t = min(600.0, max(0.2, _number(name, "t", d.get("t"), 2.0)))
    n = int(min(20, max(5, _number(name, "n", d.get("n"), 5))))
    fs = d.get("fs", ",")
    if not isinstance(fs, str):
        raise FlowSpecError(f"flow {name!r}: fs must be a string")
    return FlowDef(name=name, keys=tuple(keys), value=value, filter=flt, t=t, n=n, fs=fs)


class CompiledFlow:
    """A flow definition compiled for column-wise evaluation over flow sample batches."""

    __slots__ = ("fd", "keys", "filter", "_value", "_fs")

    def __init__(self, fd: FlowDef) -> None:
        self.fd = fd
        self.keys = tuple(compile_key(k) for k in fd.keys)
        self.filter = compile_filter(fd.filter) if fd.filter else None
        self._fs = fd.fs
        self._value = _VALUE_FNS[fd.value]

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


_VALUE_FNS = {"bytes": _v_bytes, "frames": _v_frames, "bps": _v_bps, "fps": _v_frames}


def compile_flow(fd: FlowDef) -> CompiledFlow:
    return CompiledFlow(fd)
