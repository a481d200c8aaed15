"""The API's reader: every partition of the topics it serves, no consumer group.

Each API instance reads everything (so several can run behind a load balancer), starting
``history_s`` back in time (Kafka's offsets-for-times; from the beginning where a broker cannot
answer that), and follows new partitions and topics as they appear. Definitions come from the
compacted config topic through ``ConfigWatcher``; consumer lag of the sinks is refreshed every
few seconds with the admin API.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, \
    TopicPartition
from confluent_kafka.admin import AdminClient

from api.state import ApiState
from sflowpipe.config_plane import ConfigWatcher
from schemas.codec import Codec, CodecError, RegistryUnavailable
from sflowpipe.kafka import REGISTRY_RETRY_S, KafkaClients, seek_back
from sflowpipe.settings import ApiSettings, KafkaSettings, LimitSettings, TopicNames
from sflowpipe.status import STATUS_TOPIC_CONFIG

log = logging.getLogger(__name__)


class TopicReader:
    """Owns the consumer thread feeding ``ApiState`` and the config watcher."""

    def __init__(self, cfg: ApiSettings, state: ApiState, kafka: KafkaSettings, t: TopicNames,
                 limits: LimitSettings, clients: KafkaClients, codec: Codec,
                 definitions: list[tuple[str, str, Any]] = ()) -> None:
        """``kafka`` names the topics (its prefix) with ``t``; ``definitions`` are the start-up ones
        (settings and definitions file: sflowpipe.config_plane.startup_definitions)."""
        self.clients, self.codec = clients, codec
        self.cfg = cfg
        self.state = state
        self.definitions = list(definitions)
        k = kafka
        self.status_topic = k.topic(t.status)
        self.topics = [k.topic(n) for n in (t.flows, t.metrics, t.events, t.counter_samples, t.flow_logs)] + \
            [self.status_topic]
        self.watcher = ConfigWatcher(clients, k.topic(t.config), limits, state.define, state.older)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.assigned: set[tuple[str, int]] = set()
        self.errors = 0

    def start(self) -> None:
        for kind, name, d in self.definitions:
            self.state.define(kind, name, d)
        self.watcher.start()
        # the clients are built here, not in the threads: a client setting librdkafka refuses stops the start
        consumer = self.clients.consumer("sflowpipe-api-reader", {
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False,
            "max.partition.fetch.bytes": 8 << 20})
        lag = (self.clients.admin(), self.clients.consumer("sflowpipe-api-lag-probe", {"enable.auto.commit": False}))
        for target, name, arg in ((self._run, "api-reader", consumer), (self._lag_loop, "api-lag", lag)):
            th = threading.Thread(target=target, args=(arg,), name=name, daemon=True)
            th.start()
            self.threads.append(th)

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.stop()
        for th in self.threads:
            th.join(10)

    # ---------------------------------------------------------------- consuming

    def _run(self, consumer) -> None:
        try:
            self.clients.ensure_topics(self.topics[:-1])
            self.clients.ensure_topics([self.status_topic], config=STATUS_TOPIC_CONFIG)
        except Exception as e:  # the broker may come later: assignment below retries
            log.warning("api: topics not ensured yet: %s", e)
        next_discovery = 0.0
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_discovery:
                    self._discover(consumer)
                    next_discovery = now + 10.0
                if not self.assigned:
                    self.stopping.wait(0.5)
                    continue
                batch = consumer.consume(500, 0.2)
                for i, m in enumerate(batch):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.debug("api reader: %s", m.error())
                        continue
                    try:
                        self._handle(m.topic(), m.value(), m.partition(), m.offset())
                    except RegistryUnavailable as e:  # an event or logged flow skipped would never be served
                        seek_back(consumer, batch[i:])
                        log.warning("api reader: %s; reading again in %.0f s", e, REGISTRY_RETRY_S)
                        self.stopping.wait(REGISTRY_RETRY_S)
                        break
        finally:
            consumer.close()

    def _discover(self, consumer: Consumer) -> None:
        try:
            md = consumer.list_topics(timeout=5)
        except KafkaException as e:
            log.debug("api reader: metadata: %s", e)
            return
        new = [TopicPartition(t, p) for t in self.topics if t in md.topics and md.topics[t].error is None
               for p in md.topics[t].partitions if (t, p) not in self.assigned]
        if not new:
            return
        since_ms = int((time.time() - self.cfg.history_s) * 1000)
        start = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in new]
        try:
            start = consumer.offsets_for_times(start, timeout=5)
            start = [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                     for tp in start]
        except KafkaException as e:  # a broker without ListOffsets by time: read what it keeps
            log.info("api reader: offsets for times not available (%s): reading from the beginning", e)
            start = [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in new]
        consumer.incremental_assign(start)
        self.assigned.update((tp.topic, tp.partition) for tp in new)
        log.info("api reader: following %d more partitions", len(new))

    def _handle(self, topic: str, value: bytes | None, partition: int = 0, offset: int | None = None) -> None:
        if not value:
            return
        try:
            if topic == self.status_topic:  # JSON with a "kind": ingester (the default), processor, sink, flowkeys...
                self.state.status_message(json.loads(value))
                return
            stem, datum = self.codec.decode(value)
        except RegistryUnavailable:
            raise  # the message may well be sound: the caller reads it again
        except (CodecError, ValueError, KeyError) as e:
            self.errors += 1
            log.warning("api reader: skipping undecodable message on %s: %s", topic, e)
            return
        self.state.add(stem, datum, partition, offset)

    # ---------------------------------------------------------------- consumer lag

    def _lag_loop(self, clients) -> None:
        admin, probe = clients
        while not self.stopping.wait(5.0):
            try:
                self.state.set_lag({g: consumer_lag(admin, probe, g) for g in self.cfg.sinks})
            except Exception as e:  # lag is informational; keep serving without it
                log.debug("api: consumer lag: %s", e)
        probe.close()


def consumer_lag(admin: AdminClient, probe: Consumer, group: str) -> int | None:
    """Messages the group has not committed yet, summed over its partitions (None: no offsets).
    Exact on Apache Kafka (tests/api/test_status_kafka.py); on Tansu a lower bound: its high
    watermarks can lag its log (0 shown there for 25 uncommitted)."""
    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    committed = fut.result(timeout=5).topic_partitions or []
    total, known = 0, False
    for tp in committed:
        if tp.offset < 0:
            continue
        _, high = probe.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5, cached=False)
        total += max(0, high - tp.offset)
        known = True
    return total if known else None
