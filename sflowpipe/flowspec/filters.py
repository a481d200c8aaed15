"""Filter expressions: tokenizer, parser (| over &, parentheses) and column-wise compiled comparisons."""

from __future__ import annotations

from typing import Any, Callable

from sflowpipe.flowspec.context import CACHE_LIMIT, EvalContext
from sflowpipe.flowspec.errors import FlowSpecError
from sflowpipe.flowspec.functions import MAX_DEPTH, compile_key
from sflowpipe.flowspec.patterns import compile_patterns

_OPS = ("!=", "!~", "=", "~")
_CHECK_EVERY = 1 << 14  # bytes of values matched between two checks of the evaluation budget


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
    """Tokens: ('(' | ')' | '&' | '|', pos) and ('cmp', pos, key_text, op, values_text, values_pos)."""
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
            raise FlowSpecError(f"filter: unexpected token {ch!r} at {i}", field="filter", position=i)
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
            raise FlowSpecError(f"filter: unbalanced '[' in {key_text!r} at {start}", field="filter", position=start)
        if i >= n or expr[i] in "&|()":
            tok = expr[i] if i < n else "end of filter"
            raise FlowSpecError(
                f"filter: expected a comparison operator after {key_text!r} at {i}, got {tok!r}",
                field="filter", position=i)
        if expr.startswith("!=", i) or expr.startswith("!~", i):
            op = expr[i : i + 2]
        elif expr[i] in "=~":
            op = expr[i]
        else:
            raise FlowSpecError(f"filter: unexpected token {expr[i]!r} at {i}", field="filter", position=i)
        i += len(op)
        vstart = i
        i = _pattern_end(expr, i) if op in ("~", "!~") else _values_end(expr, i)
        values = expr[vstart:i].strip()
        if not values:
            raise FlowSpecError(f"filter: missing value after {key_text}{op} at {vstart}", field="filter", position=vstart)
        vpos = vstart + len(expr[vstart:i]) - len(expr[vstart:i].lstrip())
        toks.append(("cmp", start, key_text, op, values, vpos))
    return toks


def _values_end(expr: str, i: int) -> int:
    while i < len(expr) and expr[i] not in "&|)":
        i += 1
    return i


def _pattern_end(expr: str, i: int) -> int:
    """End of the patterns after ``~``: as other values, except that a pattern's own groups, character
    classes and escapes may hold ``(``, ``)``, ``|`` and ``&`` (``httpurl~.*\\.(jpg|png)``)."""
    depth, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a character class: to its closing ']' (a ']' first in it is a member)
            j = i + 1 + (expr.startswith("^", i + 1))
            j += expr.startswith("]", j)
            close = expr.find("]", j)
            if close < 0:
                return n
            i = close + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
        elif c in "&|" and depth == 0:
            return i
        i += 1
    return min(i, n)


def _compile_cmp(tok: tuple) -> Callable[[EvalContext], list]:
    _, pos, key_text, op, values_text, vpos = tok
    try:
        key = compile_key(key_text, "filter")
    except FlowSpecError as e:  # a key inside a comparison: its place in the whole filter
        raise e.located("filter", pos, key_text) from None
    values = [v.strip() for v in values_text.split(",")]
    if op in ("=", "!="):
        vs = frozenset(values)
        if "null" in vs:  # sFlow-RT: key=null holds where the sample lacks the key, key!=null where it has it
            vs = vs - {"null"}
            if op == "=":
                return lambda ctx: [v is None or v in vs for v in key.col(ctx)]
            return lambda ctx: [v is not None and v not in vs for v in key.col(ctx)]
        if op == "=":
            if len(vs) == 1:
                (x,) = vs
                return lambda ctx: [v == x for v in key.col(ctx)]
            return lambda ctx: [v in vs for v in key.col(ctx)]
        return lambda ctx: [v is not None and v not in vs for v in key.col(ctx)]
    # regex: Java-style Pattern.matches (the whole value must match one of the patterns), in linear time
    pats, at = [], vpos
    for raw in values_text.split(","):
        pats.append((raw.strip(), at + len(raw) - len(raw.lstrip())))
        at += len(raw) + 1
    match = compile_patterns(pats)
    want = op == "~"
    memo: dict = {}

    def col(ctx: EvalContext) -> list:
        src = key.col(ctx)
        c = memo
        if len(c) > CACHE_LIMIT:
            c.clear()
        budget = ctx.budget
        work = _CHECK_EVERY  # a match costs about its value's length: check the budget every so many bytes
        for v in set(src):
            if v in c:
                continue
            if v is None:
                c[v] = False
                continue
            work += len(v) + 64
            if budget is not None and work >= _CHECK_EVERY:
                budget.check()
                work = 0
            c[v] = match(v) == want
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
            return FlowSpecError(f"filter: unexpected end of filter at {len(self.expr)}", field="filter", position=len(self.expr))
        if tok[0] == "cmp":
            return FlowSpecError(f"filter: unexpected comparison {tok[2]}{tok[3]}{tok[4]!s} at {tok[1]}", field="filter", position=tok[1])
        return FlowSpecError(f"filter: unexpected token {tok[0]!r} at {tok[1]}", field="filter", position=tok[1])

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
            if self.depth > MAX_DEPTH:
                raise FlowSpecError(f"filter: parentheses nested too deeply at {t[1]}", field="filter", position=t[1])
            self.i += 1
            fn = self._or()
            c = self._peek()
            if c is None or c[0] != ")":
                if c is None:
                    raise FlowSpecError(f"filter: missing ')' for '(' at {t[1]}", field="filter", position=t[1])
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
