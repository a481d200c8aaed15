"""The ClickHouse sink on real chDB: migrations, idempotent inserts, topic -> rows, `sflowpipe sql`."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest

from bench.clickhouse import enriched_batches, produce
from ingest.batches import AgentBatches
from ingest.sflow import decode_datagram, encode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import Datagram, FlowSample
from schemas.codec import AvroCodec
from sflowpipe.settings import ClickHouseSettings, load_settings
from sinks.clickhouse.migrate import applied_versions, migrate, migrations
from sflowpipe.metrics import MetricsServer
from tests.scrape import scrape
from sflowpipe.kafka import wiring
from sinks.clickhouse.sink import ClickHouseService, ClickHouseSink, connect, topics_of
from sinks.clickhouse.sql import execute, owner, run_sql
from tests.icmp_frames import echo4, unreach4, unreach6
from tests.waiting import until

pytestmark = pytest.mark.clickhouse  # chDB, embedded

SCANNERS_QUERY = """
        SELECT dst_ip AS scanner, uniq(icmp_quoted_dst_ip, icmp_quoted_protocol, icmp_quoted_dst_port) AS targets
        FROM flow_samples WHERE time > now() - INTERVAL 1 HOUR
          AND ((protocol = 1 AND icmp_type = 3 AND icmp_code = 3) OR (protocol = 58 AND icmp_type = 1 AND icmp_code = 4))
        GROUP BY scanner ORDER BY targets DESC LIMIT 10"""

READY_QUERIES = {
    "top talkers, last 15 minutes": """
        SELECT src_ip, dst_ip, sum(bytes) AS bytes FROM flow_samples
        WHERE time > now() - INTERVAL 15 MINUTE GROUP BY src_ip, dst_ip ORDER BY bytes DESC LIMIT 10""",
    "top destination countries, last hour (1-minute rollup)": """
        SELECT dst_country, sum(bytes) AS bytes FROM flows_1m
        WHERE time > now() - INTERVAL 1 HOUR GROUP BY dst_country ORDER BY bytes DESC LIMIT 10""",
    "traffic per interface, per minute": """
        SELECT time, agent, in_if, sum(bytes) * 8 / 60 AS bps FROM flows_1m
        WHERE time > now() - INTERVAL 1 HOUR GROUP BY time, agent, in_if ORDER BY time, agent, in_if""",
    "events over time": """
        SELECT toStartOfMinute(time) AS minute, threshold_id, count() AS events FROM events
        WHERE time > now() - INTERVAL 1 DAY GROUP BY minute, threshold_id ORDER BY minute""",
}


@pytest.fixture
def client(tmp_path):
    c = connect(f"chdb://{tmp_path}/ch")
    yield c
    c.close()


def table_shapes(client, db: str) -> dict[str, str]:
    rows = client.query("SELECT name, create_table_query FROM system.tables WHERE database = {d:String} "
                        "AND name != 'schema_migrations' ORDER BY name", parameters={"d": db}).result_rows
    return dict(rows)


def test_migrations_replay_from_every_earlier_state(tmp_path):
    ch = ClickHouseSettings()
    n = len(migrations())
    assert n >= 3
    c = connect(f"chdb://{tmp_path}/ch")
    try:
        shapes = []
        for k in range(0, n + 1):
            db = f"m{k}"
            s = ch.model_copy(update={"database": db})
            first = migrate(c, s, upto=k) if k else []
            assert first == list(range(1, k + 1))
            rest = migrate(c, s)
            assert rest == list(range(k + 1, n + 1))
            assert applied_versions(c, db) == set(range(1, n + 1))
            assert migrate(c, s) == []  # a restart applies nothing
            shapes.append({t: q.replace(f"{db}.", "DB.") for t, q in table_shapes(c, db).items()})
        assert all(s == shapes[0] for s in shapes[1:])
        assert {"flow_samples", "counters", "metrics", "events", "active_flows", "flows_1m", "flows_1h",
                "sink_offsets"} <= set(shapes[0])
        # TTLs follow the settings after the tables exist
        migrate(c, ch.model_copy(update={"database": "m0", "ttl_days": 3, "rollup_ttl_days": 90}))
        q = table_shapes(c, "m0")
        assert "toIntervalDay(3)" in q["flow_samples"] and "toIntervalDay(90)" in q["flows_1h"]
    finally:
        c.close()


@pytest.mark.parametrize("raw", [True, False], ids=["avro-in-clickhouse", "arrow"])
def test_same_batch_twice_is_one_copy(client, raw):
    ch = ClickHouseSettings()
    migrate(client, ch)
    batches = enriched_batches(2000, seed=3)
    codec = AvroCodec("enriched_flow_sample_batch")

    def add(sink, offset, b):
        sink.at("t", 0, offset)
        if raw:  # what the runner hands over: the message, not decoded
            return sink.add("t", "", None, None, codec.encode(b))
        return sink.add("t", "enriched_flow_sample_batch", None, b, b"")

    expected = sum(len(b["receive_time_us"]) for b in batches)
    for attempt in range(2):  # a retry of the same flush (the first one "failed" after ClickHouse took it)
        sink = ClickHouseSink(client, ch, "g")
        for i, b in enumerate(batches):
            assert add(sink, 100 + i, b) == len(b["receive_time_us"])
        sink.flush()
    assert client.command("SELECT count() FROM sflow.flow_samples") == expected
    assert client.command("SELECT sum(samples) FROM sflow.flows_1m") == expected
    # after a crash between the insert and the Kafka commit, a re-read batch with other boundaries
    # is skipped: the sink knows from sink_offsets what ClickHouse already has
    sink = ClickHouseSink(client, ch, "g")
    sink.load_written_offsets()
    more = enriched_batches(300, seed=4)
    for i, b in enumerate(batches + more):  # re-read from the last commit, and further
        add(sink, 100 + i, b)
    sink.flush()
    assert sink.skipped == len(batches)
    assert client.command("SELECT count() FROM sflow.flow_samples") == expected + sum(
        len(b["receive_time_us"]) for b in more)


def test_a_processor_redelivery_is_written_once(client):
    """The processors run at-least-once: after a takeover the same enriched batch arrives again,
    at another offset. The sink writes it once (and still writes distinct batches)."""
    ch = ClickHouseSettings()
    migrate(client, ch)
    codec = AvroCodec("enriched_flow_sample_batch")
    decoded = enriched_batches(600, seed=5)
    batches = [codec.encode(b) for b in decoded]
    sink = ClickHouseSink(client, ch, "g")
    for i, raw in enumerate(batches + batches[:2]):  # the last two are redeliveries
        sink.at("t", 0, 10 + i)
        sink.add("t", "", None, None, raw)
    sink.flush()
    assert sink.duplicates == 2
    assert client.command("SELECT count() FROM sflow.flow_samples") == sum(len(b["receive_time_us"]) for b in decoded)


def _icmp_error_batch() -> dict:
    """A flow_sample_batch (v2) of ICMP errors and one echo, through the real decode and batching."""
    frames = [unreach4(3, "192.0.2.66", "10.0.0.9"), unreach4(2, "192.0.2.66", "10.0.0.8", proto=47),
              unreach6(4, "2001:db8::66", "2001:db8:9::1"), echo4("10.0.0.1", "10.0.0.2")]
    samples = tuple(FlowSample(False, i + 1, 0, 3, 100, 100 * (i + 1), 0, 0, 3, 0, 7,
                               (SampledHeader.of(1, len(f) + 4, 4, f),)) for i, f in enumerate(frames))
    b = AgentBatches(10_000, 1e9)
    b.add(decode_datagram(encode_datagram(Datagram(5, "192.0.2.210", 0, 1, 1000, samples))), "192.0.2.210",
          time.time_ns() // 1000)
    (batch,) = [x for x in b.drain() if x.kind == "flow"]
    return batch.datum


@pytest.mark.parametrize("raw", [True, False], ids=["avro-in-clickhouse", "arrow"])
def test_icmp_quoted_packet_columns_and_older_messages(client, raw):
    """The quoted packet of an ICMP error lands in its three columns (migration 5); a message of
    the older schema version, without them, still goes in, with zeros. Both are plain (not
    enriched) batches: the view pads the enrichment columns they lack."""
    ch = ClickHouseSettings(ttl_days=3650)  # the v1 example was recorded in 2025: TTL drops old rows on insert
    migrate(client, ch)
    codec = AvroCodec("flow_sample_batch")
    v1_raw = (codec.schemas.by_stem["flow_sample_batch"][0].path.parent / "examples"
              / "flow_sample_batch.v1.avro").read_bytes()
    v1 = codec.decode(v1_raw)
    v2 = _icmp_error_batch()
    sink = ClickHouseSink(client, ch, "g")
    for i, (datum, body) in enumerate([(v2, codec.encode(v2)), (v1, v1_raw)]):
        sink.at("t", 0, i)
        if raw:
            sink.add("t", "", None, None, body)
        else:
            sink.add("t", "flow_sample_batch", None, datum, b"")
    sink.flush()
    rows = client.query("SELECT sequence_number, protocol, icmp_type, icmp_code, icmp_quoted_protocol, "
                        "IPv6NumToString(icmp_quoted_dst_ip), icmp_quoted_dst_port FROM sflow.flow_samples "
                        "WHERE agent = toIPv6('192.0.2.210') ORDER BY sequence_number").result_rows
    assert [tuple(r) for r in rows] == [
        (1, 1, 3, 3, 17, "::ffff:10.0.0.9", 1434),
        (2, 1, 3, 2, 47, "::ffff:10.0.0.8", 0),
        (3, 58, 1, 4, 6, "2001:db8:9::1", 22),
        (4, 1, 8, 0, 0, "::", 0),
    ]
    # the README's scanner query (the time filter: v2 was received now)
    scanners = client.query(SCANNERS_QUERY.replace("FROM flow_samples", "FROM sflow.flow_samples")).result_rows
    assert sorted((str(ip), n) for ip, n in scanners) == [("2001:db8::66", 1), ("::ffff:c000:242", 1)]  # 192.0.2.66
    n1 = len(v1["receive_time_us"])
    assert client.command("SELECT count() FROM sflow.flow_samples") == 4 + n1
    assert client.command("SELECT countIf(icmp_quoted_dst_ip = toIPv6('::') AND icmp_quoted_protocol = 0 "
                          "AND icmp_quoted_dst_port = 0) FROM sflow.flow_samples "
                          "WHERE agent != toIPv6('192.0.2.210')") == n1


def test_recent_digests_window_is_bounded():
    from sinks.clickhouse.sink import RecentDigests

    r = RecentDigests(3)
    assert [r.check_and_add(x) for x in (b"a", b"b", b"a", b"c", b"d")] == [False, False, True, False, False]
    assert len(r.seen) == 3 and not r.check_and_add(b"a")  # "a" left the window


@pytest.mark.kafka
def test_topics_to_clickhouse_and_sql(kafka_bootstrap, topic_prefix, tmp_path, capsys):
    data_dir = tmp_path / "ch"
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 2, "sinks.clickhouse": {"dsn": f"chdb://{data_dir}",
                                                                            "batch_seconds": 0.5}})
    k = settings.kafka
    from sflowpipe.kafka import ensure_topics
    t = settings.topics
    ensure_topics(k, [k.topic(n) for n in (t.enriched_flow_samples, t.counter_samples, t.metrics, t.flows, t.events)])
    now_ms = int(time.time() * 1000)
    batches = enriched_batches(3000, seed=5, start_us=now_ms * 1000 - 120_000_000)
    codec = AvroCodec("enriched_flow_sample_batch")
    produce(kafka_bootstrap, k.topic(t.enriched_flow_samples),
            [(b["agent_address"].encode(), codec.encode(b)) for b in batches])
    examples = {stem: AvroCodec(stem).decode(open(f"schemas/examples/{stem}.v1.avro", "rb").read())
                for stem in ("counter_sample_batch", "metrics", "event", "active_flows")}
    for stem in ("metrics", "event", "active_flows"):
        examples[stem]["timestamp"] = now_ms
    examples["event"]["eventID"] = 7
    for sample in examples["counter_sample_batch"]["samples"]:  # within the TTL
        sample["receive_time_us"] = now_ms * 1000
    for stem, topic in (("counter_sample_batch", t.counter_samples), ("metrics", t.metrics), ("event", t.events),
                        ("active_flows", t.flows)):
        produce(kafka_bootstrap, k.topic(topic), [(b"192.0.2.200", AvroCodec(stem).encode(examples[stem]))])

    expected = sum(len(b["receive_time_us"]) for b in batches)
    service = ClickHouseService(settings.sinks.clickhouse, topics_of(settings.kafka, settings.topics),
                                settings.kafka.topic(settings.topics.status), *wiring(settings))
    service.start()
    runner = threading.Thread(target=service.runner.run)
    runner.start()
    metrics = MetricsServer("127.0.0.1:0", service.runner.metrics).start()
    try:
        # wait until every table has what was produced (read through the sink's own port)
        check = ("SELECT (SELECT count() FROM flow_samples), (SELECT count() FROM events), "
                 "(SELECT count() FROM metrics), (SELECT count() FROM active_flows), (SELECT count() > 0 FROM counters)")

        def complete() -> bool:
            if owner(str(data_dir)) is None:
                return False
            last = execute(settings, check, data_dir=str(data_dir), fmt="csv").decode().strip().splitlines()[-1]
            return tuple(map(int, last.split(","))) == (expected, 1, 1, 1, 1)

        try:
            until(complete, timeout=90, interval=0.3)
        except AssertionError:
            pass  # the assertions below name what is missing
        # `sflowpipe sql --data-dir` while the sink owns the directory: through its port
        assert owner(str(data_dir)) is not None
        out = json.loads(execute(settings, "SELECT count() AS n, sum(bytes) AS b FROM flow_samples",
                                 data_dir=str(data_dir), fmt="json"))
        assert int(out["n"]) == expected
        assert int(out["b"]) == sum(f * r for b in batches for f, r in zip(b["frame_length"], b["sampling_rate"]))
        rows = [json.loads(line) for line in execute(
            settings, "SELECT toUnixTimestamp64Micro(time) AS t, toString(agent) AS agent, src_ip, dst_ip, "
            "src_port, dst_port, protocol, in_if, out_if, dst_country, src_groups FROM flow_samples",
            data_dir=str(data_dir), fmt="json").splitlines()]
        got = sorted((int(r["t"]), r["agent"], r["src_ip"], r["dst_ip"], r["src_port"], r["dst_port"], r["protocol"],
                      r["in_if"], r["out_if"], r["dst_country"], tuple(r["src_groups"])) for r in rows)
        sent = sorted((tm, "::ffff:" + b["agent_address"], "::ffff:" + (s or "0.0.0.0") if s else "::",
                       "::ffff:" + d if d else "::", sp or 0, dp or 0, p or 0, i, o, c or "", tuple(g))
                      for b in batches for tm, s, d, sp, dp, p, i, o, c, g in zip(
                          b["receive_time_us"], b["src_ip"], b["dst_ip"], b["src_port"], b["dst_port"],
                          b["ip_protocol"], b["input"], b["output"], b["dst_country"], b["src_groups"]))
        assert got == sent
        for name, sql in READY_QUERIES.items():
            assert execute(settings, sql, data_dir=str(data_dir), fmt="csv").count(b"\n") >= 2, name
        scraped = scrape(metrics.url)  # the sink's counters over HTTP, after everything was written
        assert scraped.value("sflowpipe_sink_messages_consumed_total") == len(batches) + 4
        assert scraped.value("sflowpipe_sink_rows_written_total") >= expected
        assert scraped.value("sflowpipe_sink_records_written_total") == service.runner.flushed_records > 0
        assert scraped.value("sflowpipe_sink_flushes_total") >= 1
        assert scraped.value("sflowpipe_sink_duplicates_skipped_total") == 0
        # measured every LAG_EVERY_S once partitions are assigned: the first round may precede it
        until(lambda: scrape(metrics.url).has("sflowpipe_sink_lag_messages"), 30)
    finally:
        metrics.stop()
        service.stop()
        runner.join()
        service.close()
    assert owner(str(data_dir)) is None
    # the sink is gone: `sflowpipe sql` opens the directory itself
    args = SimpleNamespace(query="SELECT count() FROM flow_samples", dsn=None, data_dir=str(data_dir), format="csv")
    assert run_sql(settings, args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(expected)
    c = connect(f"chdb://{data_dir}")
    try:
        if_counters = [f for s in examples["counter_sample_batch"]["samples"] for r, f in s["records"]
                       if r == "sflowpipe.IfCounters"]
        assert c.query("SELECT source_id_index, value FROM sflow.counters WHERE record = 'IfCounters' "
                       "AND name = 'if_speed' ORDER BY source_id_index").result_rows == sorted(
            (s["source_id_index"], float(f["if_speed"])) for s in examples["counter_sample_batch"]["samples"]
            for r, f in s["records"] if r == "sflowpipe.IfCounters")
        assert len(if_counters) >= 1
        assert c.query("SELECT toString(agent), data_source, name, value FROM sflow.metrics").result_rows == [
            ("::ffff:192.0.2.200", "3", "ifinoctets", 12345.5)]
        assert c.query("SELECT event_id, threshold_id, flow_key FROM sflow.events").result_rows == [
            (7, "elephant", "10.1.0.10,192.0.2.10")]
        assert c.command("SELECT count() FROM sflow.active_flows WHERE flow = 'pair'") == 1
        assert c.command("SELECT sum(samples) FROM sflow.flows_1h") == expected
    finally:
        c.close()


def _undecodable_run(kafka_bootstrap: str, topic_prefix: str, tmp_path, bad: list[tuple[str, bytes]]):
    """Runs the sink over ``bad`` (topic by its settings name, message), each followed by a good event on
    the events topic; returns the sink's scraped metrics once the events are in ClickHouse, the
    events written and the settings."""
    from sflowpipe.kafka import ensure_topics

    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 1, "sinks.clickhouse": {"dsn": f"chdb://{tmp_path}/ch",
                                                                            "batch_seconds": 0.2}})
    k, t = settings.kafka, settings.topics
    ensure_topics(k, topics_of(k, t))
    codec = AvroCodec("event")
    event = codec.decode(open("schemas/examples/event.v1.avro", "rb").read())
    for i, (topic, message) in enumerate(bad):
        produce(kafka_bootstrap, k.topic(getattr(t, topic)), [(b"192.0.2.200", message)])
        produce(kafka_bootstrap, k.topic(t.events), [(b"192.0.2.200", codec.encode(
            dict(event, eventID=100 + i, timestamp=int(time.time() * 1000))))])
    service = ClickHouseService(settings.sinks.clickhouse, topics_of(k, t), k.topic(t.status), *wiring(settings),
                                serve_sql=False)
    service.start()
    runner = threading.Thread(target=service.runner.run)
    runner.start()
    metrics = MetricsServer("127.0.0.1:0", service.runner.metrics).start()
    try:
        def events() -> int:
            with service.runner.sink.lock:
                return service.client.command("SELECT count() FROM sflow.events")

        until(lambda: events() == len(bad) or not runner.is_alive(), timeout=60,
              message="the good events after the undecodable messages were not written")
        assert runner.is_alive(), "the sink stopped on an undecodable message"
        return scrape(metrics.url), events(), settings
    finally:
        metrics.stop()
        service.stop()
        runner.join()
        service.close()


@pytest.mark.kafka
def test_undecodable_messages_are_skipped_and_counted(kafka_bootstrap, topic_prefix, tmp_path):
    """The sink decodes its messages itself (flow batches stay Avro): what it cannot decode is
    skipped and counted on sflowpipe_sink_undecodable_total, as every sink's runner counts it."""
    scraped, events, settings = _undecodable_run(kafka_bootstrap, topic_prefix, tmp_path,
                                                 [("metrics", b"not an sflowpipe message")])
    assert events == 1
    metrics_topic = settings.kafka.topic(settings.topics.metrics)
    assert scraped.value("sflowpipe_sink_undecodable_total", topic=metrics_topic) == 1
    assert scraped.value("sflowpipe_sink_messages_consumed_total") == 2


