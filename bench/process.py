"""Processor benchmark: `sflowpipe bench process`.

Fills the flow-samples topic of a local broker (a Tansu started here unless --bootstrap-servers
is given) with the overflowd capture repeated, through the ingest path; then starts ONE
`sflowpipe process` worker with three flow definitions and one threshold and measures how
fast it works through the backlog (enriched batches it publishes, by their Kafka timestamps)
and its CPU time. With ``--baseline REV`` (default bench/baseline.py DEFAULT_BASELINE) the
worker of that revision and this checkout's each work through the same backlog, as new consumer
groups, alternating for ``--rounds`` rounds (the machine is shared: only the ratio of one run
holds); it prints both rates and their ratio. Then a cProfile of the same per-batch work
in-process (decode, flows, enrichment, enriched re-encode), top entries.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from bench.baseline import DEFAULT_BASELINE, baseline_tree, command
from ingest.pcap import read_udp_payloads
from ingest.replay import publish_kafka
from sflowpipe.broker import EmbeddedBroker, free_port
from sflowpipe.settings import load_settings

# the capture whose flow samples fill the backlog (also bench threshold's background traffic)
DEFAULT_CAPTURE = Path(__file__).resolve().parents[1].parent / "shared" / "captures" / "overflowd__sflow.pcap"

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


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset now (none yet: the topic is created by the first worker)."""
    c = _clients(bootstrap).consumer(f"bench-{time.time_ns()}", {})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return {}
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions}
    finally:
        c.close()


def _count(bootstrap: str, topic: str, want: int, timeout: float, since: dict[int, int],
           pid: int | None = None) -> tuple[int, int, int, float]:
    """Messages on a topic after offsets ``since`` and their first/last Kafka timestamps (ms), once
    ``want`` arrived; and the CPU seconds process ``pid`` used from the first to the last message
    read (its work without its start-up, to within a consume call)."""
    c = _clients(bootstrap).consumer(f"bench-{time.time_ns()}", {"auto.offset.reset": "earliest"})
    deadline = time.monotonic() + timeout
    n, first, last = 0, None, 0
    cpu_first = cpu_last = None
    try:
        while time.monotonic() < deadline:  # the worker creates the topic when it starts
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            if md is not None and md.error is None and md.partitions:
                break
            time.sleep(0.5)
        c.assign([TopicPartition(topic, p, since.get(p, OFFSET_BEGINNING)) for p in md.partitions])
        while n < want and time.monotonic() < deadline:
            got = [m for m in c.consume(1000, 0.1) if m.error() is None]
            if got and pid is not None:
                cpu_last = _cpu(pid)
                cpu_first = cpu_last if cpu_first is None else cpu_first
            for m in got:
                n += 1
                ts = m.timestamp()[1]
                first = ts if first is None else min(first, ts)
                last = max(last, ts)
    finally:
        c.close()
    return n, first or 0, last, (cpu_last - cpu_first) if cpu_first is not None else 0.0


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
    _prefix_decode_ratio(codec, messages, n)
    print(f"in-process, per flow sample: {dt / n * 1e6:.2f} µs ({n / dt:,.0f} samples/s) for decode + "
          f"3 flows + threshold + enrichment + enriched batch")
    pr = cProfile.Profile()
    pr.enable()
    work()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25)
    print("profile, top entries by own time:")
    print("\n".join(line for line in s.getvalue().splitlines()[6:40] if line.strip()))


