"""A minimal Confluent-compatible Schema Registry for tests (no registry server is installable
here): the REST calls confluent-kafka's client makes to register and fetch Avro schemas."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Registry(BaseHTTPRequestHandler):
    """The slice of the Confluent Schema Registry REST API the client uses."""

    schemas: list = []
    subjects: dict = {}  # subject -> schema ids registered under it

    def _reply(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["schema"] not in self.schemas:
            self.schemas.append(body["schema"])
        sid = self.schemas.index(body["schema"]) + 1
        if self.path.startswith("/subjects/"):
            self.subjects.setdefault(self.path.split("/")[2], set()).add(sid)
        self._reply({"id": sid})

    def do_GET(self):  # noqa: N802
        if "/schemas/ids/" not in self.path:
            self._reply({"error_code": 40401, "message": "not found"}, 404)
            return
        sid = int(self.path.split("/schemas/ids/")[1].split("?")[0])
        if not 1 <= sid <= len(self.schemas):
            self._reply({"error_code": 40403, "message": "Schema not found"}, 404)
            return
        self._reply({"schema": self.schemas[sid - 1], "schemaType": "AVRO"})

    def log_message(self, *a):
        pass


def serve() -> tuple[ThreadingHTTPServer, type]:
    handler = type("Registry", (_Registry,), {"schemas": [], "subjects": {}})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, handler


@contextmanager
def outage(handler: type) -> Iterator[list[int]]:
    """The registry of ``serve()`` (its handler class) restarting: every schema lookup is answered
    503 until the block ends. Yields the list of refused lookups (one item each), to wait on."""
    answer = handler.do_GET
    refused: list[int] = []

    def restarting(self) -> None:
        refused.append(1)
        self._reply({"error_code": 50301, "message": "restarting"}, 503)

    handler.do_GET = restarting
    try:
        yield refused
    finally:
        handler.do_GET = answer


@pytest.fixture
def registry_url():
    srv, _ = serve()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture
def registry():
    """The registry's URL and what was registered: ``subjects`` (subject -> schema ids)."""
    srv, handler = serve()
    yield type("Registry", (), {"url": f"http://127.0.0.1:{srv.server_address[1]}", "subjects": handler.subjects})
    srv.shutdown()