FLOW_PREFIX = AvroCodec("enriched_flow_sample_batch").current.prefix
CUT_SHORT = FLOW_PREFIX + b"\x12192"  # a flow batch cut short in its agent address
BACKWARDS = FLOW_PREFIX + bytes([0, 0, 1, 3])  # a receive_time_us block whose size is -2: it points back


@pytest.mark.kafka
def test_a_flow_batch_cut_short_is_skipped_and_counted(kafka_bootstrap, topic_prefix, tmp_path):
    """A flow batch stays Avro up to ClickHouse; the sink reads only its sample count. A body cut
    short is undecodable (it was an IndexError that ended the sink, and again after each restart)."""
    scraped, events, settings = _undecodable_run(kafka_bootstrap, topic_prefix, tmp_path,
                                                 [("enriched_flow_samples", CUT_SHORT)])
    assert events == 1
    topic = settings.kafka.topic(settings.topics.enriched_flow_samples)
    assert scraped.value("sflowpipe_sink_undecodable_total", topic=topic) == 1


def test_corrupt_flow_batch_bodies_are_undecodable_not_a_hang(client):
    from schemas.codec import CodecError

    sink = ClickHouseSink(client, ClickHouseSettings(), "g")
    outcomes: list[str] = []

    def add_each() -> None:
        for raw in (CUT_SHORT, BACKWARDS):
            try:
                sink.add("t", "", None, None, raw)
                outcomes.append("added")
            except CodecError:
                outcomes.append("undecodable")

    th = threading.Thread(target=add_each, daemon=True)  # a hang must not hang the test run too
    th.start()
    th.join(10)
    assert outcomes == ["undecodable", "undecodable"] and sink.pending() == 0
