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

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.codec import Codec, CodecError
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import Settings

log = logging.getLogger(__name__)


class Sink(Protocol):
    """A destination: buffer with add(), write with flush() (raise if not written)."""

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int: ...

    def flush(self) -> None: ...

    def pending(self) -> int: ...


class SinkRunner:
    """Owns one consumer group over some topics, driving one sink."""

    def __init__(self, settings: Settings, sink: Sink, topics: list[str], group: str, batch_size: int,
                 batch_seconds: float, from_beginning: bool = True, decode: bool = True,
                 clients: KafkaClients | None = None, codec: Codec | None = None) -> None:
        if clients is None or codec is None:
            clients, codec = wiring(settings)
        self.settings = settings
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

    def start(self) -> None:
        self.clients.require_broker()  # unreachable at start: one line and exit, not a silent wait
        self.consumer = self.clients.consumer(self.group, self.conf)
        self.consumer.subscribe(self.topics, on_revoke=self.on_revoke)

    def on_revoke(self, consumer, partitions) -> None:
        """Before a rebalance: write and commit what is buffered. Otherwise the messages consumed
        since the last commit are delivered again after the rebalance (to this consumer or
        another) while still in the buffer, and written twice."""
        if self.sink.pending():
            self._flush_and_commit(retry_forever=not self.stopping.is_set())

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Consume until stop(); flush and commit what is pending before returning."""
        try:
            while not self.stopping.is_set():
                for m in self.consumer.consume(1000, 0.2):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("%s: %s", self.group, m.error())
                        continue
                    self._add(m)
                if self.sink.pending() and (self.sink.pending() >= self.batch_size
                                            or time.monotonic() - self.first_pending >= self.batch_seconds):
                    self._flush_and_commit()
            if self.sink.pending():
                self._flush_and_commit(retry_forever=False)
        finally:
            self.consumer.close()

    def _add(self, m) -> None:
        value = m.value()
        if self.decode:
            try:
                stem, datum = self.codec.decode(value)
            except CodecError as e:
                log.error("%s: skipping undecodable message on %s: %s", self.group, m.topic(), e)
                self.offsets[(m.topic(), m.partition())] = m.offset() + 1
                return
        else:
            stem, datum = "", None
        if not self.sink.pending():
            self.first_pending = time.monotonic()
        self.sink.add(m.topic(), stem, m.key(), datum, value)
        self.offsets[(m.topic(), m.partition())] = m.offset() + 1

    def _flush_and_commit(self, retry_forever: bool = True) -> None:
        delay = 0.2
        while True:
            try:
                self.sink.flush()
                break
            except Exception as e:  # the destination's own errors: retry, never lose
                self.failed_flushes += 1
                log.warning("%s: write failed (%s), retrying in %.1fs", self.group, e, delay)
                if self.stopping.is_set() and not retry_forever:
                    return  # not committed: re-read after a restart
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 30.0)
        if self.offsets:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in self.offsets.items()],
                                 asynchronous=False)
            self.offsets.clear()
