"""Reaching a ClickHouse by DSN, for any component: a server (http://...) through clickhouse-connect,
or an embedded chDB directory (chdb://DIR). chDB lets one process own a directory: while the
ClickHouse sink runs on it, it serves queries on a loopback port named in ``<dir>/.sflowpipe-sql.json``
(sinks/clickhouse/sql.py), which ``owner`` finds and ``query_via`` asks (`sflowpipe sql`, the API's
history)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

SQL_FILE = ".sflowpipe-sql.json"


def resolve_dsn(dsn: str, create: bool = False) -> tuple[str, str | None]:
    """Return (dsn for clickhouse-connect, embedded data directory or None); chdb://./rel -> chdb:///abs.
    ``create``: make the directory (the engine that will own it: the sink, `sql` opening it itself);
    a reader that only looks for its owner (the API's history) must not leave an empty directory
    behind a mistyped path."""
    if not dsn.startswith("chdb:"):
        return dsn, None
    rest = dsn[len("chdb://"):] if dsn.startswith("chdb://") else dsn[len("chdb:"):]
    rest = rest.split("?", 1)[0]
    if rest in ("", "memory", ":memory:"):
        return dsn, None
    path = os.path.abspath(rest)
    if create:
        os.makedirs(path, exist_ok=True)
    return "chdb://" + path, path


def owner(data_dir: str) -> dict | None:
    """The live sflowpipe process serving this data directory, if any."""
    try:
        with open(os.path.join(data_dir, SQL_FILE)) as f:
            info = json.load(f)
        pid = int(info["pid"])
        os.kill(pid, 0)
        # a zombie (exited, not yet reaped by its parent) answers signal 0 too
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return None
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return info


def query_via(info: dict, sql: str, fmt: str, timeout: float = 300) -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{info['port']}/query", method="POST",
                                 data=json.dumps({"sql": sql, "format": fmt}).encode(),
                                 headers={"X-Sflowpipe-Token": info["token"], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(e.read().decode(errors="replace")) from None
