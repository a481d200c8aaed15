"""Waiting on a condition in tests (instead of a fixed sleep).

A fixed sleep is either too long (every run pays for it) or, on a loaded machine, too short (the
test fails, or passes without having checked what it meant to). Wait for the condition meant,
with a generous timeout that only a real failure reaches. Sleeps that remain in the tests wait out
a timer on purpose (to show that nothing happens meanwhile, or to pace traffic) and say so.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2,
          message: str | Callable[[], str] | None = None) -> Any:
    """Call ``predicate`` until it returns something truthy, and return that; fail the test after
    ``timeout`` s, with ``message`` (or what it returns: e.g. a process's log) if given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = message() if callable(message) else message
    raise AssertionError(f"condition not met within {timeout:g} s" + (f": {detail}" if detail else ""))
