"""Processor benchmark: `sflowpipe bench process`.

Fills the flow-samples topic of a local broker (a Tansu started here unless --bootstrap-servers
is given) with the overflowd capture repeated, through the ingest path; then starts ONE
`sflowpipe process` worker with three flow definitions and one threshold and measures how
fast it works through the backlog (enriched batches it publishes, by their Kafka timestamps)
and its CPU time. Then a cProfile of the same per-batch work in-process (decode, flows,
enrichment, enriched re-encode), top entries.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from bench.decode import DEFAULT_CAPTURE
from ingest.pcap import read_udp_payloads
from ingest.replay import publish_kafka
from sflowpipe.broker import EmbeddedBroker, free_port
from sflowpipe.settings import load_settings

DEFINITIONS = {
    "flows": {
        "pair": {"keys": "ipsource,ipdestination", "value": "bytes"},
        "ports": {"keys": "ipsource,ipdestination,tcpsourceport,tcpdestinationport", "value": "bps",
                  "filter": "ipprotocol=6"},
        "countries": {"keys": "country:ipsource,country:ipdestination", "value": "frames"},
    },
    "thresholds": {"elephant": {"metric": "pair", "value": 1_250_000, "byFlow": True}},
}


def _cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _clients(bootstrap: str):
    from sflowpipe.kafka import KafkaClients
    from sflowpipe.settings import KafkaSettings

    return KafkaClients(KafkaSettings(bootstrap_servers=bootstrap))


def _count(bootstrap: str, topic: str, want: int, timeout: float) -> tuple[int, int, int]:
    """Messages on a topic and the first/last Kafka timestamps (ms), once ``want`` arrived."""
    c = _clients(bootstrap).consumer(f"bench-{time.time_ns()}", {"auto.offset.reset": "earliest"})
    deadline = time.monotonic() + timeout
    n, first, last = 0, None, 0
    try:
        while time.monotonic() < deadline:  # the worker creates the topic when it starts
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            if md is not None and md.error is None and md.partitions:
                break
            time.sleep(0.5)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        while n < want and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    n += 1
                    ts = m.timestamp()[1]
                    first = ts if first is None else min(first, ts)
                    last = max(last, ts)
    finally:
        c.close()
    return n, first or 0, last


def profile(payloads: list[bytes]) -> None:
    from ingest.batches import AgentBatches
    from ingest.sflow.datagram import decode_datagram
    from processors.engine import Engine
    from processors.enrich import Enricher
    from sflowpipe.config_plane import parse
    from schemas.codec import Codec
    from sflowpipe.settings import EnrichSettings

    batches = AgentBatches(500, 1e9)
    out = []
    for p in payloads:
        out += batches.add(decode_datagram(p), "127.0.0.1", 1_700_000_000_000_000)
    flow = [b.datum for b in out + batches.drain() if b.kind == "flow"]
    from processors.app import EnrichedEncoder, decode_flow_batch
    from schemas.definitions import hot_field_count

    codec = Codec()
    enriched = EnrichedEncoder(codec)
    messages = [codec.encode("flow_sample_batch", d) for d in flow]
    enricher = Enricher(EnrichSettings(office365_enabled=False))
    enricher.start()
    engine = Engine(enricher)
    for section, kind in (("flows", "flow"), ("thresholds", "threshold")):
        for name, body in DEFINITIONS[section].items():
            engine.apply(kind, name, parse(kind, name, body))
    n = sum(len(d["sequence_number"]) for d in flow)

    def work():
        hot = hot_field_count()
        for m in messages:
            b = decode_flow_batch(codec, m, hot, engine)
            enriched.encode(m, engine.on_flow_batch(b))
        engine.report()

    work()  # warm caches
    t0 = time.perf_counter()
    work()
    dt = time.perf_counter() - t0
    print(f"in-process, per flow sample: {dt / n * 1e6:.2f} µs ({n / dt:,.0f} samples/s) for decode + "
          f"3 flows + threshold + enrichment + enriched batch")
    pr = cProfile.Profile()
    pr.enable()
    work()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(12)
    print("profile, top entries by own time:")
    print("\n".join(line for line in s.getvalue().splitlines()[6:26] if line.strip()))


def main(settings, args) -> int:
    capture = Path(getattr(args, "capture", None) or DEFAULT_CAPTURE)
    datagrams = read_udp_payloads(str(capture))
    loops = max(1, getattr(args, "samples", 200_000) // 5855)
    broker = None
    bootstrap = getattr(args, "bootstrap_servers", None)
    if not bootstrap:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    tmp = Path(tempfile.mkdtemp(prefix="sflowpipe-bench-process-"))
    prefix = f"bp{int(time.time()) % 10**6}."
    s = load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.topic_prefix": prefix, "kafka.partitions": 1,
                         "ingest.spill_dir": str(tmp / "spill")})
    try:
        t0 = time.monotonic()
        publish_kafka(datagrams * loops, s, speed=0)
        n_samples = 5855 * loops
        n_batches = -(-n_samples // 500)
        print(f"backlog: {n_samples:,} flow samples in ~{n_batches} batches ({time.monotonic() - t0:.1f} s to fill)")
        defs = tmp / "defs.yaml"
        defs.write_text(yaml.safe_dump(DEFINITIONS))
        env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix,
               "SFLOWPIPE_KAFKA__PARTITIONS": "1", "SFLOWPIPE_PROCESSORS__APP_ID": prefix + "bench",
               "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp / "faust"), "SFLOWPIPE_PROCESSORS__SESSION_TIMEOUT_S": "6",
               "SFLOWPIPE_PROCESSORS__WEB_PORT": str(free_port()), "SFLOWPIPE_ENRICH__OFFICE365_ENABLED": "false",
               "SFLOWPIPE_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "process", "--definitions", str(defs)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            cpu0 = _cpu(proc.pid)
            n, first, last = _count(bootstrap, prefix + "enriched-flow-samples", n_batches, timeout=600)
            cpu = _cpu(proc.pid) - cpu0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        span = max(1e-3, (last - first) / 1000)
        rate = (n / n_batches) * n_samples / span
        print(f"one worker: {n} of {n_batches} enriched batches; {rate:,.0f} flow samples/s while working "
              f"through the backlog ({span:.1f} s), worker CPU {cpu:.1f} s incl. start-up")
        profile([d.payload for d in datagrams] * 3)
    finally:
        if broker:
            broker.stop()
    return 0
