"""Registry mode end to end (kafka.schema_registry_url): `sflowpipe up --demo` with the in-test Schema
Registry. Every stage writes the Confluent wire format and every reader takes it: ingest ->
processors -> ClickHouse, Prometheus, syslog, HTTP events, forwarding, the API, and control."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import requests
import yaml

from sflowpipe.kafka import wiring
from sflowpipe.settings import ControlPolicy, load_settings
from sinks.control.service import ControlService
from tests.kafka_helpers import read_topic
from tests.schema_registry import registry  # noqa: F401 (fixture)
from tests.sinks.http_server import RecordingServer
from tests.up_helpers import ELEPHANT_SOURCES, run_up_demo, sql_rows, wait_for

pytestmark = pytest.mark.kafka

# what the demo writes, by topic: all of it in Confluent framing, its schema under "<topic>-value"
TOPICS = ("raw", "flow-samples", "counter-samples", "enriched-flow-samples", "flows", "metrics", "events")


def test_registry_mode_from_ingest_to_every_sink(tmp_path, registry):  # noqa: F811
    syslog_file = tmp_path / "syslog.txt"
    with RecordingServer() as hook, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(1.0)
        config = tmp_path / "settings.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"schema_registry_url": registry.url},
            "sinks": {"syslog": {"file": str(syslog_file)},
                      "http": {"hook": {"type": "webhook", "url": hook.url + "/events", "batch_seconds": 0.5}}}}))
        run = run_up_demo(tmp_path / "up", config)
        up = next(run)
        try:
            check_pipeline(up, registry, hook, syslog_file, rx)
        finally:
            next(run, None)  # Ctrl-C and wait


def check_pipeline(up, registry, hook, syslog_file, rx) -> None:
    rt, data = up["url"], up["data"]
    bootstrap = re.search(r"ready on (\S+:\d+)", up["banner"]).group(1)
    # the processors read the ingesters' Confluent-framed batches: the elephants are the top flows
    top = wait_for(lambda: {r["key"].split(",")[0] for r in requests.get(
        rt + "/activeflows/ALL/pair/json?maxFlows=3", timeout=10).json()} == ELEPHANT_SOURCES, 120)
    assert top, requests.get(rt + "/activeflows/ALL/pair/json?maxFlows=3", timeout=10).text
    for name in TOPICS:  # the wire: 00 + schema id, registered under the topic's subject
        framed = read_topic(bootstrap, f"sflow.{name}", lambda m: len(m) >= 1, timeout=60, decode=bytes)
        assert framed and framed[0][:1] == b"\x00", name
        assert int.from_bytes(framed[0][1:5], "big") in registry.subjects.get(f"sflow.{name}-value", ()), name
    # ClickHouse: flow samples (written as Avro bodies under their writer schema), counters' metrics,
    # top flows and events, all decoded from Confluent framing
    tables = {"flow_samples": "agent", "metrics": "agent", "active_flows": "agent", "events": "agent"}
    for table, column in tables.items():
        rows = wait_for(lambda: (r := sql_rows(data, f"SELECT count(), uniqExact({column}) FROM {table}"))
                        and int(r[-1][0]) > 0 and r, 90, 2.0)
        assert rows, table
    assert wait_for(lambda: any(e["metric"] == "pair" for e in requests.get(
        rt + "/events/json?maxEvents=20", timeout=10).json()), 60)  # the API reads events too
    # the Prometheus exporter serves the processors' counter metrics
    prom = yaml.safe_load((data / "sflowpipe-up.yaml").read_text())["sinks"]["prometheus"]["listen"]
    assert wait_for(lambda: "ifinoctets{" in requests.get(f"http://{prom}/metrics", timeout=10).text, 60)
    # the event sinks: syslog (to a file) and a webhook get the elephant events
    assert wait_for(lambda: syslog_file.exists() and "elephant" in syslog_file.read_text(), 60)
    assert wait_for(lambda: any(b"elephant" in r.body for r in hook.requests), 60)
    # forwarding reads the raw topic
    assert requests.put(rt + "/forwarding/copy/json", json={"address": "127.0.0.1", "port": rx.getsockname()[1]},
                        timeout=10).status_code == 204
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 5 and time.monotonic() < deadline:
        try:
            got.append(rx.recv(65535))
        except socket.timeout:
            pass
    assert len(got) >= 5 and all(d[:4] == b"\x00\x00\x00\x05" for d in got)
    check_control(bootstrap, registry.url)


def check_control(bootstrap: str, registry_url: str) -> None:
    """Control reads the processors' events and top flows (Confluent framing) and writes its own."""
    settings = load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.schema_registry_url": registry_url})
    policy = ControlPolicy.model_validate({"threshold": "elephant", "min_hold_s": 600, "action": {"type": "dryrun"}})
    settings = settings.model_copy(update={"sinks": settings.sinks.model_copy(update={"controls": {"block": policy}})})
    clients, codec = wiring(settings)
    svc = ControlService(settings.sinks.controls, settings.kafka, settings.topics, clients, codec, group="registry-control",
                         restore_quiet_s=1.0)
    svc.start()
    th = threading.Thread(target=svc.run, daemon=True)
    th.start()
    try:
        assert wait_for(lambda: svc.counts["apply"] > 0, 60), svc.counts
        assert svc.flows.merged("pair", max_flows=3)  # the top flows were decoded too
    finally:
        svc.stop()
        th.join(30)
    own = read_topic(bootstrap, "sflow.events", lambda m: any(e["metric"] == "control_apply" for e in m),
                     timeout=30, decode=lambda v: codec.decode(v)[1])
    assert any(e["metric"] == "control_apply" and e["thresholdID"] == "block" for e in own)
