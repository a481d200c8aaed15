"""Publishing to Kafka without losing anything: the producer, then a bounded disk spill.

Messages go to confluent-kafka's producer (acks=all, idempotent, compressed, batched), whose
queue is the bounded in-memory buffer. When it is full, or while anything waits on disk (so
order is kept), messages go to the ``SpillQueue``; ``service()`` moves them back to the producer
once it has room. A message the producer gives up on (broker unreachable past
``message_timeout_s``) returns to the spill queue, and while the broker is away new messages go
straight to disk: an outage reaches the spill within ``message_timeout_s``. Every message ends up
delivered, on disk, or counted as dropped (spill queue full; or held in memory by an ingester that
was killed, counted when it restarts from the in-flight count it keeps beside the spill).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

from sflowpipe.metrics import Metrics
from ingest.spill import SpillQueue
from sflowpipe.kafka import KafkaClients, one_line

log = logging.getLogger(__name__)


def describe_metrics(m: Metrics) -> None:
    m.describe("sflowpipe_kafka_messages_spilled_total", "counter", "messages written to the disk spill queue",
               labels=("topic",))
    m.describe("sflowpipe_kafka_messages_dropped_total", "counter",
               "messages lost, by reason: spill_full; crash (held in memory by a killed ingester, counted "
               "at its restart: an upper bound, some may have been delivered)", labels=("topic", "reason"))
    m.describe("sflowpipe_kafka_delivery_retries_total", "counter",
               "messages the producer gave up on, returned to the spill queue", labels=("topic",))
    m.describe("sflowpipe_kafka_producer_queue_messages", "gauge", "messages in the producer queue (in flight)")
    m.describe("sflowpipe_kafka_spill_pending_messages", "gauge", "messages waiting in the disk spill queue")
    m.describe("sflowpipe_kafka_spill_pending_bytes", "gauge", "bytes waiting in the disk spill queue")


# producer-state errors a new producer (new producer id) gets past
_FATAL_CODES = {KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.UNKNOWN_PRODUCER_ID,
                KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError._FATAL}


class Publisher:
    """Owns the Kafka producer and the spill queue behind it."""

    def __init__(self, clients: KafkaClients, spill: SpillQueue, metrics: Metrics, client_id: str = "sflowpipe",
                 ensure_topics: Callable[[], None] | None = None) -> None:
        self.clients = clients
        self.kafka = clients.settings
        # messages produced and not yet reported delivered or failed: what a kill loses. Not
        # len(producer): librdkafka counts its pending error and log events there too, so during an
        # outage it read 2 for messages already on disk and a kill counted them lost
        self.outstanding = 0
        self._count_lock = threading.Lock()  # the status thread publishes too
        self.spill = spill
        self.metrics = metrics
        self.client_id = client_id
        self.producer: Producer | None = None
        self.full = False  # producer refused a message; spill until service() finds room
        self.broker_up = True  # false after a failed delivery, true again after a successful one
        self._last_error_log = 0.0
        self._rebuild = False  # the producer hit a fatal error: replace it
        # topics are created in the background, so that UDP is received (and spilled) before Kafka answers
        self._ensure_topics = ensure_topics
        self.topics_ready = ensure_topics is None
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._dropped_unlogged = 0
        self._last_drop_log = 0.0
        m = metrics
        m.describe("sflowpipe_kafka_producer_restarts_total", "counter",
                   "producers replaced after a fatal error (e.g. fenced after a broker restart)")
        describe_metrics(metrics)
        # counted per message: plain numbers by topic, read by the registry at each scrape
        self.submitted: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        m.observed("sflowpipe_kafka_messages_submitted_total", "counter", "messages handed to the publisher",
                   lambda: {(t,): n for t, n in list(self.submitted.items())}, ("topic",))
        m.observed("sflowpipe_kafka_messages_delivered_total", "counter", "messages acknowledged by Kafka",
                   lambda: {(t,): n for t, n in list(self.delivered.items())}, ("topic",))

    def start(self) -> None:
        self.spill.start()
        if self.spill.crash_in_flight:
            # the last run was killed holding these in memory: they are lost, and said so
            self.metrics.inc("sflowpipe_kafka_messages_dropped_total", self.spill.crash_in_flight,
                             labels=(("topic", "*"), ("reason", "crash")))
            log.warning("the previous run ended without a clean stop holding %d messages in memory: counted "
                        "as lost (sflowpipe_kafka_messages_dropped_total{reason=\"crash\"})",
                        self.spill.crash_in_flight)
        self.producer = self._new_producer()
        if not self.topics_ready:
            self.broker_up = False
        self._watch = threading.Thread(target=self._watch_broker, name="kafka-watch", daemon=True)
        self._watch.start()

    def _watch_broker(self) -> None:
        """Create the topics once Kafka answers, and tell when it is back after an outage (a metadata
        request, so no message leaves the spill queue before the broker can take it)."""
        last_said = 0.0
        while not self._watch_stop.is_set():
            producer = self.producer
            if self.broker_up or producer is None:
                self._watch_stop.wait(1.0)
                continue
            try:
                if not self.topics_ready:
                    self._ensure_topics()
                    self.topics_ready = True
                    log.info("Kafka at %s answers: topics ready, publishing", self.kafka.bootstrap_servers)
                else:
                    producer.list_topics(timeout=2)
                self.broker_up = True
            except (KafkaException, RuntimeError) as e:
                now = time.monotonic()
                if now - last_said >= 30:
                    last_said = now
                    log.warning("%s: receiving and spilling to disk (%d messages waiting)",
                                e if isinstance(e, RuntimeError) else
                                f"Kafka at {self.kafka.bootstrap_servers} unreachable ({one_line(e)})",
                                self.spill.pending)
                self._watch_stop.wait(1.0)

    def _new_producer(self) -> Producer:
        conf = {
            "client.id": self.client_id,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": self.kafka.compression,
            "linger.ms": self.kafka.linger_ms,
            "batch.size": 1 << 20,
            "queue.buffering.max.kbytes": self.kafka.memory_queue_mb * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": int(self.kafka.message_timeout_s * 1000),
            "error_cb": self._error,
        }
        return self.clients.producer(conf)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what Kafka will take within ``timeout``; spill the rest to disk for next time."""
        self._watch_stop.set()
        if self._watch is not None:
            self._watch.join(5)
        if self.producer is not None:
            deadline = time.monotonic() + timeout
            while self.spill.pending and time.monotonic() < deadline and self._replay(5000):
                self.producer.poll(0.05)
            # the broker away: nothing to wait for, what the producer holds goes to disk at once
            self.producer.flush(max(0.0, deadline - time.monotonic()) if self.broker_up else 0)
            if len(self.producer):
                self.producer.purge()  # undelivered: their delivery reports put them back on disk
                self.producer.flush(5)
            self.producer = None
        self._gauges()
        self.spill.stop()  # records that nothing is in flight: a clean stop

    # ---------------------------------------------------------------- publishing

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.submitted[topic] = self.submitted.get(topic, 0) + 1
        if self.full or self.spill.pending or not self.broker_up:
            self._to_spill(topic, key, value)
            return
        try:
            self.producer.produce(topic, value, key, on_delivery=self._delivered)
            with self._count_lock:
                self.outstanding += 1
        except BufferError:
            self.full = True
            self._to_spill(topic, key, value)

    def service(self) -> None:
        """Deliver reports, and move spilled messages back to the producer when it has room."""
        self.producer.poll(0)
        if self._rebuild:
            self._restart_producer()
        if self.spill.pending:
            self._replay(2000)
        elif self.full and len(self.producer) < 1000:
            self.full = False
        # what was accepted is on disk (the OS's, so a killed process keeps it) or counted in flight
        self.spill.flush(self.outstanding)
        self._gauges()

    def in_flight(self) -> int:
        return self.outstanding

    def flush(self, timeout: float) -> int:
        """Wait for in-flight messages (not the spill queue); returns how many are still in flight."""
        return self.producer.flush(timeout)

    # ---------------------------------------------------------------- internals

    def _replay(self, budget: int) -> int:
        """Move up to ``budget`` messages from disk to the producer, in order; returns how many."""
        if not self.broker_up:  # the watch thread says when it is back
            return 0
        if len(self.producer) > 10_000:  # a backlog already: let it drain first
            return 0
        items = self.spill.peek(budget)
        moved = nbytes = 0
        last = None
        for topic, key, value, pos in items:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._delivered)
            except BufferError:
                break
            with self._count_lock:
                self.outstanding += 1
            moved += 1
            nbytes += pos[2]
            last = pos
        if moved:
            self.spill.consume(last, moved, nbytes)
        self.full = moved < len(items)
        return moved

    def _restart_producer(self) -> None:
        """Replace a producer that hit a fatal error; what it held goes back to disk first."""
        old = self.producer
        old.purge()
        old.flush(5)  # delivery reports of the purged messages spill them
        self._rebuild = False
        self.producer = self._new_producer()
        self.broker_up = False  # probe before replaying at full speed
        self.metrics.inc("sflowpipe_kafka_producer_restarts_total")
        log.warning("kafka producer replaced after a fatal error")

    def _to_spill(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.spill.append(topic, key, value):
            self.metrics.inc("sflowpipe_kafka_messages_spilled_total", labels=(("topic", topic),))
        else:
            self.metrics.inc("sflowpipe_kafka_messages_dropped_total", labels=(("topic", topic), ("reason", "spill_full")))
            self._dropped_unlogged += 1
            now = time.monotonic()
            if now - self._last_drop_log >= 10:
                self._last_drop_log = now
                log.error("spill queue full (%d MB at %s): %d messages dropped since the last report",
                          self.spill.max_bytes >> 20, self.spill.dir, self._dropped_unlogged)
                self._dropped_unlogged = 0

    def _delivered(self, err: KafkaError | None, msg) -> None:
        with self._count_lock:
            self.outstanding -= 1
        topic = msg.topic()
        if err is None:
            self.broker_up = True
            self.delivered[topic] = self.delivered.get(topic, 0) + 1
            return
        self.broker_up = False
        if err.fatal() or err.code() in _FATAL_CODES:
            self._rebuild = True
        # not delivered (timed out while the broker was away, purged at shutdown...): keep it
        self.metrics.inc("sflowpipe_kafka_delivery_retries_total", labels=(("topic", topic),))
        self._to_spill(topic, msg.key(), msg.value())
        self._log_error(f"delivery to {topic} failed, message kept on disk: {err}")

    def _error(self, err: KafkaError) -> None:
        if err.fatal():
            self._rebuild = True
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.broker_up = False  # new messages to disk now, not after message_timeout_s
        self._log_error(f"Kafka at {self.kafka.bootstrap_servers}: {one_line(err)}")

    def _log_error(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 5:
            self._last_error_log = now
            log.warning(text)

    def _gauges(self) -> None:
        m = self.metrics
        m.set("sflowpipe_kafka_producer_queue_messages", self.in_flight())
        m.set("sflowpipe_kafka_spill_pending_messages", self.spill.pending)
        m.set("sflowpipe_kafka_spill_pending_bytes", self.spill.bytes)
