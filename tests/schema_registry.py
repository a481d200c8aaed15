"""A minimal Confluent-compatible Schema Registry for tests (no registry server is installable
here): the REST calls confluent-kafka's client makes to register and fetch Avro schemas."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Registry(BaseHTTPRequestHandler):
    """The slice of the Confluent Schema Registry REST API the client uses."""

    schemas: list = []

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
        self._reply({"id": self.schemas.index(body["schema"]) + 1})

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


@pytest.fixture
def registry_url():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), type("Registry", (_Registry,), {"schemas": []}))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
