"""What sFlow-RT's prometheus app exports, kept current from the topics: the latest counter
metrics, data-source names (``ifname``, ``host``) and top flows, rendered as Prometheus text.

A read model several services serve: the Prometheus exporter (sinks/prometheus.py) and the REST API
(api/state.py, sFlow-RT's ``/prometheus/metrics/...`` and ``/app/prometheus/scripts/export.js/...``
paths). Series not updated for ``stale_seconds`` disappear. A scrape naming keys no definition has
may define that flow (``publish_definition``, set by the service that allows it).
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any

from sflowpipe.config_plane import DefinitionError
from sflowpipe.names import data_source, split_flow_key, split_keys
from sflowpipe.readmodels.activeflows import AGG_MODES, ActiveFlows
from sflowpipe.settings import FlowDefinition

NAMESPACE = "sflowpipe."


def fix_name(name: str) -> str:
    """A Prometheus metric or label name (sFlow-RT's fixName, plus no leading digit)."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + name if not name or name[0].isdigit() else name


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _query_keys(query: dict[str, list[str]]) -> list[str]:
    """The flow keys a scrape names (``key`` repeated or comma separated; empty pieces ignored)."""
    return [k for k in split_keys(",".join(query.get("key", []))) if k]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ExporterState:
    """Owns the latest counter metrics, names, top flows and flow definitions, and renders them."""

    def __init__(self, stale_seconds: float = 60.0, prefix: str = "") -> None:
        self.stale_seconds = stale_seconds
        self.prefix = prefix
        self.lock = threading.Lock()
        # (agent, dataSource, name) -> (value, timestamp s)
        self.metrics: dict[tuple[str, str, str], tuple[float, float]] = {}
        self.names: dict[tuple[str, str, str], tuple[str, float]] = {}  # (agent, ds, ifname|host) -> text
        self.flows = ActiveFlows()
        self.flow_seen: dict[tuple[str, str], float] = {}
        self.definitions: dict[str, FlowDefinition] = {}
        self.publish_definition = None  # (name, body) -> None: defines a flow a scrape asks for

    # -- updates (the consumer thread) --

    def add(self, stem: str, datum: dict) -> None:
        now = time.time()
        with self.lock:
            if stem == "metrics":
                ts = datum["timestamp"] / 1000.0
                for m in datum["metrics"]:
                    key = (datum["agent"], m["dataSource"], m["name"])
                    old = self.metrics.get(key)
                    if old is None or ts >= old[1]:
                        self.metrics[key] = (m["value"], ts)
            elif stem == "active_flows":
                self.flows.update(datum)
                self.flow_seen[(datum["flow"], datum["agent"])] = datum["timestamp"] / 1000.0
            elif stem == "counter_sample_batch":
                self._names(datum, now)
            self._expire(now)

    def _names(self, batch: dict, now: float) -> None:
        agent = batch["agent_address"]
        for s in batch["samples"]:
            ds = data_source(s["source_id_type"], s["source_id_index"])
            for rec in s["records"]:
                name, body = rec if isinstance(rec, (tuple, list)) else (None, rec)
                if name == NAMESPACE + "PortName" and body.get("name"):
                    self.names[(agent, ds, "ifname")] = (body["name"], now)
                elif name == NAMESPACE + "HostDescr" and body.get("hostname"):
                    self.names[(agent, ds, "host")] = (body["hostname"], now)

    def _expire(self, now: float) -> None:
        limit = now - self.stale_seconds
        for store in (self.metrics, self.names):
            for k in [k for k, v in store.items() if v[1] < limit]:
                del store[k]
        for k in [k for k, ts in self.flow_seen.items() if ts < limit]:
            del self.flow_seen[k]
            self.flows.latest.pop(k, None)

    def define(self, kind: str, name: str, definition: Any) -> None:
        """A ConfigWatcher listener: keep flow definitions current."""
        if kind != "flow":
            return
        with self.lock:
            if definition is None:
                self.definitions.pop(name, None)
            else:
                self.definitions[name] = definition

    # -- rendering (HTTP threads) --

    def render_metrics(self, agents: list[str] | None = None, names: list[str] | None = None) -> str:
        with self.lock:
            self._expire(time.time())
            by_name: dict[str, list[str]] = {}
            for (agent, ds, name), (value, _) in sorted(self.metrics.items()):
                if (agents is not None and agent not in agents) or (names is not None and name not in names):
                    continue
                labels = [f'agent="{_escape(agent)}"', f'datasource="{_escape(ds)}"']
                for label in ("host", "ifname"):
                    known = self.names.get((agent, ds, label))
                    if known:
                        labels.append(f'{label}="{_escape(known[0])}"')
                by_name.setdefault(self.prefix + fix_name(name), []).append(
                    "{" + ",".join(labels) + "} " + _number(value))
        out = []
        for metric, series in by_name.items():
            out.append(f"# TYPE {metric} gauge\n")
            out.extend(f"{metric}{s}\n" for s in series)
        return "".join(out)

    def _resolve(self, query: dict[str, list[str]]) -> tuple[str, FlowDefinition | None]:
        """The flow name a scrape asks for: flow=, metric= a flow name, or a definition with the
        same keys, value and filter."""
        known = set(self.definitions) | {f for f, _ in self.flows.latest}
        if "flow" in query:
            return query["flow"][0], self.definitions.get(query["flow"][0])
        metric = query["metric"][0]
        keys = _query_keys(query)
        if not keys and metric in known:
            return metric, self.definitions.get(metric)
        value = query.get("value", [None])[0]
        flt = query.get("filter", [None])[0]
        for name, d in sorted(self.definitions.items()):
            if split_keys(d.keys) == keys and (value is None or d.value == value) and (d.filter or None) == flt:
                return name, d
        if metric in known:
            return metric, self.definitions.get(metric)
        if keys and self.publish_definition is not None:
            # as sFlow-RT does: a scrape that names keys and a value defines that flow (on the
            # config topic, so every worker computes it); it has values from the next report on
            name = "prometheus_" + re.sub(r"[^a-zA-Z0-9_]", "_", metric)
            body = {"keys": ",".join(keys), "value": value or "bytes"}
            if flt:
                body["filter"] = flt
            definition = FlowDefinition.model_validate(body)
            if self.definitions.get(name) != definition:
                try:
                    self.publish_definition(name, body)
                except DefinitionError as e:  # the workers' compiler refuses it (e.g. a lookahead in the filter)
                    raise BadRequest(400, f"{e}\n") from None
                self.definitions[name] = definition
            return name, definition
        off = " (scrapes define no flow here: read_only, or scrape_defines_flows off)" if keys else ""
        raise BadRequest(404, f"no flow definition with keys={','.join(keys)!r} value={value!r} "
                              f"filter={flt!r}{off}: define it (processors.flows, the definitions file or "
                              f"`sflowpipe definitions apply`), or name it with flow=NAME\n")

    def render_flows(self, agents: list[str] | None, query: dict[str, list[str]]) -> str:
        if not query.get("metric"):
            raise BadRequest(400, "metric= is required\n")
        try:
            scale = float(query.get("scale", ["1"])[0])
            min_value = float(query.get("minValue", ["0.1"])[0])
            max_flows = int(query.get("maxFlows", ["20"])[0])
            agg_mode = query.get("aggMode", ["max"])[0]
        except ValueError as e:
            raise BadRequest(400, f"bad parameter: {e}\n") from None
        if not (math.isfinite(scale) and math.isfinite(min_value)):  # float() takes nan, inf, 1e999
            raise BadRequest(400, "bad parameter: scale and minValue must be finite numbers\n")
        if agg_mode not in AGG_MODES:
            raise BadRequest(400, "aggMode must be max or sum\n")
        metric = fix_name(query["metric"][0])
        with self.lock:
            self._expire(time.time())
            flow, definition = self._resolve(query)
            keynames = _query_keys(query) or (
                split_keys(definition.keys) if definition else [])
            labels = ",".join(query.get("label", [])).split(",") if query.get("label") else []
            keynames = [labels[i] if i < len(labels) and labels[i] else k for i, k in enumerate(keynames)]
            fs = definition.fs if definition else ","
            rows = self.flows.merged(flow, agents, agg_mode, max_flows, min_value)
        out = [f"# TYPE {metric} gauge\n"] if rows else []
        for r in rows:
            values = split_flow_key(r["key"], fs)
            names = keynames + [f"key{i}" for i in range(len(keynames), len(values))]
            pairs = ",".join(f'{fix_name(n)}="{_escape(v)}"' for n, v in zip(names, values))
            out.append(f"{metric}{{{pairs}}} {_number(r['value'] * scale)}\n")
        return "".join(out)
