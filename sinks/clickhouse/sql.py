"""`sflowpipe sql`: run a query against a server (--dsn) or an embedded data directory (--data-dir).

chDB lets one process own a data directory. While the ClickHouse sink runs on it, the sink
serves queries on a loopback HTTP port and writes ``<dir>/.sflowpipe-sql.json`` (port, pid and
a random token, mode 0600); ``sflowpipe sql --data-dir DIR`` goes through that port when the
pid is alive, else opens the directory itself.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sflowpipe.clickhouse import SQL_FILE, owner, query_via, resolve_dsn  # noqa: F401  (their home: the shared layer)
from sflowpipe.settings import Settings
from sinks.args import SQL_FORMATS as FORMATS
from sinks.args import sql_arguments as add_sql_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)



class SqlServer:
    """Serves read queries on the sink's own chDB client, on 127.0.0.1, for `sflowpipe sql`."""

    def __init__(self, client, lock: threading.Lock, data_dir: str, database: str) -> None:
        self.client = client
        self.lock = lock
        self.path = os.path.join(data_dir, SQL_FILE)
        self.database = database
        self.token = secrets.token_hex(16)
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                if self.headers.get("X-Sflowpipe-Token") != server.token:
                    return self._reply(403, b"bad token\n")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                try:
                    out = server.query(body["sql"], body.get("format", "table"))
                except Exception as e:  # the query's own error goes back to the caller
                    return self._reply(400, str(e).encode())
                self._reply(200, out)

            def _reply(self, code: int, data: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="clickhouse-sql", daemon=True)
        self.thread.start()
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "port": self.httpd.server_address[1], "token": self.token}, f)
        os.replace(tmp, self.path)

    def query(self, sql: str, fmt: str) -> bytes:
        with self.lock:
            return run_query(self.client, sql, fmt, self.database)

    def stop(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def run_query(client, sql: str, fmt: str, database: str) -> bytes:
    """Unqualified table names resolve in the sink's database."""
    client.database = database
    return client.raw_query(sql, fmt=FORMATS[fmt])


def execute(settings: Settings, sql: str, dsn: str | None = None, data_dir: str | None = None,
            fmt: str = "table") -> bytes:
    """Run one query the way `sflowpipe sql` does; return the formatted output."""
    from .sink import connect

    ch = settings.sinks.clickhouse
    if data_dir:
        dsn = "chdb://" + os.path.abspath(data_dir)
    dsn = dsn or ch.dsn
    _, directory = resolve_dsn(dsn)
    if directory:
        info = owner(directory)
        if info:
            try:
                return query_via(info, sql, fmt)
            except urllib.error.URLError as e:
                if not isinstance(getattr(e, "reason", None), ConnectionRefusedError):
                    raise
                # the owner is gone without removing its file: open the directory ourselves
    client = connect(dsn)
    try:
        return run_query(client, sql, fmt, ch.database)
    finally:
        client.close()


def run_sql(settings: Settings, args) -> int:
    try:
        out = execute(settings, args.query, args.dsn, args.data_dir, args.format)
    except Exception as e:
        print(f"sflowpipe sql: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0
