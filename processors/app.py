"""The Faust app: agents over the sample topics, a reporting timer, per-agent checkpoints.

``make_app(settings)`` builds everything from the one settings object. Topics are partitioned
by agent address, so each worker owns the agents of its partitions; live state stays in plain
Python structures (processors/engine.py) and is checkpointed to a Faust table keyed by agent
once per ``checkpoint_interval_s`` from inside the stream (so the changelog is co-partitioned
with the agent's samples). A worker that is assigned a partition restores an agent's state
from that table when the agent's first batch arrives. On revocation the agents of the revoked
partitions are forgotten. Delivery is at-least-once: after a restart or rebalance the samples
since the last committed offset are replayed by the consumer. The checkpoint records the last
offset it covers, so replayed batches it already holds are not counted again, and a batch that
arrives late (the backlog after a restart) is accounted at its own receive time, not as if all of
it had arrived now. Threshold state is part of the checkpoint: what already raised an event stays
quiet on the new owner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import faust

from processors.blocklist import Blocklists
from processors.scans import ScanDetector
from processors.transactions import (EXACTLY_ONCE, CheckpointLog, NoTransactions, Transactions, checkpoint_topic,
                                     require_transactions)
from sflowpipe.config_plane import ConfigWatcher, startup_definitions
from processors.engine import REPLAY_LAG_S, Engine
from processors.enrich import Enricher
from schemas.codec import Codec, CodecError, RegistryUnavailable
from processors.fetch_wait import use_fetch_wait
from schemas.definitions import hot_field_count
from sflowpipe.metrics import Metrics, MetricsServer
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import ProcessorSettings, Settings
from sflowpipe.status import PROCESSOR_FIELDS, STATUS_EVERY_S, component_status

log = logging.getLogger(__name__)


# Flow values are read at the newest accounted batch's time, at most lag_grace_s() behind the clock
# (a worker catching up reports true rates, not rates decayed by its lag: processors/engine.py).
LAG_GRACE_S = 60.0
# Read back at most this many flow-sample messages between a restored checkpoint and the committed
# offset (a few checkpoint intervals of batches; an older checkpoint is a stale table, not a restart).
MAX_CHECKPOINT_GAP = 20_000


def mend_commit_gap(consumer: Any, tp: Any, processed_next: int | None) -> int | None:
    """Let faust-streaming commit a partition whose commits stopped; the first offset it now covers.

    faust-streaming commits a partition up to the first gap in the offsets its streams acknowledged,
    and not at all while the lowest acknowledged offset is more than one past the committed one:
    when a rebalance makes the stream skip offsets without the fetcher noting a gap (seen on the
    scale-out test: committed 63, acknowledged from 81 on, for good), the group's offset stops while
    the partition is processed, and a restart would read it all again. The skipped offsets were
    processed here (GapFiller): every offset below ``processed_next`` was, since the assignment.
    They become a gap in the consumer's books, which its next commit goes past. Relies on the
    consumer's bookkeeping (``_committed_offset``, ``_acked``, ``_gap``; tests/processors/
    test_commit_gap.py holds it to the installed faust-streaming).

    Not for Tansu only: on Apache Kafka 4.1.1 the scale-out test (three workers, six partitions, one
    stopped) found commits stopped 6 and 3 times in two runs, in the first with no offset skipped by
    the stream at all: a fault of faust-streaming's books across a rebalance, whatever the broker."""
    committed = consumer._committed_offset.get(tp)
    acked = consumer._acked.get(tp)
    if not committed or not acked or processed_next is None:
        return None
    low = min(acked)
    if low - committed <= 1 or processed_next < low or consumer._gap[tp].at(committed + 1):
        return None  # committing; or not all processed; or noted already, for the next commit
    consumer._gap[tp].addi(committed + 1, low)  # offsets committed+1 .. low-1 (intervals exclude the end)
    consumer._gap[tp].merge_overlaps()
    return committed + 1


def lag_grace_s(p: ProcessorSettings) -> float:
    """How far behind the clock a worker catching up reads flow values. It must cover a restart's
    backlog, or the restarted worker reports its restored rates decayed by the blank (measured: down
    to 0.07x on a loaded machine with 10 s): the dead member's session expiring (about twice
    ``session_timeout_s``), start-up, the samples since the last checkpoint, and catching up on all
    that while the machine is busy. A replay older than this (an old capture sent with
    --keep-timestamps to an idle worker) is history: read at the clock, decayed."""
    return max(LAG_GRACE_S, 4 * p.session_timeout_s + 2 * p.checkpoint_interval_s)


