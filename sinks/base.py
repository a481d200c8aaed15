"""What every sink shares: its own consumer group, batching, commit after the destination took it.

A ``Sink`` buffers decoded records (``add``) and writes them (``flush``, which raises when the
destination did not take the batch). ``SinkRunner`` owns the consumer: it polls the topics,
decodes each message with the schema its fingerprint names, hands it to the sink, flushes at
``batch_size`` records or ``batch_seconds``, and commits the consumed offsets only after a
successful flush: at-least-once. A failed flush is retried with exponential backoff and
jitter; the uncommitted messages are re-read after a restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from schemas.codec import Codec, CodecError, RegistryUnavailable
from sflowpipe.kafka import REGISTRY_RETRY_S, KafkaClients, one_line, seek_back
from sflowpipe.metrics import Metrics, MetricsServer
from sflowpipe.status import SINK_FIELDS, StatusProducer, component_status, instance_id

log = logging.getLogger(__name__)


class Sink(Protocol):
    """A destination: buffer with add(), write with flush() (raise if not written)."""

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int: ...

    def flush(self) -> None: ...

    def pending(self) -> int: ...


LAG_EVERY_S = 5.0  # the consumer lag asks the broker for high watermarks: not on every poll


def describe_runner_metrics(m: Metrics, r: "SinkRunner") -> None:
    m.describe("sflowpipe_sink_messages_consumed_total", "counter", "messages read from Kafka, by topic",
               labels=("topic",))
    m.describe("sflowpipe_sink_undecodable_total", "counter", "messages skipped as undecodable, by topic",
               labels=("topic",))
    m.observed("sflowpipe_sink_records_written_total", "counter",
               "records (messages) the destination took: flushed, then committed (dead-lettered ones are "
               "counted on sflowpipe_dead_letters_total)", lambda: r.flushed_records)
    m.describe("sflowpipe_sink_flushes_total", "counter", "successful writes to the destination")
    m.describe("sflowpipe_sink_flush_seconds", "histogram", "time of one successful write (flush), retries "
               "excluded")
    m.observed("sflowpipe_sink_flush_retries_total", "counter", "failed writes, each retried with backoff",
               lambda: r.failed_flushes)
    m.describe("sflowpipe_sink_rebalances_total", "counter", "partition revocations (rebalances)")
    m.describe("sflowpipe_sink_commit_failures_total", "counter", "offset commits the broker refused (a "
               "rebalance, a write longer than max.poll.interval.ms): the next commit covers them")
    m.observed("sflowpipe_sink_lag_messages", "gauge", "messages behind the end of each assigned partition "
               "(every %g s)" % LAG_EVERY_S, lambda: dict(r.lag), ("topic", "partition"))


def serve_metrics(listen: str, metrics, what: str, default_port: int = 0) -> MetricsServer:
    """Start a sink's /metrics listener and say where it is."""
    server = MetricsServer(listen, metrics, default_port).start()
    log.info("%s: metrics %s", what, server.url)
    return server


