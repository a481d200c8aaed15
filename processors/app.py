"""The Faust app: agents over the sample topics, a reporting timer, per-agent checkpoints.

``make_app(settings)`` builds everything from the one settings object. Topics are partitioned
by agent address, so each worker owns the agents of its partitions; live state stays in plain
Python structures (processors/engine.py) and is checkpointed to a Faust table keyed by agent
once per ``checkpoint_interval_s`` from inside the stream (so the changelog is co-partitioned
with the agent's samples). A worker that is assigned a partition restores an agent's state
from that table when the agent's first batch arrives. On revocation the agents of the revoked
partitions are forgotten. Delivery is at-least-once: after a rebalance the samples since the
last checkpoint are replayed by the consumer, so an in-flight window can count them twice
(bounded by the checkpoint interval, then it decays with the smoothing constant).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from pathlib import Path

import faust

from processors.config import ConfigWatcher, startup_definitions
from processors.engine import Engine
from processors.enrich import Enricher
from schemas.codec import AvroCodec, CodecError
from schemas.definitions import hot_field_count
from sflowpipe.settings import Settings

log = logging.getLogger(__name__)


class EnrichedEncoder:
    """An enriched batch without re-encoding the batch: the enriched schema is the flow-sample
    schema plus trailing columns, so its Avro body is the original body followed by theirs."""

    def __init__(self, plain: AvroCodec, enriched: AvroCodec) -> None:
        names = [f["name"] for f in enriched.current.raw["fields"]]
        base = [f["name"] for f in plain.current.raw["fields"]]
        assert names[: len(base)] == base, "enriched schema must extend the flow-sample schema"
        self.extra_fields = [f for f in enriched.current.raw["fields"][len(base):]]
        self.extra_schema = {"type": "record", "name": "EnrichmentColumns", "namespace": "sflowpipe",
                             "fields": self.extra_fields}
        from schemas.writer import compile_writer
        import fastavro

        self.write_extra = compile_writer(fastavro.parse_schema(self.extra_schema))
        self.plain_prefix = plain.current.prefix
        self.prefix = enriched.current.prefix

    def encode(self, message: bytes, extra: dict) -> bytes:
        if not message.startswith(self.plain_prefix):  # written with another schema version
            raise CodecError("flow-sample message not in the current schema version")
        return self.prefix + message[len(self.plain_prefix):] + self.write_extra(extra)


def make_app(settings: Settings, worker: int = 0) -> faust.App:
    k, t, p = settings.kafka, settings.topics, settings.processors
    Path(p.data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        p.app_id,
        broker=[f"kafka://{b}" for b in k.bootstrap_servers.split(",")],
        store="memory://",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        broker_session_timeout=p.session_timeout_s,
        broker_heartbeat_interval=max(1.0, p.session_timeout_s / 10),
        consumer_max_fetch_size=p.consumer_max_fetch_size,
        consumer_auto_offset_reset="earliest",
        producer_compression_type=None if k.compression == "none" else k.compression,
        processing_guarantee="at_least_once",
        datadir=f"{p.data_dir}/worker-{worker}",
        web_port=p.web_port + worker,
        web_bind="127.0.0.1",
        logging_config=None,
    )
    enricher = Enricher(settings.enrich)
    engine = Engine(enricher)
    changes: queue.Queue = queue.Queue()
    for kind, name, d in startup_definitions(settings):
        engine.apply(kind, name, d)
    watcher = ConfigWatcher(settings, lambda kind, name, d: changes.put((kind, name, d)))

    def apply_changes() -> None:
        while True:
            try:
                kind, name, d = changes.get_nowait()
            except queue.Empty:
                return
            try:
                engine.apply(kind, name, d)
            except ValueError as e:
                log.error("config: rejected %s %s: %s", kind, name, e)

    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    flow_topic = app.topic(k.topic(t.flow_samples), **raw)
    counter_topic = app.topic(k.topic(t.counter_samples), **raw)
    enriched_topic = app.topic(k.topic(t.enriched_flow_samples), **raw)
    flows_topic = app.topic(k.topic(t.flows), **raw)
    metrics_topic = app.topic(k.topic(t.metrics), **raw)
    events_topic = app.topic(k.topic(t.events), **raw)
    # keys are agent addresses (raw bytes), values JSON (the app's default serializers)
    checkpoints = app.Table("agent-state", default=None)

    codecs = {name: AvroCodec(name) for name in ("flow_sample_batch", "counter_sample_batch",
                                                 "enriched_flow_sample_batch", "active_flows", "metrics", "event")}
    hot_fields = hot_field_count()  # the columns flows and filters read; the rest is not parsed
    enriched = EnrichedEncoder(codecs["flow_sample_batch"], codecs["enriched_flow_sample_batch"])
    owner: dict[str, int] = {}  # agent -> partition it arrives on
    restored: set[str] = set()
    last_checkpoint: dict[str, float] = {}
    app.sflowpipe_engine = engine  # for tests and benchmarks

    def adopt(agent: str, partition: int) -> None:
        owner[agent] = partition
        if agent not in restored:
            restored.add(agent)
            state = checkpoints.get(agent)
            if state:
                engine.restore(agent, state)
                log.info("restored state of agent %s from the checkpoint table", agent)

    def maybe_checkpoint(agent: str, now: float) -> None:
        if now - last_checkpoint.get(agent, 0.0) >= p.checkpoint_interval_s:
            last_checkpoint[agent] = now
            checkpoints[agent] = engine.snapshot(agent)

    @app.agent(flow_topic, name="flow-samples")
    async def flow_batches(stream):
        async for event in stream.events():
            apply_changes()
            try:
                batch = codecs["flow_sample_batch"].decode_prefix(event.value, hot_fields)
            except CodecError as e:
                log.error("flow-samples: skipping undecodable message: %s", e)
                continue
            agent = batch["agent_address"]
            adopt(agent, event.message.partition)
            now = time.time()
            extra = engine.on_flow_batch(batch, now)
            try:
                value = enriched.encode(event.value, extra)
            except CodecError:  # an older schema version: re-encode in the current one
                batch = codecs["flow_sample_batch"].decode(event.value)
                batch.update(extra)
                value = codecs["enriched_flow_sample_batch"].encode(batch)
            await enriched_topic.send(key=agent.encode(), value=value)
            maybe_checkpoint(agent, now)

    @app.agent(counter_topic, name="counter-samples")
    async def counter_batches(stream):
        async for event in stream.events():
            apply_changes()
            try:
                batch = codecs["counter_sample_batch"].decode(event.value)
            except CodecError as e:
                log.error("counter-samples: skipping undecodable message: %s", e)
                continue
            agent = batch["agent_address"]
            adopt(agent, event.message.partition)
            engine.on_counter_batch(batch)
            maybe_checkpoint(agent, time.time())

    @app.timer(interval=p.report_interval_s)
    async def report():
        apply_changes()
        active, metrics, events = engine.report()
        for m in active:
            await flows_topic.send(key=m["agent"].encode(), value=codecs["active_flows"].encode(m))
        for m in metrics:
            await metrics_topic.send(key=m["agent"].encode(), value=codecs["metrics"].encode(m))
        for e in events:
            await events_topic.send(key=e.agent.encode(), value=codecs["event"].encode(e.to_dict()))
            log.info("event %s: %s %s on %s/%s = %.0f > %.0f", e.eventID, e.thresholdID, e.flowKey or e.metric,
                     e.agent, e.dataSource, e.value, e.threshold)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked=None, **kwargs):
        parts = {tp.partition for tp in (revoked or ()) if tp.topic in (flow_topic.get_topic_name(),
                                                                       counter_topic.get_topic_name())}
        for agent, part in list(owner.items()):
            if part in parts:
                engine.forget(agent)
                restored.discard(agent)
                owner.pop(agent, None)

    @app.task
    async def start_services():
        enricher.start()
        watcher.start()

    @app.on_before_shutdown.connect
    def stop_services(sender, **kwargs):
        watcher.stop()
        enricher.stop()

    return app


def run(settings: Settings, worker: int = 0) -> int:
    """Run one Faust worker until SIGTERM/SIGINT."""
    from sflowpipe.kafka import ensure_topics

    k, t = settings.kafka, settings.topics
    ensure_topics(k, [k.topic(n) for n in (t.flow_samples, t.counter_samples, t.enriched_flow_samples, t.flows,
                                           t.metrics, t.events)])
    ensure_topics(k, [k.topic(t.config)], config={"cleanup.policy": "compact"})
    app = make_app(settings, worker)
    worker_obj = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker_obj.execute_from_commandline()
    return 0
