"""A message that passes the ClickHouse sink's checks but that ClickHouse refuses (a poison pill):
on the real broker and chDB it is dead-lettered and everything around it written, once."""

from __future__ import annotations

import threading
import time

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from bench.clickhouse import enriched_batches, produce
from schemas.codec import AvroCodec
from sflowpipe.kafka import ensure_topics, wiring
from sflowpipe.metrics import MetricsServer
from sflowpipe.settings import ClickHouseSettings, load_settings
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.poison import PoisonOutbox
from sinks.clickhouse.sink import ClickHouseService, ClickHouseSink, connect, samples_in, topics_of
from tests.kafka_helpers import group_lag, read_topic
from tests.scrape import scrape
from tests.waiting import until

pytestmark = [pytest.mark.clickhouse, pytest.mark.kafka]

CODEC = AvroCodec("enriched_flow_sample_batch")
PREFIX_LEN = len(CODEC.current.prefix)


def poisons(batches: list[dict]) -> dict[str, bytes]:
    """Flow batches whose framing is sound (samples_in counts their samples) but whose data
    ClickHouse refuses, each named by the error ClickHouse gives; built from ``batches``' first
    three (their bytes differ: not taken for redeliveries of them)."""
    a, b, c = batches[:3]
    out = {
        "CANNOT_PARSE_IPV6": CODEC.encode(dict(a, agent_address="not-an-address")),
        # the view ARRAY JOINs the columns: one shorter than the others
        "SIZES_OF_ARRAYS_DONT_MATCH": CODEC.encode(dict(b, src_ip=b["src_ip"][:-1])),
        "avro::Exception": CODEC.encode(c)[:-7],  # cut short inside its last columns
    }
    for raw in out.values():
        assert samples_in(raw[PREFIX_LEN:]) > 0  # what the sink checks before the insert passes
    return out


def samples(batches: list[dict]) -> int:
    return sum(len(b["receive_time_us"]) for b in batches)


