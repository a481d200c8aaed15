"""SinkRunner on the real broker in registry mode: a schema registry that does not answer for a while
(restarting, overloaded) delays the messages it names, it does not lose them as undecodable."""

from __future__ import annotations

import threading
import time

import pytest

from sflowpipe.kafka import ensure_topics, make_codec, wiring
from sflowpipe.settings import SyslogSettings, load_settings
from sinks.base import SinkRunner
from sinks.syslog import SyslogSink
from tests.schema_registry import outage, serve
from bench.clickhouse import produce
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
