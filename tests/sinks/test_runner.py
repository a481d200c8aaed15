"""SinkRunner on the real broker: in registry mode, a schema registry that does not answer for a while
(restarting, overloaded) delays the messages it names, it does not lose them as undecodable; a commit
the broker refuses does not end the sink."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import ConsumerGroupState

from sflowpipe.kafka import ensure_topics, make_codec, wiring
from sflowpipe.settings import SyslogSettings, load_settings
from sinks.base import SinkRunner
from sinks.syslog import SyslogSink
from tests.schema_registry import outage, serve
from bench.clickhouse import produce
from tests.kafka_helpers import group_lag
from tests.waiting import until

pytestmark = pytest.mark.kafka


def event(i: int) -> dict:
    return {"eventID": 1763683200000000 + i, "thresholdID": "elephant", "agent": "192.0.2.200", "dataSource": "3",
            "metric": "pair", "value": 2500000.0 + i, "threshold": 1250000.0, "flowKey": f"10.1.0.{i},192.0.2.10",
            "timestamp": int(time.time() * 1000)}


def test_a_registry_outage_delays_messages_and_loses_none(kafka_bootstrap, topic_prefix, tmp_path):
    srv, registry = serve()
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 1,
                                "kafka.schema_registry_url": f"http://127.0.0.1:{srv.server_address[1]}"})
    k, t = settings.kafka, settings.topics
    events_topic = k.topic(t.events)
    ensure_topics(k, [events_topic, k.topic(t.status)])
    writer = make_codec(k, t)  # a processor's codec: registers the event schema, frames as Confluent
    produce(kafka_bootstrap, events_topic, [(b"192.0.2.200", writer.encode("event", event(i))) for i in range(3)])

    out = tmp_path / "events.log"
    sink = SyslogSink(SyslogSettings(file=str(out), format="rfc5424"))
    clients, codec = wiring(settings)  # the sink's own codec: it has to ask the registry for the id
    runner = SinkRunner(sink, [events_topic], f"{topic_prefix}syslog", 500, 0.2, clients=clients, codec=codec,
                        status_topic=k.topic(t.status))
    runner.start()
    thread = threading.Thread(target=runner.run, name="runner")
    try:
        with outage(registry) as refused:
            thread.start()
            # the registry client asks 4 times (3 retries) per lookup: away long enough for all 3 messages
            until(lambda: len(refused) >= 12, 60)
            assert not out.exists() or out.read_text() == ""
        until(lambda: out.exists() and out.read_text().count("\n") == 3, 60,
              message=lambda: f"undecodable: {runner.metrics.total('sflowpipe_sink_undecodable_total')}")
        assert runner.metrics.total("sflowpipe_sink_undecodable_total") == 0
    finally:
        runner.stop()
        if thread.is_alive():
            thread.join(30)
        sink.close()
        srv.shutdown()


class HeldSink:
    """A destination whose first write waits until the test lets it through (a slow ClickHouse)."""

    def __init__(self) -> None:
        self.buffer: list = []
        self.written: list = []
        self.writing = threading.Event()
        self.let_through = threading.Event()

    def add(self, topic, stem, key, datum, raw) -> int:
        self.buffer.append(datum)
        return 1

    def pending(self) -> int:
        return len(self.buffer)

    def flush(self) -> None:
        self.writing.set()
        self.let_through.wait(60)
        self.written += self.buffer
        self.buffer.clear()


def test_a_refused_commit_does_not_end_the_sink(kafka_bootstrap, topic_prefix):
    """A commit the broker refuses is logged and counted, and the runner goes on; its next commit
    covers the offsets. Provoked for real: a write that outlasts max.poll.interval.ms (here 6 s)
    drops the member from its group, and the commit that follows is refused (Unknown member). A
    commit during a rebalance can be refused the same way on Kafka (Tansu accepts it)."""
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 2,
                                "kafka.consumer": {"max.poll.interval.ms": "6000", "session.timeout.ms": "6000"}})
    k, t = settings.kafka, settings.topics
    events_topic = k.topic(t.events)
    ensure_topics(k, [events_topic, k.topic(t.status)])
    clients, codec = wiring(settings)
    produce(kafka_bootstrap, events_topic, [(f"192.0.2.{i}".encode(), codec.encode("event", event(i)))
                                            for i in range(6)])
    sink = HeldSink()
    group = f"{topic_prefix}sink"
    runner = SinkRunner(sink, [events_topic], group, 500, 0.2, clients=clients, codec=codec,
                        status_topic=k.topic(t.status))
    runner.start()
    thread = threading.Thread(target=runner.run, name="runner")
    thread.start()
    try:
        until(sink.writing.is_set, 60)
        admin = clients.admin()

        def left() -> bool:  # the write outlasted max.poll.interval.ms: the member left, the group is empty
            return admin.describe_consumer_groups([group])[group].result(timeout=5).state == ConsumerGroupState.EMPTY

        until(left, 60)
        sink.let_through.set()
        until(lambda: runner.metrics.total("sflowpipe_sink_commit_failures_total") >= 1, 30,
              message=lambda: f"runner alive: {thread.is_alive()}")
        assert thread.is_alive()
        # rejoined: what was not committed is read again, written again (at-least-once) and committed
        until(lambda: group_lag(kafka_bootstrap, group, events_topic) == 0, 60,
              message=lambda: f"written {len(sink.written)}, alive: {thread.is_alive()}")
        assert thread.is_alive() and len(sink.written) >= 6
        assert {e["eventID"] for e in sink.written} == {event(i)["eventID"] for i in range(6)}
    finally:
        sink.let_through.set()
        runner.stop()
        thread.join(30)
