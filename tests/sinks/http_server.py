"""A real HTTP server on 127.0.0.1 standing in for Loggly, Splunk HEC, Elastic or a webhook.

It records every request (method, path, headers, body) and answers from a script: a list of
``Reply`` (or callables taking the request) used in order, then ``default`` for the rest.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int = 0  # what the server answered


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a timeout, for a client with a shorter one)


Script = Union[Reply, Callable[[Request], Reply]]


def elastic_ok(req: Request) -> Reply:
    """What Elasticsearch answers to a bulk request whose every action succeeded."""
    lines = req.body.splitlines()
    items = [{"index": {"_index": json.loads(a)["index"]["_index"], "_id": json.loads(a)["index"]["_id"],
                        "status": 201, "result": "created"}} for a in lines[0::2]]
    return Reply(200, json.dumps({"took": 1, "errors": False, "items": items}).encode(),
                 {"Content-Type": "application/json"})


class RecordingServer:
    """ThreadingHTTPServer on an ephemeral port; ``requests`` lists what it received (any
    method: event endpoints get POSTs, a controller POST/DELETE, a list server GETs), in order."""

    def __init__(self, default: Script = Reply(200, b'{"response":"ok"}'), script: list[Script] | None = None) -> None:
        self.requests: list[Request] = []
        self.script: list[Script] = list(script or [])
        self.default = default
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoints

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server.lock:
                    server.requests.append(req)
                    step = server.script.pop(0) if server.script else server.default
                reply = step(req) if callable(step) else step
                req.status = reply.status
                if reply.delay:
                    time.sleep(reply.delay)  # a slow server, as scripted by the test
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            do_POST = do_PUT = do_DELETE = do_GET = _any  # noqa: N815 (http.server's naming)

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def delivered(self, method: str | None = None) -> list[Request]:
        """The requests (of ``method``) answered with a 2xx."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300 and method in (None, r.method)]

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
