"""A stage's health endpoint: ``GET /health`` answers 200 while the command runs.

`sflowpipe up` waits for a stage on the port the stage itself serves (ingest's metrics, the
API, the Prometheus exporter, Faust's web server, the embedded ClickHouse's SQL port); a
command that serves none (syslog, http-events, forward, a ClickHouse server sink) gets this one
through the hidden global option ``--health-port`` (loopback), so readiness is a port, never a log line.
Standard library only: the CLI starts it before the command imports its own modules.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        found = self.path.split("?", 1)[0] == "/health"
        body = b"ok\n" if found else b"not found\n"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # polled every few hundred ms: not worth a log line
        pass


class HealthServer:
    """Owns the listening socket and its daemon thread (it dies with the process)."""

    def __init__(self, host: str, port: int) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
