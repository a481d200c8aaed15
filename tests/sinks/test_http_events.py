"""The HTTP event sink against a real local HTTP server (Loggly, Splunk HEC, Elastic, webhook
stand-ins): exact request formats, retries, timeouts, the dead-letter topic on the real broker,
the token kept out of logs, and end to end from the events topic."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.codec import AvroCodec
from sflowpipe.kafka import ensure_topics, wiring
from sflowpipe.settings import HttpSinkSettings, Settings
from sinks import http_events
from sflowpipe.metrics import Metrics
from sinks.http_events import DeadLetters, HttpEventSink
from tests.kafka_helpers import read_topic
from tests.sinks.http_server import RecordingServer, Reply, elastic_ok
from tests.waiting import until

TOKEN = "s3cr3t-T0KEN-7f1c9a"
EVENTS_TOPIC = "sflow.events"
CODEC = AvroCodec("event")


def event(i: int, agent: str = "192.0.2.200") -> dict:
    return {"eventID": 1763683200000000 + i, "thresholdID": "elephant", "agent": agent, "dataSource": "3",
            "metric": "pair", "value": 2500000.0 + i, "threshold": 1250000.0, "flowKey": f"10.1.0.{i},192.0.2.10",
            "timestamp": 1763683200123 + i}


def message(i: int) -> tuple[dict, bytes]:
    raw = CODEC.encode(event(i))
    return CODEC.decode(raw), raw


class FakeDeadLetters:
    """Records what would go to the dead-letter topic; fails the first ``fail`` writes."""

    topic = "sflow.deadletter"

    def __init__(self, fail: int = 0) -> None:
        self.written: list[tuple] = []
        self.fail = fail

    def write(self, items) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("broker down")
        self.written.extend(items)

    def close(self) -> None:
        pass


class Sleeps(list):
    """A sleep that records its delays instead of waiting."""

    def __call__(self, s: float) -> None:
        self.append(s)


def make_sink(server_url: str, type_: str, dead=None, sleep=None, **cfg) -> HttpEventSink:
    cfg = HttpSinkSettings(type=type_, url=cfg.pop("url", server_url), token=cfg.pop("token", TOKEN),
                           backoff_s=cfg.pop("backoff_s", 0.01), **cfg)
    return HttpEventSink("test", cfg, dead if dead is not None else FakeDeadLetters(),
                         sleep=sleep if sleep is not None else Sleeps())


def add_events(sink: HttpEventSink, n: int, start: int = 0) -> list[bytes]:
    raws = []
    for i in range(start, start + n):
        datum, raw = message(i)
        sink.add(EVENTS_TOPIC, "event", b"192.0.2.200", datum, raw)
        raws.append(raw)
    return raws


# --- request formats ---------------------------------------------------------------------------


def test_loggly_bulk_posts_ndjson_with_the_token_in_the_path():
    with RecordingServer() as srv:
        sink = make_sink(srv.url + "/", "loggly", tag="sflow,events")
        add_events(sink, 3)
        sink.flush()
    [req] = srv.requests
    assert req.method == "POST"
    assert req.path == f"/bulk/{TOKEN}/tag/sflow,events/"
    assert req.headers["content-type"] == "text/plain"
    assert "authorization" not in req.headers
    assert req.body.endswith(b"\n")
    assert [json.loads(line) for line in req.body.splitlines()] == [event(i) for i in range(3)]
    assert sink.pending() == 0 and sink.delivered == 3
    assert sink.endpoint == f"{srv.url}/bulk/****/tag/sflow,events/"


def test_loggly_default_tag():
    with RecordingServer() as srv:
        sink = make_sink(srv.url, "loggly")
        add_events(sink, 1)
        sink.flush()
    assert srv.requests[0].path == f"/bulk/{TOKEN}/tag/sflowpipe/"


def test_splunk_hec_posts_concatenated_event_objects():
    with RecordingServer(Reply(200, b'{"text":"Success","code":0}')) as srv:
        sink = make_sink(srv.url, "splunk", index="netops")
        add_events(sink, 3)
        sink.flush()
    [req] = srv.requests
    assert req.path == "/services/collector/event"
    assert req.headers["authorization"] == f"Splunk {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    objs, pos, dec = [], 0, json.JSONDecoder()
    while pos < len(req.body):
        obj, pos = dec.raw_decode(req.body.decode(), pos)
        objs.append(obj)
    assert objs == [{"time": (1763683200123 + i) / 1000, "host": "192.0.2.200", "sourcetype": "sflowpipe:event",
                     "index": "netops", "event": event(i)} for i in range(3)]
    assert b"}{" in req.body  # concatenated, as HEC batches are


def test_splunk_without_index_leaves_it_to_the_token_default():
    with RecordingServer() as srv:
        sink = make_sink(srv.url + "/splunk", "splunk")
        add_events(sink, 1)
        sink.flush()
    assert srv.requests[0].path == "/splunk/services/collector/event"
    assert "index" not in json.loads(srv.requests[0].body)


def test_elastic_bulk_posts_action_source_pairs_with_the_event_id_as_id():
    with RecordingServer(elastic_ok) as srv:
        sink = make_sink(srv.url, "elastic", index="sflow-events")
        add_events(sink, 2)
        sink.flush()
    [req] = srv.requests
    assert req.path == "/_bulk"
    assert req.headers["authorization"] == f"ApiKey {TOKEN}"
    assert req.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in req.body.splitlines()]
    assert lines == [{"index": {"_index": "sflow-events", "_id": f"{1763683200000000 + 0}-192.0.2.200"}}, event(0),
                     {"index": {"_index": "sflow-events", "_id": f"{1763683200000000 + 1}-192.0.2.200"}}, event(1)]
    assert req.body.endswith(b"\n")
    assert sink.delivered == 2


def test_elastic_redelivery_uses_the_same_ids():
    with RecordingServer(elastic_ok) as srv:
        for _ in range(2):
            sink = make_sink(srv.url, "elastic")
            add_events(sink, 2)
            sink.flush()
    assert srv.requests[0].body == srv.requests[1].body  # same _id: the second overwrites, no duplicate


def test_webhook_posts_a_json_array():
    with RecordingServer() as srv:
        sink = make_sink(srv.url + "/hooks/sflow?x=1", "webhook")
        add_events(sink, 3)
        sink.flush()
        nosecret = make_sink(srv.url + "/hooks/sflow", "webhook", token=None)
        add_events(nosecret, 1)
        nosecret.flush()
    first, second = srv.requests
    assert first.path == "/hooks/sflow?x=1"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(first.body) == [event(i) for i in range(3)]
    assert "authorization" not in second.headers


def test_batches_are_cut_at_batch_size():
    with RecordingServer() as srv:
        sink = make_sink(srv.url, "webhook", batch_size=2)
        add_events(sink, 5)
        sink.flush()
    assert [len(json.loads(r.body)) for r in srv.requests] == [2, 2, 1]
    assert [e["eventID"] for r in srv.requests for e in json.loads(r.body)] == [event(i)["eventID"] for i in range(5)]


def test_loggly_and_splunk_need_a_token():
    for kind in ("loggly", "splunk"):
        with pytest.raises(ValueError, match="needs a token"):
            make_sink("http://127.0.0.1:1", kind, token=None)


# --- retries ------------------------------------------------------------------------------------


def test_5xx_then_success_is_retried_with_backoff_and_delivered_once():
    sleeps = Sleeps()
    with RecordingServer() as srv:
        srv.script = [Reply(500, b"oops"), Reply(503, b"busy"), Reply(502, b"bad gateway")]
        dead = FakeDeadLetters()
        sink = make_sink(srv.url, "webhook", dead=dead, sleep=sleeps, backoff_s=1.0, max_retries=5)
        add_events(sink, 4)
        sink.flush()
    assert [r.status for r in srv.requests] == [500, 503, 502, 200]
    assert all(r.body == srv.requests[0].body for r in srv.requests)  # the same batch each time
    assert len(srv.delivered()) == 1 and len(json.loads(srv.delivered()[0].body)) == 4
    assert dead.written == [] and sink.pending() == 0 and sink.retries == 3
    # exponential, with jitter of +-50 %
    assert 0.5 <= sleeps[0] <= 1.5 and 1.0 <= sleeps[1] <= 3.0 and 2.0 <= sleeps[2] <= 6.0


def test_429_honours_retry_after():
    sleeps = Sleeps()
    with RecordingServer() as srv:
        srv.script = [Reply(429, b"slow down", {"Retry-After": "7"})]
        sink = make_sink(srv.url, "loggly", sleep=sleeps)
        add_events(sink, 1)
        sink.flush()
    assert [r.status for r in srv.requests] == [429, 200]
    assert sleeps == [7.0]


def test_timeout_is_retried():
    with RecordingServer() as srv:
        srv.script = [Reply(503, b"", delay=1.5)]  # answers after the client gave up
        sink = make_sink(srv.url, "splunk", timeout_s=0.3)
        add_events(sink, 2)
        t0 = time.monotonic()
        sink.flush()
        took = time.monotonic() - t0
    assert len(srv.requests) == 2 and len(srv.delivered()) == 1
    assert sink.retries == 1 and sink.delivered == 2 and sink.pending() == 0
    assert took < 1.5


def test_connection_refused_exhausts_the_budget_then_dead_letters():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    dead = FakeDeadLetters()
    sleeps = Sleeps()
    sink = make_sink(f"http://127.0.0.1:{port}", "webhook", dead=dead, sleep=sleeps, max_retries=3)
    raws = add_events(sink, 2)
    assert sink.flush() == 2  # dead-lettered, not written: SinkRunner's records_written leaves them out
    assert len(sleeps) == 3
    assert [item.raw for item, _ in dead.written] == raws
    assert all("ConnectionRefusedError" in err and "after 3 retries" in err for _, err in dead.written)
    assert sink.pending() == 0 and sink.dead_lettered == 2


def test_elastic_item_errors_retry_only_the_retryable_items_and_dead_letter_the_refused():
    def partial(req):
        ids = [json.loads(a)["index"]["_id"] for a in req.body.splitlines()[0::2]]
        statuses = [201, 429, 400]
        items = [{"index": {"_id": i, "status": s, **({"error": {"type": "mapper_parsing_exception",
                                                                 "reason": "failed to parse [value]"}}
                                                      if s == 400 else {})}} for i, s in zip(ids, statuses)]
        return Reply(200, json.dumps({"errors": True, "items": items}).encode())

    dead = FakeDeadLetters()
    with RecordingServer(elastic_ok) as srv:
        srv.script = [partial]
        sink = make_sink(srv.url, "elastic", dead=dead)
        raws = add_events(sink, 3)
        sink.flush()
    first, second = srv.requests
    assert len(first.body.splitlines()) == 6
    assert [json.loads(x) for x in second.body.splitlines()][1] == event(1)  # only the 429 item again
    assert len(second.body.splitlines()) == 2
    [(item, err)] = dead.written
    assert item.raw == raws[2]
    assert "status 400" in err and "mapper_parsing_exception" in err
    assert sink.delivered == 2 and sink.retries == 1


def test_splunk_invalid_event_number_dead_letters_that_one_and_resends_the_rest():
    dead = FakeDeadLetters()
    with RecordingServer(Reply(200, b'{"text":"Success","code":0}')) as srv:
        srv.script = [Reply(400, b'{"text":"Invalid data format","code":6,"invalid-event-number":1}')]
        sink = make_sink(srv.url, "splunk", dead=dead)
        raws = add_events(sink, 3)
        sink.flush()
    first, second = srv.requests
    assert json.loads(second.body)["event"] == event(2)  # event 0 was indexed, event 1 refused
    assert [item.raw for item, _ in dead.written] == [raws[1]]
    assert sink.delivered == 2 and sink.retries == 0


def test_a_failed_dead_letter_write_raises_and_keeps_the_refused_without_reposting():
    dead = FakeDeadLetters(fail=1)
    with RecordingServer(Reply(400, b"bad request")) as srv:
        sink = make_sink(srv.url, "webhook", dead=dead)
        raws = add_events(sink, 2)
        with pytest.raises(RuntimeError, match="broker down"):
            sink.flush()
        assert sink.pending() == 2  # SinkRunner retries the flush and does not commit
        sink.flush()
    assert len(srv.requests) == 1
    assert [item.raw for item, _ in dead.written] == raws
    assert sink.pending() == 0


def test_the_token_never_reaches_the_logs_or_the_dead_letters(caplog):
    caplog.set_level(logging.DEBUG)
    dead = FakeDeadLetters()

    def echo(status):  # an endpoint that echoes the request (URL and headers) in its error body
        return lambda req: Reply(status, f"bad {req.path} {req.headers.get('authorization')}".encode())

    with RecordingServer() as srv:
        for kind in ("loggly", "splunk", "elastic", "webhook"):
            srv.script = [echo(500), echo(500), echo(400)]
            sink = make_sink(srv.url, kind, dead=dead, max_retries=1)
            add_events(sink, 1)
            sink.flush()  # 500, retry, 500: dead letter; nothing left for the 400
            srv.script = [echo(400)]
            add_events(sink, 1)
            sink.flush()
    sink = make_sink("http://127.0.0.1:1", "loggly", dead=dead, max_retries=1)
    add_events(sink, 1)
    sink.flush()
    assert len(dead.written) == 9
    assert "****" in caplog.text and "HTTP 500" in caplog.text and "HTTP 400" in caplog.text
    assert TOKEN not in caplog.text
    assert all(TOKEN not in err for _, err in dead.written)
    assert TOKEN not in sink.endpoint and TOKEN not in repr(sink.cfg)


# --- the dead-letter topic on the real broker ---------------------------------------------------


def _settings(kafka_bootstrap: str, topic_prefix: str, **http) -> Settings:
    return Settings(kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 2},
                    sinks={"http": http})


def _real_dead_letters(settings: Settings) -> DeadLetters:
    topic = settings.kafka.topic(settings.topics.deadletter)
    ensure_topics(settings.kafka, [topic])
    return DeadLetters(*wiring(settings), topic, "http:test")


@pytest.mark.kafka
def test_permanent_500_goes_to_the_dead_letter_topic(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    dl = _real_dead_letters(settings)
    with RecordingServer(Reply(500, b"internal error")) as srv:
        sink = make_sink(srv.url, "elastic", dead=dl, max_retries=2)
        raws = add_events(sink, 3)
        sink.flush()  # does not raise: the batch is on the dead-letter topic, offsets may advance
    assert len(srv.requests) == 3  # first try + 2 retries
    assert sink.pending() == 0 and sink.dead_lettered == 3
    got = read_topic(kafka_bootstrap, dl.topic, until=lambda m: len(m) >= 3, timeout=30)
    assert sorted(m["data"] for m in got) == sorted(raws)
    assert {m["stage"] for m in got} == {"http:test"}
    assert all("HTTP 500: internal error (after 2 retries)" == m["error"] for m in got)
    assert {m["reason"] for m in got} == {"delivery_failed"}  # the one dead-letter writer's record
    metrics = Metrics()
    dl.writer.export(metrics)
    assert metrics.get("sflowpipe_dead_letters_total", (("stage", "http:test"), ("reason", "delivery_failed"))) == 3
    dl.close()


@pytest.mark.kafka
def test_400_goes_to_the_dead_letter_topic_at_once(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    dl = _real_dead_letters(settings)
    with RecordingServer(Reply(400, b'{"text":"Invalid data format","code":6}')) as srv:
        sink = make_sink(srv.url, "splunk", dead=dl, max_retries=5)
        raws = add_events(sink, 2)
        sink.flush()
    assert len(srv.requests) == 1 and sink.retries == 0
    got = read_topic(kafka_bootstrap, dl.topic, until=lambda m: len(m) >= 2, timeout=30)
    assert sorted(m["data"] for m in got) == sorted(raws)
    assert all(m["error"].startswith("HTTP 400: ") and m["stage"] == "http:test" for m in got)
    dl.close()


def test_dead_letters_the_broker_did_not_take_are_not_counted_as_written():
    """sflowpipe_dead_letters_total counts records on the dead-letter topic: a write the broker did not
    acknowledge counts nothing (SinkRunner retries the flush, so it would count each retry)."""
    with socket.socket() as s:  # a port nothing listens on: the broker is away
        s.bind(("127.0.0.1", 0))
        away = f"127.0.0.1:{s.getsockname()[1]}"
    settings = Settings(kafka={"bootstrap_servers": away})
    dl = DeadLetters(*wiring(settings), "sflow.deadletter", "http:test", flush_timeout_s=0.5)
    metrics = Metrics()
    dl.writer.export(metrics)
    with RecordingServer(Reply(400, b"bad request")) as srv:
        sink = make_sink(srv.url, "webhook", dead=dl)
        add_events(sink, 2)
        for _ in range(2):  # the runner's first try and its retry
            with pytest.raises(RuntimeError, match="dead-letter topic"):
                sink.flush()
    assert sink.pending() == 2 and sink.dead_lettered == 0
    assert metrics.get("sflowpipe_dead_letters_total", (("stage", "http:test"), ("reason", "delivery_failed"))) == 0
    dl.out.producer.purge()


# --- end to end: events topic -> SinkRunner -> HTTP endpoint ------------------------------------


@pytest.mark.kafka
def test_events_topic_to_the_endpoint_end_to_end(kafka_bootstrap, topic_prefix, caplog):
    caplog.set_level(logging.INFO)
    n = 60
    with RecordingServer(Reply(200, b'{"text":"Success","code":0}')) as srv:
        srv.script = [Reply(503, b"busy")]  # one failure on the way: retried, not lost
        settings = _settings(kafka_bootstrap, topic_prefix,
                             hec={"type": "splunk", "url": srv.url, "token": TOKEN, "batch_size": 25,
                                  "batch_seconds": 0.3, "backoff_s": 0.05})
        events_topic = settings.kafka.topic("events")
        ensure_topics(settings.kafka, [events_topic])
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        for i in range(n):
            agent = f"192.0.2.{i % 4}"
            p.produce(events_topic, key=agent.encode(), value=CODEC.encode(event(i, agent)))
        assert p.flush(30) == 0

        runner, sink = http_events.build(settings, "hec")
        assert runner.group == "sflowpipe-http-hec" and runner.topics == [events_topic]
        runner.start()
        t = threading.Thread(target=runner.run)
        t.start()
        try:
            try:
                until(lambda: sink.delivered >= n, timeout=60, interval=0.1)
            except AssertionError:
                pass  # the comparison below names what did not arrive
        finally:
            runner.stop()
            t.join(30)
            sink.close()
    received = []
    for r in srv.delivered():
        pos, body, dec = 0, r.body.decode(), json.JSONDecoder()
        while pos < len(body):
            obj, pos = dec.raw_decode(body, pos)
            received.append(obj["event"])
    assert sorted(e["eventID"] for e in received) == [event(i)["eventID"] for i in range(n)]
    assert srv.requests[0].status == 503 and sink.retries >= 1 and sink.dead_lettered == 0
    assert TOKEN not in caplog.text

    # the offsets were committed after the flushes: a restart of the group re-reads nothing
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "sflowpipe-http-hec"})
    try:
        committed = c.committed([TopicPartition(events_topic, part) for part in range(2)], timeout=10)
    finally:
        c.close()
    assert sum(max(tp.offset, 0) for tp in committed) == n  # a partition without messages: no offset


def test_run_rejects_an_unknown_endpoint(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    http_events.add_arguments(parser)
    args = parser.parse_args(["nope"])
    settings = Settings(sinks={"http": {"hec": {"type": "splunk", "url": "http://127.0.0.1:1", "token": TOKEN}}})
    assert http_events.run(settings, args) == 2
    assert "no endpoint 'nope'" in capsys.readouterr().err
