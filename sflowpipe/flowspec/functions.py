"""Key functions (country, asn, group, null, or, mask, prefix, suffix, oui, link) and compile_key, the key parser."""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from sflowpipe.flowspec.context import CACHE_LIMIT, ColFn, EvalContext
from sflowpipe.flowspec.errors import FlowSpecError
from sflowpipe.flowspec.keys import BASE_KEYS, KEY_RE, Key, not_from_sflow
from sflowpipe.flowspec.oui import oui_of, vendor


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


MAX_DEPTH = 32


def compile_key(text: str, what: str = "key") -> Key:
    """Compile a flow key or key function expression."""
    if not isinstance(text, str):
        raise FlowSpecError(f"{what}: flow key must be a string, not {type(text).__name__}")
    return _compile_key(text.strip(), what, 0)


def _compile_key(text: str, what: str, depth: int) -> Key:
    if depth > MAX_DEPTH:
        raise FlowSpecError(f"{what}: key functions nested too deeply in {text!r}")
    if not text:
        raise FlowSpecError(f"{what}: empty flow key")
    toks = _split_args(text, what)
    node, pos = _parse_key(toks, 0, what, depth, text)
    if pos != len(toks):
        raise FlowSpecError(f"{what}: unexpected argument {toks[pos][0]!r} in {text!r}", token=toks[pos][0])
    return node


def _parse_key(toks: list, pos: int, what: str, depth: int, text: str) -> tuple[Key, int]:
    if depth > MAX_DEPTH:
        raise FlowSpecError(f"{what}: key functions nested too deeply in {text!r}")
    if pos >= len(toks):
        raise FlowSpecError(f"{what}: missing flow key in {text!r}")
    tok, bracketed = toks[pos]
    if bracketed:
        return _compile_key(tok.strip(), what, depth + 1), pos + 1
    fn = _FUNCTIONS.get(tok)
    if fn is not None:
        return fn(toks, pos + 1, what, depth + 1, text)
    m = KEY_RE.match(tok)
    if m is None or m.group(1) not in BASE_KEYS:
        why = not_from_sflow(m.group(1) if m is not None else tok)
        if why is not None:
            raise FlowSpecError(f"{what}: {tok!r} needs data sFlow does not carry: {why}", token=tok)
        raise FlowSpecError(f"{what}: unknown flow key {tok!r}", token=tok)
    build, nestable = BASE_KEYS[m.group(1)]
    level = int(m.group(2)) if m.group(2) else 0
    if level and not nestable:
        raise FlowSpecError(f"{what}: unknown flow key {tok!r} ({m.group(1)} has no tunnel level)", token=tok)
    return Key(tok, build(level)), pos + 1


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
        raise FlowSpecError(f"{what}: function '{fname}': bad {argname} {tok!r} (want {lo}..{hi})", token=tok)
    return int(tok)


def _lookup_col(key: Key, lookup: Callable[[EvalContext, str], Any]) -> ColFn:
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
    return Key(canon, _lookup_col(key, lambda ctx, v: ctx.enrich.country(v) if ctx.enrich else None)), pos


def _f_asn(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    canon = f"asn:[{key.canon}]"
    return Key(canon, _lookup_col(key, lambda ctx, v: ctx.enrich.asn(v) if ctx.enrich else None)), pos


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

    return Key(f"group:[{key.canon}]:" + ":".join(gsets), _lookup_col(key, lookup)), pos


def _f_null(toks, pos, what, depth, text):
    key, pos = _parse_key(toks, pos, what, depth, text)
    if pos >= len(toks):
        raise FlowSpecError(f"{what}: function 'null' is missing its default in {text!r}")
    default = ":".join(t if not b else f"[{t}]" for t, b in toks[pos:])
    pos = len(toks)

    def col(ctx: EvalContext) -> list:
        return [default if v is None else v for v in key.col(ctx)]

    return Key(f"null:[{key.canon}]:{default}", col), pos


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

    return Key("or:" + ":".join(f"[{k.canon}]" for k in ks), col), pos


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
        if len(c) > CACHE_LIMIT:
            c.clear()
        for v in set(src):
            if v not in c:
                c[v] = _mask_one(v, b4, b6) if v is not None else None
        return [c[v] for v in src]

    canon = f"mask:[{key.canon}]:{b4}" + (f":{b6}" if b6 != b4 else "")
    return Key(canon, col), pos


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

        return Key(f"{fname}:[{key.canon}]:{sep}:{n}", col), pos

    return f


def _f_oui(toks, pos, what, depth, text):
    """oui:<mac key> is the MAC's OUI (6 hex digits); oui:<mac key>:name the vendor registered for it."""
    key, pos = _parse_key(toks, pos, what, depth, text)
    attr = None
    if pos < len(toks) and toks[pos][0] == "name" and not toks[pos][1]:
        attr, pos = "name", pos + 1
    if attr is None:
        return Key(f"oui:[{key.canon}]", _lookup_col(key, lambda ctx, v: oui_of(v))), pos

    def name(ctx: EvalContext, v: str):
        o = oui_of(v)
        return vendor(o) if o is not None else None

    return Key(f"oui:[{key.canon}]:name", _lookup_col(key, name)), pos


def _f_link(toks, pos, what, depth, text):
    """link:<ifindex key> (link:inputifindex, link:outputifindex): the name of the topology link with
    an end at (agent, that ifIndex); none for an edge port or without a topology."""
    key, pos = _parse_key(toks, pos, what, depth, text)

    def col(ctx: EvalContext) -> list:
        topo = ctx.topology
        src = key.col(ctx)
        if topo is None:
            return [None] * len(src)
        agent = ctx.batch.get("agent_address")
        memo: dict = {None: None}
        for v in set(src):
            if v not in memo:
                memo[v] = topo.link(agent, v)
        return [memo[v] for v in src]

    return Key(f"link:[{key.canon}]", col), pos


_FUNCTIONS: dict[str, Callable] = {
    "oui": _f_oui,
    "link": _f_link,
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
