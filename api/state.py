"""What the REST API serves, kept current from the topics: definitions, top flows, counter
metrics, events, logged flows, flow keys, the components' status and consumer lag.

``ApiState`` is written by one reader thread (api/reader.py) and read by the HTTP handlers; one
lock guards it. Top flows, counter metrics and interface names live in the shared read model
``ExporterState`` (sflowpipe/readmodels/exporter.py: the same merge and rendering as ``sflowpipe
prometheus``).
Events and logged flows keep ids every API instance agrees on (their topic position, see
api/topiclog.py), so ``/events/json?eventID=N`` and ``/flows/json?flowID=N`` long-polls see every
record exactly once, whichever worker raised it and whichever API instance answers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from api.aggregate import parse_sort, split_spec, summarize
from api.topiclog import TopicLog
from sflowpipe import __version__
from sflowpipe.config_plane import KINDS
from sflowpipe.settings import ApiSettings
from sflowpipe.names import AGENT_COUNTERS
from sflowpipe.readmodels.exporter import ExporterState

COMPONENT_FORGET_MS = 300_000  # a processor or sink silent this long is no longer listed (a restarted sink is new)
TOPIC_KINDS = ("processor", "sink", "control")  # status-topic messages kept per instance (sflowpipe/status.py)
FLOWKEYS_ACTIVE_MS = 300_000  # a flow key unseen this long is no longer listed by /flowkeys/json
TEXT_METRICS = {"ifname": "ifname", "host_name": "host"}  # string metrics /dump and /table can show


def log_value(definition: Any, record: dict) -> float:
    """A logged flow's value in its definition's unit (frames or bytes over the flow; bps: bits)."""
    if record.get("value") is not None:
        return record["value"]
    unit = getattr(definition, "value", "bytes")
    if unit in ("frames", "fps"):
        return record["frames"]
    return record["bytes"] * 8 if unit == "bps" else record["bytes"]


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
        self.written: dict[tuple[str, str], tuple[int, int]] = {}  # see define()
        self.definitions: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.events = TopicLog("eventID", settings.max_events)
        self.flow_logs = TopicLog("flowID", settings.max_events)
        self.flowkeys: dict[str, dict] = {}  # worker -> its last flowkeys status message
        self.status: dict[str, list[dict]] = {}  # ingester -> its last two status messages
        # kind -> instance -> its last two status messages (sflowpipe/status.py): TOPIC_KINDS from
        # the status topic, "api" this API's own numbers (api/server.py adds them every 2 s)
        self.components: dict[str, dict[str, list[dict]]] = {kind: {} for kind in (*TOPIC_KINDS, "api")}
        self.lag: dict[str, int | None] = {}
        self.metric_seen: dict[str, float] = {}  # metric name -> last time (s)
        self.started = time.time()

    # ---------------------------------------------------------------- updates (reader thread)

    def define(self, kind: str, name: str, definition: Any, written: tuple[int, int] | None = None) -> None:
        """Apply a definition (None: delete). ``written``: this API wrote it at (partition, offset)
        of the config topic; messages before that one for the same name are then older than what
        is shown and are skipped when the config reader reaches them (``older``)."""
        if kind not in self.definitions:
            return
        with self.lock:
            if definition is None:
                self.definitions[kind].pop(name, None)
            else:
                self.definitions[kind][name] = definition
            if written is not None:
                self.written[(kind, name)] = written
        self.exporter.define(kind, name, definition)

    def older(self, kind: str, name: str, partition: int, offset: int) -> bool:
        """Whether a config-topic message precedes this API's own latest write of the same name."""
        with self.lock:
            mine = self.written.get((kind, name))
            if mine is None or partition != mine[0]:
                return False
            if offset < mine[1]:
                return True
            del self.written[(kind, name)]  # the reader has reached our write: back to the topic's order
            return False

    def add(self, stem: str, datum: dict, partition: int = 0, offset: int | None = None) -> None:
        """One decoded message; ``partition``/``offset``: where it was on its topic (the ids of
        events and logged flows)."""
        if stem in ("event", "flow_log"):
            if offset is None:
                raise ValueError(f"{stem}: its id is its topic position: offset required")
            with self.lock:
                if stem == "event":
                    content = (datum["eventID"], datum["thresholdID"], datum["agent"], datum["dataSource"],
                               datum.get("flowKey"))
                    self.events.add({**datum, "processorEventID": datum["eventID"]}, partition, offset, content)
                else:
                    self._add_flow_log(datum, partition, offset)
            return
        self.exporter.add(stem, datum)
        if stem == "metrics":
            now = datum["timestamp"] / 1000.0
            with self.lock:
                for m in datum["metrics"]:
                    self.metric_seen[m["name"]] = max(now, self.metric_seen.get(m["name"], 0.0))

    def _add_flow_log(self, r: dict, partition: int, offset: int) -> None:
        """sFlow-RT's logged flow record; value in the definition's unit (caller holds the lock)."""
        content = (r["flow"], r["agent"], r["dataSource"], r["flowKeys"], r["start"], r["end"], r["reason"])
        record = {"name": r["flow"], "agent": r["agent"], "dataSource": r["dataSource"], "flowKeys": r["flowKeys"],
                  "value": log_value(self.definitions["flow"].get(r["flow"]), r), "start": r["start"],
                  "end": r["end"]}
        self.flow_logs.add(record, partition, offset, content)

    def status_message(self, message: dict) -> None:
        """A status-topic message: ``kind`` says whose (ingester when absent, processor, sink,
        control, or flowkeys; other kinds are not the API's)."""
        kind = message.get("kind", "ingester")
        if kind == "ingester":
            self.add_status(message)
        elif kind in TOPIC_KINDS:
            self.add_component(kind, message)
        elif kind == "flowkeys":
            with self.lock:
                old = self.flowkeys.get(message["worker"])
                if old is None or message["time"] >= old["time"]:
                    self.flowkeys[message["worker"]] = message

    def add_status(self, status: dict) -> None:
        with self.lock:
            history = self.status.setdefault(status["ingester"], [])
            if history and status["time"] <= history[-1]["time"]:
                return
            history.append(status)
            del history[:-2]

    def add_component(self, kind: str, status: dict) -> None:
        """A processor worker's, a sink's, a control service's or this API's status: kept with its
        previous one (rates), the silent forgotten."""
        with self.lock:
            instances = self.components[kind]
            history = instances.setdefault(status["instance"], [])
            if history and status["time"] <= history[-1]["time"]:
                return
            history.append(status)
            del history[:-2]
            cutoff = time.time() * 1000 - COMPONENT_FORGET_MS  # history read at start included
            for ident in [i for i, h in instances.items() if h[-1]["time"] < cutoff]:
                del instances[ident]

    def live_components(self, kind: str, max_age_ms: float = 60_000) -> list[dict]:
        """Each instance's last status, of those heard from within ``max_age_ms``."""
        now_ms = time.time() * 1000
        with self.lock:
            return [h[-1] for h in self.components[kind].values() if now_ms - h[-1]["time"] <= max_age_ms]

    def component_rows(self, kind: str, rate_field: str | None) -> list[dict]:
        """The status page's processors, sinks, controls or API table: each instance's numbers,
        ``rate_field`` per second over its last two messages (``per_s``, when named), mean flush
        or checkpoint time in ms."""
        now_ms = time.time() * 1000
        with self.lock:
            histories = {k: list(v) for k, v in self.components[kind].items()}
        rows = []
        for ident, h in sorted(histories.items()):
            last = h[-1]
            alive = now_ms - last["time"] < 30_000
            row = {k: v for k, v in last.items() if k not in ("kind", "time")}
            row.update(alive=alive, lastSeen=int(now_ms - last["time"]))
            if rate_field is not None:
                rate = 0.0
                if len(h) == 2 and alive and h[1]["time"] > h[0]["time"]:
                    dt = (h[1]["time"] - h[0]["time"]) / 1000.0
                    rate = (h[1].get(rate_field, 0) - h[0].get(rate_field, 0)) / dt
                row["per_s"] = round(max(rate, 0.0), 1)
            for total, count, mean in (("flush_seconds", "flushes", "flush_ms"),
                                       ("checkpoint_seconds", "checkpoints", "checkpoint_ms")):
                if count in last:
                    row[mean] = round(1000 * last[total] / last[count], 1) if last[count] else 0.0
            rows.append(row)
        return rows

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
        """Events after ``event_id``, newest first (sFlow-RT's order)."""
        with self.lock:
            return self.events.after(event_id, max_events,
                                     lambda e: threshold_id is None or e["thresholdID"] == threshold_id)

    def flows_after(self, after: int, max_flows: int, name: str | None) -> list[dict]:
        """Logged flows after flowID ``after``, newest first (sFlow-RT's /flows/json)."""
        with self.lock:
            return self.flow_logs.after(after, max_flows, lambda r: name is None or r["name"] == name)

    def flow_keys(self) -> dict[str, int]:
        """sFlow-RT's /flowkeys/json: every flow key the workers saw lately, ms since last seen
        (workers merged by the latest sighting)."""
        now_ms = int(time.time() * 1000)
        seen: dict[str, int] = {}
        with self.lock:
            for m in self.flowkeys.values():
                for key, last in m.get("keys", {}).items():
                    if last > seen.get(key, 0):
                        seen[key] = last
        return {k: max(0, now_ms - t) for k, t in sorted(seen.items()) if now_ms - t <= FLOWKEYS_ACTIVE_MS}

    def events_read(self) -> int:
        with self.lock:
            return self.events.read

    def active_flows(self, agents: list[str] | None, name: str, max_flows: int, min_value: float,
                     agg_mode: str) -> list[dict]:
        ex = self.exporter
        since_ms = int((time.time() - self.settings.stale_s) * 1000)
        with ex.lock:
            return ex.flows.merged(name, agents, agg_mode, max_flows, min_value, since_ms)

    def metric_values(self, agents: list[str] | None, names: list[str] | None = None,
                      text: bool = False) -> list[dict]:
        """[{agent, dataSource, metricName, metricValue, lastUpdate(ms ago)}] of fresh metrics: counter
        metrics and flow metrics (a flow's value at a data source is its largest flow's, with
        ``topKeys``). A name may be ``DATASOURCE.NAME`` (sFlow-RT's ``2.ifinoctets``, ``3.tcp``);
        ``text`` adds the string metrics ``ifname`` and ``host_name`` when they are named."""
        wanted = None if names is None else [self._split_ds(n) for n in names]
        plain = None if wanted is None else {n for _, n in wanted}
        ex = self.exporter
        now = time.time()
        cutoff = now - max(self.settings.stale_s, 60.0)
        with ex.lock:
            rows = [{"agent": a, "dataSource": ds, "metricName": n, "metricValue": v,
                     "lastUpdate": int((now - ts) * 1000)}
                    for (a, ds, n), (v, ts) in ex.metrics.items()
                    if ts >= cutoff and (agents is None or a in agents) and (plain is None or n in plain)]
            for r in rows:
                ifname = ex.names.get((r["agent"], r["dataSource"], "ifname"))
                if ifname:
                    r["ifName"] = ifname[0]
            rows += self._flow_rows(agents, plain, now)
            if text and plain:
                rows += [{"agent": a, "dataSource": ds, "metricName": n, "metricValue": v,
                          "lastUpdate": int((now - ts) * 1000)}
                         for n, label in TEXT_METRICS.items() if n in plain
                         for (a, ds, lab), (v, ts) in ex.names.items()
                         if lab == label and (agents is None or a in agents)]
        if wanted is not None:
            rows = [r for r in rows if (r["dataSource"], r["metricName"]) in wanted or
                    (None, r["metricName"]) in wanted]
        rows.sort(key=lambda r: (r["agent"], _ds_order(r["dataSource"]), r["metricName"]))
        return rows

    def _flow_rows(self, agents: list[str] | None, names: set[str] | None, now: float) -> list[dict]:
        """Flow metrics from the workers' latest top flows (caller holds the exporter lock)."""
        since_ms = int((now - self.settings.stale_s) * 1000)
        rows = []
        for (flow, agent), m in self.exporter.flows.latest.items():
            if (names is not None and flow not in names) or (agents is not None and agent not in agents) \
                    or m["timestamp"] < since_ms:
                continue
            age = max(0, int(now * 1000) - m["timestamp"])
            by_ds: dict[str, list[dict]] = {}
            for e in m["flows"]:
                by_ds.setdefault(e["dataSource"], []).append({"key": e["key"], "value": e["value"], "lastUpdate": age})
            for ds, keys in by_ds.items():
                keys.sort(key=lambda k: -k["value"])
                rows.append({"agent": agent, "dataSource": ds, "metricName": flow, "metricValue": keys[0]["value"],
                             "lastUpdate": age, "topKeys": keys})
        return rows

    def _split_ds(self, name: str) -> tuple[str | None, str]:
        """``"2.1.load_one"`` -> ``("2.1", "load_one")``; a known metric or flow name stays whole."""
        ds, dot, base = name.rpartition(".")
        if not dot or not ds or name in self.definitions["flow"] or name in self.metric_seen:
            return None, name
        return ds, base

    def metric(self, agents: list[str] | None, specs: list[str]) -> list[dict]:
        """sFlow-RT's /metric/{agent}/{metric}/json: each metric summarized over agents and data
        sources (api/aggregate.py: max by default, min sum avg var sdev med q1 q2 q3 iqr any)."""
        parsed = [split_spec(spec) for spec in specs]  # every prefix checked before any work
        return [summarize(spec, agg, self.metric_values(agents, [name]))
                for spec, (agg, name) in zip(specs, parsed)]

    def table(self, agents: list[str] | None, specs: list[str]) -> list[list[dict]]:
        """sFlow-RT's /table/{agent}/{metric}/json: one row per (agent, data source) that has every
        metric, one cell per metric; ``sort:NAME:N`` orders by NAME (N < 0: largest first) and keeps |N|."""
        sort_by, limit, columns = None, None, []
        for spec in specs:
            if spec.startswith("sort:"):
                sort_by, limit = parse_sort(spec)
                columns.append(sort_by)
            else:
                columns.append(spec)
        cells: dict[tuple[str, str], dict[str, dict]] = {}
        for r in self.metric_values(agents, columns, text=True):
            cell = {k: r[k] for k in ("agent", "dataSource", "metricName", "metricValue", "lastUpdate")}
            cells.setdefault((r["agent"], r["dataSource"]), {})[r["metricName"]] = cell
        names = [self._split_ds(c)[1] for c in columns]
        rows = [[by_name[n] for n in names] for by_name in cells.values() if all(n in by_name for n in names)]
        if sort_by is not None:
            i = columns.index(sort_by)
            rows.sort(key=lambda row: row[i]["metricValue"], reverse=limit is not None and limit < 0)
            if limit is not None:
                rows = rows[:abs(limit)]
        return rows

    def metric_names(self) -> dict[str, int]:
        """sFlow-RT's /metrics/json: counter and flow metric names, ms since last seen."""
        now = time.time()
        with self.lock:
            out = {n: int((now - ts) * 1000) for n, ts in self.metric_seen.items()
                   if now - ts < max(self.settings.stale_s, 60.0)}
        with self.exporter.lock:
            for (flow, _), m in self.exporter.flows.latest.items():
                age = max(0, int(now * 1000) - m["timestamp"])
                if age < self.settings.stale_s * 1000:
                    out[flow] = min(age, out.get(flow, age))
        return dict(sorted(out.items()))

    def _live_statuses(self, max_age_ms: float | None = 60_000) -> list[dict]:
        now_ms = time.time() * 1000
        with self.lock:
            last = [h[-1] for h in self.status.values()]
        return [st for st in last if max_age_ms is None or now_ms - st["time"] <= max_age_ms]

    def agents(self) -> dict[str, dict]:
        """sFlow-RT's /agents/json: each agent's session counters summed over the ingesters that
        receive it (ingest/agents.py), its data sources from the counter metrics."""
        now_ms = time.time() * 1000
        out: dict[str, dict] = {}
        for st in self._live_statuses():
            age = int(now_ms - st["time"])
            for agent, c in st.get("agents", {}).items():
                a = out.setdefault(agent, dict.fromkeys(AGENT_COUNTERS, 0) | {
                    "sFlowDatagramSource": [], "lastSeen": None, "firstSeen": 0, "ingesters": []})
                for k in AGENT_COUNTERS:
                    a[k] += c.get(k, 0)
                # ingesters older than the per-agent counters sent datagrams and lost only
                if "sFlowDatagramsReceived" not in c:
                    a["sFlowDatagramsReceived"] += c.get("datagrams", 0)
                    a["sFlowDatagramsLost"] += c.get("lost", 0)
                a["sFlowDatagramSource"] = sorted(set(a["sFlowDatagramSource"]) | set(c.get("sFlowDatagramSource", ())))
                last = c.get("lastSeen", 0) + age
                a["lastSeen"] = last if a["lastSeen"] is None else min(a["lastSeen"], last)
                a["firstSeen"] = max(a["firstSeen"], c.get("firstSeen", 0) + age)
                for k in ("sFlowFlowDatasources", "sFlowCounterDatasources"):  # one agent: counted by one ingester
                    a[k] = max(a.get(k, 0), c.get(k, 0))
                if "uptime" in c:
                    a["uptime"] = c["uptime"]
                a["ingesters"].append(st["ingester"])
        for r in self.metric_values(None):
            a = out.setdefault(r["agent"], dict.fromkeys(AGENT_COUNTERS, 0) | {
                "sFlowDatagramSource": [], "lastSeen": r["lastUpdate"], "firstSeen": r["lastUpdate"], "ingesters": [],
                "sFlowFlowDatasources": 0, "sFlowCounterDatasources": 0})
            a.setdefault("dataSources", set()).add(r["dataSource"])
        for a in out.values():
            a["dataSources"] = sorted(a.get("dataSources", ()), key=_ds_order)
        return dict(sorted(out.items()))

    def analyzer(self, api: dict | None = None) -> dict[str, Any]:
        """sFlow-RT's /analyzer/json in the pipeline's terms: what every ingester received and
        dropped (summed over their last status), events raised and flows logged; the processors',
        sinks' and controls' numbers; ``api``: this API's own status (read from its registry now)."""
        statuses = self._live_statuses(None)
        total = {k: sum(st.get(k, 0) for st in statuses) for k in
                 ("datagrams", "bytes", "malformed", "unsupported_version", "kernel_drops", "kafka_dropped")}
        samples = {k: sum(st.get("samples", {}).get(k, 0) for st in statuses) for k in ("flow", "counters", "discards")}
        agents = set()
        for st in self._live_statuses():
            agents.update(st.get("agents", {}))
        with self.lock:
            events, flows = self.events.read, self.flow_logs.read
        procs, sinks = self.live_components("processor"), self.live_components("sink")
        controls = self.live_components("control")

        def summed(rows: list[dict], field: str) -> int:
            return sum(int(r.get(field, 0)) for r in rows)

        out = {"version": __version__, "uptime": int((time.time() - self.started) * 1000),
                "sFlowAgents": len(agents), "sFlowDatagramsReceived": total["datagrams"],
                "sFlowBytesReceived": total["bytes"], "sFlowFlowSamples": samples["flow"],
                "sFlowCounterSamples": samples["counters"], "sFlowDiscardSamples": samples["discards"],
                "sFlowDatagramsDiscarded": total["kernel_drops"] + total["kafka_dropped"],
                "sFlowParseErrors": total["malformed"] - total["unsupported_version"],
                "sFlowUnsupportedVersion": total["unsupported_version"],
                "eventsGenerated": events, "flowsGenerated": flows,
                "ingesters": len(self._live_statuses()), "availableProcessors": os.cpu_count() or 1,
                # sflowpipe's own (sFlow-RT has no such fields): the processor workers' and sinks'
                # counters summed over the instances heard from in the last minute (sflowpipe/status.py)
                "processorWorkers": len(procs), "processorSamples": summed(procs, "samples"),
                "processorBatches": summed(procs, "batches"), "processorLag": summed(procs, "lag"),
                "processorRebalances": summed(procs, "rebalances"),
                "processorDefinitionsRejected": summed(procs, "definitions_rejected"),
                "processorEventsRaised": summed(procs, "events"),
                "sinkInstances": len(sinks), "sinkRecordsWritten": summed(sinks, "records_written"),
                "sinkFlushRetries": summed(sinks, "flush_retries"), "sinkDeadLetters": summed(sinks, "dead_letters"),
                "sinkDuplicatesSkipped": summed(sinks, "duplicates_skipped"), "sinkLag": summed(sinks, "lag"),
                "controlInstances": len(controls), "controlActive": summed(controls, "active"),
                "controlApplied": summed(controls, "applied"), "controlReleased": summed(controls, "released"),
                "controlRefused": summed(controls, "refused"), "controlFailed": summed(controls, "failed")}
        if api is not None:  # this instance's own (each API instance answers with its own)
            out.update(apiRequests=api["requests"], apiUnauthorized=api["unauthorized"],
                       apiLongPollsOpen=api["long_polls_open"])
        return out

    def license(self) -> dict[str, Any]:
        """sFlow-RT's /license/json shape; sflowpipe has no license key, rate limit or expiry."""
        a = self.analyzer()
        return {"analyzer": {"host": socket.gethostname(), "version": __version__,
                             "sFlowDatagramsReceived": a["sFlowDatagramsReceived"]},
                "license": {"product": "sflowpipe", "license": "Apache-2.0", "account": "", "host": "",
                            "host_ok": True, "max_bps": 0, "max_bps_ok": True, "expires": 0, "expires_ok": True}}

    def pipeline_status(self) -> dict:
        """The status page: per ingester rates and losses, totals, consumer lag per sink group (the
        API's own probe), per processor worker, sink instance and control service their own
        numbers, and this API's."""
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
                "processors": self.component_rows("processor", "samples"),
                "sink_instances": self.component_rows("sink", "records_written"),
                "controls": self.component_rows("control", None),
                "api": self.component_rows("api", "requests"),
                "events": self.events_read(),
                "flows": sorted(self.get_definitions("flow")), "thresholds": sorted(self.get_definitions("threshold"))}


def _ds_order(ds: str):
    head, _, tail = ds.partition(".")
    try:
        return (0, int(head), int(tail or 0))
    except ValueError:
        return (1, ds, 0)
