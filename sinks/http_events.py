"""`sflowpipe http-events NAME`: threshold events to an HTTP event endpoint (Loggly, Splunk HEC,
Elastic, a JSON webhook).

One consumer group per endpoint (``sinks.http.NAME``) over its topics (default ``events``),
driven by ``SinkRunner``: offsets are committed only after ``flush()`` returned, and ``flush()``
returns only when every buffered message was either taken by the endpoint or written to the
dead-letter topic. A batch the endpoint cannot take now (5xx, 429, timeout, connection error) is
retried with exponential backoff and jitter up to ``max_retries`` times; a batch it refuses (any
other 4xx), or one still failing after the retry budget, goes to the dead-letter topic as
``dead_letter`` messages (stage ``http:NAME``, the original message bytes in ``data``, the source
topic in the ``source_topic`` header), so nothing is lost silently and the stream keeps moving.

Delivery is at-least-once: a timed-out request may have been taken, and a crash between the POST
and the commit re-sends the batch. Elastic deduplicates (the event id is the document ``_id``, so
a re-delivery overwrites); Loggly, Splunk HEC and webhooks may see a duplicate.

The token is a secret: it is never logged, and is masked (``****``) in every message and
dead-letter error that could contain it (the Loggly URL carries it in its path).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import logging
import random
import ssl
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from schemas.codec import Codec
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import HttpSinkSettings, Settings
from sflowpipe.signals import on_stop_signals
from sflowpipe.deadletter import AcknowledgedDeadLetters, dead_letter
from sinks.base import SinkRunner, serve_metrics
from sinks.args import http_events_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)

MASK = "****"
MAX_BATCH_BYTES = 4 << 20  # under Loggly's 5 MB bulk limit and the usual Splunk/Elastic request limits
MAX_DELAY_S = 30.0
ERROR_BODY_CHARS = 300  # of a refusal's response body, kept in the log and the dead letter


@dataclass(slots=True)
class Item:
    """One consumed message on its way out: where it came from, its bytes, and its encoded piece."""

    topic: str
    key: bytes | None
    raw: bytes
    piece: bytes


@dataclass(slots=True)
class Verdict:
    """What the endpoint did with each item of one request."""

    ok: list[Item] = field(default_factory=list)
    retry: list[Item] = field(default_factory=list)  # not taken, may be taken later: costs the retry budget
    resend: list[Item] = field(default_factory=list)  # not looked at because of another item: free
    dead: list[tuple[Item, str]] = field(default_factory=list)  # refused


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


# --- destinations: how one endpoint type frames a batch and reads its answer ---------------------


class Destination:
    """A webhook: a JSON array of the records; any 2xx takes them all (``Authorization: Bearer``)."""

    content_type = "application/json"
    token_required = False

    def __init__(self, cfg: HttpSinkSettings, token: str | None) -> None:
        self.cfg = cfg
        self.token = token
        u = urllib.parse.urlsplit(cfg.url)
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def piece(self, doc: Any, raw: bytes) -> bytes:
        return dumps(doc)

    def body(self, pieces: list[bytes]) -> bytes:
        return b"[" + b",".join(pieces) + b"]"

    def accepted(self, status: int, body: bytes, items: list[Item]) -> Verdict:
        """A 2xx answer: which items were really taken."""
        return Verdict(ok=list(items))

    def refused(self, status: int, body: bytes, items: list[Item], error: str) -> Verdict:
        """A 4xx answer other than 429: none taken, unless the endpoint says which one it refused."""
        return Verdict(dead=[(i, error) for i in items])


class Loggly(Destination):
    """Loggly bulk: newline-delimited JSON to ``<url>/bulk/<token>/tag/<tag>/``."""

    content_type = "text/plain"
    token_required = True

    def __init__(self, cfg: HttpSinkSettings, token: str | None) -> None:
        super().__init__(cfg, token)
        base = urllib.parse.urlsplit(cfg.url).path.rstrip("/")
        tag = urllib.parse.quote(cfg.tag or "sflowpipe", safe=",")
        self.path = f"{base}/bulk/{urllib.parse.quote(token or '', safe='')}/tag/{tag}/"

    def headers(self) -> dict[str, str]:
        return {}

    def piece(self, doc: Any, raw: bytes) -> bytes:
        return dumps(doc) + b"\n"

    def body(self, pieces: list[bytes]) -> bytes:
        return b"".join(pieces)


class Splunk(Destination):
    """Splunk HTTP Event Collector: concatenated event objects to ``/services/collector/event``."""

    token_required = True

    def __init__(self, cfg: HttpSinkSettings, token: str | None) -> None:
        super().__init__(cfg, token)
        self.path = urllib.parse.urlsplit(cfg.url).path.rstrip("/") + "/services/collector/event"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Splunk {self.token}"}

    def piece(self, doc: Any, raw: bytes) -> bytes:
        ev: dict[str, Any] = {}
        if isinstance(doc, dict) and isinstance(doc.get("timestamp"), int):
            ev["time"] = doc["timestamp"] / 1000  # HEC: epoch seconds, milliseconds as the fraction
        if isinstance(doc, dict) and doc.get("agent"):
            ev["host"] = doc["agent"]
        ev["sourcetype"] = "sflowpipe:event"
        if self.cfg.index:
            ev["index"] = self.cfg.index
        ev["event"] = doc
        return dumps(ev)

    def body(self, pieces: list[bytes]) -> bytes:
        return b"".join(pieces)

    def refused(self, status: int, body: bytes, items: list[Item], error: str) -> Verdict:
        # HEC indexes the events before an invalid one and says which one it was
        resp = _loads(body)
        n = resp.get("invalid-event-number") if isinstance(resp, dict) else None
        if isinstance(n, int) and 0 <= n < len(items):
            return Verdict(ok=items[:n], dead=[(items[n], error)], resend=items[n + 1:])
        return super().refused(status, body, items, error)


class Elastic(Destination):
    """Elasticsearch bulk API: index action/source pairs, the event id as ``_id`` (idempotent)."""

    content_type = "application/x-ndjson"

    def __init__(self, cfg: HttpSinkSettings, token: str | None) -> None:
        super().__init__(cfg, token)
        self.path = urllib.parse.urlsplit(cfg.url).path.rstrip("/") + "/_bulk"
        self.index = cfg.index or "sflowpipe-events"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.token}"} if self.token else {}

    @staticmethod
    def doc_id(doc: Any, raw: bytes) -> str:
        # eventID is unique within one processor worker and an agent is owned by one worker
        if isinstance(doc, dict) and "eventID" in doc and "agent" in doc:
            return f"{doc['eventID']}-{doc['agent']}"
        return hashlib.sha256(raw).hexdigest()[:40]  # any other record: the same bytes, the same id

    def piece(self, doc: Any, raw: bytes) -> bytes:
        action = {"index": {"_index": self.index, "_id": self.doc_id(doc, raw)}}
        return dumps(action) + b"\n" + dumps(doc) + b"\n"

    def body(self, pieces: list[bytes]) -> bytes:
        return b"".join(pieces)

    def accepted(self, status: int, body: bytes, items: list[Item]) -> Verdict:
        resp = _loads(body)
        if not isinstance(resp, dict) or not resp.get("errors"):
            return Verdict(ok=list(items))
        results = resp.get("items") or []
        if len(results) != len(items):
            return Verdict(retry=list(items))  # cannot tell which were taken: the _id makes a resend safe
        v = Verdict()
        for item, result in zip(items, results):
            r = next(iter(result.values()), {}) if isinstance(result, dict) else {}
            st = r.get("status", 0)
            if 200 <= st < 300:
                v.ok.append(item)
            elif st == 429 or st >= 500:
                v.retry.append(item)
            else:
                err = r.get("error")
                reason = f"{err.get('type')}: {err.get('reason')}" if isinstance(err, dict) else str(err)
                v.dead.append((item, f"elastic item status {st}: {reason}"))
        return v


DESTINATIONS: dict[str, type[Destination]] = {
    "loggly": Loggly,
    "splunk": Splunk,
    "elastic": Elastic,
    "webhook": Destination,
}


# --- the HTTP connection ------------------------------------------------------------------------


class Transport:
    """One keep-alive HTTP(S) connection to the endpoint's host; reopened after any error."""

    def __init__(self, url: str, timeout: float) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("the endpoint URL must be http(s)://HOST[:PORT][/PATH]")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None:
            if self.https:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                        context=ssl.create_default_context())
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            status, resp_headers = resp.status, {k.lower(): v for k, v in resp.getheaders()}
            if resp_headers.get("connection", "").lower() == "close":
                self.close()
            return status, resp_headers, data
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the dead-letter topic ---------------------------------------------------------------------


