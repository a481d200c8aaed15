"""Each component's Prometheus metrics (prometheus-client) and the loopback listener serving them.

Every component instance owns one ``Metrics``: its own ``CollectorRegistry``, never the global
default one, so that several components (or several test instances) in one process do not
collide. ``MetricsServer`` serves one or more registries as ``/metrics`` over HTTP.

The name-based helpers (``describe``/``inc``/``set``/``observe``/``get``/``total``) let a
component count by metric name and labels as the ingester always did; ``counter``/``gauge``/
``histogram`` hand back the prometheus-client objects for code that keeps them.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from sflowpipe.net import parse_hostport

Labels = tuple[tuple[str, str], ...]

# the exposition keeps the names and series the ingester always exported: no ``*_created`` series
# beside every counter (a process-wide switch of prometheus-client; every sflowpipe process wants it)
prometheus_client.disable_created_metrics()

# seconds: a flush or an HTTP request, from a millisecond to a minute
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The metrics of one component instance, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        # (name, labels) -> the series: counting is on the receive path (several per datagram), and
        # prometheus-client's labels(**...) lookup costs ~4 us where this dict costs ~0.1
        self._children: dict[tuple[str, Labels], object] = {}

    # ------------------------------------------------------------------ declaring

    def counter(self, name: str, text: str, labels: Iterable[str] = ()) -> Counter:
        return self._declare(name, Counter, text, labels)

    def gauge(self, name: str, text: str, labels: Iterable[str] = ()) -> Gauge:
        return self._declare(name, Gauge, text, labels)

    def histogram(self, name: str, text: str, labels: Iterable[str] = (),
                  buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return self._declare(name, Histogram, text, labels, buckets=buckets)

    def describe(self, name: str, kind: str, text: str, buckets: tuple[float, ...] = (),
                 labels: Iterable[str] = ()) -> None:
        """Declare a metric by kind name ("counter", "gauge", "histogram")."""
        if kind == "histogram":
            self.histogram(name, text, labels, buckets or LATENCY_BUCKETS)
        else:
            {"counter": self.counter, "gauge": self.gauge}[kind](name, text, labels)

    def observed(self, name: str, kind: str, text: str, read, labels: Iterable[str] = ()) -> None:
        """A counter or gauge whose value a component already keeps: ``read()`` returns the number
        (no labels) or ``{label values: number}``; read at each scrape."""
        self.registry.register(_Observed(name, kind, text, read, tuple(labels)))

    def _declare(self, name, cls, text, labels, **kw):
        m = self._metrics.get(name)
        if m is None:  # declared once per instance (two collaborators may both declare a shared one)
            m = self._metrics[name] = cls(name, text, tuple(labels), registry=self.registry, **kw)
        return m

    # ------------------------------------------------------------------ counting by name

    def _child(self, name: str, labels: Labels):
        child = self._children.get((name, labels))
        if child is None:
            m = self._metrics[name]
            child = self._children[(name, labels)] = m.labels(**dict(labels)) if labels else m
        return child

    def inc(self, name: str, value: float = 1, labels: Labels = ()) -> None:
        self._child(name, labels).inc(value)

    def set(self, name: str, value: float, labels: Labels = ()) -> None:
        self._child(name, labels).set(value)

    def observe(self, name: str, value: float, labels: Labels = ()) -> None:
        self._child(name, labels).observe(value)

    # ------------------------------------------------------------------ reading

    def get(self, name: str, labels: Labels = ()) -> float:
        """One series' value (0 when it has none yet)."""
        return self.registry.get_sample_value(name, dict(labels)) or 0

    def series(self, name: str) -> dict[Labels, float]:
        """Every series of a sample name, by its labels."""
        return {tuple(s.labels.items()): s.value for f in self.registry.collect() for s in f.samples
                if s.name == name}

    def total(self, name: str) -> float:
        """The sum over every series of a sample name."""
        return sum(self.series(name).values())

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def snapshot(self) -> list[Metric]:
        """The collected families, picklable: a worker process sends them to its parent."""
        return list(self.registry.collect())


class _Observed:
    """A collector reading one value (or one per label set) from the component at scrape time."""

    def __init__(self, name, kind, text, read, labels) -> None:
        self.name, self.kind, self.text, self.read, self.labels = name, kind, text, read, labels

    def collect(self):
        family = Metric(self.name.removesuffix("_total") if self.kind == "counter" else self.name,
                        self.text, self.kind)
        values = self.read()
        if not isinstance(values, dict):
            values = {(): values}
        sample = self.name if self.kind != "counter" or self.name.endswith("_total") else self.name + "_total"
        for key, v in values.items():
            key = key if isinstance(key, tuple) else (key,)
            family.add_sample(sample, dict(zip(self.labels, map(str, key))), float(v))
        return [family]

    def describe(self):
        return []


class Snapshots:
    """A collector over several sources of the same metrics: the families worker processes sent,
    or the live ``Metrics`` of several instances. One family per name, each source's series
    labelled ``label`` (its key in ``latest``)."""

    def __init__(self, label: str = "worker") -> None:
        self.label = label
        self.latest: dict[str, list[Metric] | Metrics] = {}

    def collect(self):
        merged: dict[str, Metric] = {}
        for source, families in sorted(list(self.latest.items())):  # a copy: sources come and go
            if isinstance(families, Metrics):
                families = families.snapshot()
            for f in families:
                m = merged.get(f.name)
                if m is None:
                    m = merged[f.name] = Metric(f.name, f.documentation, f.type, f.unit)
                m.samples.extend(Sample(s.name, {self.label: source, **s.labels}, s.value, s.timestamp, s.exemplar)
                                 for s in f.samples)
        return list(merged.values())


def split_listen(text: str, default_port: int) -> tuple[str, int]:
    """A metrics listener's 'HOST:PORT', '[v6]:PORT', ':PORT' (loopback) or 'HOST'."""
    return parse_hostport(text, default_port, "127.0.0.1", what="listen address")


class MetricsServer:
    """Serves /metrics over HTTP from one registry (or any prometheus-client collector registry)."""

    def __init__(self, listen: str, registry, default_port: int = 0) -> None:
        self.host, self.port = split_listen(listen, default_port)
        self.registry = registry.registry if isinstance(registry, Metrics) else registry
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> "MetricsServer":
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server_cls = ThreadingHTTPServer
        if ":" in self.host:
            class server_cls(ThreadingHTTPServer):  # noqa: N801
                address_family = socket.AF_INET6
        try:
            self.httpd = server_cls((self.host, self.port), Handler)
        except OSError as e:  # the command's one line names the address
            raise OSError(e.errno, f"cannot listen on TCP [{self.host}]:{self.port}: {e.strerror or e}") from None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
