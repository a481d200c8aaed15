"""The README's first command: `make run` (scripts/run_embedded.py) runs the whole pipeline on
embedded defaults, data reaches ClickHouse, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.generate import Generator
from sflowpipe.broker import free_port

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[1]


def test_run_embedded_end_to_end(tmp_path):
    port = free_port()
    env = {**os.environ, "SFLOW_PORT": str(port), "SFLOWPIPE_RUN_DATA": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_embedded.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: list[str] = []
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops everything" in line or proc.poll() is not None:
                break
        assert "sflowpipe is running" in "".join(lines), "".join(lines)
        import socket

        gen = Generator(agents=1, seed=3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(100):
                s.sendto(gen.datagram(now=i * 0.01), ("127.0.0.1", port))
                time.sleep(0.005)
        want = 600  # 100 datagrams x 6 flow samples
        got = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "sql", "SELECT count() FROM flow_samples",
                                  "--data-dir", str(tmp_path / "data" / "clickhouse"), "--format", "csv"],
                                 capture_output=True, text=True, timeout=60)
            if res.returncode == 0:
                got = int(res.stdout.strip().splitlines()[-1])
                if got >= want:
                    break
            time.sleep(1)
        assert got == want
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 4  # the broker, ingest, processors, ClickHouse sink
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped." in out
    alive = [c for c in children if Path(f"/proc/{c}").exists()]
    assert not alive, f"processes left running: {alive}"
