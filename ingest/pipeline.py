"""The ingest path of one datagram: raw envelope, decode, per-agent batches, Kafka.

Used by the UDP ingester and by ``sflowpipe replay --to kafka`` alike, so a replayed capture
takes exactly the path live traffic takes.
"""

from __future__ import annotations

import time

from ingest.agents import AgentCounters
from ingest.batches import COUNTERS, DISCARDS, FLOW, AgentBatches, Batch
from sflowpipe.deadletter import DeadLetterWriter, dead_letter
from sflowpipe.metrics import Metrics
from ingest.publisher import Publisher
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.header import HEADER_FAILURES
from schemas.codec import Codec
from sflowpipe.settings import IngestSettings, KafkaSettings, TopicNames

MAX_TRACKED_AGENTS = 10_000  # per-agent metric series and sequence state
# decode latency buckets, seconds
DECODE_BUCKETS = (5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3, 20e-3)
STEMS = {FLOW: "flow_sample_batch", COUNTERS: "counter_sample_batch", DISCARDS: "discard_sample_batch"}


def describe_metrics(m: Metrics) -> None:
    m.describe("sflowpipe_ingest_datagrams_received_total", "counter", "UDP datagrams received")
    m.describe("sflowpipe_ingest_bytes_received_total", "counter", "UDP payload bytes received")
    m.describe("sflowpipe_ingest_datagrams_malformed_total", "counter",
               "datagrams that failed to decode (sent to the dead-letter topic), by reason", labels=("reason",))
    m.describe("sflowpipe_ingest_samples_total", "counter", "decoded samples batched for Kafka, by kind", labels=("kind",))
    m.describe("sflowpipe_ingest_batches_total", "counter", "sample batches published, by kind", labels=("kind",))
    m.describe("sflowpipe_ingest_agent_datagrams_total", "counter", "datagrams per agent", labels=("agent",))
    m.describe("sflowpipe_ingest_agent_sequence_lost_total", "counter",
               "datagrams lost before reaching us, per agent (gaps in datagram sequence numbers)",
               labels=("agent",))
    m.describe("sflowpipe_ingest_decode_seconds", "histogram", "time to decode one datagram", DECODE_BUCKETS)
    m.observed("sflowpipe_ingest_header_decode_failures_total", "counter",
               "sampled packet headers whose parse failed, by exception (the datagram is kept, the header's "
               "fields left empty; counted per process)",
               lambda: {(k,): v for k, v in HEADER_FAILURES.items()}, ("error",))


class IngestPipeline:
    """Owns the per-agent batches between the decoder and the publisher."""

    def __init__(self, cfg: IngestSettings, kafka: KafkaSettings, t: TopicNames, publisher: Publisher,
                 metrics: Metrics, codec: Codec) -> None:
        """``kafka`` names the topics (its prefix) with ``t``."""
        k = kafka
        self.publisher = publisher
        self.metrics = metrics
        self.batches = AgentBatches(cfg.batch_max_samples, cfg.batch_max_ms / 1000)
        self.codec = codec
        codec.prepare(["raw_datagram", "dead_letter", *STEMS.values()])  # a registry fault: said at start
        self.raw_topic = k.topic(t.raw)
        self.deadletter_topic = k.topic(t.deadletter)
        self.sample_topics = {FLOW: k.topic(t.flow_samples), COUNTERS: k.topic(t.counter_samples),
                              DISCARDS: k.topic(t.discard_samples)}
        self.last_sequence: dict[tuple[str, int], int] = {}
        self.agents = AgentCounters(MAX_TRACKED_AGENTS)  # sFlow-RT's /agents/json counters
        self.dead_letters = DeadLetterWriter(self.deadletter_topic, self.codec,
                                             lambda topic, key, value, _headers: publisher.publish(topic, key, value))
        describe_metrics(metrics)
        self.dead_letters.export(metrics)

    def topics(self) -> list[str]:
        return [self.raw_topic, self.deadletter_topic, *self.sample_topics.values()]

    def handle(self, data: bytes, exporter: str, port: int, receive_time_us: int) -> None:
        m = self.metrics
        m.inc("sflowpipe_ingest_datagrams_received_total")
        m.inc("sflowpipe_ingest_bytes_received_total", len(data))
        key = exporter.encode()
        self.publisher.publish(self.raw_topic, key, self.codec.encode("raw_datagram",
            {"receive_time_us": receive_time_us, "exporter_address": exporter, "exporter_port": port, "data": data}))
        t0 = time.perf_counter()
        try:
            dg = decode_datagram(data)
        except DecodeError as e:
            m.inc("sflowpipe_ingest_datagrams_malformed_total", labels=(("reason", e.code.value),))
            self.dead_letters.write(dead_letter("decode", e.code.value, e.reason, data, receive_time_us=receive_time_us,
                                                exporter_address=exporter, exporter_port=port, offset=e.offset), key)
            return
        m.observe("sflowpipe_ingest_decode_seconds", time.perf_counter() - t0)
        agent = dg.agent_address
        seq_key = (agent, dg.sub_agent_id)
        last = self.last_sequence.get(seq_key)
        if last is None and len(self.last_sequence) >= MAX_TRACKED_AGENTS:
            # bounded: spoofed or misconfigured agents must not grow metrics and state forever
            agent_label = (("agent", "other"),)
        else:
            agent_label = (("agent", agent),)
        m.inc("sflowpipe_ingest_agent_datagrams_total", labels=agent_label)
        if last is not None and dg.sequence_number > last + 1 and dg.sequence_number - last < 1 << 20:
            m.inc("sflowpipe_ingest_agent_sequence_lost_total", dg.sequence_number - last - 1, agent_label)
        if last is not None or len(self.last_sequence) < MAX_TRACKED_AGENTS:
            self.last_sequence[seq_key] = dg.sequence_number
        self.agents.add(dg, exporter, len(data))
        for batch in self.batches.add(dg, exporter, receive_time_us):
            self._publish(batch)

    def service(self, now: float | None = None) -> None:
        """Publish batches that have waited long enough; let the publisher do its work."""
        for batch in self.batches.due(now):
            self._publish(batch)
        self.publisher.service()

    def drain(self) -> None:
        for batch in self.batches.drain():
            self._publish(batch)

    def _publish(self, b: Batch) -> None:
        value = self.codec.encode(STEMS[b.kind], b.datum)
        self.publisher.publish(self.sample_topics[b.kind], b.agent.encode(), value)
        self.metrics.inc("sflowpipe_ingest_samples_total", b.samples, (("kind", b.kind),))
        self.metrics.inc("sflowpipe_ingest_batches_total", 1, (("kind", b.kind),))
