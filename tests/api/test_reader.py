"""The API's topic reader against the real broker: logged flows from the flow-logs topic get the
same flowIDs in two API instances (their place on the topic), and status messages are dispatched
on their kind (ingester status, the workers' flow keys)."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer

from api.reader import TopicReader
from api.state import ApiState
from api.topiclog import position_id as flow_id
from sflowpipe.config_plane import ConfigWatcher, parse, publish, startup_definitions
from schemas.codec import AvroCodec
from sflowpipe.kafka import KafkaClients, ensure_topics, wiring
from sflowpipe.settings import Settings
from tests.waiting import until

pytestmark = pytest.mark.kafka




def test_two_readers_give_logged_flows_the_same_ids_and_dispatch_status_kinds(kafka_bootstrap, topic_prefix):
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 3})
    k, t = settings.kafka, settings.topics
    ensure_topics(k, [k.topic(t.flow_logs)])
    codec = AvroCodec("flow_log")
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    now = int(time.time() * 1000)
    agents = [f"10.0.0.{i}" for i in range(1, 7)]  # keyed by agent: spread over the partitions
    for i, agent in enumerate(agents):
        p.produce(k.topic(t.flow_logs), key=agent.encode(), value=codec.encode(
            {"flow": "pair", "flowKeys": f"10.1.0.{i},192.0.2.1", "keys": [f"10.1.0.{i}", "192.0.2.1"],
             "agent": agent, "dataSource": "3", "bytes": 1000 * (i + 1), "frames": i + 1, "start": now - 5000,
             "end": now - 1000, "reason": "end", "timestamp": now}))
    p.produce(k.topic(t.status), key=b"w1", value=json.dumps(
        {"kind": "flowkeys", "worker": "w1", "time": now, "keys": {"ipsource": now - 500}}).encode())
    p.produce(k.topic(t.status), key=b"h:1:0", value=json.dumps(
        {"ingester": "h:1:0", "time": now, "datagrams": 7, "samples": {"flow": 3}, "agents": {}}).encode())
    p.flush(30)

    readers = []
    try:
        for _ in range(2):
            state = ApiState(settings.api)
            reader = TopicReader(settings.api, state, settings.kafka, settings.topics, settings.limits,
                                 *wiring(settings), startup_definitions(settings))
            reader.start()
            readers.append((reader, state))
        got = [until(lambda s=s: (f := s.flows_after(-1, 100, None)) and len(f) == 6 and f) for _, s in readers]
        ids = [{f["flowID"]: f["flowKeys"] for f in flows} for flows in got]
        assert ids[0] == ids[1] and len(ids[0]) == 6
        assert {i % 1024 for i in ids[0]} <= {0, 1, 2} and len({i % 1024 for i in ids[0]}) > 1  # partitions
        assert all(flow_id(i % 1024, i // 1024) == i for i in ids[0])
        assert {f["value"] for f in got[0]} == {1000 * (i + 1) for i in range(6)}  # bytes: pair's value
        for _, s in readers:
            assert "ipsource" in until(s.flow_keys)
            assert until(lambda s=s: s.analyzer()["sFlowDatagramsReceived"] == 7)
    finally:
        for reader, _ in readers:
            reader.stop()


def test_a_get_after_a_put_never_sees_an_older_write(kafka_bootstrap, topic_prefix):
    """Read your writes: a PUT, a DELETE and a PUT again of one flow, the API's config reader
    behind them (as on a loaded machine: flow-trend's PUT/GET/DELETE of one name in a row gave a 404
    after the second PUT, the reader having just applied the first DELETE). The API shows its own
    latest write whatever older messages its reader reaches later, and follows the topic again
    once its reader has reached that write."""
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 3})
    state = ApiState(settings.api)
    body = {"keys": "ipsource", "value": "bytes"}
    for b in (body, None, body):  # what this API wrote and applied at once, its reader not started
        state.define("flow", "f", None if b is None else parse("flow", "f", b),
                     written=publish(settings, "flow", "f", b))
    seen: list[bool] = []

    def reader_applies(kind, name, d):
        state.define(kind, name, d)
        seen.append(state.get_definition("flow", "f") is not None)

    watcher = ConfigWatcher(KafkaClients(settings.kafka), settings.kafka.topic(settings.topics.config), settings.limits,
                            reader_applies, state.older)
    watcher.start()
    try:
        until(lambda: not state.written or len(seen) >= 3, 30)  # the reader reached the last write
        assert seen and all(seen), seen  # never showed the DELETE it wrote before
        publish(settings, "flow", "f", None)  # another writer's later DELETE is followed
        until(lambda: state.get_definition("flow", "f") is None, 30)
    finally:
        watcher.stop()


def test_a_registry_outage_delays_logged_flows_and_loses_none(kafka_bootstrap, topic_prefix):
    """Registry mode: a logged flow read while the schema registry does not answer (restarting:
    503) is read again once it does; skipped, it would never reach /flows/json (the reader does
    not go back)."""
    from bench.clickhouse import produce
    from sflowpipe.kafka import make_codec
    from tests.schema_registry import outage, serve

    srv, registry = serve()
    settings = Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 1,
                               "schema_registry_url": f"http://127.0.0.1:{srv.server_address[1]}"})
    k, t = settings.kafka, settings.topics
    ensure_topics(k, [k.topic(t.flow_logs)])
    now = int(time.time() * 1000)
    writer = make_codec(k, t)  # a processor's codec: registers flow_log, frames as Confluent
    produce(kafka_bootstrap, k.topic(t.flow_logs), [(b"10.0.0.1", writer.encode("flow_log", {
        "flow": "pair", "flowKeys": "10.1.0.1,192.0.2.1", "keys": ["10.1.0.1", "192.0.2.1"], "agent": "10.0.0.1",
        "dataSource": "3", "bytes": 1000, "frames": 1, "start": now - 5000, "end": now - 1000, "reason": "end",
        "timestamp": now}))])
    state = ApiState(settings.api)
    reader = TopicReader(settings.api, state, settings.kafka, settings.topics, settings.limits, *wiring(settings))
    try:
        with outage(registry) as refused:
            reader.start()
            # read again: two lookups at least (the registry client asks 4 times each)
            until(lambda: len(refused) >= 8, 30,
                  message=lambda: f"asked {len(refused)} times: the message was not read again")
            assert state.flows_after(-1, 100, None) == []
        flows = until(lambda: state.flows_after(-1, 100, None), 60)
        assert [f["flowKeys"] for f in flows] == ["10.1.0.1,192.0.2.1"] and reader.errors == 0
    finally:
        reader.stop()
        srv.shutdown()
