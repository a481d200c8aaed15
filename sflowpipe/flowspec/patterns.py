"""Regular expressions of filters (``~``, ``!~``), matched in linear time.

sFlow-RT compiles filter patterns with Java's ``Pattern`` and tests ``Pattern.matches`` (the whole
value). Python's ``re`` backtracks: ``.*`` repeated 40 times before an ``x`` that never comes pins a
core for ever. RE2 (google-re2) matches in time linear in the value, whatever the pattern; what it
cannot do that way (backreferences, lookaround, atomic groups, possessive quantifiers) is refused
when the definition is made, naming the pattern and where in it RE2 stopped.
"""

from __future__ import annotations

from typing import Callable

import re2

from sflowpipe.flowspec.errors import FlowSpecError

Matcher = Callable[[str], bool]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the refusal says it; RE2's own stderr line would only repeat it


def _error_text(e: Exception) -> str:
    msg = e.args[0] if e.args else str(e)
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _where(pattern: str, message: str) -> int:
    """Offset in ``pattern`` of the fragment RE2 names after its ':' (0 when it names none)."""
    _, sep, fragment = message.partition(": ")
    if sep and fragment:
        found = pattern.find(fragment)
        if found >= 0:
            return found
    return 0


_LINEAR_ONLY = (" (backreferences, lookaround, atomic groups and possessive quantifiers are refused: they cannot "
                "be matched in linear time)")


def _not_linear(why: str) -> bool:
    """RE2's refusal of a Java construct that needs backtracking (not a plain syntax error)."""
    backref = why.startswith("invalid escape sequence: \\") and why[-1:].isdigit()
    return backref or "perl operator" in why or "repetition operator" in why


def _compile(pattern: str):
    return re2.compile(pattern, _OPTIONS)


def compile_patterns(patterns: list[tuple[str, int]], field: str = "filter") -> Matcher:
    """A full-match test of a value against any of ``patterns`` ((text, its offset in ``field``)).

    Raises :class:`FlowSpecError` naming the first pattern RE2 refuses and the position of the
    refused construct in the field."""
    compiled = []
    for text, offset in patterns:
        try:
            compiled.append(_compile(text))
        except Exception as e:  # re2.error; re2 also raises TypeError/ValueError on odd input
            why = _error_text(e)
            pos = offset + _where(text, why)
            hint = _LINEAR_ONLY if _not_linear(why) else ""
            raise FlowSpecError(f"{field}: bad pattern {text!r} at {pos}: {why}{hint}", field=field, token=text,
                                position=pos) from None
    if len(compiled) == 1:
        fm = compiled[0].fullmatch
        return lambda v: fm(v) is not None
    try:  # one automaton for all alternatives
        fm = _compile("|".join(f"(?:{text})" for text, _ in patterns)).fullmatch
        return lambda v: fm(v) is not None
    except Exception:  # e.g. a group name used in two patterns
        fms = [c.fullmatch for c in compiled]
        return lambda v: any(f(v) is not None for f in fms)
