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
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from schemas.codec import Codec
from sflowpipe.auth import CHALLENGE, Authenticator, warn_if_open
from sflowpipe.config_plane import ConfigWatcher, publish_to, startup_definitions
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.names import parse_agents
from sflowpipe.net import parse_hostport
from sflowpipe.readmodels.exporter import BadRequest, ExporterState
from sflowpipe.settings import KafkaSettings, LimitSettings, PrometheusSettings, Settings, TopicNames
from sflowpipe.signals import on_stop_signals
from sinks.base import SinkRunner, serve_metrics
from sinks.args import prometheus_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)

FLOWS_PATH = "/app/prometheus/scripts/export.js/flows/"
METRICS_PATH = "/prometheus/metrics/"


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
                    body = state.render_flows(parse_agents(path[len(FLOWS_PATH):-4]), query)
                elif path in ("/flows", "/flows/") or (path == "/metrics" and "metric" in query):
                    agents = query.get("agent")
                    body = state.render_flows(parse_agents(";".join(agents)) if agents else None, query)
                elif path == "/metrics":
                    body = state.render_metrics()
                elif path.startswith(METRICS_PATH) and path.endswith("/txt"):
                    parts = path[len(METRICS_PATH):-4].split("/")
                    if len(parts) != 2:
                        raise BadRequest(404, "expected /prometheus/metrics/{agents}/{names}/txt\n")
                    names = None if parts[1] in ("ALL", "") else unquote(parts[1]).split(",")
                    body = state.render_metrics(parse_agents(parts[0]), names)
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


class PrometheusExporter:
    """Owns the HTTP server, the consumer of the metrics/flows/counter topics and the state."""

    def __init__(self, conf: PrometheusSettings, kafka: KafkaSettings, t: TopicNames, limits: LimitSettings,
                 clients: KafkaClients, codec: Codec, definitions: list[tuple[str, str, Any]] = (),
                 listen: str | None = None, stale_seconds: float = 60.0, names: bool = True, prefix: str = "",
                 from_beginning: bool = True) -> None:
        """``kafka`` and ``t`` name the topics; ``definitions``: the start-up ones (settings, file)."""
        self.conf = conf
        self.state = ExporterState(stale_seconds, prefix)
        config_topic = kafka.topic(t.config)
        if conf.defines_flows:  # as sFlow-RT's app: a scrape defines the flow it names (off when read-only)
            self.state.publish_definition = lambda name, body: publish_to(clients, config_topic, "flow", name, body)
        self.auth = Authenticator(conf, log, "prometheus")
        for kind, name, definition in definitions:
            self.state.define(kind, name, definition)
        self.watcher = ConfigWatcher(clients, config_topic, limits, self.state.define)
        topics = [kafka.topic(t.metrics), kafka.topic(t.flows)]
        if names:
            topics.append(kafka.topic(t.counter_samples))
        self.runner = SinkRunner(ExporterSink(self.state), topics, conf.consumer_group, batch_size=1000,
                                 batch_seconds=1.0, from_beginning=from_beginning, clients=clients, codec=codec,
                                 status_topic=kafka.topic(t.status))
        host, port = parse_hostport(listen or conf.listen, default_host="127.0.0.1",
                                    what="listen address")  # no host: loopback, never every interface
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


def run(settings: Settings, args, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    if getattr(args, "read_only", False):
        settings = settings.model_copy(update={"sinks": settings.sinks.model_copy(update={
            "prometheus": settings.sinks.prometheus.model_copy(update={"read_only": True})})})
    try:
        if clients is None or codec is None:
            clients, codec = wiring(settings)
        exporter = PrometheusExporter(settings.sinks.prometheus, settings.kafka, settings.topics, settings.limits,
                                      clients, codec, startup_definitions(settings), args.listen,
                                      args.stale_seconds, args.names, args.prefix)
    except (OSError, ValueError) as e:
        log.error("prometheus: %s", e)
        return 2
    done = threading.Event()
    on_stop_signals(done.set)
    try:
        metrics = serve_metrics(settings.sinks.prometheus.metrics_listen, exporter.runner.metrics, "prometheus")
    except (OSError, ValueError) as e:
        log.error("prometheus: %s", e)
        return 2
    exporter.start()
    conf = settings.sinks.prometheus
    log.info("prometheus exporter on http://%s:%d/metrics (%s, %s)", exporter.server.server_address[0], exporter.port,
             "authentication required" if exporter.auth.required else "no authentication",
             "scrapes define flows" if conf.defines_flows else "read-only")
    warn_if_open(log, "prometheus", exporter.server.server_address[0], exporter.auth, conf)
    done.wait()
    exporter.stop()
    metrics.stop()
    return 0
