"""Smoothed flow values and top-N, as sFlow-RT keeps them for each flow definition.

A flow's value is a rate per second, exponentially smoothed with the definition's time constant ``t``:
each contribution ``a`` at time ``now`` updates ``value = value * exp(-(now - last) / t) + a / t``
(the exponential-kernel rate estimator: a steady stream of ``r`` units/s converges to ``r``, and a
stopped flow decays as ``exp(-dt / t)``). Values are decayed lazily: an entry stores ``[value, last]``
and is brought forward to the time it is read or updated.

Entries are kept per (agent, dataSource, flow key). Memory is bounded: each data source keeps at most
``max_keys`` keys (default ``max(100, 10 * n)``); past ``max_keys + max_keys // 4`` the smallest
(decayed) entries are evicted back down to ``max_keys`` (the slack lets new flows build up a value
before competing), and :meth:`FlowTable.prune` drops entries that decayed below a floor.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Iterable, Sequence

__all__ = ["FlowTable"]


class FlowTable:
    """Smoothed rates for one flow definition, keyed by (agent, dataSource, flow key)."""

    def __init__(self, t: float, n: int, max_keys: int | None = None) -> None:
        if not t > 0:
            raise ValueError(f"t must be positive, not {t!r}")
        self.t = float(t)
        self.n = int(n)
        self.max_keys = int(max_keys) if max_keys is not None else max(100, 10 * self.n)
        self._trim_at = self.max_keys + max(1, self.max_keys // 4)
        # agent -> dataSource -> key -> [value, last]
        self._agents: dict[str, dict[str, dict[str, list]]] = {}

    # -------------------------------------------------------------- updates

    def _table(self, agent: str, ds: str) -> dict[str, list]:
        a = self._agents.get(agent)
        if a is None:
            a = self._agents[agent] = {}
        tab = a.get(ds)
        if tab is None:
            tab = a[ds] = {}
        return tab

    def add(self, now: float, agent: str, ds: str, key: str, amount: float) -> None:
        """Add ``amount`` (bytes, frames...) seen at ``now`` (seconds) to a flow."""
        tab = self._table(agent, ds)
        self._bump(tab, now, key, amount / self.t)
        if len(tab) > self._trim_at:
            self._trim(tab, now, self.max_keys)

    def _bump(self, tab: dict, now: float, key: str, inc: float) -> None:
        e = tab.get(key)
        if e is None:
            tab[key] = [inc, now]
            return
        dt = now - e[1]
        if dt > 0:
            e[0] = e[0] * math.exp(-dt / self.t) + inc
            e[1] = now
        elif dt == 0:
            e[0] += inc
        else:  # late contribution: decay it to the entry's time instead of rewinding the entry
            e[0] += inc * math.exp(dt / self.t)

    def add_batch(
        self, now: float, agent: str, ds_list: Sequence[str], evaluated: Iterable[tuple[int, str, float]]
    ) -> None:
        """Add a whole batch: ``evaluated`` is ``CompiledFlow.evaluate()`` output and ``ds_list[i]`` the
        dataSource of sample ``i`` (see :func:`data_sources`). Contributions to one flow are summed first,
        so each flow is updated once per batch."""
        acc: dict[tuple[str, str], float] = {}
        get = acc.get
        for i, key, v in evaluated:
            k = (ds_list[i], key)
            acc[k] = get(k, 0.0) + v
        if not acc:
            return
        inv_t = 1.0 / self.t
        a = self._agents.get(agent)
        if a is None:
            a = self._agents[agent] = {}
        touched = set()
        for (ds, key), v in acc.items():
            tab = a.get(ds)
            if tab is None:
                tab = a[ds] = {}
            self._bump(tab, now, key, v * inv_t)
            touched.add(ds)
        for ds in touched:
            tab = a[ds]
            if len(tab) > self._trim_at:
                self._trim(tab, now, self.max_keys)

    # -------------------------------------------------------------- reads

    def _decayed(self, e: list, now: float) -> float:
        dt = now - e[1]
        return e[0] * math.exp(-dt / self.t) if dt > 0 else e[0]

    def value(self, now: float, agent: str, ds: str, key: str) -> float:
        e = self._agents.get(agent, {}).get(ds, {}).get(key)
        return self._decayed(e, now) if e is not None else 0.0

    def top(self, now: float, agent: str, ds: str) -> list[tuple[str, float]]:
        """The ``n`` largest flows of one data source, largest first, as ``(key, value)``."""
        tab = self._agents.get(agent, {}).get(ds)
        if not tab:
            return []
        t = self.t
        exp = math.exp
        vals = ((k, e[0] * exp(-(now - e[1]) / t) if now > e[1] else e[0]) for k, e in tab.items())
        return heapq.nlargest(self.n, vals, key=lambda kv: kv[1])

    def values(self, now: float, agent: str, ds: str) -> list[tuple[str, float]]:
        """Every tracked flow of one data source as ``(key, value)`` (unordered), e.g. for thresholds."""
        tab = self._agents.get(agent, {}).get(ds)
        if not tab:
            return []
        t = self.t
        exp = math.exp
        return [(k, e[0] * exp(-(now - e[1]) / t) if now > e[1] else e[0]) for k, e in tab.items()]

    def agents(self) -> list[str]:
        return [a for a, dss in self._agents.items() if any(dss.values())]

    def data_sources(self, agent: str) -> list[str]:
        return [ds for ds, tab in self._agents.get(agent, {}).items() if tab]

    def __len__(self) -> int:
        return sum(len(tab) for dss in self._agents.values() for tab in dss.values())

    # -------------------------------------------------------------- housekeeping

    def _trim(self, tab: dict, now: float, keep: int) -> int:
        if len(tab) <= keep:
            return 0
        t = self.t
        exp = math.exp
        ranked = sorted(
            tab.items(), key=lambda kv: kv[1][0] * exp(-(now - kv[1][1]) / t) if now > kv[1][1] else kv[1][0]
        )
        drop = len(tab) - keep
        for k, _ in ranked[:drop]:
            del tab[k]
        return drop

    def prune(self, now: float, min_value: float) -> int:
        """Drop entries whose value decayed below ``min_value`` (and empty data sources / agents), and trim
        every data source to ``max_keys``; returns how many entries were dropped."""
        dropped = 0
        t = self.t
        exp = math.exp
        for agent in list(self._agents):
            dss = self._agents[agent]
            for ds in list(dss):
                tab = dss[ds]
                dead = [
                    k for k, e in tab.items() if (e[0] * exp(-(now - e[1]) / t) if now > e[1] else e[0]) < min_value
                ]
                for k in dead:
                    del tab[k]
                dropped += len(dead) + self._trim(tab, now, self.max_keys)
                if not tab:
                    del dss[ds]
            if not dss:
                del self._agents[agent]
        return dropped

    def forget(self, agent: str) -> None:
        """Drop one agent's state (e.g. another worker owns it now)."""
        self._agents.pop(agent, None)

    remove_agent = forget

    # -------------------------------------------------------------- checkpointing

    def snapshot(self, agent: str) -> dict[str, Any]:
        """JSON-serialisable state of one agent: ``{"t": t, "data_sources": {ds: [[key, value, last], ...]}}``."""
        dss = self._agents.get(agent, {})
        return {
            "t": self.t,
            "data_sources": {ds: [[k, e[0], e[1]] for k, e in tab.items()] for ds, tab in dss.items() if tab},
        }

    def restore(self, agent: str, data: dict[str, Any], now: float) -> None:
        """Replace one agent's state with a :meth:`snapshot`. Entries keep the times they were saved
        at and decay lazily, as live ones do: a read at ``now`` sees them decayed to ``now``, and a
        worker catching up on the samples since the snapshot (read at its newest batch's time, before
        ``now``: processors/engine.py) sees them as they were then, not decayed by its restart's
        blank. ``now`` ranks the entries for the trim to ``max_keys``."""
        dss: dict[str, dict[str, list]] = {}
        for ds, rows in (data.get("data_sources") or {}).items():
            tab: dict[str, list] = {}
            for key, v, last in rows:
                v = float(v)
                last = float(last)
                if math.isfinite(v) and math.isfinite(last):
                    tab[str(key)] = [v, last]
            self._trim(tab, now, self.max_keys)
            if tab:
                dss[str(ds)] = tab
        if dss:
            self._agents[agent] = dss
        else:
            self._agents.pop(agent, None)
