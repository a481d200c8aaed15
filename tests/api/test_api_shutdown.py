"""SIGTERM to `sflowpipe api` while clients hold long-polls open (issue 12): the polls are
answered at once and the process exits within 5 s, not after the clients' timeouts (600 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from sflowpipe.broker import free_port
from tests.procs import stop_gracefully
from tests.waiting import until

pytestmark = pytest.mark.kafka


def test_sigterm_ends_open_long_polls(kafka_bootstrap, topic_prefix, tmp_path):
    port = free_port()
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
           "SFLOWPIPE_KAFKA__TOPIC_PREFIX": topic_prefix, "SFLOWPIPE_API__METRICS_LISTEN": "127.0.0.1:0"}
    log = tmp_path / "api.log"
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "api", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    answers: list = []
    try:
        def up():
            try:
                return urllib.request.urlopen(base + "/version", timeout=2).status == 200
            except OSError:
                return False

        until(up, 60)

        def poll(path: str) -> None:
            with urllib.request.urlopen(base + path, timeout=120) as r:
                answers.append((path, r.status, json.loads(r.read()), time.monotonic()))

        polls = [threading.Thread(target=poll, args=(p,), daemon=True)
                 for p in ("/events/json?eventID=999999&timeout=600", "/flows/json?flowID=999999&timeout=600")]
        for t in polls:
            t.start()
        def both_open() -> bool:  # the API's own count (its registry, in /analyzer/json)
            with urllib.request.urlopen(base + "/analyzer/json", timeout=5) as r:
                return json.loads(r.read())["apiLongPollsOpen"] == 2

        until(both_open, 30)
        assert not answers
        t0 = time.monotonic()
        code = stop_gracefully(proc, timeout=30)
        took = time.monotonic() - t0
        for t in polls:
            t.join(10)
    finally:
        stop_gracefully(proc, 5)
    assert took < 5, f"exit took {took:.1f}s: {log.read_text()[-2000:]}"
    assert code == 0, log.read_text()
    assert sorted((p.split("?")[0], s, body) for p, s, body, _ in answers) == [("/events/json", 200, []),
                                                                            ("/flows/json", 200, [])]
    assert all(at - t0 < 5 for *_, at in answers)
