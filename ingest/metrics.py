"""Prometheus metrics: a small registry, the text exposition format, and an HTTP endpoint.

Worker processes keep their own ``Metrics`` and send ``snapshot()`` to the parent, which serves
the union with a ``worker`` label; a single-process ingester serves its own.
"""

from __future__ import annotations

import bisect
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

Labels = tuple[tuple[str, str], ...]

# decode latency buckets, seconds
LATENCY_BUCKETS = (5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3, 20e-3)


class Metrics:
    """Counters, gauges and histograms of one process."""

    def __init__(self) -> None:
        self.help: dict[str, tuple[str, str]] = {}  # name -> (type, help)
        self.values: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list] = {}  # -> [bucket counts..., sum, count]
        self.bounds: dict[str, tuple[float, ...]] = {}

    def describe(self, name: str, kind: str, text: str, buckets: tuple[float, ...] = ()) -> None:
        self.help[name] = (kind, text)
        if kind == "histogram":
            self.bounds[name] = buckets

    def inc(self, name: str, value: float = 1, labels: Labels = ()) -> None:
        key = (name, labels)
        self.values[key] = self.values.get(key, 0) + value

    def set(self, name: str, value: float, labels: Labels = ()) -> None:
        self.values[(name, labels)] = value

    def get(self, name: str, labels: Labels = ()) -> float:
        return self.values.get((name, labels), 0)

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.values.items() if n == name)

    def observe(self, name: str, value: float, labels: Labels = ()) -> None:
        key = (name, labels)
        h = self.histograms.get(key)
        bounds = self.bounds[name]
        if h is None:
            h = self.histograms[key] = [0] * (len(bounds) + 2)
        h[bisect.bisect_left(bounds, value)] += 1
        h[-2] += value
        h[-1] += 1

    def snapshot(self) -> dict:
        """A copy for another thread or process (dict copies are atomic under the GIL)."""
        return {"help": dict(self.help), "values": dict(self.values),
                "histograms": {k: list(v) for k, v in self.histograms.items()}, "bounds": dict(self.bounds)}


def _fmt_labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = [f'{k}="{_escape(str(v))}"' for k, v in labels]
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def render(snapshots: list[tuple[Labels, dict]]) -> str:
    """Prometheus text format (0.0.4) of one or more snapshots, each with extra labels."""
    helps: dict[str, tuple[str, str]] = {}
    bounds: dict[str, tuple] = {}
    for _, s in snapshots:
        helps.update(s["help"])
        bounds.update(s["bounds"])
    lines: list[str] = []
    for name in sorted(helps):
        kind, text = helps[name]
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for extra, s in snapshots:
            if kind == "histogram":
                for (n, labels), h in sorted(s["histograms"].items()):
                    if n != name:
                        continue
                    cum = 0
                    for b, c in zip(bounds[name], h):
                        cum += c
                        lines.append(f"{name}_bucket{_fmt_labels(extra + labels + (('le', repr(b)),))} {cum}")
                    cum += h[len(bounds[name])]
                    lines.append(f"{name}_bucket{_fmt_labels(extra + labels + (('le', '+Inf'),))} {cum}")
                    lines.append(f"{name}_sum{_fmt_labels(extra + labels)} {repr(float(h[-2]))}")
                    lines.append(f"{name}_count{_fmt_labels(extra + labels)} {h[-1]}")
                continue
            for (n, labels), v in sorted(s["values"].items()):
                if n == name:
                    lines.append(f"{name}{_fmt_labels(extra + labels)} {_num(v)}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves /metrics over HTTP from a function returning the exposition text."""

    def __init__(self, host: str, port: int, text: Callable[[], str]) -> None:
        self.host, self.port, self.text = host, port, text
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        text = self.text

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        try:
            self.httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as e:
            from ingest.udp import bind_error

            raise bind_error("TCP", self.host, self.port, e) from None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