class SinkRunner:
    """Owns one consumer group over some topics, driving one sink."""

    def __init__(self, sink: Sink, topics: list[str], group: str, batch_size: int, batch_seconds: float,
                 *, clients: KafkaClients, codec: Codec, status_topic: str, from_beginning: bool = True,
                 decode: bool = True) -> None:
        """``topics`` and ``status_topic`` (where this runner's numbers go) are prefixed names."""
        self.clients = clients
        self.codec = codec
        self.sink = sink
        self.topics = topics
        self.group = group
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.decode = decode
        self.conf = {"enable.auto.commit": False, "auto.offset.reset": "earliest" if from_beginning else "latest",
                     "session.timeout.ms": 10_000, "max.partition.fetch.bytes": 8 << 20}
        self.consumer: Consumer | None = None
        self.stopping = threading.Event()
        self.offsets: dict[tuple[str, int], int] = {}
        self.first_pending = 0.0
        self.flushed_records = 0
        self.failed_flushes = 0
        self.metrics = Metrics()  # this sink process's: the runner's counters, and the sink's own
        describe_runner_metrics(self.metrics, self)
        self.lag: dict[tuple[str, int], int] = {}
        self._next_lag = 0.0
        # the status page's and /analyzer's sink numbers: this registry's, on the status topic
        self.instance = instance_id(group)
        self.status = StatusProducer(self.clients, status_topic, self.status_message)

    def status_message(self) -> dict:
        return component_status("sink", self.group, self.instance, self.metrics, SINK_FIELDS)

    def start(self) -> None:
        self.clients.require_broker()  # unreachable at start: one line and exit, not a silent wait
        self.consumer = self.clients.consumer(self.group, self.conf)
        self.consumer.subscribe(self.topics, on_revoke=self.on_revoke)

    def on_revoke(self, consumer, partitions) -> None:
        """Before a rebalance: write and commit what is buffered. Otherwise the messages consumed
        since the last commit are delivered again after the rebalance (to this consumer or
        another) while still in the buffer, and written twice."""
        self.metrics.inc("sflowpipe_sink_rebalances_total")
        for tp in partitions:
            self.lag.pop((tp.topic, tp.partition), None)
        if self.sink.pending():
            self._flush_and_commit(retry_forever=not self.stopping.is_set())
        else:
            self._commit()  # what a refused commit left
        for tp in partitions:  # no longer ours: never committed over the next owner's offsets
            self.offsets.pop((tp.topic, tp.partition), None)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Consume until stop(); flush and commit what is pending before returning."""
        self.status.start()  # here, not in start(): subclasses replace start()
        try:
            while not self.stopping.is_set():
                batch = self.consumer.consume(1000, 0.2)
                for i, m in enumerate(batch):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("%s: %s", self.group, m.error())
                        continue
                    try:
                        self._add(m)
                    except RegistryUnavailable as e:
                        self._read_again(batch[i:], e)
                        break
                if time.monotonic() >= self._next_lag:
                    self._update_lag()
                self.status.tick()
                if self.sink.pending() and (self.sink.pending() >= self.batch_size
                                            or time.monotonic() - self.first_pending >= self.batch_seconds):
                    self._flush_and_commit()
            if self.sink.pending():
                self._flush_and_commit(retry_forever=False)
            else:
                self._commit()  # what a refused commit left
        finally:
            self.consumer.close()
            self.status.close()

    def _update_lag(self) -> None:
        """Per assigned partition: its high watermark minus this consumer's position."""
        self._next_lag = time.monotonic() + LAG_EVERY_S
        budget = time.monotonic() + 1.0  # a slow broker must not hold up consuming: the rest next round
        try:
            assigned = self.consumer.assignment()
            for tp in self.consumer.position(assigned):
                if time.monotonic() > budget:
                    break
                _, high = self.consumer.get_watermark_offsets(tp, timeout=0.5)
                if tp.offset >= 0:
                    self.lag[(tp.topic, tp.partition)] = max(0, high - tp.offset)
                elif high == 0:
                    self.lag[(tp.topic, tp.partition)] = 0
        except Exception as e:  # KafkaException: the broker did not answer now; the next round will
            log.debug("%s: lag not measured: %s", self.group, e)

    def _read_again(self, rest: list, error: RegistryUnavailable) -> None:
        """The schema registry is away: these messages are read again after a pause (seek back to
        the first of each partition), never skipped as undecodable, nor committed past."""
        seek_back(self.consumer, rest)
        log.warning("%s: %s; reading again in %.0f s", self.group, error, REGISTRY_RETRY_S)
        self.stopping.wait(REGISTRY_RETRY_S)

    def _add(self, m) -> None:
        self.metrics.inc("sflowpipe_sink_messages_consumed_total", labels=(("topic", m.topic()),))
        value = m.value()
        try:
            stem, datum = self.codec.decode(value) if self.decode else ("", None)
            if not self.sink.pending():
                self.first_pending = time.monotonic()
            self.sink.add(m.topic(), stem, m.key(), datum, value)  # a sink decoding itself raises CodecError too
        except RegistryUnavailable:
            raise
        except CodecError as e:
            self.metrics.inc("sflowpipe_sink_undecodable_total", labels=(("topic", m.topic()),))
            log.error("%s: skipping undecodable message on %s: %s", self.group, m.topic(), e)
        self.offsets[(m.topic(), m.partition())] = m.offset() + 1

    def _flush_and_commit(self, retry_forever: bool = True) -> None:
        delay = 0.2
        records = self.sink.pending()
        while True:
            try:
                t0 = time.perf_counter()
                not_written = self.sink.flush() or 0  # a sink may return what it dead-lettered instead
                self.metrics.observe("sflowpipe_sink_flush_seconds", time.perf_counter() - t0)
                self.metrics.inc("sflowpipe_sink_flushes_total")
                break
            except Exception as e:  # the destination's own errors: retry, never lose
                self.failed_flushes += 1
                log.warning("%s: write failed (%s), retrying in %.1fs", self.group, e, delay)
                if self.stopping.is_set() and not retry_forever:
                    return  # not committed: re-read after a restart
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 30.0)
        self.flushed_records += records - not_written
        self._commit()

    def _commit(self) -> None:
        """Commit the consumed offsets. One the broker refuses (a rebalance under way, this member
        dropped after a write longer than max.poll.interval.ms) is logged and counted, not the end of
        the sink: the offsets are kept for the next commit, and what is read again meanwhile is
        written again (at-least-once; the sinks skip duplicates)."""
        if not self.offsets:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in self.offsets.items()],
                                 asynchronous=False)
        except KafkaException as e:
            self.metrics.inc("sflowpipe_sink_commit_failures_total")
            log.warning("%s: commit refused (%s); the next commit covers these offsets", self.group, one_line(e))
            return
        self.offsets.clear()
