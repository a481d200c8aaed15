"""Flow logs: one record per flow, as sFlow-RT logs the flows of a definition with ``log: true``.

A flow is one (agent, dataSource, flow key) of a flow definition. Its samples add
``frame_length * sampling_rate`` bytes and ``sampling_rate`` frames (the sampled traffic scaled
back up). A record is emitted:

* when the flow ends: no sample matched it for ``idle_timeout_s`` seconds (sampled flows have
  gaps between samples, so the engine uses ``max(2 * t, 10)`` s: a flow whose smoothed value has
  decayed to e^-2 of its level is over, and never sooner than 10 s; see :func:`idle_timeout`);
* when it is still active ``active_timeout`` seconds after its interval started (sFlow-RT's
  ``activeTimeout``, default 60 s): the record covers that interval, and a new interval starts
  with the flow's next sample;
* with ``flow_start`` (sFlow-RT's ``flowStart``), instead, once when the flow starts (its first
  batch), and never again until it ended (idle) and starts anew; no interval or end records.

Records: ``flow`` (definition name), ``flowKeys`` (key values joined by the definition's ``fs``),
``keys`` (the key values), ``agent``, ``dataSource``, ``bytes``, ``frames``, ``start`` / ``end``
(first and last sample of the interval, ms), ``reason`` (``start``, ``active`` or ``end``) and
``timestamp`` (when the record was emitted, ms). Times are the processor's clock at the batch
(as the smoothed flow values use), not the samples' receive times.

Memory is bounded: at most ``max_entries`` flows are tracked (a new flow past that is not logged;
``dropped`` counts them) and at most ``max_pending`` records wait for :meth:`FlowLog.due`
(``dropped_records`` counts the rest).
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["FlowLog", "idle_timeout"]


def idle_timeout(t: float) -> float:
    """The idle timeout of a flow definition with time constant ``t``: ``max(2 * t, 10)`` seconds."""
    return max(2.0 * float(t), 10.0)


# entry fields
_START, _LAST, _BYTES, _FRAMES = 0, 1, 2, 3  # interval start (None: no sample since the last flush)


class FlowLog:
    """Open flows of one flow definition, keyed by (agent, dataSource, key values)."""

    def __init__(self, name: str, fs: str = ",", idle_timeout_s: float = 10.0, active_timeout_s: float = 60.0,
                 flow_start: bool = False, max_entries: int = 100_000, max_pending: int | None = None) -> None:
        if not idle_timeout_s > 0 or not active_timeout_s > 0:
            raise ValueError("timeouts must be positive")
        self.name = name
        self.fs = fs
        self.idle_timeout_s = float(idle_timeout_s)
        self.active_timeout_s = float(active_timeout_s)
        self.flow_start = bool(flow_start)
        self.max_entries = int(max_entries)
        self.max_pending = int(max_pending) if max_pending is not None else self.max_entries
        # agent -> (dataSource, key values) -> [interval start, last seen, bytes, frames]
        self._agents: dict[str, dict[tuple[str, tuple], list]] = {}
        self._count = 0
        self._pending: list[dict] = []
        self.dropped = 0  # new flows not tracked (max_entries)
        self.dropped_records = 0  # records not kept (max_pending)

    def __len__(self) -> int:
        return self._count

    # -------------------------------------------------------------- input

    def add(self, now: float, agent: str, data_sources: Sequence[str], keys: Sequence[Sequence[str]],
            bytes: Sequence[float], frames: Sequence[float]) -> None:
        """Account one batch column-wise: sample ``i`` of flow ``keys[i]`` (its key values) at
        ``data_sources[i]`` carried ``bytes[i]`` bytes and ``frames[i]`` frames (already scaled)."""
        acc: dict[tuple[str, tuple], list] = {}
        for ds, k, b, f in zip(data_sources, keys, bytes, frames):
            fk = (ds, tuple(k))
            a = acc.get(fk)
            if a is None:
                acc[fk] = [b or 0, f or 0]
            else:
                a[0] += b or 0
                a[1] += f or 0
        if not acc:
            return
        tab = self._agents.get(agent)
        if tab is None:
            tab = self._agents[agent] = {}
        started = []
        for fk, (b, f) in acc.items():
            e = tab.get(fk)
            if e is None:
                if self._count >= self.max_entries:
                    self.dropped += 1
                    continue
                e = tab[fk] = [now, now, 0, 0]
                self._count += 1
                if self.flow_start:
                    started.append(fk)
            elif e[_START] is None:
                e[_START] = now
            if now > e[_LAST]:
                e[_LAST] = now
            e[_BYTES] += b
            e[_FRAMES] += f
        if not tab:
            del self._agents[agent]
        for fk in started:
            self._emit(now, agent, fk, tab[fk], "start")

    # -------------------------------------------------------------- output

    def _emit(self, now: float, agent: str, fk: tuple[str, tuple], e: list, reason: str) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped_records += 1
            return
        ds, values = fk
        self._pending.append({
            "flow": self.name, "flowKeys": self.fs.join(values), "keys": list(values), "agent": agent,
            "dataSource": ds, "bytes": int(round(e[_BYTES])), "frames": int(round(e[_FRAMES])),
            "start": int(e[_START] * 1000), "end": int(e[_LAST] * 1000), "reason": reason,
            "timestamp": int(now * 1000)})

    def due(self, now: float) -> list[dict]:
        """The records to emit at ``now``: starts (``flow_start``), or ended (idle) and active-timeout
        flows; ended flows are forgotten."""
        idle, active, start_only = self.idle_timeout_s, self.active_timeout_s, self.flow_start
        for agent in list(self._agents):
            tab = self._agents[agent]
            ended = []
            for fk, e in tab.items():
                if now - e[_LAST] >= idle:
                    ended.append(fk)
                    if not start_only and e[_START] is not None:
                        self._emit(now, agent, fk, e, "end")
                elif not start_only and e[_START] is not None and now - e[_START] >= active:
                    self._emit(now, agent, fk, e, "active")
                    e[_START], e[_BYTES], e[_FRAMES] = None, 0, 0
            for fk in ended:
                del tab[fk]
            self._count -= len(ended)
            if not tab:
                del self._agents[agent]
        out, self._pending = self._pending, []
        return out

    def flush(self, now: float) -> list[dict]:
        """Every open flow as ended now (e.g. its definition changed or was deleted), then forgotten."""
        if not self.flow_start:
            for agent, tab in self._agents.items():
                for fk, e in tab.items():
                    if e[_START] is not None:
                        self._emit(now, agent, fk, e, "end")
        self._agents.clear()
        self._count = 0
        out, self._pending = self._pending, []
        return out

    # -------------------------------------------------------------- agents and checkpoints

    def agents(self) -> list[str]:
        return list(self._agents)

    def forget(self, agent: str) -> None:
        """Drop one agent's open flows (another worker owns it now); its pending records stay."""
        tab = self._agents.pop(agent, None)
        if tab:
            self._count -= len(tab)

    def snapshot(self, agent: str) -> dict[str, Any]:
        """JSON-serialisable open flows of one agent: ``{"flows": [[ds, [values], start, last, bytes, frames]]}``."""
        tab = self._agents.get(agent) or {}
        return {"flows": [[ds, list(values), *e] for (ds, values), e in tab.items()]}

    def restore(self, agent: str, data: dict[str, Any]) -> None:
        """Replace one agent's open flows with a :meth:`snapshot` (their times kept: a flow that was idle
        meanwhile ends at the next :meth:`due`)."""
        self.forget(agent)
        tab: dict[tuple[str, tuple], list] = {}
        for row in data.get("flows") or ():
            try:
                ds, values, start, last, b, f = row
                fk = (str(ds), tuple(str(v) for v in values))
                e = [None if start is None else float(start), float(last), float(b), float(f)]
            except (TypeError, ValueError):
                continue
            if self._count + len(tab) >= self.max_entries:
                self.dropped += 1
                continue
            tab[fk] = e
        if tab:
            self._agents[agent] = tab
            self._count += len(tab)
