"""ClickHouse sink benchmark: `sflowpipe bench clickhouse`.

Prefills the enriched-flow-samples topic of a local broker (a Tansu started here unless
--bootstrap-servers is given) with enriched batches built from generated traffic, then runs
ONE ClickHouse sink (embedded chDB in a temporary directory) through the backlog and prints
flow-sample rows/s, and where the time goes: Kafka fetch + Avro decode, Arrow build, insert.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time


from ingest.batches import AgentBatches
from ingest.generate import Generator
from ingest.sflow import decode_datagram
from schemas.codec import AvroCodec
from sflowpipe.settings import Settings

COUNTRIES = ["US", "DE", "FR", "JP", "BR", "GB", None]
GROUPS = [["site:lab"], ["site:dc1", "role:web"], []]


def enriched_batches(n_samples: int, agents: int = 4, seed: int = 1, start_us: int | None = None) -> list[dict]:
    """Enriched flow-sample batches (the processors' output) from generated sFlow traffic."""
    gen = Generator(agents=agents, sampling_rate=1000, seed=seed)
    rng = random.Random(seed)
    batches = AgentBatches(500, 1e12)
    start_us = start_us if start_us is not None else int(time.time() * 1e6) - 60_000_000
    out: list[dict] = []
    total, i = 0, 0
    while total < n_samples:
        ready = batches.add(decode_datagram(gen.datagram(now=i * 0.001)), "192.0.2.1", start_us + i * 1000, now=0.0)
        i += 1
        if i % 200 == 0:
            ready += batches.drain()
        for b in ready:
            if b.kind != "flow":
                continue
            d = dict(b.datum)
            n = len(d["receive_time_us"])
            d["src_country"] = [None] * n
            d["dst_country"] = [rng.choice(COUNTRIES) for _ in range(n)]
            d["src_asn"] = [None] * n
            d["dst_asn"] = [rng.choice([15169, 13335, None]) for _ in range(n)]
            d["src_as_name"] = [None] * n
            d["dst_as_name"] = [{15169: "GOOGLE", 13335: "CLOUDFLARE"}.get(a) for a in d["dst_asn"]]
            d["src_groups"] = [rng.choice(GROUPS) for _ in range(n)]
            d["dst_groups"] = [[] for _ in range(n)]
            out.append(d)
            total += n
    return out


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    from sflowpipe.kafka import KafkaClients
    from sflowpipe.settings import KafkaSettings

    p = KafkaClients(KafkaSettings(bootstrap_servers=bootstrap)).producer(
        {"linger.ms": 20, "compression.type": "zstd", "message.max.bytes": 16 << 20})
    for key, value in messages:
        while True:
            try:
                p.produce(topic, value, key)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0


def main(settings: Settings, args) -> int:
    from sflowpipe.broker import EmbeddedBroker
    from sflowpipe.kafka import ensure_topics
    from sflowpipe.kafka import wiring
    from sinks.clickhouse.sink import ClickHouseService, topics_of

    samples = getattr(args, "samples", None) or 200_000
    bootstrap = getattr(args, "bootstrap_servers", None)
    broker = None
    if not bootstrap:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    prefix = f"bench{time.monotonic_ns() % 10**9}."
    try:
        with tempfile.TemporaryDirectory() as tmp:
            consumer = dict(settings.kafka.consumer)
            for opt in getattr(args, "consumer_option", None) or []:
                k, _, v = opt.partition("=")
                consumer[k] = v
            kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                                                      "partitions": getattr(args, "partitions", None) or 1,
                                                      "consumer": consumer})
            ch = settings.sinks.clickhouse.model_copy(update={"dsn": f"chdb://{tmp}/ch"})
            s = settings.model_copy(update={"kafka": kafka, "sinks": settings.sinks.model_copy(
                update={"clickhouse": ch})})
            topics = [kafka.topic(t) for t in (s.topics.enriched_flow_samples, s.topics.counter_samples,
                                               s.topics.metrics, s.topics.flows, s.topics.events)]
            ensure_topics(kafka, topics)
            t0 = time.perf_counter()
            batches = enriched_batches(samples)
            codec = AvroCodec("enriched_flow_sample_batch")
            msgs = [(b["agent_address"].encode(), codec.encode(b)) for b in batches]
            total = sum(len(b["receive_time_us"]) for b in batches)
            produce(bootstrap, kafka.topic(s.topics.enriched_flow_samples), msgs)
            print(f"prefilled {total:,} flow samples in {len(msgs):,} messages "
                  f"({sum(len(v) for _, v in msgs) / total:.0f} bytes/sample) in {time.perf_counter() - t0:.1f}s")

            service = ClickHouseService(ch, topics_of(s.kafka, s.topics), kafka.topic(s.topics.status), *wiring(s),
                                        serve_sql=False)
            service.start()
            sink = service.runner.sink
            thread = threading.Thread(target=service.runner.run)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            first = None
            thread.start()
            while sink.inserted_rows < total and time.perf_counter() - t0 < 600:
                if first is None and sink.rows:
                    first = time.perf_counter()
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            service.stop()
            thread.join()
            rows = service.client.command(f"SELECT count() FROM {ch.database}.flow_samples")
            service.close()
            build, insert = sink.timings["build"], sink.timings["insert"]
            other = elapsed - build - insert - ((first or t0) - t0)
            startup = (first or t0) - t0
            steady = elapsed - startup
            print(f"sink: {rows:,} rows in {elapsed:.2f}s = {rows / elapsed:,.0f} flow-sample rows/s overall; "
                  f"after the group join ({startup:.2f}s): {rows / steady:,.0f} rows/s (target 50,000); "
                  f"process CPU {cpu:.2f}s = {cpu / rows * 1e6:.2f} µs/row")
            print(f"  consume (+ wait for the broker):{other:.2f}s ({other / elapsed:.0%}), "
                  f"{other / rows * 1e6:.2f} µs/row")
            print(f"  Avro container build:           {build:.2f}s ({build / elapsed:.0%}), "
                  f"{build / rows * 1e6:.2f} µs/row")
            print(f"  ClickHouse insert (+MVs):       {insert:.2f}s ({insert / elapsed:.0%}), "
                  f"{insert / rows * 1e6:.2f} µs/row")
            return 0 if rows == total else 1
    finally:
        if broker:
            broker.stop()
