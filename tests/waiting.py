"""Waiting on a condition in tests (instead of a fixed sleep)."""

from __future__ import annotations

import time
from typing import Any, Callable


def until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Call ``predicate`` until it returns something truthy, and return that; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:g} s")