def batch_time(batch: dict, now: float) -> float:
    """When a flow batch's samples count: ``now``, or their receive time if the batch is a replay."""
    received = batch.get("receive_time_us") or ()
    if not received:
        return now
    at = max(received) / 1e6
    return at if now - at > REPLAY_LAG_S else now


class EnrichedEncoder:
    """An enriched batch without re-encoding the batch: the enriched schema is the flow-sample
    schema plus trailing columns, so its Avro body is the original body followed by theirs (in
    either framing: the codec's header for the enriched schema replaces the flow-sample one)."""

    def __init__(self, codec: Codec) -> None:
        plain, enriched = codec.current("flow_sample_batch"), codec.current("enriched_flow_sample_batch")
        names = [f["name"] for f in enriched.raw["fields"]]
        base = [f["name"] for f in plain.raw["fields"]]
        assert names[: len(base)] == base, "enriched schema must extend the flow-sample schema"
        self.extra_fields = [f for f in enriched.raw["fields"][len(base):]]
        self.extra_schema = {"type": "record", "name": "EnrichmentColumns", "namespace": "sflowpipe",
                             "fields": self.extra_fields}
        from schemas.writer import compile_writer
        import fastavro

        self.write_extra = compile_writer(fastavro.parse_schema(self.extra_schema))
        self.codec = codec
        self.plain = plain

    def encode(self, message: bytes, extra: dict) -> bytes:
        writer, start = self.codec.writer_of(message)
        if writer is not self.plain:  # written with another schema version
            raise CodecError("flow-sample message not in the current schema version")
        return self.codec.prefix("enriched_flow_sample_batch") + message[start:] + self.write_extra(extra)


def decode_flow_batch(codec: Codec, message: bytes, hot_fields: int, engine: Engine) -> dict:
    """A flow-sample message as the engine needs it: the hot prefix only (the usual case, measurably
    faster), the whole batch while some flow definition reads cold columns (payload keys, requests)."""
    if engine.cold_columns:
        return codec.decode_as("flow_sample_batch", message)
    return codec.decode_prefix("flow_sample_batch", message, hot_fields)


class GapFiller:
    """Reads flow-sample messages the Faust stream skipped.

    faust-streaming can lose a message fetched while a rebalance is under way: the stream
    processes offset N-1, then N+1, and N never (seen on the scale-out test when a worker
    leaves). The agent knows the offset it expects next on each partition (after an assignment:
    the group's committed offset, where Faust resumes); on a jump it reads the missing offsets
    here, with a plain consumer assigned to that partition (it never joins or commits for the
    group), and processes them before going on. Flow-sample topics are neither compacted nor
    transactional, so their offsets have no legitimate gaps.

    First seen on Tansu, and needed on Apache Kafka too: its scale-out test (tests/test_scale_out.py,
    three workers, six partitions) saw the stream skip an offset in one run of two. The cost when
    nothing is skipped: one committed-offset lookup per partition assignment."""

    def __init__(self, processors: ProcessorSettings, topic: str, clients: KafkaClients) -> None:
        self.topic = topic
        self.clients = clients
        self.group = processors.app_id
        self.conf = {"enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "max.partition.fetch.bytes": processors.consumer_max_fetch_size}
        self.lock = threading.Lock()
        self.consumer = self.clients.consumer(self.group, self.conf)  # now: a refused client setting stops the start

    def _consumer(self):
        if self.consumer is None:
            self.consumer = self.clients.consumer(self.group, self.conf)
        return self.consumer

    def committed(self, partition: int) -> int | None:
        from confluent_kafka import KafkaException, TopicPartition

        with self.lock:
            try:
                tp = self._consumer().committed([TopicPartition(self.topic, partition)], timeout=10)[0]
            except KafkaException as e:
                log.warning("flow-samples[%d]: committed offset unknown (%s)", partition, e)
                return None
        return tp.offset if tp.offset >= 0 else None

    def read(self, partition: int, start: int, end: int, timeout: float = 30.0) -> list[tuple[int, bytes]]:
        """(offset, value) of offsets [start, end) (fewer if retention removed some)."""
        from confluent_kafka import TopicPartition

        out: list[tuple[int, bytes]] = []
        with self.lock:
            c = self._consumer()
            c.assign([TopicPartition(self.topic, partition, start)])
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    m = c.poll(0.5)
                    if m is None or m.error():
                        continue
                    if m.offset() >= end:
                        break
                    out.append((m.offset(), m.value()))
                    if m.offset() >= end - 1:
                        break
            finally:
                c.unassign()
        return out

    def close(self) -> None:
        with self.lock:
            if self.consumer is not None:
                self.consumer.close()
                self.consumer = None


T = TypeVar("T")


class RegistryWait:
    """Decoding that waits out a schema registry outage (RegistryUnavailable: unreachable, 5xx, 429).

    The batch is decoded again with bounded backoff, never skipped: the agent holds its message, so
    Faust commits nothing past it (at-least-once), and the partition's later batches wait behind it.
    Each attempt that finds the registry away is counted (``sflowpipe_processors_registry_waits_total``);
    the outage is logged once when it starts and once when the registry answers again. A lookup runs
    in a thread: the registry client's own retries (seconds) would otherwise stall the event loop and
    its heartbeats."""

    def __init__(self, codec: Codec, metrics: Metrics, first_s: float = 0.5, longest_s: float = 30.0) -> None:
        self.codec, self.metrics = codec, metrics
        self.first_s, self.longest_s = first_s, longest_s
        self.away_since: float | None = None  # shared by the agents: one outage, one log line

    async def decode(self, kind: str, message: bytes, decode: Callable[[bytes], T]) -> T:
        """``decode(message)``, inline when no registry lookup is needed (the usual case), else in a thread,
        again with backoff until the registry answers."""
        if not self.codec.needs_lookup(message):
            return decode(message)
        loop = asyncio.get_running_loop()
        delay = self.first_s
        while True:
            try:
                out = await loop.run_in_executor(None, decode, message)
            except RegistryUnavailable as e:
                self._away(kind, e)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.longest_s)
                continue
            if self.away_since is not None:
                log.warning("schema registry answers again after %.0f s", time.monotonic() - self.away_since)
                self.away_since = None
            return out

    def _away(self, kind: str, error: RegistryUnavailable) -> None:
        self.metrics.inc("sflowpipe_processors_registry_waits_total", labels=(("kind", kind),))
        if self.away_since is None:
            self.away_since = time.monotonic()
            log.warning("%s-samples: %s; decoding waits for the registry (asked again with backoff up to %.0f s)",
                        kind, error, self.longest_s)


