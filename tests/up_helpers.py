"""Helpers for the tests that run a whole `sflowpipe up` (tests/test_up.py, tests/test_clients.py):
the session-scoped ``up`` fixture (registered once in tests/conftest.py, shared by every module), start one and
wait until it says it is up, poll until a condition holds, query its ClickHouse."""

from __future__ import annotations

import csv
import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from sflowpipe.broker import free_port
from tests.waiting import until

ELEPHANT_SOURCES = {"10.1.0.10", "10.1.1.10", "10.1.2.10"}  # sflowpipe generate's elephant flows


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_banner(proc: subprocess.Popen, timeout: float = 180) -> str:
    """What `sflowpipe up` prints until it says it is up (or exits)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops everything" in line or (not line and proc.poll() is not None):
            break
    return "".join(lines)


def run_up_demo(data: Path, config: Path | None = None) -> Iterator[dict]:
    """`sflowpipe up --demo` on free ports with its data in ``data`` (and settings from ``config``);
    yields what tests need to talk to it (url, banner, data dir, sFlow port, the process) and stops
    it with Ctrl-C after."""
    sflow_port, http_port = free_udp_port(), free_port()
    settings = ["--config", str(config)] if config else []
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", *settings, "up", "--demo", "--sflow-port",
                             str(sflow_port),
                             "--http-port", str(http_port), "--data-dir", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # its own process group, as a shell starts a job: a test can signal the
                            # whole group as a terminal's Ctrl-C does, without signalling pytest
                            start_new_session=True)
    banner = read_banner(proc)
    if "sflowpipe is up" not in banner:
        proc.kill()
        pytest.fail("sflowpipe up did not come up:\n" + banner)
    yield {"proc": proc, "banner": banner, "data": data, "url": f"http://127.0.0.1:{http_port}",
           "sflow_port": sflow_port}
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)


@pytest.fixture(scope="session")
def up(tmp_path_factory):
    """One `sflowpipe up --demo` for the whole run, shared by every test module that imports this
    fixture (start-up and the demo's warm-up take 30-60 s on a small machine; five modules each
    started their own). Tests on it define flows, thresholds and groups of their own names and
    must not stop it: a test that stops `up` starts its own (``run_up_demo``)."""
    yield from run_up_demo(tmp_path_factory.mktemp("up"))


def wait_for(fn: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``fn`` until it returns something truthy or ``timeout`` s pass; its last result (for
    the caller's assertion to name)."""
    last: list[Any] = [None]

    def call() -> Any:
        last[0] = fn()
        return last[0]

    try:
        return until(call, timeout, interval)
    except AssertionError:
        return last[0]


def sql_rows(data: Path, query: str, timeout: float = 60) -> list[list[str]] | None:
    """Rows of a query on the ClickHouse of an `up` whose data directory is ``data`` (through
    `sflowpipe sql`, as a user would; its csv has a header row, left out here), or None if the
    query failed."""
    res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "sql", query, "--data-dir", str(data / "clickhouse"),
                          "--format", "csv"], capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        return None
    return [row for row in csv.reader(io.StringIO(res.stdout)) if row][1:]
