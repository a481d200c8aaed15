"""Merged top flows across agents and data sources, from the flows topic's ActiveFlows messages.

Each worker publishes the top flows of the agents it owns; a reader of the topic (the REST API,
a sink) merges the latest message of every (flow, agent) the way sFlow-RT's
``/activeflows/{agent}/{name}/json?aggMode=max|sum&maxFlows=&minValue=`` does: the same flow key
seen on several data sources or agents is combined by its largest value (max) or the sum.
"""

from __future__ import annotations

from typing import Iterable

AGG_MODES = ("max", "sum")  # how one flow key seen at several data sources or agents is combined


class ActiveFlows:
    """Owns the latest ActiveFlows message per (flow, agent)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], dict] = {}

    def update(self, message: dict) -> None:
        key = (message["flow"], message["agent"])
        old = self.latest.get(key)
        if old is None or message["timestamp"] >= old["timestamp"]:
            self.latest[key] = message

    def update_all(self, messages: Iterable[dict]) -> None:
        for m in messages:
            self.update(m)

    def merged(self, flow: str, agents: Iterable[str] | None = None, agg_mode: str = "max", max_flows: int = 100,
               min_value: float = 0.0, since_ms: int = 0) -> list[dict]:
        """[{"key", "value", "agent", "dataSource"}] largest first; agent/dataSource: where the
        largest contribution was seen. Messages older than ``since_ms`` (stale) are left out."""
        if agg_mode not in AGG_MODES:
            raise ValueError(f"aggMode must be max or sum, not {agg_mode!r}")
        wanted = None if agents is None else set(agents)
        acc: dict[str, list] = {}
        for (name, agent), m in self.latest.items():
            if name != flow or (wanted is not None and agent not in wanted) or m["timestamp"] < since_ms:
                continue
            for e in m["flows"]:
                cur = acc.get(e["key"])
                if cur is None:
                    acc[e["key"]] = [e["value"], e["value"], agent, e["dataSource"]]
                    continue
                if e["value"] > cur[1]:
                    cur[1], cur[2], cur[3] = e["value"], agent, e["dataSource"]
                cur[0] = cur[0] + e["value"] if agg_mode == "sum" else max(cur[0], e["value"])
        rows = [{"key": k, "value": v[0], "agent": v[2], "dataSource": v[3]} for k, v in acc.items()
                if v[0] >= min_value]
        rows.sort(key=lambda r: -r["value"])
        return rows[:max(0, max_flows)]  # a negative slice would drop the smallest flows instead