def describe_metrics(m: Metrics) -> None:
    m.describe("sflowpipe_processors_samples_total", "counter", "samples processed, by kind (flow, counter, "
               "discard): rate() is samples/s", labels=("kind",))
    m.describe("sflowpipe_processors_batches_total", "counter", "sample batches processed, by kind", labels=("kind",))
    m.describe("sflowpipe_processors_undecodable_total", "counter", "messages skipped as undecodable, by kind",
               labels=("kind",))
    m.describe("sflowpipe_processors_registry_waits_total", "counter", "decoding attempts that found the schema "
               "registry away (unreachable, 5xx, 429): the batch is decoded again with backoff, never skipped, by kind",
               labels=("kind",))
    m.describe("sflowpipe_processors_batch_errors_total", "counter", "batches whose analysis (flows, keys seen, "
               "events, counter metrics) raised an error, by kind: logged, and a flow batch is still enriched and "
               "forwarded", labels=("kind",))
    m.describe("sflowpipe_processors_replayed_batches_total", "counter",
               "batches a restored checkpoint already held (read again, not accounted twice)", labels=("kind",))
    m.describe("sflowpipe_processors_rebalances_total", "counter", "partition assignments and revocations",
               labels=("change",))
    m.describe("sflowpipe_processors_commit_gaps_mended_total", "counter", "times a flow-sample partition's "
               "commits had stopped at offsets the stream skipped (read directly) and were set going again")
    m.describe("sflowpipe_processors_checkpoint_seconds", "histogram", "time to checkpoint one agent's state "
               "to the table")
    m.describe("sflowpipe_processors_events_total", "counter", "threshold events raised")
    m.describe("sflowpipe_processors_reports_total", "counter", "active-flow and metric messages published, "
               "by topic kind", labels=("kind",))


def batch_size(batch: dict) -> int:
    """Samples in a decoded batch: flow batches are columns, counter and discard batches rows."""
    col = batch.get("receive_time_us")
    return len(col) if col is not None else len(batch.get("samples") or ())


