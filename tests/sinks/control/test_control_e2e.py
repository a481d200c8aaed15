"""The UDP-reflection scenario end to end on the real broker: `sflowpipe ingest`, `sflowpipe
process` and `sflowpipe control` as processes, synthetic sFlow over UDP (normal traffic, a DNS
amplification flood to one address for ~10 s, normal again), and a local HTTP server standing in
for the controller: it must see exactly one block (POST) of the flood's key, then exactly one
unblock (DELETE) once the flood is over and min_hold_s has passed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from ingest.generate import Generator
from sflowpipe.broker import free_port
from tests.ingest.ingest_harness import IngestProcess
from tests.kafka_helpers import read_topic
from tests.processors.processor_harness import ProcessorProcess
from tests.sinks.http_server import RecordingServer
from tests.procs import stop_gracefully
from tests.scrape import scrape
from tests.waiting import until

pytestmark = pytest.mark.kafka

TARGET = "192.0.2.99"
KEY = f"{TARGET},53"
MIN_HOLD_S = 5.0

DEFINITIONS = {
    "flows": {"reflection": {"keys": "ipdestination,udpsourceport", "value": "frames",
                             "filter": "udpsourceport=53", "t": 1}},
    # the flood: ~300 samples/s per agent x 1000 (sampling rate) over 8 interfaces, ~37k frames/s per
    # data source; the normal mix sends DNS only *to* port 53, so it never reaches this flow
    "thresholds": {"udp_reflection": {"metric": "reflection", "value": 10000, "byFlow": True, "timeout": 2}},
}


class ControlProcess:
    """`sflowpipe control` in a subprocess: Kafka through the environment, policies from a file."""

    def __init__(self, bootstrap: str, prefix: str, tmp, controller_url: str) -> None:
        self.config = tmp / "control.yaml"
        self.config.write_text(yaml.safe_dump({"sinks": {"controls": {"dns": {
            "threshold": "udp_reflection", "min_hold_s": MIN_HOLD_S, "release_below_s": 2,
            "allow": ["10.0.0.0/8"],
            "action": {"type": "http", "backoff_s": 0.2,
                       "apply": {"method": "POST", "url": controller_url + "/block",
                                 "body": '{"key": "$key", "address": "$k0", "agent": "$agent"}'},
                       "release": {"method": "DELETE", "url": controller_url + "/block/${k0}"}}}}}}))
        self.env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                    "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix, "SFLOWPIPE_KAFKA__PARTITIONS": "3",
                    "SFLOWPIPE_KAFKA__CONSUMER": json.dumps({"session.timeout.ms": "6000"}),
                    "SFLOWPIPE_SINKS__CONTROL_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}
        self.group = f"{prefix}control"
        self.log = tmp / "control.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "--config", str(self.config), "control",
                                      "--consumer-group", self.group], env=self.env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:

        def started() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return "control: policies" in self.log.read_text(errors="replace")

        until(started, timeout, message=lambda: f"control did not start: {self.log.read_text(errors='replace')[-3000:]}")

    def metrics(self):
        return scrape(f"http://{self.env['SFLOWPIPE_SINKS__CONTROL_METRICS_LISTEN']}/metrics")

    def stop(self, timeout: float = 30) -> int:
        return stop_gracefully(self.proc, timeout)


def send(sock, gen: Generator, port: int, seconds: float, rate: float = 200.0, until=None) -> None:
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        sock.sendto(gen.datagram(), ("127.0.0.1", port))
        n += 1
        delay = t0 + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing: the traffic's rate is part of the scenario
        if until is not None and n % 50 == 0 and until():
            return


def test_udp_reflection_blocked_then_released(kafka_bootstrap, topic_prefix, tmp_path):
    with RecordingServer() as ctl:
        control = ControlProcess(kafka_bootstrap, topic_prefix, tmp_path, ctl.url)
        ingest = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, free_port())
        worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, DEFINITIONS, app_id=f"{topic_prefix}app")
        control.start()
        try:
            ingest.start()
            worker.start()
            control.wait_ready()
            gen = Generator(agents=2, flood_target=TARGET, seed=7)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                send(sock, gen, ingest.port, 6)  # normal traffic: nothing to block
                assert ctl.requests == [], ctl.requests
                gen.flooding = True
                send(sock, gen, ingest.port, 10)
                gen.flooding = False
                flood_end = time.time()
                send(sock, gen, ingest.port, 40, until=lambda: ctl.delivered("DELETE"))
                released_at = time.time()
                send(sock, gen, ingest.port, 3)  # normal again: nothing more
            scraped = control.metrics()  # its /metrics over HTTP: what it did
            assert scraped.value("sflowpipe_control_actions_total", outcome="apply") == 1
            assert scraped.value("sflowpipe_control_actions_total", outcome="release") == 1
            assert scraped.value("sflowpipe_control_actions_total", outcome="failed") == 0
            assert scraped.value("sflowpipe_control_active") == 0
        finally:
            assert control.stop() == 0, control.log.read_text(errors="replace")[-3000:]
            worker.stop()
            ingest.stop()
    log = control.log.read_text(errors="replace")
    assert [c.method for c in ctl.requests] == ["POST", "DELETE"], (ctl.requests, log[-3000:])
    post, delete = ctl.requests
    assert json.loads(post.body)["key"] == KEY and json.loads(post.body)["address"] == TARGET
    assert delete.path == f"/block/{TARGET}"
    assert released_at - flood_end < 30, log[-3000:]
    assert "released 192.0.2.99,53" in log
    evs = read_topic(kafka_bootstrap, topic_prefix + "events",
                     lambda ms: sum(m["metric"] == "control_release" for m in ms) >= 1, timeout=30)
    fired = [e for e in evs if e["thresholdID"] == "udp_reflection"]
    assert fired and {e["flowKey"] for e in fired} == {KEY}
    mine = [(e["metric"], e["flowKey"]) for e in evs if e["metric"].startswith("control_")]
    assert mine == [("control_apply", KEY), ("control_release", KEY)]
    apply_ts = next(e["timestamp"] for e in evs if e["metric"] == "control_apply")
    release_ts = next(e["timestamp"] for e in evs if e["metric"] == "control_release")
    assert release_ts - apply_ts >= MIN_HOLD_S * 1000
    assert release_ts / 1000 > flood_end
    # its numbers on the status topic every 2 s (the API's status page and /analyzer/json), the
    # same as its /metrics: held 5 s, so seen applied; the last one after the release
    statuses = read_topic(kafka_bootstrap, topic_prefix + "status",
                          lambda ms: any(m.get("kind") == "control" and m["released"] == 1 for m in ms),
                          timeout=30, decode=json.loads)
    mine = [m for m in statuses if m.get("kind") == "control"]
    assert {m["component"] for m in mine} == {control.group}
    assert any(m["active"] == 1 and m["applied"] == 1 and m["released"] == 0 for m in mine), mine
    last = mine[-1]
    assert (last["applied"], last["released"], last["active"], last["failed"], last["refused"]) == (1, 1, 0, 0, 0)
