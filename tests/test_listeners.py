"""Every HTTP listener binds the loopback address unless told otherwise (issue 12: the API, the
Prometheus exporter and the ingest metrics listened on 0.0.0.0 by default).

The real commands run with their default settings (no listen address, no port given) in a private
network namespace (``unshare -rn``: its own loopback, so the fixed default ports 8008, 9344, 9343
and 6066 are free whatever else runs on this machine), beside an embedded broker on the default
127.0.0.1:9092; the kernel's table of listening sockets (/proc/net/tcp, tcp6) says where each bound.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waiting import until

pytestmark = pytest.mark.e2e  # runs every service as a process

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PORTS = {"api": 8008, "prometheus": 9344, "ingest metrics": 9343, "faust web": 6066,
                 # each component's own /metrics (issue 13)
                 "processors metrics": 9345, "prometheus metrics": 9348, "api metrics": 9351}


def listening(port: int) -> set[str]:
    """The addresses TCP sockets listen on at ``port`` in this network namespace."""
    found = set()
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hexport = fields[1].partition(":")
            if fields[3] != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def probe() -> None:
    """Run inside the namespace: the commands on their defaults; print where each one listens."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SFLOWPIPE_ENRICH__OFFICE365_ENABLED": "false"}
    cli = [sys.executable, "-m", "sflowpipe.cli"]
    procs = [subprocess.Popen(cli + ["ingest", "--embedded-broker"], env=env, stdout=open("ingest.log", "wb"),
                              stderr=subprocess.STDOUT)]
    deadline = time.monotonic() + 120
    try:  # the broker first, then the others (they would wait for it anyway)
        until(lambda: listening(DEFAULT_PORTS["ingest metrics"]), timeout=120, interval=0.3)
    except AssertionError:
        pass  # what listens where is printed below, for the test to name
    for name in ("api", "prometheus", "process"):
        procs.append(subprocess.Popen(cli + [name], env=env, stdout=open(f"{name}.log", "wb"),
                                      stderr=subprocess.STDOUT))
    try:
        try:  # every port listening, or a process gone (no use waiting then)
            until(lambda: all(listening(p) for p in DEFAULT_PORTS.values()) or any(p.poll() is not None for p in procs),
                  timeout=max(1.0, deadline - time.monotonic()), interval=0.5)
        except AssertionError:
            pass
        print(json.dumps({name: sorted(listening(port)) for name, port in DEFAULT_PORTS.items()}), flush=True)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_every_listener_binds_loopback_by_default(tmp_path):
    assert shutil.which("unshare"), "needs unshare(1) (util-linux) and unprivileged user namespaces"
    proc = subprocess.Popen(["unshare", "-rn", sys.executable, "-c", "from tests.test_listeners import probe; probe()"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the probe did not finish:\n" + out[-3000:])
    logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}" for f in tmp_path.glob("*.log"))
    result = json.loads(next((line for line in out.splitlines() if line.startswith("{")), "{}") or "{}")
    assert result == {name: ["127.0.0.1"] for name in DEFAULT_PORTS}, out[-2000:] + logs