def make_app(settings: Settings, worker: int = 0, clients: KafkaClients | None = None,
             codec: Codec | None = None, metrics: Metrics | None = None) -> faust.App:
    """The worker's Faust app; ``clients`` and ``codec`` are the process's (sflowpipe/cli.py).

    The whole Settings on purpose: this is the worker's composition (its agents are closures over
    the parts built here), reading kafka, topics, processors, enrich and limits and the start-up
    definitions (settings and definitions file); each part it builds takes only its own section."""
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    k, t, p = settings.kafka, settings.topics, settings.processors
    Path(p.data_dir).mkdir(parents=True, exist_ok=True)
    eos = p.processing_guarantee == EXACTLY_ONCE
    # exactly-once: a commit checkpoints the state it covers (processors/transactions.py), so commits
    # come as often as checkpoints do; at-least-once keeps Faust's default commit interval
    cadence = {"broker_commit_interval": p.checkpoint_interval_s} if eos else {}
    app = faust.App(
        p.app_id,
        **clients.faust_settings(),
        store="memory://",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        broker_session_timeout=p.session_timeout_s,
        broker_heartbeat_interval=max(1.0, p.session_timeout_s / 10),
        consumer_max_fetch_size=p.consumer_max_fetch_size,
        consumer_auto_offset_reset="earliest",
        producer_compression_type=None if k.compression == "none" else k.compression,
        processing_guarantee=p.processing_guarantee,
        **cadence,
        datadir=f"{p.data_dir}/worker-{worker}",
        web_port=p.web_port + worker,
        web_bind="127.0.0.1",
        logging_config=None,
    )
    use_fetch_wait(app, p.fetch_max_wait_ms)
    metrics = metrics or Metrics()
    describe_metrics(metrics)
    app.sflowpipe_metrics = metrics  # served by run(); read by tests
    enricher = Enricher(settings.enrich)
    blocklists = Blocklists(p.blocklists, settings.enrich.cache_dir) if p.blocklists else None
    scans = ScanDetector(p.scans) if p.scans.enabled else None
    engine = Engine(enricher, blocklists=blocklists, scans=scans, budget_s=settings.limits.definition_budget_s,
                    lag_grace_s=lag_grace_s(p))
    changes: queue.Queue = queue.Queue()
    startup = startup_definitions(settings)
    for kind, name, d in startup:
        engine.apply(kind, name, d)

    def on_change(kind: str, name: str, d) -> None:  # the watcher's thread: a batch may be under way
        engine.interrupt(kind, name, d)
        changes.put((kind, name, d))

    watcher = ConfigWatcher(clients, k.topic(t.config), settings.limits, on_change)
    watcher.count(startup)
    rejected = [0]  # definitions the engine refused to apply (the watcher keeps its own refusals)
    metrics.observed("sflowpipe_processors_definitions_rejected_total", "counter",
                     "definitions refused by this worker: read from the config topic, or applied",
                     lambda: rejected[0] + len(watcher.errors))

    def apply_changes() -> None:
        while True:
            try:
                kind, name, d = changes.get_nowait()
            except queue.Empty:
                return
            try:
                engine.apply(kind, name, d)
            except ValueError as e:
                rejected[0] += 1
                log.error("config: rejected %s %s: %s", kind, name, e)

    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    flow_topic = app.topic(k.topic(t.flow_samples), **raw)
    counter_topic = app.topic(k.topic(t.counter_samples), **raw)
    enriched_topic = app.topic(k.topic(t.enriched_flow_samples), **raw)
    flows_topic = app.topic(k.topic(t.flows), **raw)
    metrics_topic = app.topic(k.topic(t.metrics), **raw)
    events_topic = app.topic(k.topic(t.events), **raw)
    flow_logs_topic = app.topic(k.topic(t.flow_logs), **raw)  # log: true flows (processors/flowlog.py)
    discard_topic = app.topic(k.topic(t.discard_samples), **raw)  # dropped: true flows
    status_topic = app.topic(k.topic(t.status), **raw)  # flowkeys (processors/flowkeys.py)
    worker_id = f"{socket.gethostname()}:{p.app_id}:{worker}"
    # keys are agent addresses, values the state; both JSON (the app's default serializers). Exactly-once
    # writes and reads the table's changelog topic itself (processors/transactions.py): no Faust table
    checkpoints = None if eos else app.Table("agent-state", default=None)

    codec.prepare(["enriched_flow_sample_batch", "active_flows", "metrics", "event", "flow_log"])
    registry = RegistryWait(codec, metrics)
    hot_fields = hot_field_count()  # the columns flows and filters read; the rest is not parsed
    enriched = EnrichedEncoder(codec)
    owner: dict[str, int] = {}  # agent -> partition it arrives on
    restored: set[str] = set()
    # agents whose flow samples between the checkpoint and the committed offset were read back: on the
    # first flow batch after the restore, whichever topic's batch restored it (a counter batch often
    # comes first: the gap was then never read, up to a checkpoint interval of flow samples lost)
    flow_gap_read: set[str] = set()
    last_checkpoint: dict[str, float] = {}
    # agent -> topic kind -> [partition, offset] of its last batch in the engine's state; restored
    # from the checkpoint, so a replayed batch at or before it is not accounted twice
    accounted: dict[str, dict[str, list[int]]] = {}
    app.sflowpipe_engine = engine  # for tests and benchmarks

    def checkpoint_value(agent: str) -> dict:
        offsets = {kind: list(po) for kind, po in accounted.get(agent, {}).items()}  # a copy: the table keeps it
        return {**engine.snapshot(agent), "offsets": offsets}

    def checkpoint_record(agent: str) -> tuple[bytes, bytes]:
        """An agent's checkpoint as the table's changelog holds it (exactly-once writes it there itself)."""
        return (json.dumps(agent).encode(), json.dumps(checkpoint_value(agent), separators=(",", ":")).encode())

    changelog = checkpoint_topic(p)
    tx = Transactions(app, k.topic(t.flow_samples), changelog, checkpoint_record, owner, metrics) if eos \
        else NoTransactions()
    checkpoint_log = CheckpointLog(clients, changelog, f"{p.app_id}-checkpoint-reader") if eos else None
    app.sflowpipe_transactions = tx  # for tests

    async def emit(topic: Any, key: bytes, value: bytes, source_partition: int | None) -> None:
        """One output: in the transaction of the partition its agent's samples arrive on (exactly-once;
        an agent no longer owned has none: its next owner produces it), else as Faust sends it."""
        if not eos:
            await topic.send(key=key, value=value)
        elif source_partition is not None:
            await tx.send(topic.get_topic_name(), key, value, source_partition)

    def adopt(agent: str, partition: int) -> None:
        """Owns ``agent`` from now on; restores its state from the checkpoint the first time."""
        owner[agent] = partition
        if agent not in restored:
            restored.add(agent)
            state = checkpoint_log.get(agent) if eos else checkpoints.get(agent)
            if state:
                engine.restore(agent, state)
                accounted[agent] = {kind: list(po) for kind, po in (state.get("offsets") or {}).items()}
                log.info("restored state of agent %s from the checkpoint table", agent)

    async def replay_since_checkpoint(agent: str, partition: int, offset: int) -> None:
        """The group's committed offset can be past the agent's checkpoint (commits are more frequent):
        the batches in between are in neither, so they are read back here, once, at the restore."""
        last = accounted.get(agent, {}).get("flow")
        if last is None or last[0] != partition or not last[1] + 1 < offset:
            return
        if offset - last[1] > MAX_CHECKPOINT_GAP:
            log.warning("flow-samples[%d]: agent %s's checkpoint is %d messages behind; not read back",
                        partition, agent, offset - last[1])
            return
        missed = await asyncio.get_running_loop().run_in_executor(None, gaps.read, partition, last[1] + 1, offset)
        log.info("flow-samples[%d]: read back %d messages between agent %s's checkpoint and the committed offset",
                 partition, len(missed), agent)
        for missed_offset, value in missed:
            await on_flow_message(value, partition, missed_offset)

    def already_accounted(agent: str, kind: str, partition: int, offset: int | None) -> bool:
        """True for a replayed batch the restored checkpoint already holds; else notes it as accounted."""
        if offset is None:
            return False
        done = accounted.setdefault(agent, {})
        last = done.get(kind)
        if last is not None and last[0] == partition and offset <= last[1]:
            return True
        done[kind] = [partition, offset]
        return False

    def maybe_checkpoint(agent: str, now: float) -> None:
        if eos:  # checkpointed at the next commit, in its transaction
            tx.touched(agent)
            return
        if now - last_checkpoint.get(agent, 0.0) >= p.checkpoint_interval_s:
            last_checkpoint[agent] = now
            t0 = time.perf_counter()
            checkpoints[agent] = checkpoint_value(agent)
            metrics.observe("sflowpipe_processors_checkpoint_seconds", time.perf_counter() - t0)

    failed_at: dict[str, float] = {}  # kind -> when its last analysis error was logged

    def analyse(kind: str, fn: Callable, *args: Any) -> Any:
        """The engine's accounting of one batch. An error in it (a key function meeting a value it
        did not expect) is counted and logged, at most once per kind per 10 s, and returns None:
        the agent does not crash, which would have dropped the message (Faust restarts a crashed
        agent after it) and, for flows, its samples on their way to the sinks."""
        try:
            return fn(*args)
        except Exception:
            metrics.inc("sflowpipe_processors_batch_errors_total", labels=(("kind", kind),))
            now = time.monotonic()
            if now - failed_at.get(kind, -1e9) >= 10:
                failed_at[kind] = now
                log.exception("%s-samples: the analysis of a batch failed (counted in "
                              "sflowpipe_processors_batch_errors_total)", kind)
            return None

    async def on_flow_message(value: bytes, partition: int, offset: int | None) -> None:
        try:
            batch = await registry.decode("flow", value, lambda v: decode_flow_batch(codec, v, hot_fields, engine))
        except CodecError as e:
            metrics.inc("sflowpipe_processors_undecodable_total", labels=(("kind", "flow"),))
            log.error("flow-samples: skipping undecodable message: %s", e)
            return
        count("flow", batch)
        agent = batch["agent_address"]
        adopt(agent, partition)
        if agent not in flow_gap_read:
            flow_gap_read.add(agent)
            if offset is not None and p.fill_stream_gaps:
                await replay_since_checkpoint(agent, partition, offset)
        now = time.time()
        if already_accounted(agent, "flow", partition, offset):
            metrics.inc("sflowpipe_processors_replayed_batches_total", labels=(("kind", "flow"),))
            if eos:  # its enriched batch was committed with the checkpoint that accounts it
                return
            # still enriched and forwarded: the sinks drop duplicate rows, and the first send may be lost
            extra = engine.enricher.enrich_batch(batch)
        else:
            extra = analyse("flow", engine.on_flow_batch, batch, batch_time(batch, now))
            if extra is None:  # not analysed: its samples still go to the sinks
                extra = engine.enricher.enrich_batch(batch)
        try:
            out = enriched.encode(value, extra)
        except CodecError:  # an older schema version: re-encode in the current one
            batch = codec.decode_as("flow_sample_batch", value)
            batch.update(extra)
            out = codec.encode("enriched_flow_sample_batch", batch)
        await emit(enriched_topic, agent.encode(), out, partition)
        if engine.pending_events:  # blocklist and scan hits of this batch: now, not at the next report
            events = engine.take_events()
            metrics.inc("sflowpipe_processors_events_total", len(events))
            touch_reported({e.agent for e in events})
            await publish_events(events)
        maybe_checkpoint(agent, now)

    flow_topic_name = k.topic(t.flow_samples)
    position: dict[tuple[str, int], int] = {}  # (topic, partition) -> the offset after the last one processed
    lag: dict[tuple[str, int], int] = {}

    def count(kind: str, batch: dict) -> None:
        metrics.inc("sflowpipe_processors_samples_total", batch_size(batch), (("kind", kind),))
        metrics.inc("sflowpipe_processors_batches_total", labels=(("kind", kind),))

    def update_lag() -> None:
        """Lag per assigned partition: the consumer's high watermark minus the position processed
        (exact on Apache Kafka; a lower bound on Tansu, whose high watermarks can lag its log)."""
        try:
            consumer = app.consumer
            for tp in consumer.assignment():
                key = (tp.topic, tp.partition)
                if key not in position:  # not a sample topic, or nothing processed there yet
                    continue
                high = consumer.highwater(tp)
                if high is not None and high >= 0:
                    lag[key] = max(0, high - position[key])
        except Exception as e:  # a metric must never stop the report (e.g. the consumer mid-rebalance)
            log.debug("lag not measured: %s", e)
    metrics.observed("sflowpipe_processors_lag_messages", "gauge", "messages behind the end of each assigned "
                     "partition of the sample topics (at the last report)", lambda: dict(lag), ("topic", "partition"))
    gaps = GapFiller(p, flow_topic_name, clients)
    next_offset: dict[int, int] = {}  # partition -> the offset expected next (this generation)

    def mend_commits() -> None:
        """Flow-sample partitions whose commits faust-streaming stopped (mend_commit_gap), going again."""
        if not p.fill_stream_gaps:  # without the gap filler a skipped offset was not processed
            return
        try:
            consumer = app.consumer
            for tp in consumer.assignment():
                if tp.topic != flow_topic_name:
                    continue
                start = mend_commit_gap(consumer, tp, next_offset.get(tp.partition))
                if start is not None:
                    metrics.inc("sflowpipe_processors_commit_gaps_mended_total")
                    log.warning("flow-samples[%d]: commits had stopped at offset %d (offsets the stream "
                                "skipped, read directly); committing past them", tp.partition, start - 1)
        except Exception as e:  # like the lag: never stop the report (e.g. the consumer mid-rebalance)
            log.debug("commit gaps not checked: %s", e)

    @app.agent(flow_topic, name="flow-samples")
    async def flow_batches(stream):
        loop = asyncio.get_running_loop()
        async for event in stream.events():
            async with tx.lock:  # exactly-once: a batch and its outputs never straddle a commit
                await on_flow_event(event, loop)

    async def on_flow_event(event: Any, loop: asyncio.AbstractEventLoop) -> None:
        apply_changes()
        part, offset = event.message.partition, event.message.offset
        expected = next_offset.get(part) if p.fill_stream_gaps else offset
        if expected is None:  # first message since an assignment: Faust starts at the commit
            expected = await loop.run_in_executor(None, gaps.committed, part)
        if expected is not None and offset > expected:
            missed = await loop.run_in_executor(None, gaps.read, part, expected, offset)
            log.warning("flow-samples[%d]: the stream skipped offsets %d-%d (rebalance); read %d of them "
                        "directly", part, expected, offset - 1, len(missed))
            for missed_offset, value in missed:
                await on_flow_message(value, part, missed_offset)
        next_offset[part] = offset + 1
        await on_flow_message(event.value, part, offset)
        position[(event.message.topic, part)] = offset + 1

    @app.agent(counter_topic, name="counter-samples")
    async def counter_batches(stream):
        async for event in stream.events():
            async with tx.lock:
                await on_counter_event(event)

    async def sample_batch(kind: str, event: Any) -> dict | None:
        """A counter or discard message decoded, counted and its agent adopted; None if undecodable."""
        try:
            batch = await registry.decode(kind, event.value, lambda v: codec.decode_as(f"{kind}_sample_batch", v))
        except CodecError as e:
            metrics.inc("sflowpipe_processors_undecodable_total", labels=(("kind", kind),))
            log.error("%s-samples: skipping undecodable message: %s", kind, e)
            return None
        count(kind, batch)
        adopt(batch["agent_address"], event.message.partition)
        return batch

    async def on_counter_event(event: Any) -> None:
        apply_changes()
        position[(event.message.topic, event.message.partition)] = event.message.offset + 1
        batch = await sample_batch("counter", event)
        if batch is None:
            return
        agent = batch["agent_address"]
        if not already_accounted(agent, "counter", event.message.partition, event.message.offset):
            analyse("counter", engine.on_counter_batch, batch)
        else:
            metrics.inc("sflowpipe_processors_replayed_batches_total", labels=(("kind", "counter"),))
        maybe_checkpoint(agent, time.time())

    @app.agent(discard_topic, name="discard-samples")
    async def discard_batches(stream):
        async for event in stream.events():
            async with tx.lock:
                await on_discard_event(event)

    async def on_discard_event(event: Any) -> None:
        apply_changes()
        position[(event.message.topic, event.message.partition)] = event.message.offset + 1
        if not engine.wants_discards:  # no dropped: true flow: not even decoded
            return
        batch = await sample_batch("discard", event)
        if batch is None:
            return
        agent = batch["agent_address"]
        if eos and already_accounted(agent, "discard", event.message.partition, event.message.offset):
            metrics.inc("sflowpipe_processors_replayed_batches_total", labels=(("kind", "discard"),))
            return
        analyse("discard", engine.on_discard_batch, batch, time.time())
        if eos:
            tx.touched(agent)

    next_status = [0.0]

    next_idle_commit = [0.0]

    @app.timer(interval=p.report_interval_s)
    async def report():
        async with tx.lock:  # exactly-once: a report round's outputs and the state after it commit together
            await report_round()
        if eos and time.monotonic() >= next_idle_commit[0]:
            next_idle_commit[0] = time.monotonic() + p.checkpoint_interval_s
            await tx.commit_idle()

    def touch_reported(agents: set[str]) -> None:
        if eos:
            for agent in agents:
                tx.touched(agent)

    async def report_round() -> None:
        apply_changes()
        await status_topic.send(key=worker_id.encode(), value=json.dumps(engine.keys_seen.message(worker_id)).encode())
        await status_topic.send(key=worker_id.encode(), value=json.dumps(engine.evaluation_status(worker_id)).encode())
        logs = engine.flow_logs()
        for r in logs:
            await emit(flow_logs_topic, r["agent"].encode(), codec.encode("flow_log", r), owner.get(r["agent"]))
        active, counter_metrics, events = engine.report()
        for m in active:
            await emit(flows_topic, m["agent"].encode(), codec.encode("active_flows", m), owner.get(m["agent"]))
        for m in counter_metrics:
            await emit(metrics_topic, m["agent"].encode(), codec.encode("metrics", m), owner.get(m["agent"]))
        touch_reported({r["agent"] for r in logs} | {m["agent"] for m in active} | {e.agent for e in events})
        metrics.inc("sflowpipe_processors_reports_total", len(active), (("kind", "flows"),))
        metrics.inc("sflowpipe_processors_reports_total", len(counter_metrics), (("kind", "metrics"),))
        metrics.inc("sflowpipe_processors_events_total", len(events))
        update_lag()
        mend_commits()
        if time.monotonic() >= next_status[0]:  # this registry's numbers: the status page, /analyzer/json
            next_status[0] = time.monotonic() + STATUS_EVERY_S
            status = component_status("processor", p.app_id, worker_id, metrics, PROCESSOR_FIELDS)
            await status_topic.send(key=worker_id.encode(), value=json.dumps(status).encode())
        await publish_events(events)

    async def publish_events(events: list) -> None:
        for e in events:
            last_checkpoint.pop(e.agent, None)  # checkpointed with its next batch: a restart will not repeat it
            await emit(events_topic, e.agent.encode(), codec.encode("event", e.to_dict()), owner.get(e.agent))
            log.info("event %s: %s %s on %s/%s = %.0f > %.0f", e.eventID, e.thresholdID, e.flowKey or e.metric,
                     e.agent, e.dataSource, e.value, e.threshold)

    sample_topics = (k.topic(t.flow_samples), k.topic(t.counter_samples), k.topic(t.discard_samples))

    @app.on_partitions_assigned.connect
    async def on_assigned(sender, assigned=None, **kwargs):
        metrics.inc("sflowpipe_processors_rebalances_total", labels=(("change", "assigned"),))
        if eos:
            await eos_assigned({tp.partition for tp in (assigned or ()) if tp.topic in sample_topics})
        next_offset.clear()  # Faust seeks every partition back to its committed offset

    kept_state = [False]  # exactly-once: the revoking commit held, so the kept partitions' state stays

    async def eos_assigned(parts: set[int]) -> None:
        """Exactly-once, after the assignment: the agents of partitions gone are forgotten (or all, if the
        commit before the rebalance failed), stale transactional producers closed, and the checkpoints
        of the partitions assigned read (their old owner's producers are fenced by now)."""
        tx.install()  # the consumer's commits checkpoint first (processors/transactions.py)
        gone = set(owner.values()) if not kept_state[0] else {part for part in owner.values() if part not in parts}
        forget_partitions(gone)
        kept_state[0] = False
        await tx.prune(parts)
        t0 = time.monotonic()
        read = await asyncio.get_running_loop().run_in_executor(None, checkpoint_log.refresh, parts)
        log.info("exactly-once: read %d checkpoint records of partitions %s in %.2f s", read, sorted(parts),
                 time.monotonic() - t0)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked=None, **kwargs):
        metrics.inc("sflowpipe_processors_rebalances_total", labels=(("change", "revoked"),))
        next_offset.clear()
        for tp in revoked or ():
            position.pop((tp.topic, tp.partition), None)
            lag.pop((tp.topic, tp.partition), None)
        parts = {tp.partition for tp in (revoked or ()) if tp.topic in sample_topics}
        if eos:  # commit all now; forget what moved once the assignment is known
            async with tx.lock:
                pass  # a report round under way ends first
            kept_state[0] = await tx.commit_all()
            return
        forget_partitions(parts)

    def forget_partitions(parts: set[int]) -> None:
        tx.forget([a for a, part in owner.items() if part in parts], parts)
        for agent, part in list(owner.items()):
            if part in parts:
                engine.forget(agent)
                restored.discard(agent)
                flow_gap_read.discard(agent)
                owner.pop(agent, None)
                accounted.pop(agent, None)
                last_checkpoint.pop(agent, None)

    @app.task
    async def start_services():
        enricher.start()
        if blocklists is not None:
            blocklists.start()
        watcher.start()

    @app.on_before_shutdown.connect
    def stop_services(sender, **kwargs):
        gaps.close()
        watcher.stop()
        enricher.stop()
        if blocklists is not None:
            blocklists.stop()

    return app


