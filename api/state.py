"""What the REST API serves, kept current from the topics: definitions, top flows, counter
metrics, events, ingester status and consumer lag.

``ApiState`` is written by one reader thread (api/reader.py) and read by the HTTP handlers; one
lock guards it. Top flows, counter metrics and interface names live in the Prometheus
exporter's ``ExporterState`` (the same merge and rendering as ``sflowpipe prometheus``).
Events are renumbered in the order this API reads them, so ``/events/json?eventID=N`` long-polls
see every event exactly once, whichever worker raised it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from sflowpipe.settings import ApiSettings
from sinks.prometheus import ExporterState

AGGREGATIONS = ("max", "min", "sum", "avg", "any")


def _dump(kind: str, d: Any) -> Any:
    """A typed definition as sFlow-RT's JSON."""
    if d is None:
        return None
    if hasattr(d, "model_dump"):
        return d.model_dump(by_alias=True, exclude_none=True)
    return d


class ApiState:
    """Owns the API's view of the pipeline."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.exporter = ExporterState(stale_seconds=max(settings.stale_s, 60.0))
        self.definitions: dict[str, dict[str, Any]] = {"flow": {}, "threshold": {}, "group": {}, "forwarding": {}}
        self.events: deque[dict] = deque(maxlen=settings.max_events)
        self.next_event_id = 1
        self.seen_events: set[tuple] = set()  # (processor eventID, thresholdID, agent, dataSource, flowKey)
        self.status: dict[str, list[dict]] = {}  # ingester -> its last two status messages
        self.lag: dict[str, int | None] = {}
        self.metric_seen: dict[str, float] = {}  # metric name -> last time (s)
        self.started = time.time()

    # ---------------------------------------------------------------- updates (reader thread)

    def define(self, kind: str, name: str, definition: Any) -> None:
        if kind not in self.definitions:
            return
        with self.lock:
            if definition is None:
                self.definitions[kind].pop(name, None)
            else:
                self.definitions[kind][name] = definition
        self.exporter.define(kind, name, definition)

    def add(self, stem: str, datum: dict) -> None:
        if stem == "event":
            self._add_event(datum)
            return
        self.exporter.add(stem, datum)
        if stem == "metrics":
            now = datum["timestamp"] / 1000.0
            with self.lock:
                for m in datum["metrics"]:
                    self.metric_seen[m["name"]] = max(now, self.metric_seen.get(m["name"], 0.0))

    def _add_event(self, e: dict) -> None:
        ident = (e["eventID"], e["thresholdID"], e["agent"], e["dataSource"], e.get("flowKey"))
        with self.lock:
            if ident in self.seen_events:  # a redelivered event (at-least-once) is shown once
                return
            if len(self.seen_events) > 4 * self.settings.max_events:
                self.seen_events = {(x["processorEventID"], x["thresholdID"], x["agent"], x["dataSource"],
                                     x.get("flowKey")) for x in self.events}
            self.seen_events.add(ident)
            event = dict(e)
            event["processorEventID"] = e["eventID"]
            event["eventID"] = self.next_event_id
            self.next_event_id += 1
            self.events.append(event)

    def add_status(self, status: dict) -> None:
        with self.lock:
            history = self.status.setdefault(status["ingester"], [])
            if history and status["time"] <= history[-1]["time"]:
                return
            history.append(status)
            del history[:-2]

    def set_lag(self, lag: dict[str, int | None]) -> None:
        with self.lock:
            self.lag = dict(lag)

    # ---------------------------------------------------------------- queries (HTTP handlers)

    def get_definitions(self, kind: str) -> dict[str, Any]:
        with self.lock:
            return {name: _dump(kind, d) for name, d in sorted(self.definitions[kind].items())}

    def get_definition(self, kind: str, name: str) -> Any:
        with self.lock:
            return _dump(kind, self.definitions[kind].get(name))

    def events_after(self, event_id: int, max_events: int, threshold_id: str | None) -> list[dict]:
        """Events newer than ``event_id``, newest first (sFlow-RT's order)."""
        with self.lock:
            out = []
            for e in reversed(self.events):
                if e["eventID"] <= event_id:
                    break
                if threshold_id is None or e["thresholdID"] == threshold_id:
                    out.append(e)
                    if len(out) >= max_events:
                        break
            return out

    def last_event_id(self) -> int:
        with self.lock:
            return self.next_event_id - 1

    def active_flows(self, agents: list[str] | None, name: str, max_flows: int, min_value: float,
                     agg_mode: str) -> list[dict]:
        ex = self.exporter
        since_ms = int((time.time() - self.settings.stale_s) * 1000)
        with ex.lock:
            return ex.flows.merged(name, agents, agg_mode, max_flows, min_value, since_ms)

    def metric_values(self, agents: list[str] | None, names: list[str] | None = None) -> list[dict]:
        """[{agent, dataSource, metricName, metricValue, lastUpdate(ms ago)}] of fresh metrics."""
        ex = self.exporter
        now = time.time()
        cutoff = now - max(self.settings.stale_s, 60.0)
        with ex.lock:
            rows = [{"agent": a, "dataSource": ds, "metricName": n, "metricValue": v,
                     "lastUpdate": int((now - ts) * 1000)}
                    for (a, ds, n), (v, ts) in ex.metrics.items()
                    if ts >= cutoff and (agents is None or a in agents) and (names is None or n in names)]
            for r in rows:
                ifname = ex.names.get((r["agent"], r["dataSource"], "ifname"))
                if ifname:
                    r["ifName"] = ifname[0]
        rows.sort(key=lambda r: (r["agent"], _ds_order(r["dataSource"]), r["metricName"]))
        return rows

    def metric(self, agents: list[str] | None, specs: list[str]) -> list[dict]:
        """sFlow-RT's /metric/{agent}/{metric}/json: each metric aggregated over agents and data
        sources (max: by default; min:, sum:, avg:, any:)."""
        out = []
        for spec in specs:
            agg, _, name = spec.rpartition(":")
            agg = agg or "max"
            if agg not in AGGREGATIONS:
                raise ValueError(f"{spec}: aggregation must be one of {', '.join(AGGREGATIONS)}")
            rows = self.metric_values(agents, [name])
            result: dict[str, Any] = {"metricName": spec, "metricN": len(rows)}
            if rows:
                values = [r["metricValue"] for r in rows]
                pick = max(rows, key=lambda r: r["metricValue"]) if agg != "min" else \
                    min(rows, key=lambda r: r["metricValue"])
                value = {"max": max(values), "min": min(values), "sum": sum(values),
                         "avg": sum(values) / len(values), "any": values[0]}[agg]
                result.update(agent=pick["agent"], dataSource=pick["dataSource"], metricValue=value,
                              lastUpdate=pick["lastUpdate"],
                              lastUpdateMax=max(r["lastUpdate"] for r in rows),
                              lastUpdateMin=min(r["lastUpdate"] for r in rows))
            out.append(result)
        return out

    def metric_names(self) -> dict[str, int]:
        now = time.time()
        with self.lock:
            return {n: int((now - ts) * 1000) for n, ts in sorted(self.metric_seen.items())
                    if now - ts < max(self.settings.stale_s, 60.0)}

    def agents(self) -> dict[str, dict]:
        """sFlow-RT's /agents/json, from the ingesters' status and the counter metrics."""
        now_ms = time.time() * 1000
        out: dict[str, dict] = {}
        with self.lock:
            statuses = [h[-1] for h in self.status.values()]
        for st in statuses:
            if now_ms - st["time"] > 60_000:
                continue
            for agent, c in st.get("agents", {}).items():
                a = out.setdefault(agent, {"sFlowDatagramsReceived": 0, "sFlowDatagramsLost": 0,
                                           "lastSeen": int(now_ms - st["time"]), "ingesters": []})
                a["sFlowDatagramsReceived"] += c.get("datagrams", 0)
                a["sFlowDatagramsLost"] += c.get("lost", 0)
                a["lastSeen"] = min(a["lastSeen"], int(now_ms - st["time"]))
                a["ingesters"].append(st["ingester"])
        for r in self.metric_values(None):
            a = out.setdefault(r["agent"], {"sFlowDatagramsReceived": 0, "sFlowDatagramsLost": 0,
                                            "lastSeen": r["lastUpdate"], "ingesters": []})
            a.setdefault("dataSources", set()).add(r["dataSource"])
        for a in out.values():
            a["dataSources"] = sorted(a.get("dataSources", ()), key=_ds_order)
        return dict(sorted(out.items()))

    def pipeline_status(self) -> dict:
        """The status page: per ingester rates and losses, totals, consumer lag per sink."""
        now_ms = time.time() * 1000
        with self.lock:
            histories = {k: list(v) for k, v in self.status.items()}
            lag = dict(self.lag)
        ingesters = []
        totals = {"datagrams_per_s": 0.0, "samples_per_s": 0.0, "datagrams": 0, "malformed": 0,
                  "kernel_drops": 0, "kafka_dropped": 0, "spill_pending": 0}
        for ident, h in sorted(histories.items()):
            last = h[-1]
            alive = now_ms - last["time"] < 30_000
            dps = sps = 0.0
            if len(h) == 2 and alive:
                dt = (h[1]["time"] - h[0]["time"]) / 1000.0
                if dt > 0:
                    dps = (h[1]["datagrams"] - h[0]["datagrams"]) / dt
                    sps = (sum(h[1]["samples"].values()) - sum(h[0]["samples"].values())) / dt
            row = {"ingester": ident, "listen": last.get("listen"), "alive": alive,
                   "lastSeen": int(now_ms - last["time"]), "datagrams_per_s": round(dps, 1),
                   "samples_per_s": round(sps, 1), "agents": len(last.get("agents", {}))}
            for k in ("datagrams", "malformed", "kernel_drops", "kafka_dropped", "spill_pending"):
                row[k] = last.get(k, 0)
                totals[k] += last.get(k, 0)
            totals["datagrams_per_s"] += dps
            totals["samples_per_s"] += sps
            ingesters.append(row)
        totals["datagrams_per_s"] = round(totals["datagrams_per_s"], 1)
        totals["samples_per_s"] = round(totals["samples_per_s"], 1)
        return {"time": int(now_ms), "uptime_s": int(time.time() - self.started), "ingesters": ingesters,
                "totals": totals, "agents": len(self.agents()), "sinks": lag,
                "events": self.last_event_id(),
                "flows": sorted(self.get_definitions("flow")), "thresholds": sorted(self.get_definitions("threshold"))}


def _ds_order(ds: str):
    head, _, tail = ds.partition(".")
    try:
        return (0, int(head), int(tail or 0))
    except ValueError:
        return (1, ds, 0)
