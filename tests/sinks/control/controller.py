"""A real HTTP server standing in for an SDN/firewall controller: records every request of any
method (POST to block, DELETE to unblock...) and answers from a script, then ``default``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    method: str
    path: str
    body: bytes
    status: int


class Controller:
    def __init__(self, script: list[int] | None = None, default: int = 200) -> None:
        self.calls: list[Call] = []
        self.script = list(script or [])
        self.default = default
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    status = server.script.pop(0) if server.script else server.default
                    server.calls.append(Call(self.command, self.path, body, status))
                reply = b'{"ok":true}' if status < 300 else b'{"error":"scripted"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_DELETE = do_GET = _any  # noqa: N815

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def ok(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and 200 <= c.status < 300]

    def __enter__(self) -> "Controller":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