def run(settings: Settings, worker: int = 0, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    """Run one Faust worker until SIGTERM/SIGINT."""
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    k, t = settings.kafka, settings.topics
    clients.ensure_topics([k.topic(n) for n in (t.flow_samples, t.counter_samples, t.discard_samples,
                                                t.enriched_flow_samples, t.flows, t.metrics, t.events, t.flow_logs)])
    clients.ensure_topics([k.topic(t.status)], config={"retention.ms": str(24 * 3600 * 1000)})  # as the ingesters
    clients.ensure_topics([k.topic(t.config)], config={"cleanup.policy": "compact"})
    if settings.processors.processing_guarantee == EXACTLY_ONCE:
        # the table's changelog, as Faust creates it for at-least-once (the two modes share it)
        clients.ensure_topics([checkpoint_topic(settings.processors)], config={"cleanup.policy": "compact"})
        require_transactions(clients, k.topic("transactions-probe"), settings.processors.app_id)  # Tansu: refused
    app = make_app(settings, worker, clients, codec)
    server = MetricsServer(settings.processors.metrics_listen, app.sflowpipe_metrics, default_port=9345)
    if server.port:
        server.port += worker  # one listener per worker on a host, as the Faust web port
    server.start()
    log.info("processors: metrics %s", server.url)
    worker_obj = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    try:
        worker_obj.execute_from_commandline()
    finally:
        server.stop()
    return 0
