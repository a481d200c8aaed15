"""sFlow-RT's metric aggregations (``/metric/{agent}/{metric}/json`` prefixes) and table sorting.

A prefix ``max: min: sum: avg: var: sdev: med: q1: q2: q3: iqr: any:`` summarizes one metric over the
selected agents and data sources (``max`` without a prefix). ``max``, ``min`` and ``any`` pick one
reading, so the answer names its ``agent``, ``dataSource`` and ``lastUpdate`` (and, for a flow
metric, its ``topKeys``): always those of the reading whose value is reported. The others are
computed over all readings and, as sFlow-RT answers them, name no agent. ``var`` and ``sdev`` are
the population variance and standard deviation; quartiles interpolate linearly between readings
(``med`` = ``q2``; ``iqr`` = ``q3 - q1``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

AGGREGATIONS = ("max", "min", "sum", "avg", "var", "sdev", "med", "q1", "q2", "q3", "iqr", "any")
PICKS = ("max", "min", "any")  # aggregations that report one reading


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values``, interpolating linearly between the sorted readings."""
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _var(v: Sequence[float]) -> float:
    mean = sum(v) / len(v)
    return sum((x - mean) ** 2 for x in v) / len(v)


STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "sum": sum,
    "avg": lambda v: sum(v) / len(v),
    "var": _var,
    "sdev": lambda v: math.sqrt(_var(v)),
    "med": lambda v: quantile(v, 0.5),
    "q1": lambda v: quantile(v, 0.25),
    "q2": lambda v: quantile(v, 0.5),
    "q3": lambda v: quantile(v, 0.75),
    "iqr": lambda v: quantile(v, 0.75) - quantile(v, 0.25),
}


def split_spec(spec: str) -> tuple[str, str]:
    """``"sum:ifinoctets"`` -> ``("sum", "ifinoctets")``; no prefix is ``max``."""
    agg, sep, name = spec.partition(":")
    if not sep:
        return "max", spec
    if agg not in AGGREGATIONS:
        raise ValueError(f"{spec}: aggregation must be one of {', '.join(a + ':' for a in AGGREGATIONS)}")
    return agg, name


def summarize(spec: str, agg: str, rows: list[dict]) -> dict[str, Any]:
    """sFlow-RT's Statistic of ``rows`` (metric readings: agent, dataSource, metricValue, lastUpdate)."""
    out: dict[str, Any] = {"metricName": spec, "metricN": len(rows)}
    if not rows:
        return out
    if agg in PICKS:
        pick = rows[0] if agg == "any" else (max if agg == "max" else min)(rows, key=lambda r: r["metricValue"])
        out.update(agent=pick["agent"], dataSource=pick["dataSource"], metricValue=pick["metricValue"],
                   lastUpdate=pick["lastUpdate"])
        if "topKeys" in pick:
            out["topKeys"] = pick["topKeys"]
    else:
        out["metricValue"] = STATISTICS[agg]([r["metricValue"] for r in rows])
    out["lastUpdateMax"] = max(r["lastUpdate"] for r in rows)
    out["lastUpdateMin"] = min(r["lastUpdate"] for r in rows)
    return out


def parse_sort(spec: str) -> tuple[str, int | None]:
    """``/table``'s ``sort:NAME:-N``: the column, and N (negative: largest first; None: no truncation)."""
    _, name, n = (spec.split(":", 2) + [""])[:3]
    if not name:
        raise ValueError(f"{spec}: expected sort:NAME or sort:NAME:N")
    try:
        return name, int(n) if n else None
    except ValueError:
        raise ValueError(f"{spec}: N in sort:NAME:N must be an integer") from None