def _run_worker(tree: Path | None, defs: Path, bootstrap: str, prefix: str, tmp: Path, run: int,
                n_batches: int, n_samples: int, profile_to: str | None = None) -> float:
    """One ``sflowpipe process`` worker (from ``tree``, None: this checkout) through the whole backlog,
    as a new consumer group; its flow samples/s from the Kafka timestamps of the batches it published."""
    topic = prefix + "enriched-flow-samples"
    since = _ends(bootstrap, topic)
    cmd = command(tree, ["process", "--definitions", str(defs)])
    argv = cmd.argv if not profile_to else [cmd.argv[0], "-m", "cProfile", "-o", profile_to, *cmd.argv[1:]]
    env = {**os.environ, **cmd.env, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix, "SFLOWPIPE_KAFKA__PARTITIONS": "1",
           "SFLOWPIPE_PROCESSORS__APP_ID": f"{prefix}bench{run}",
           "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp / f"faust{run}"),
           "SFLOWPIPE_PROCESSORS__SESSION_TIMEOUT_S": "6", "SFLOWPIPE_PROCESSORS__WEB_PORT": str(free_port()),
           "SFLOWPIPE_ENRICH__OFFICE365_ENABLED": "false", "SFLOWPIPE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(argv, env=env, cwd=cmd.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cpu0 = _cpu(proc.pid)
        n, first, last, work_cpu = _count(bootstrap, topic, n_batches, timeout=300, since=since, pid=proc.pid)
        cpu = _cpu(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    span = max(1e-3, (last - first) / 1000)
    rate = (n / n_batches) * n_samples / span if n else 0.0
    per_cpu = (n / n_batches) * n_samples / work_cpu if work_cpu > 0 else 0.0
    print(f"  {'baseline' if tree else 'this checkout'}: {n} of {n_batches} enriched batches; {rate:,.0f} flow "
          f"samples/s while working through the backlog ({span:.1f} s); {per_cpu:,.0f} per CPU second of the "
          f"worker meanwhile ({work_cpu:.1f} s; {cpu:.1f} s incl. start-up)", flush=True)
    return rate, per_cpu


def _prefix_decode_ratio(codec, messages: list[bytes], n: int, rounds: int = 3) -> None:
    """The hot prefix read by schemas/prefix_reader.py and by fastavro (as 81cddb5 did), alternating."""
    import fastavro

    from schemas.definitions import hot_field_count

    hot = hot_field_count()
    current = codec.current("flow_sample_batch")
    schema = fastavro.parse_schema(dict(current.raw, fields=current.raw["fields"][:hot]))

    def with_fastavro():
        for m in messages:
            fastavro.schemaless_reader(io.BytesIO(memoryview(m)[10:]), schema, None, return_record_name=True,
                                       return_record_name_override=True)

    def with_reader():
        for m in messages:
            codec.decode_prefix("flow_sample_batch", m, hot)

    best = {with_fastavro: float("inf"), with_reader: float("inf")}
    for _ in range(rounds):
        for f in best:
            t0 = time.perf_counter()
            f()
            best[f] = min(best[f], time.perf_counter() - t0)
    print(f"hot-prefix decode, per flow sample: fastavro {best[with_fastavro] / n * 1e6:.2f} µs, prefix reader "
          f"{best[with_reader] / n * 1e6:.2f} µs ({best[with_fastavro] / best[with_reader]:.1f}x; best of {rounds}, "
          f"alternating)")


def main(settings, args) -> int:
    capture = Path(getattr(args, "capture", None) or DEFAULT_CAPTURE)
    datagrams = read_udp_payloads(str(capture))
    per_capture = sum(1 for _ in _flow_samples(datagrams))
    loops = max(1, getattr(args, "samples", 100_000) // max(per_capture, 1))
    rounds = max(1, getattr(args, "rounds", 2))
    rev = getattr(args, "baseline", None)
    rev = DEFAULT_BASELINE if rev is None else rev
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
        n_samples = per_capture * loops
        n_batches = -(-n_samples // s.ingest.batch_max_samples)
        print(f"backlog: {n_samples:,} flow samples in ~{n_batches} batches ({time.monotonic() - t0:.1f} s to fill)")
        defs = tmp / "defs.yaml"
        defs.write_text(yaml.safe_dump(DEFINITIONS))
        rates: dict[str, list[float]] = {"baseline": [], "current": []}
        per_cpu: dict[str, list[float]] = {"baseline": [], "current": []}
        with contextlib.ExitStack() as stack:
            tree = stack.enter_context(baseline_tree(rev)) if rev else None
            print(f"one worker, {rounds} round(s), alternating (baseline: revision {rev})" if rev else
                  f"one worker, {rounds} round(s)", flush=True)
            run = 0
            for _ in range(rounds):
                for which in (("baseline", "current") if rev else ("current",)):
                    run += 1
                    rate, cpu_rate = _run_worker(
                        tree if which == "baseline" else None, defs, bootstrap, prefix, tmp, run, n_batches, n_samples,
                        getattr(args, "worker_profile", None) if which == "current" else None)
                    rates[which].append(rate)
                    per_cpu[which].append(cpu_rate)
        best = {k: max(v) for k, v in rates.items() if v}
        print(f"one worker: {best['current']:,.0f} flow samples/s (best of {rounds})" +
              (f"; baseline {rev}: {best['baseline']:,.0f}; ratio {best['current'] / max(best['baseline'], 1e-9):.2f}x"
               if rev else ""))
        if rev:
            pairs = [c / b for b, c in zip(rates["baseline"], rates["current"]) if b]
            print("ratio per round: " + ", ".join(f"{r:.2f}x" for r in pairs))
            cpu_pairs = [c / b for b, c in zip(per_cpu["baseline"], per_cpu["current"]) if b]
            print("flow samples per worker CPU second, ratio per round (less sensitive to the machine's other "
                  "load): " + ", ".join(f"{r:.2f}x" for r in cpu_pairs))
        profile([d.payload for d in datagrams] * 3)
    finally:
        if broker:
            broker.stop()
    return 0


def _flow_samples(datagrams) -> list:
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.model import FlowSample

    out = []
    for d in datagrams:
        try:
            out += [s for s in decode_datagram(d.payload).samples if isinstance(s, FlowSample)]
        except Exception:  # a datagram the ingester drops
            continue
    return out
