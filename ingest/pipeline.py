"""The ingest path of one datagram: raw envelope, decode, per-agent batches, Kafka.

Used by the UDP ingester and by ``sflowpipe replay --to kafka`` alike, so a replayed capture
takes exactly the path live traffic takes.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left

from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from ingest.agents import AgentCounters
from ingest.batches import COUNTERS, DISCARDS, FLOW, AgentBatches, Batch
from ingest.rows import FLOW_KEYS, decode_rows
from sflowpipe.deadletter import DeadLetterWriter, dead_letter
from sflowpipe.metrics import Metrics
from ingest.publisher import Publisher
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.header import HEADER_FAILURES
from schemas.codec import Codec
from schemas.writer import encode_long, long_writer
from sflowpipe.settings import IngestSettings, KafkaSettings, TopicNames

MAX_TRACKED_AGENTS = 10_000  # per-agent metric series and sequence state
# decode latency buckets, seconds
DECODE_BUCKETS = (5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3, 20e-3)
STEMS = {FLOW: "flow_sample_batch", COUNTERS: "counter_sample_batch", DISCARDS: "discard_sample_batch"}


def describe_metrics(m: Metrics) -> None:
    """The metrics counted per batch or per fault (those counted per datagram: ``IngestPipeline``)."""
    m.describe("sflowpipe_ingest_datagrams_malformed_total", "counter",
               "datagrams that failed to decode (sent to the dead-letter topic), by reason", labels=("reason",))
    m.describe("sflowpipe_ingest_samples_total", "counter", "decoded samples batched for Kafka, by kind", labels=("kind",))
    m.describe("sflowpipe_ingest_batches_total", "counter", "sample batches published, by kind", labels=("kind",))
    m.observed("sflowpipe_ingest_header_decode_failures_total", "counter",
               "sampled packet headers whose parse failed, by exception (the datagram is kept, the header's "
               "fields left empty; counted per process)",
               lambda: {(k,): v for k, v in HEADER_FAILURES.items()}, ("error",))


class DecodeSeconds:
    """The decode-time histogram, observed per datagram as a bisect and an increment (prometheus-client's
    Histogram.observe, a lock and a Python loop over the buckets, cost ~10x that); exported at scrape."""

    name = "sflowpipe_ingest_decode_seconds"

    def __init__(self, buckets: tuple[float, ...] = DECODE_BUCKETS) -> None:
        self.bounds = tuple(buckets) + (math.inf,)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def collect(self):
        acc, buckets = 0, []
        for bound, n in zip(self.bounds, list(self.counts)):
            acc += n
            buckets.append((floatToGoString(bound), acc))
        return [HistogramMetricFamily(self.name, "time to decode one datagram", buckets, self.sum)]

    def describe(self):
        return []


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
        # counted per datagram: plain numbers, read by the registry at each scrape
        self.received = self.received_bytes = 0
        self.agent_datagrams: dict[str, int] = {}
        self.agent_lost: dict[str, int] = {}
        self.decode_seconds = DecodeSeconds()
        metrics.observed("sflowpipe_ingest_datagrams_received_total", "counter", "UDP datagrams received",
                         lambda: self.received)
        metrics.observed("sflowpipe_ingest_bytes_received_total", "counter", "UDP payload bytes received",
                         lambda: self.received_bytes)
        metrics.observed("sflowpipe_ingest_agent_datagrams_total", "counter", "datagrams per agent",
                         lambda: {(a,): n for a, n in list(self.agent_datagrams.items())}, ("agent",))
        metrics.observed("sflowpipe_ingest_agent_sequence_lost_total", "counter",
                         "datagrams lost before reaching us, per agent (gaps in datagram sequence numbers)",
                         lambda: {(a,): n for a, n in list(self.agent_lost.items())}, ("agent",))
        metrics.registry.register(self.decode_seconds)
        # the raw_datagram envelope written field by field (the schema's four, checked here), its
        # exporter address and port encoded once per exporter
        self.raw_prefix = codec.prefix("raw_datagram")
        raw_fields = [(f["name"], f["type"]) for f in codec.current("raw_datagram").raw["fields"]]
        assert raw_fields == [("receive_time_us", "long"), ("exporter_address", "string"), ("exporter_port", "int"),
                              ("data", "bytes")], raw_fields
        self.exporters: dict[tuple[str, int], tuple[bytes, bytes]] = {}  # -> (Kafka key, encoded address + port)
        self.long = long_writer()

    def topics(self) -> list[str]:
        return [self.raw_topic, self.deadletter_topic, *self.sample_topics.values()]

    def _exporter(self, exporter: str, port: int) -> tuple[bytes, bytes]:
        if len(self.exporters) >= MAX_TRACKED_AGENTS:
            self.exporters.clear()
        key = exporter.encode()
        e = self.exporters[(exporter, port)] = (key, encode_long(len(key)) + key + encode_long(port))
        return e

    def handle(self, data: bytes, exporter: str, port: int, receive_time_us: int) -> None:
        self.received += 1
        self.received_bytes += len(data)
        key, fields = self.exporters.get((exporter, port)) or self._exporter(exporter, port)
        long = self.long
        self.publisher.publish(self.raw_topic, key, b"".join((self.raw_prefix, long(receive_time_us), fields,
                                                              long(len(data)), data)))
        t0 = time.perf_counter()
        try:
            rows = decode_rows(data, receive_time_us)
        except Exception:  # a fault, or a shape only the model reads: decode_datagram has the last word
            self._handle_model(data, exporter, port, receive_time_us, key, t0)
            return
        self.decode_seconds.observe(time.perf_counter() - t0)
        agent = rows.agent
        self._datagram(agent, rows.sub_agent_id, rows.sequence_number)
        flows = rows.flows
        self.agents.add_samples(agent, rows.sub_agent_id, rows.sequence_number, rows.uptime, exporter, len(data),
                                list(map(FLOW_KEYS, flows)) if flows else (), rows.counter_keys)
        for batch in self.batches.add_rows(agent, exporter, flows, rows.mixed):
            self._publish(batch)

    def _handle_model(self, data: bytes, exporter: str, port: int, receive_time_us: int, key: bytes,
                      t0: float) -> None:
        """``handle`` through the data model: malformed datagrams, and shapes ingest/rows.py leaves to it."""
        try:
            dg = decode_datagram(data)
        except DecodeError as e:
            self.metrics.inc("sflowpipe_ingest_datagrams_malformed_total", labels=(("reason", e.code.value),))
            self.dead_letters.write(dead_letter("decode", e.code.value, e.reason, data, receive_time_us=receive_time_us,
                                                exporter_address=exporter, exporter_port=port, offset=e.offset), key)
            return
        self.decode_seconds.observe(time.perf_counter() - t0)
        self._datagram(dg.agent_address, dg.sub_agent_id, dg.sequence_number)
        self.agents.add(dg, exporter, len(data))
        for batch in self.batches.add(dg, exporter, receive_time_us):
            self._publish(batch)

    def _datagram(self, agent: str, sub_agent_id: int, sequence_number: int) -> None:
        """Count a datagram of ``agent`` and the datagrams its sequence number says were lost."""
        seq_key = (agent, sub_agent_id)
        last = self.last_sequence.get(seq_key)
        if last is None and len(self.last_sequence) >= MAX_TRACKED_AGENTS:
            # bounded: spoofed or misconfigured agents must not grow metrics and state forever
            label = "other"
        else:
            label = agent
        self.agent_datagrams[label] = self.agent_datagrams.get(label, 0) + 1
        if last is not None and sequence_number > last + 1 and sequence_number - last < 1 << 20:
            self.agent_lost[label] = self.agent_lost.get(label, 0) + sequence_number - last - 1
        if last is not None or len(self.last_sequence) < MAX_TRACKED_AGENTS:
            self.last_sequence[seq_key] = sequence_number

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