def test_poison_flow_batches_are_dead_lettered_and_the_rest_written(kafka_bootstrap, topic_prefix, tmp_path):
    """Three poison pills among good flow batches, an event behind them: the sink wrote nothing
    more (it retried the refused insert forever). Now each poison pill is on the dead-letter topic
    with ClickHouse's error, every good sample is in ClickHouse once, and the offsets are committed."""
    data_dir = tmp_path / "ch"
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 1, "sinks.clickhouse": {"dsn": f"chdb://{data_dir}",
                                                                            "batch_seconds": 0.3}})
    k, t = settings.kafka, settings.topics
    ensure_topics(k, topics_of(k, t))
    now_us = int(time.time() * 1e6)
    good = enriched_batches(3000, seed=11, start_us=now_us - 120_000_000)
    bad = poisons(enriched_batches(900, seed=12, start_us=now_us - 60_000_000))
    messages = [CODEC.encode(b) for b in good]
    for i, raw in enumerate(bad.values()):  # spread among the good ones
        messages.insert(1 + i * 4, raw)
    flow_topic = k.topic(t.enriched_flow_samples)
    produce(kafka_bootstrap, flow_topic, [(b"192.0.2.1", raw) for raw in messages])
    event_codec = AvroCodec("event")
    event = event_codec.decode(open("schemas/examples/event.v1.avro", "rb").read())
    produce(kafka_bootstrap, k.topic(t.events),
            [(b"192.0.2.1", event_codec.encode(dict(event, eventID=1, timestamp=now_us // 1000)))])

    service = ClickHouseService(settings.sinks.clickhouse, topics_of(k, t), k.topic(t.status), *wiring(settings),
                                serve_sql=False, deadletter_topic=k.topic(t.deadletter))
    service.start()
    runner = threading.Thread(target=service.runner.run)
    runner.start()
    metrics = MetricsServer("127.0.0.1:0", service.runner.metrics).start()
    try:
        def counts() -> tuple[int, int]:
            with service.runner.sink.lock:
                return (service.client.command("SELECT count() FROM sflow.flow_samples"),
                        service.client.command("SELECT count() FROM sflow.events"))

        until(lambda: counts() == (samples(good), 1), timeout=90,
              message=lambda: f"the sink stalled: (flow samples, events) {counts()}, expected {(samples(good), 1)}")
        until(lambda: group_lag(kafka_bootstrap, settings.sinks.clickhouse.consumer_group, flow_topic) == 0,
              timeout=30, message="the offsets past the poison pills were not committed")
        scraped = scrape(metrics.url)
        status = service.runner.status_message()
    finally:
        metrics.stop()
        service.stop()
        runner.join()
        service.close()
    dead = read_topic(kafka_bootstrap, k.topic(t.deadletter), until=lambda m: len(m) >= 3, timeout=30)
    assert sorted(m["data"] for m in dead) == sorted(bad.values())
    assert {(m["stage"], m["reason"]) for m in dead} == {("clickhouse:flow_sample_batches", "insert_refused")}
    for name, raw in bad.items():  # ClickHouse's own error, with the message it refused
        assert name in next(m["error"] for m in dead if m["data"] == raw)
    assert scraped.value("sflowpipe_dead_letters_total", stage="clickhouse:flow_sample_batches",
                         reason="insert_refused") == 3
    assert scraped.value("sflowpipe_sink_rows_written_total") == samples(good) + 1
    # the runner's count of what the destination took leaves the dead-lettered ones out too
    assert scraped.value("sflowpipe_sink_records_written_total") == samples(good) + 1
    assert status["dead_letters"] == 3  # the status page's sink numbers
    c = connect(f"chdb://{data_dir}")
    try:  # every good sample exactly once, and nothing of the poison pills
        assert c.command("SELECT count() FROM sflow.flow_samples") == samples(good)
        assert c.command("SELECT sum(samples) FROM sflow.flows_1m") == samples(good)
        assert c.command("SELECT min(time) >= fromUnixTimestamp64Micro({t:Int64}) FROM sflow.flow_samples",
                         parameters={"t": now_us - 120_000_000}) == 1
    finally:
        c.close()


class AwayOnce:
    """The real chDB client, except that its ``fail_at``-th insert finds ClickHouse away."""

    def __init__(self, client, fail_at: int) -> None:
        self.client = client
        self.fail_at = fail_at
        self.calls = 0

    def raw_insert(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OperationalError("Error HTTPConnectionPool: connection refused")
        return self.client.raw_insert(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def _outbox(kafka_bootstrap: str, topic_prefix: str) -> tuple[PoisonOutbox, str]:
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 1})
    topic = settings.kafka.topic(settings.topics.deadletter)
    ensure_topics(settings.kafka, [topic])
    clients, codec = wiring(settings)
    return PoisonOutbox(clients, codec, topic), topic


def test_clickhouse_away_in_the_middle_of_isolating_duplicates_nothing(kafka_bootstrap, topic_prefix, tmp_path):
    """The insert of the fourth half fails as if ClickHouse went away (after a half was written and
    the poison pill dead-lettered): the flush raises, the runner retries it, and the retry writes
    each good sample once and does not dead-letter the poison pill again."""
    client = connect(f"chdb://{tmp_path}/ch")
    ch = ClickHouseSettings()
    migrate(client, ch)
    outbox, topic = _outbox(kafka_bootstrap, topic_prefix)
    good = enriched_batches(2100, seed=13)[:7]
    poison = poisons(enriched_batches(900, seed=14))["CANNOT_PARSE_IPV6"]
    messages = [CODEC.encode(b) for b in good]
    messages.insert(2, poison)
    # inserts: all 8 (refused), [0:4] (refused), [0:2], [2:4] (refused), [2] (refused: dead-lettered),
    # [3], [4:8] <- away
    flaky = AwayOnce(client, fail_at=7)
    sink = ClickHouseSink(flaky, ch, "g", dead_letters=outbox)
    for i, raw in enumerate(messages):
        sink.at("t", 0, 100 + i)
        sink.add("t", "", b"192.0.2.1", None, raw)
    with pytest.raises(OperationalError):
        sink.flush()
    assert sink.pending() == samples(good) + len(good[0]["receive_time_us"])  # nothing dropped
    sink.flush()  # the runner's retry
    assert client.command("SELECT count() FROM sflow.flow_samples") == samples(good)
    assert client.command("SELECT sum(samples) FROM sflow.flows_1m") == samples(good)
    assert sink.pending() == 0 and sink.rejected == 1 and sink.inserted_rows == samples(good)
    assert outbox.writer.counts == {("clickhouse:flow_sample_batches", "insert_refused"): 1}
    dead = read_topic(kafka_bootstrap, topic, until=lambda m: len(m) >= 2, timeout=8)
    assert [m["data"] for m in dead] == [poison]
    # and the offsets past it are recorded: a restart re-reading them writes nothing again
    sink = ClickHouseSink(client, ch, "g", dead_letters=outbox)
    sink.load_written_offsets()
    for i, raw in enumerate(messages):
        sink.at("t", 0, 100 + i)
        sink.add("t", "", b"192.0.2.1", None, raw)
    assert sink.pending() == 0 and sink.skipped == len(messages)
    client.close()


def test_a_missing_table_is_waited_for_not_dead_lettered(kafka_bootstrap, topic_prefix, tmp_path):
    """An error that is not about the data (here the table is missing: UNKNOWN_TABLE) fails the
    flush as before, to be retried; nothing is dead-lettered, and once the table is back the whole
    batch goes in."""
    client = connect(f"chdb://{tmp_path}/ch")
    ch = ClickHouseSettings()
    migrate(client, ch)
    outbox, topic = _outbox(kafka_bootstrap, topic_prefix)
    good = enriched_batches(1200, seed=15)
    sink = ClickHouseSink(client, ch, "g", dead_letters=outbox)
    for i, b in enumerate(good):
        sink.at("t", 0, i)
        sink.add("t", "", None, None, CODEC.encode(b))
    client.command("RENAME TABLE sflow.flow_sample_batches TO sflow.flow_sample_batches_away")
    with pytest.raises(Exception, match="UNKNOWN_TABLE"):
        sink.flush()
    assert sink.rejected == 0 and outbox.writer.counts == {} and sink.pending() == samples(good)
    client.command("RENAME TABLE sflow.flow_sample_batches_away TO sflow.flow_sample_batches")
    sink.flush()
    assert client.command("SELECT count() FROM sflow.flow_samples") == samples(good)
    assert read_topic(kafka_bootstrap, topic, until=lambda m: len(m) >= 1, timeout=3) == []
    client.close()


def test_a_refused_event_is_isolated_among_the_arrow_inserts(kafka_bootstrap, topic_prefix, tmp_path):
    """Decoded messages go in as Arrow, one insert per table: an event whose agent is not an
    address is refused by ClickHouse (CANNOT_PARSE_IPV6), dead-lettered, and the other events and
    the flow batches of the same flush are written."""
    client = connect(f"chdb://{tmp_path}/ch")
    ch = ClickHouseSettings()
    migrate(client, ch)
    outbox, topic = _outbox(kafka_bootstrap, topic_prefix)
    codec = AvroCodec("event")
    event = codec.decode(open("schemas/examples/event.v1.avro", "rb").read())
    now_ms = int(time.time() * 1000)
    events = [codec.encode(dict(event, eventID=i, timestamp=now_ms)) for i in range(5)]
    events[3] = codec.encode(dict(event, eventID=3, timestamp=now_ms, agent="agent-3"))
    flows = enriched_batches(600, seed=16)
    sink = ClickHouseSink(client, ch, "g", dead_letters=outbox)
    for i, raw in enumerate(events):
        sink.at("events", 0, i)
        sink.add("events", "", b"k", None, raw)
    for i, b in enumerate(flows):
        sink.at("flows", 0, i)
        sink.add("flows", "", b"k", None, CODEC.encode(b))
    sink.flush()
    assert client.query("SELECT event_id FROM sflow.events ORDER BY event_id").result_rows == [(0,), (1,), (2,), (4,)]
    assert client.command("SELECT count() FROM sflow.flow_samples") == samples(flows)
    dead = read_topic(kafka_bootstrap, topic, until=lambda m: len(m) >= 1, timeout=30)
    assert [(m["data"], m["stage"], m["reason"]) for m in dead] == [(events[3], "clickhouse:events", "insert_refused")]
    assert "CANNOT_PARSE_IPV6" in dead[0]["error"]
    client.close()
