"""The control service on the real broker: durable state on the compacted topic across restarts,
events of what it did, dead letters of what failed. The service's loop is driven by hand
(on_event, tick) with a fake clock, so the timing is exact."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import load_settings
from sinks.control.service import ControlService, read_compacted
from tests.kafka_helpers import read_topic
from tests.sinks.http_server import RecordingServer, Reply
from tests.waiting import until

pytestmark = pytest.mark.kafka


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def make_settings(bootstrap: str, prefix: str, url: str, max_retries: int = 3):
    policy = {"threshold": "udp_reflection", "min_hold_s": 5, "release_below_s": 2, "allow": ["10.0.0.0/8"],
              "action": {"type": "http", "max_retries": max_retries, "backoff_s": 0.01,
                         "apply": {"method": "POST", "url": url + "/block", "body": '{"key": "$key"}'},
                         "release": {"method": "DELETE", "url": url + "/block/${k0}"}}}
    s = load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.topic_prefix": prefix, "kafka.partitions": 2,
                         "kafka.consumer": {"session.timeout.ms": "6000"}})
    return s.model_copy(update={"sinks": s.sinks.model_copy(update={"controls": {"dns": _policy(policy)}})})


def _policy(d):
    from sflowpipe.settings import ControlPolicy

    return ControlPolicy.model_validate(d)


def event(clock: Clock, key: str = "192.0.2.10,53", metric: str = "reflection") -> dict:
    return {"eventID": 1, "thresholdID": "udp_reflection", "agent": "192.0.2.200", "dataSource": "3",
            "metric": metric, "value": 5e4, "threshold": 1e4, "flowKey": key, "timestamp": int(clock() * 1000)}


def started(settings, clock) -> ControlService:
    svc = ControlService(settings.sinks.controls, settings.kafka, settings.topics, *wiring(settings),
                         group=f"{settings.kafka.topic_prefix}control", clock=clock, restore_quiet_s=1.5)
    svc.start()
    return svc


def stopped(svc: ControlService) -> None:
    svc.stop()
    svc.run()  # returns at once: commits, closes, flushes


def test_restart_neither_reapplies_nor_forgets(kafka_bootstrap, topic_prefix):
    clock = Clock()
    with RecordingServer() as ctl:
        settings = make_settings(kafka_bootstrap, topic_prefix, ctl.url)
        svc = started(settings, clock)
        svc.on_event(event(clock))
        svc.on_event(event(clock))  # a second agent/data source over the threshold: same control
        svc.on_event({**event(clock), "metric": "control_apply"})  # our own events are ignored
        svc.on_event({**event(clock), "thresholdID": "elephant"})  # no policy
        svc.on_event({**event(clock), "timestamp": int((clock() - 3600) * 1000)})  # a backlog: too old
        assert [c.method for c in ctl.requests] == ["POST"]
        assert json.loads(ctl.requests[0].body) == {"key": "192.0.2.10,53"}
        stopped(svc)

        clock.t += 1
        svc = started(settings, clock)  # restored from the compacted topic
        assert [c["key"] for c in svc.active()] == ["192.0.2.10,53"]
        svc.on_event(event(clock))
        assert [c.method for c in ctl.requests] == ["POST"]  # not applied twice
        svc.tick()  # no active flows: below from now on
        clock.t += 3
        svc.tick()  # held 4 s of the 5: stays
        assert [c.method for c in ctl.requests] == ["POST"]
        clock.t += 1
        svc.tick()
        assert [(c.method, c.path) for c in ctl.requests] == [("POST", "/block"), ("DELETE", "/block/192.0.2.10")]
        stopped(svc)

        svc = started(settings, clock)  # the tombstone: nothing to release any more
        assert svc.active() == []
        stopped(svc)

    state = read_compacted(KafkaClients(settings.kafka), topic_prefix + "controls", quiet_s=1.5)
    assert state == {"dns|192.0.2.10,53": None}
    evs = read_topic(kafka_bootstrap, topic_prefix + "events",
                     lambda ms: sum(m["metric"].startswith("control_") for m in ms) >= 2, timeout=30)
    mine = [(e["metric"], e["thresholdID"], e["flowKey"]) for e in evs if e["metric"].startswith("control_")]
    assert mine == [("control_apply", "dns", "192.0.2.10,53"), ("control_release", "dns", "192.0.2.10,53")]


def test_failed_apply_goes_to_dead_letter(kafka_bootstrap, topic_prefix):
    clock = Clock()
    with RecordingServer(Reply(503, b'{}')) as ctl:
        settings = make_settings(kafka_bootstrap, topic_prefix, ctl.url, max_retries=2)
        svc = started(settings, clock)
        svc.on_event(event(clock, key="10.1.2.3,53"))  # allow-listed: refused, no request
        assert ctl.requests == []
        svc.on_event(event(clock))
        assert [c.status for c in ctl.requests] == [503, 503, 503]
        assert svc.active() == []  # not applied: a later event may try again
        ctl.default = Reply(200, b"{}")
        svc.on_event(event(clock))
        assert svc.active() and ctl.requests[-1].status == 200
        stopped(svc)
    dead = read_topic(kafka_bootstrap, topic_prefix + "deadletter", lambda ms: len(ms) >= 1, timeout=30)
    assert len(dead) == 1 and dead[0]["stage"] == "control:dns:apply"
    assert "HTTP 503" in dead[0]["error"] and json.loads(dead[0]["data"])["key"] == "192.0.2.10,53"
    assert dead[0]["reason"] == "action_failed"
    assert svc.metrics.get("sflowpipe_dead_letters_total", (("stage", "control:dns:apply"),
                                                            ("reason", "action_failed"))) == 1
    assert svc.metrics.get("sflowpipe_control_actions_total", (("outcome", "failed"),)) == 1
    assert svc.metrics.get("sflowpipe_control_actions_total", (("outcome", "refused"),)) == 1
    assert svc.metrics.get("sflowpipe_control_actions_total", (("outcome", "apply"),)) == 1
    evs = read_topic(kafka_bootstrap, topic_prefix + "events", lambda ms: len(ms) >= 3, timeout=30)
    assert [(e["metric"], e["flowKey"]) for e in evs] == [
        ("control_refused", "10.1.2.3,53"), ("control_failed", "192.0.2.10,53"), ("control_apply", "192.0.2.10,53")]


def test_failed_apply_is_retried_while_the_flood_goes_on(kafka_bootstrap, topic_prefix):
    """The controller is down when the flood's one event comes: the service tries again every
    apply_retry_s while the measured flow stays over the threshold, and applies once it is back."""
    clock = Clock()
    with RecordingServer(Reply(503, b"{}")) as ctl:
        settings = make_settings(kafka_bootstrap, topic_prefix, ctl.url, max_retries=0)
        svc = started(settings, clock)

        def flows(value: float) -> None:
            svc.flows.update({"flow": "reflection", "agent": "192.0.2.200", "timestamp": int(clock() * 1000),
                              "value": "bytes", "flows": [{"dataSource": "3", "key": "192.0.2.10,53",
                                                           "value": value}]})

        flows(5e4)
        svc.on_event(event(clock))
        assert [c.status for c in ctl.requests] == [503] and svc.active() == []
        clock.t += 5
        flows(5e4)
        svc.tick()
        assert len(ctl.requests) == 1  # apply_retry_s (10 s) not reached
        clock.t += 5
        flows(5e4)
        svc.tick()
        assert [c.status for c in ctl.requests] == [503, 503]  # tried again: still down
        ctl.default = Reply(200, b"{}")
        clock.t += 10
        flows(5e4)
        svc.tick()
        assert [c.status for c in ctl.requests] == [503, 503, 200]
        assert [c["key"] for c in svc.active()] == ["192.0.2.10,53"]
        clock.t += 10
        flows(5e4)
        svc.tick()
        assert len(ctl.requests) == 3  # applied: no more tries
        stopped(svc)
    evs = read_topic(kafka_bootstrap, topic_prefix + "events", lambda ms: len(ms) >= 3, timeout=30)
    assert [e["metric"] for e in evs] == ["control_failed", "control_failed", "control_apply"]



def test_a_second_instance_in_the_group_is_reported(kafka_bootstrap, topic_prefix, caplog):
    """Run one control instance: a second one in the same consumer group splits the partitions,
    and both say so."""
    import logging
    import threading

    clock = Clock()
    with RecordingServer() as ctl:
        settings = make_settings(kafka_bootstrap, topic_prefix, ctl.url)
        first = started(settings, clock)
        t1 = threading.Thread(target=first.run, daemon=True)
        t1.start()
        until(lambda: first.assigned, timeout=30)
        assert first.assigned == 4 and not first.partial  # events + flows, 2 partitions each
        with caplog.at_level(logging.ERROR, logger="sinks.control.service"):
            second = started(settings, clock)
            t2 = threading.Thread(target=second.run, daemon=True)
            t2.start()
            try:
                until(lambda: first.partial and second.partial, timeout=60)
            finally:
                for svc, t in ((second, t2), (first, t1)):
                    svc.stop()
                    t.join(30)
        assert first.partial and second.partial
        assert "another member is in consumer group" in caplog.text
        # and on the status page (the status message's group_shared, from the registry's gauge)
        assert first.status_message()["group_shared"] == second.status_message()["group_shared"] == 1


def test_a_registry_outage_delays_flows_and_loses_none(kafka_bootstrap, topic_prefix):
    """Registry mode: the active flows the service measures controls by, read while the schema
    registry does not answer (restarting: 503), are read again once it does, not skipped for good
    (a control would then be released, or held, on flows it never saw)."""
    from bench.clickhouse import produce
    from sflowpipe.kafka import ensure_topics, make_codec
    from tests.schema_registry import outage, serve

    srv, registry = serve()
    clock = Clock()
    try:
        with RecordingServer() as ctl:
            settings = make_settings(kafka_bootstrap, topic_prefix, ctl.url)
            url = f"http://127.0.0.1:{srv.server_address[1]}"
            settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
                update={"schema_registry_url": url})})
            k, t = settings.kafka, settings.topics
            ensure_topics(k, [k.topic(t.flows)])
            writer = make_codec(k, t)  # a processor's codec: registers active_flows, frames as Confluent
            flows = {"flow": "reflection", "agent": "192.0.2.200", "timestamp": int(clock() * 1000), "value": "bytes",
                     "flows": [{"dataSource": "3", "key": "192.0.2.10,53", "value": 5e4}]}
            produce(kafka_bootstrap, k.topic(t.flows), [(b"192.0.2.200", writer.encode("active_flows", flows))])
            svc = started(settings, clock)  # its codec registers events, not active flows: it must ask
            thread = threading.Thread(target=svc.run, name="control")
            try:
                with outage(registry) as refused:
                    thread.start()
                    # read again: two lookups at least (the registry client asks 4 times each)
                    until(lambda: len(refused) >= 8, 30,
                          message=lambda: f"asked {len(refused)} times: the message was not read again")
                    assert svc.values("reflection") == {}
                until(lambda: svc.values("reflection") == {"192.0.2.10,53": 5e4}, 60)
            finally:
                svc.stop()
                if thread.is_alive():
                    thread.join(30)
    finally:
        srv.shutdown()
