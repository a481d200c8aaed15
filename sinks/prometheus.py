"""The Prometheus exporter: counter metrics and active flows, scraped over HTTP.

It keeps the latest value of every counter metric (metrics topic), the latest top flows of every
(flow, agent) (flows topic) and, from counter samples, each data source's ``ifname`` and
``host_name`` (the processors publish numbers only); series not updated for ``stale_seconds``
disappear. Endpoints:

* ``/metrics`` (and sFlow-RT's ``/prometheus/metrics/{agents}/{names}/txt``): every counter metric
  as a gauge with sFlow-RT's bare name, e.g. ``ifinoctets{agent="10.0.0.1",datasource="3",
  ifname="eth0"} 1234.5``; ``ifname`` / ``host`` only when known.
* ``/app/prometheus/scripts/export.js/flows/{agents}/txt`` (sFlow-RT's prometheus app; also
  ``/flows`` and ``/metrics?metric=...``): top flows with sFlow-RT's query parameters
  ``metric`` (the Prometheus metric name), ``key`` + ``value`` (+ ``filter``) selecting the flow
  definition with those keys and value, ``label`` (label names replacing key names by position),
  ``scale``, ``minValue`` (0.1), ``maxFlows`` (20), ``aggMode`` (max|sum). As sFlow-RT does, a
  scrape naming keys no definition has defines that flow on the config topic, unless the exporter
  is read-only or ``scrape_defines_flows`` is off (then it must exist: settings, definitions file
  or config topic); or name it directly with ``flow=NAME`` (or ``metric`` equal to a flow name).

Listens on 127.0.0.1 unless ``listen`` says otherwise; ``token`` / ``basic_user`` require
credentials (sflowpipe/auth.py), as for the REST API.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from processors.activeflows import ActiveFlows
from processors.config import ConfigWatcher, DefinitionError, publish, startup_definitions
from schemas.codec import Codec
from sflowpipe.auth import CHALLENGE, Authenticator, warn_if_open
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import FlowDefinition, Settings
from sflowpipe.signals import on_stop_signals
from sinks.base import SinkRunner

log = logging.getLogger(__name__)

FLOWS_PATH = "/app/prometheus/scripts/export.js/flows/"
METRICS_PATH = "/prometheus/metrics/"
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


def split_keys(keys: str) -> list[str]:
    """Flow key expressions split on commas outside [...] (key functions may nest)."""
    out, depth, cur = [], 0, ""
    for ch in keys:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _agents(spec: str) -> list[str] | None:
    spec = unquote(spec)
    return None if spec in ("ALL", "") else [a for a in re.split(r"[;,]", spec) if a]


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
            t = s["source_id_type"]
            ds = str(s["source_id_index"]) if t == 0 else f"{t}.{s['source_id_index']}"
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
        keys = split_keys(",".join(query.get("key", [])))
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
        if agg_mode not in ("max", "sum"):
            raise BadRequest(400, "aggMode must be max or sum\n")
        metric = fix_name(query["metric"][0])
        with self.lock:
            self._expire(time.time())
            flow, definition = self._resolve(query)
            keynames = split_keys(",".join(query.get("key", []))) or (
                split_keys(definition.keys) if definition else [])
            labels = ",".join(query.get("label", [])).split(",") if query.get("label") else []
            keynames = [labels[i] if i < len(labels) and labels[i] else k for i, k in enumerate(keynames)]
            fs = definition.fs if definition else ","
            rows = self.flows.merged(flow, agents, agg_mode, max_flows, min_value)
        out = [f"# TYPE {metric} gauge\n"] if rows else []
        for r in rows:
            values = r["key"].split(fs) if fs else [r["key"]]
            names = keynames + [f"key{i}" for i in range(len(keynames), len(values))]
            pairs = ",".join(f'{fix_name(n)}="{_escape(v)}"' for n, v in zip(names, values))
            out.append(f"{metric}{{{pairs}}} {_number(r['value'] * scale)}\n")
        return "".join(out)


class ExporterSink:
    """Feeds consumed messages to the exporter state; nothing to write, so flush only commits."""

    def __init__(self, state: ExporterState) -> None:
        self.state = state
        self.count = 0

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        self.state.add(stem, datum)
        self.count += 1
        return 1

    def flush(self) -> None:
        self.count = 0

    def pending(self) -> int:
        return self.count


def _handler(state: ExporterState, auth: Authenticator):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not auth.allows(self.headers.get("Authorization"), self.client_address[0]):
                data = b"authentication required\n"
                self.send_response(401)
                self.send_header("WWW-Authenticate", CHALLENGE)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            path = url.path
            try:
                if path.startswith(FLOWS_PATH) and path.endswith("/txt"):
                    body = state.render_flows(_agents(path[len(FLOWS_PATH):-4]), query)
                elif path in ("/flows", "/flows/") or (path == "/metrics" and "metric" in query):
                    agents = query.get("agent")
                    body = state.render_flows(_agents(";".join(agents)) if agents else None, query)
                elif path == "/metrics":
                    body = state.render_metrics()
                elif path.startswith(METRICS_PATH) and path.endswith("/txt"):
                    parts = path[len(METRICS_PATH):-4].split("/")
                    if len(parts) != 2:
                        raise BadRequest(404, "expected /prometheus/metrics/{agents}/{names}/txt\n")
                    names = None if parts[1] in ("ALL", "") else unquote(parts[1]).split(",")
                    body = state.render_metrics(_agents(parts[0]), names)
                else:
                    raise BadRequest(404, "not found\n")
                status = 200
            except BadRequest as e:
                status, body = e.status, str(e)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.client_address[0], *args)

    return Handler


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def parse_hostport(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)  # no host: loopback, never every interface


class PrometheusExporter:
    """Owns the HTTP server, the consumer of the metrics/flows/counter topics and the state."""

    def __init__(self, settings: Settings, listen: str | None = None, stale_seconds: float = 60.0,
                 names: bool = True, prefix: str = "", from_beginning: bool = True,
                 clients: KafkaClients | None = None, codec: Codec | None = None) -> None:
        if clients is None or codec is None:
            clients, codec = wiring(settings)
        self.settings = settings
        self.state = ExporterState(stale_seconds, prefix)
        conf = settings.sinks.prometheus
        if conf.defines_flows:  # as sFlow-RT's app: a scrape defines the flow it names (off when read-only)
            self.state.publish_definition = lambda name, body: publish(settings, "flow", name, body, clients=clients)
        self.auth = Authenticator(conf, log, "prometheus")
        for kind, name, definition in startup_definitions(settings):
            self.state.define(kind, name, definition)
        self.watcher = ConfigWatcher(settings, self.state.define, clients)
        t = settings.topics
        topics = [settings.kafka.topic(t.metrics), settings.kafka.topic(t.flows)]
        if names:
            topics.append(settings.kafka.topic(t.counter_samples))
        self.runner = SinkRunner(settings, ExporterSink(self.state), topics,
                                 settings.sinks.prometheus.consumer_group, batch_size=1000, batch_seconds=1.0,
                                 from_beginning=from_beginning, clients=clients, codec=codec)
        host, port = parse_hostport(listen or settings.sinks.prometheus.listen)
        server_class = _Server6 if ":" in host else ThreadingHTTPServer
        self.server = server_class((host, port), _handler(self.state, self.auth))
        self.server.daemon_threads = True
        self.threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.runner.start()
        self.watcher.start()
        for target, name in ((self.server.serve_forever, "prometheus-http"), (self.runner.run, "prometheus-consumer")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self.threads.append(th)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.runner.stop()
        self.watcher.stop()
        for th in self.threads:
            th.join(15)


def add_arguments(parser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (setting sinks.prometheus.listen, default "
                                                            "127.0.0.1:9344; 0.0.0.0:9344 exposes it)")
    parser.add_argument("--read-only", action="store_true",
                        help="no scrape defines a flow (setting sinks.prometheus.read_only)")
    parser.add_argument("--stale-seconds", type=float, default=60.0,
                        help="drop a series not updated for this long (default 60)")
    parser.add_argument("--prefix", default="", help="prefix of counter metric names (default none: sFlow-RT's)")
    parser.add_argument("--no-names", dest="names", action="store_false",
                        help="do not read counter samples for ifname/host labels")


def run(settings: Settings, args, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    if getattr(args, "read_only", False):
        settings = settings.model_copy(update={"sinks": settings.sinks.model_copy(update={
            "prometheus": settings.sinks.prometheus.model_copy(update={"read_only": True})})})
    try:
        exporter = PrometheusExporter(settings, args.listen, args.stale_seconds, args.names, args.prefix,
                                      clients=clients, codec=codec)
    except (OSError, ValueError) as e:
        log.error("prometheus: %s", e)
        return 2
    done = threading.Event()
    on_stop_signals(done.set)
    exporter.start()
    conf = settings.sinks.prometheus
    log.info("prometheus exporter on http://%s:%d/metrics (%s, %s)", exporter.server.server_address[0], exporter.port,
             "authentication required" if exporter.auth.required else "no authentication",
             "scrapes define flows" if conf.defines_flows else "read-only")
    warn_if_open(log, "prometheus", exporter.server.server_address[0], exporter.auth, conf)
    done.wait()
    exporter.stop()
    return 0