class DeadLetters:
    """Writes refused messages to the dead-letter topic (stage ``http:NAME``); raises unless the
    broker took them all (sflowpipe/deadletter.py AcknowledgedDeadLetters)."""

    def __init__(self, clients: KafkaClients, codec: Codec, topic: str, stage: str,
                 flush_timeout_s: float = 30.0) -> None:
        self.topic = topic
        self.stage = stage
        codec.prepare(["dead_letter"])
        self.out = AcknowledgedDeadLetters(clients, codec, topic, flush_timeout_s)
        self.writer = self.out.writer

    def write(self, items: list[tuple[Item, str]]) -> None:
        now_us = time.time_ns() // 1000
        self.out.write([(dead_letter(self.stage, "delivery_failed", error, item.raw, receive_time_us=now_us),
                         item.key, item.topic) for item, error in items])

    def close(self) -> None:
        self.out.close()


# --- the sink ----------------------------------------------------------------------------------


class HttpEventSink:
    """Batches records for one HTTP endpoint; each flush delivers them or dead-letters them."""

    def __init__(self, name: str, cfg: HttpSinkSettings, dead_letters: DeadLetters,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.cfg = cfg
        self.token = cfg.token.get_secret_value() if cfg.token else None
        kind = DESTINATIONS[cfg.type]
        if kind.token_required and not self.token:
            raise ValueError(f"sinks.http.{name}: a {cfg.type} endpoint needs a token")
        self.destination = kind(cfg, self.token)
        self.transport = Transport(cfg.url, cfg.timeout_s)
        self.dead_letters = dead_letters
        self.sleep = sleep
        self.buffer: list[Item] = []
        self.dead: list[tuple[Item, str]] = []  # refused, not yet on the dead-letter topic
        self.delivered = 0
        self.retries = 0
        self.dead_lettered = 0
        u = urllib.parse.urlsplit(cfg.url)  # for the log: no user:password@, the token masked
        self.endpoint = self.mask(f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}"
                                  f"{self.destination.path}")

    def mask(self, text: str) -> str:
        """The text with the token (raw or URL-quoted) replaced by ****."""
        if self.token:
            for form in {self.token, urllib.parse.quote(self.token, safe="")}:
                text = text.replace(form, MASK)
        return text

    # the Sink protocol

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        self.buffer.append(Item(topic, key, raw, self.destination.piece(datum, raw)))
        return 1

    def pending(self) -> int:
        return len(self.buffer) + len(self.dead)

    def flush(self) -> int:
        """Deliver or dead-letter everything buffered; returns how many were dead-lettered. Raises
        only when the dead-letter topic failed (the refused messages stay here and are written again
        on the next flush, never re-POSTed)."""
        buffered, self.buffer = self.buffer, []
        for batch in self._batches(buffered):
            self.dead.extend(self._deliver(batch))
        n = 0
        if self.dead:
            n = len(self.dead)
            self.dead_letters.write(self.dead)
            self.dead = []
            self.dead_lettered += n
            log.error("http:%s: %d messages written to the dead-letter topic %s", self.name, n,
                      self.dead_letters.topic)
        return n

    def close(self) -> None:
        self.transport.close()
        self.dead_letters.close()

    # delivery

    def _batches(self, items: list[Item]):
        batch: list[Item] = []
        size = 0
        for item in items:
            if batch and (len(batch) >= self.cfg.batch_size or size + len(item.piece) > MAX_BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += len(item.piece)
        if batch:
            yield batch

    def _deliver(self, batch: list[Item]) -> list[tuple[Item, str]]:
        """POST until every item is taken or refused; the retry budget is per batch."""
        dead: list[tuple[Item, str]] = []
        todo = batch
        attempt = 0
        headers = {"Content-Type": self.destination.content_type, **self.destination.headers()}
        while todo:
            body = self.destination.body([i.piece for i in todo])
            retry_after = 0.0
            try:
                status, resp_headers, resp = self.transport.post(self.destination.path, body, headers)
            except (OSError, http.client.HTTPException) as e:  # timeouts, refused/reset connections
                error = self.mask(f"{type(e).__name__}: {e}")
                verdict = Verdict(retry=todo)
            else:
                error = self.mask(f"HTTP {status}: {resp[:ERROR_BODY_CHARS].decode('utf-8', 'replace')}")
                if 200 <= status < 300:
                    verdict = self.destination.accepted(status, resp, todo)
                    if verdict.retry or verdict.dead:
                        error = self.mask(f"HTTP {status} with item errors: "
                                          f"{resp[:ERROR_BODY_CHARS].decode('utf-8', 'replace')}")
                elif status == 429 or status >= 500:
                    verdict = Verdict(retry=todo)
                    retry_after = _seconds(resp_headers.get("retry-after"))
                else:
                    verdict = self.destination.refused(status, resp, todo, error)
            self.delivered += len(verdict.ok)
            dead.extend(verdict.dead)
            if verdict.dead:
                log.warning("http:%s: %s refused %d messages: %s", self.name, self.endpoint, len(verdict.dead),
                            verdict.dead[0][1])
            if verdict.retry:
                attempt += 1
                if attempt > self.cfg.max_retries:
                    log.warning("http:%s: %s still failing after %d retries (%s): %d messages to dead letter",
                                self.name, self.endpoint, self.cfg.max_retries, error, len(verdict.retry))
                    dead.extend((i, f"{error} (after {self.cfg.max_retries} retries)") for i in verdict.retry)
                    verdict.retry = []
                else:
                    delay = min(self.cfg.backoff_s * 2 ** (attempt - 1), MAX_DELAY_S) * random.uniform(0.5, 1.5)
                    delay = max(delay, min(retry_after, MAX_DELAY_S))
                    self.retries += 1
                    log.warning("http:%s: %s: %s; retry %d/%d of %d messages in %.2fs", self.name, self.endpoint,
                                error, attempt, self.cfg.max_retries, len(verdict.retry), delay)
                    self.sleep(delay)
            todo = verdict.retry + verdict.resend
        return dead


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0  # an HTTP date: the exponential backoff is used instead


# --- the command -------------------------------------------------------------------------------


def build(settings: Settings, name: str, clients: KafkaClients | None = None,
          codec: Codec | None = None) -> tuple[SinkRunner, HttpEventSink]:
    """The sink for endpoint NAME and the runner that feeds it (topics created when missing)."""
    if clients is None or codec is None:
        clients, codec = wiring(settings)

    cfg = settings.sinks.http.get(name)
    if cfg is None:
        raise KeyError(f"no endpoint {name!r} under sinks.http (configured: "
                       f"{', '.join(sorted(settings.sinks.http)) or 'none'})")
    topics = [settings.kafka.topic(t) for t in cfg.topics]
    deadletter = settings.kafka.topic(settings.topics.deadletter)
    clients.ensure_topics(topics + [deadletter])
    sink = HttpEventSink(name, cfg, DeadLetters(clients, codec, deadletter, f"http:{name}"))
    runner = SinkRunner(sink, topics, cfg.group(name), cfg.batch_size, cfg.batch_seconds, clients=clients, codec=codec,
                        status_topic=settings.kafka.topic(settings.topics.status))
    m = runner.metrics
    m.observed("sflowpipe_sink_messages_written_total", "counter", "records the endpoint accepted",
               lambda: sink.delivered)
    m.observed("sflowpipe_sink_http_retries_total", "counter", "requests retried (5xx, 429, timeout, "
               "connection error)", lambda: sink.retries)
    if isinstance(sink.dead_letters, DeadLetters):
        sink.dead_letters.writer.export(m)
    return runner, sink


def run(settings: Settings, args: argparse.Namespace, clients: KafkaClients | None = None,
        codec: Codec | None = None) -> int:
    try:
        runner, sink = build(settings, args.name, clients, codec)
    except (KeyError, ValueError) as e:
        sys.stderr.write(f"sflowpipe http-events: {e.args[0] if isinstance(e, KeyError) else e}\n")
        return 2
    on_stop_signals(runner.stop)
    metrics = serve_metrics(sink.cfg.metrics_listen, runner.metrics, f"http:{args.name}")
    log.info("http:%s: %s endpoint %s, topics %s, consumer group %s", args.name, sink.cfg.type, sink.endpoint,
             ", ".join(runner.topics), runner.group)
    runner.start()
    try:
        runner.run()
    finally:
        sink.close()
        metrics.stop()
    log.info("http:%s: stopped: %d delivered, %d retries, %d dead-lettered", args.name, sink.delivered,
             sink.retries, sink.dead_lettered)
    return 0
