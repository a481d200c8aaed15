"""`sflowpipe control` with a BGP action, end to end: a threshold event and the active flows on
the real broker make the control service announce a remote-triggered black-hole route through
ExaBGP to a real BIRD 2 (tests/sinks/control/test_bgp.py starts it); once the flow is below its
threshold and min_hold_s has passed, the route is withdrawn. The service runs in-process on its
own thread (start, run, stop: what `sflowpipe control` does), nothing is mocked."""

from __future__ import annotations

import re
import threading
import time

import pytest
from confluent_kafka import Producer

from schemas.codec import AvroCodec
from sflowpipe.kafka import ensure_topics, wiring
from sflowpipe.settings import ControlPolicy, load_settings
from sinks.control.service import ControlService
from tests.kafka_helpers import read_topic
from tests.sinks.control.test_bgp import BIRD_ADDR, EXA_ADDR, _answered, bird_factory  # noqa: F401 (fixture)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

TARGET = "198.51.100.7"
KEY = f"{TARGET},53"
THRESHOLD = 10000.0
MIN_HOLD_S = 3.0
RELEASE_BELOW_S = 2.0
ROUTE = ("show", "route", f"{TARGET}/32", "all")


def make_settings(bootstrap: str, prefix: str, bird_port: int, run_dir: str):
    policy = ControlPolicy.model_validate({
        "threshold": "udp_reflection", "min_hold_s": MIN_HOLD_S, "release_below_s": RELEASE_BELOW_S,
        "action": {"type": "bgp", "mode": "rtbh", "local_as": 65002, "peer_as": 65001, "router_id": "10.255.0.2",
                   "local_address": EXA_ADDR, "peer_address": BIRD_ADDR, "peer_port": bird_port,
                   "connect_timeout_s": 20, "run_dir": run_dir}})
    s = load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.topic_prefix": prefix, "kafka.partitions": 1,
                         "kafka.consumer": {"session.timeout.ms": "6000"}})
    return s.model_copy(update={"sinks": s.sinks.model_copy(update={"controls": {"rtbh": policy}})})


class FlowsPublisher:
    """active_flows of flow "reflection" for one agent every 0.3 s: the key at ``value``."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.codec = AvroCodec("active_flows")
        self.value = 5e4
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="flows-publisher", daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            flows = [{"dataSource": "3", "key": KEY, "value": self.value}] if self.value > 0 else []
            msg = {"flow": "reflection", "agent": "192.0.2.200", "timestamp": int(time.time() * 1000),
                   "value": "frames", "flows": flows}
            self.producer.produce(self.topic, self.codec.encode(msg), b"192.0.2.200")
            self.producer.poll(0)
            self.done.wait(0.3)
        self.producer.flush(10)


def test_rtbh_route_announced_then_withdrawn(kafka_bootstrap, topic_prefix, bird_factory, tmp_path):  # noqa: F811
    bird, port = bird_factory(flowspec=False)
    settings = make_settings(kafka_bootstrap, topic_prefix, port, str(tmp_path / "exabgp"))
    events_topic, flows_topic = topic_prefix + "events", topic_prefix + "flows"
    ensure_topics(settings.kafka, [events_topic, flows_topic])
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "linger.ms": 5})

    service = ControlService(settings.sinks.controls, settings.kafka, settings.topics, *wiring(settings),
                             group=f"{topic_prefix}control", restore_quiet_s=1.0)
    service.start()  # starts ExaBGP: returns once the session to BIRD is up
    runner = threading.Thread(target=service.run, name="control", daemon=True)
    runner.start()
    flows = FlowsPublisher(producer, flows_topic)
    flows.thread.start()
    try:
        bird.wait_for(lambda o: re.search(r"exa\s+BGP\s+\S+\s+up\s", o), "session up", "show", "protocols")
        assert "(65535,666)" not in bird.birdc(*ROUTE)  # nothing announced before the event

        event = {"eventID": 1, "thresholdID": "udp_reflection", "agent": "192.0.2.200", "dataSource": "3",
                 "metric": "reflection", "value": 5e4, "threshold": THRESHOLD, "flowKey": KEY,
                 "timestamp": int(time.time() * 1000)}
        producer.produce(events_topic, AvroCodec("event").encode(event), b"192.0.2.200")
        assert producer.flush(10) == 0

        out = bird.wait_for(lambda o: f"{TARGET}/32" in o and "(65535,666)" in o, "the RTBH route", *ROUTE)
        seen_at = time.monotonic()
        assert "192.0.2.1" in out and "BGP.as_path: 65002" in out, out

        time.sleep(1.0)  # still over the threshold: the route stays
        assert "(65535,666)" in bird.birdc(*ROUTE)
        flows.value = 0.0  # the flood is over: the key is gone from the top flows
        below_at = time.monotonic()
        bird.wait_for(lambda o: _answered(o) and f"{TARGET}/32" not in o, "the withdrawal", *ROUTE, timeout=20)
        gone_at = time.monotonic()
        assert gone_at - below_at >= RELEASE_BELOW_S - 0.5, (gone_at - below_at)
        assert gone_at - seen_at >= MIN_HOLD_S - 0.5, (gone_at - seen_at)
    finally:
        flows.done.set()
        flows.thread.join(15)
        service.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert service.counts == {"apply": 1, "release": 1, "refused": 0, "failed": 0}, service.counts

    evs = read_topic(kafka_bootstrap, events_topic,
                     lambda ms: any(m["metric"] == "control_release" for m in ms), timeout=30)
    mine = [(e["metric"], e["thresholdID"], e["flowKey"]) for e in evs if e["metric"].startswith("control_")]
    assert mine == [("control_apply", "rtbh", KEY), ("control_release", "rtbh", KEY)]
    apply_ts, release_ts = (e["timestamp"] for e in evs if e["metric"].startswith("control_"))
    assert release_ts - apply_ts >= MIN_HOLD_S * 1000
