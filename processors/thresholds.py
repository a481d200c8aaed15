"""Thresholds and events, with sFlow-RT's semantics.

A threshold watches a metric: a flow (its smoothed value per agent, data source and flow key)
or a counter metric (per agent and data source). When the value goes over the threshold an
event fires; the threshold then stays quiet for that agent and data source (and flow key, with
``byFlow``) until the value has been back at or under the threshold for ``timeout`` seconds
(hysteresis): then it re-arms. Without ``byFlow`` only the first flow over the threshold on a
data source raises an event.

That armed/disarmed state is part of an agent's checkpoint (:meth:`Thresholds.snapshot`), so a
worker that restarts or takes the agent over raises no event again for what is still over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from sflowpipe.settings import ThresholdDefinition


@dataclass(frozen=True)
class Event:
    eventID: int  # noqa: N815 (sFlow-RT's field names)
    thresholdID: str  # noqa: N815
    agent: str
    dataSource: str  # noqa: N815
    metric: str
    value: float
    threshold: float
    flowKey: str | None  # noqa: N815
    timestamp: int  # ms

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class EventIds:
    """Increasing event ids: microseconds of wall time, never repeating within a worker."""

    def __init__(self) -> None:
        self.last = 0

    def next(self, now: float) -> int:
        self.last = max(self.last + 1, int(now * 1e6))
        return self.last


class Threshold:
    """One threshold and the armed/disarmed state of what it watches."""

    def __init__(self, name: str, d: ThresholdDefinition) -> None:
        self.name = name
        self.d = d
        self.filter = {k: ({v} if isinstance(v, str) else set(v)) for k, v in (d.filter or {}).items()}
        # (agent, ds, key or None) -> time it went under (None while over)
        self.fired: dict[tuple, float | None] = {}
        self.last_event: dict[tuple, tuple[int, int]] = {}  # same key -> (eventID, timestamp ms)

    def accepts(self, agent: str, ds: str) -> bool:
        f = self.filter
        if not f:
            return True
        if "agent" in f and agent not in f["agent"]:
            return False
        if "dataSource" in f and ds not in f["dataSource"]:
            return False
        return True

    def check(self, now: float, agent: str, ds: str, values: Iterable[tuple[str | None, float]], ids: EventIds) -> list[Event]:
        """Values of one agent/data source: (flow key or None for counters, value)."""
        d = self.d
        events: list[Event] = []
        over_keys = set()
        for key, value in values:
            if value <= d.value:
                continue
            state_key = (agent, ds, key if d.by_flow else None)
            over_keys.add(state_key)
            if state_key in self.fired:
                self.fired[state_key] = None  # still over: stays disarmed
                continue
            self.fired[state_key] = None
            e = Event(ids.next(now), self.name, agent, ds, d.metric, value, d.value, key, int(now * 1000))
            self.last_event[state_key] = (e.eventID, e.timestamp)
            events.append(e)
        # re-arm what has stayed under for `timeout` seconds
        for state_key, under_since in list(self.fired.items()):
            if state_key[0] != agent or state_key[1] != ds or state_key in over_keys:
                continue
            if under_since is None:
                self.fired[state_key] = now
            elif now - under_since >= d.timeout:
                del self.fired[state_key]
                self.last_event.pop(state_key, None)
        return events

    def snapshot(self, agent: str) -> list[list]:
        """This agent's disarmed entries: ``[dataSource, flow key or None, under since or None, eventID, ms]``."""
        return [[k[1], k[2], under, *self.last_event.get(k, (0, 0))]
                for k, under in self.fired.items() if k[0] == agent]

    def restore(self, agent: str, rows: list[list]) -> None:
        for k in [k for k in self.fired if k[0] == agent]:
            del self.fired[k]
            self.last_event.pop(k, None)
        for ds, key, under, event_id, ms in rows:
            k = (agent, str(ds), None if key is None else str(key))
            self.fired[k] = None if under is None else float(under)
            if event_id:
                self.last_event[k] = (int(event_id), int(ms))


class Thresholds:
    """Owns every threshold; the engine hands it metric values each reporting interval."""

    def __init__(self) -> None:
        self.by_name: dict[str, Threshold] = {}
        self.ids = EventIds()

    def set(self, name: str, d: ThresholdDefinition | None) -> None:
        if d is None:
            self.by_name.pop(name, None)
        else:
            self.by_name[name] = Threshold(name, d)

    def snapshot(self, agent: str) -> dict:
        """JSON-serialisable threshold state of one agent: what is disarmed (over, or under since when),
        per threshold, and the last event id (ids stay increasing across a restart)."""
        return {"last_id": self.ids.last,
                "fired": {name: rows for name, t in self.by_name.items() if (rows := t.snapshot(agent))}}

    def restore(self, agent: str, state: dict) -> None:
        """Replace one agent's state with a :meth:`snapshot`; thresholds this worker does not define
        (deleted meanwhile) are skipped."""
        self.ids.last = max(self.ids.last, int(state.get("last_id") or 0))
        for name, t in self.by_name.items():
            t.restore(agent, (state.get("fired") or {}).get(name) or [])

    def forget(self, agent: str) -> None:
        for t in self.by_name.values():
            t.restore(agent, [])

    def watching(self, metric: str) -> list[Threshold]:
        return [t for t in self.by_name.values() if t.d.metric == metric]

    def check(self, metric: str, agent: str, ds: str, values: list[tuple[str | None, float]],
              now: float | None = None) -> list[Event]:
        now = time.time() if now is None else now
        events: list[Event] = []
        for t in self.by_name.values():
            if t.d.metric == metric and t.accepts(agent, ds):
                events += t.check(now, agent, ds, values, self.ids)
        return events
