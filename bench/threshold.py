"""Threshold latency benchmark: `sflowpipe bench threshold`.

How long after traffic crosses a threshold does its event appear on the events topic, with one
``sflowpipe process`` worker (bench/process.py's three flows and its ``elephant`` threshold: the
``pair`` flow, bytes/s, over 1,250,000, byFlow) taking ``--rate`` flow samples/s?

Flow-sample batches of 500 samples (the overflowd capture through the ingest path's batcher) are
published straight onto the flow-samples topic with the ingester's Publisher, paced to ``--rate``,
each stamped with the time it is published as its samples' receive time (the receive-time column
is rewritten in the encoded message: same Avro bytes as the ingester's). The capture's own flows
raise their events during a warm-up, until the worker keeps up. Then, from the moment T0, every
batch also carries a few samples of a new flow (198.51.100.7 -> 203.0.113.9) whose true rate is
``--over`` times the threshold. Measured:

- T0: the receive time stamped on the first batch carrying the new flow: the true rate of the
  flow is over the threshold from then on;
- Tc: when the flow's smoothed value (sFlow-RT's: exponential, time constant t = 2 s) goes over
  the threshold, from the same contributions at the same times (processors/flows.FlowTable
  replayed here): ``Tc - T0`` is the smoothing, ``-t ln(1 - 1/over)`` for a step from nothing;
- Te: when this benchmark's consumer receives the event from the events topic.

``Te - T0`` is the delay; ``Te - Tc`` the pipeline's part: producer linger, the consumer's fetch,
the batch's processing, the event's send; the worker's event timestamp (the batch time it was
raised at) tells how much of it was before the worker's check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml
from confluent_kafka import TopicPartition

from bench.baseline import baseline_tree, command
from bench.process import DEFAULT_CAPTURE, DEFINITIONS, _cpu
from ingest.pcap import read_udp_payloads
from sflowpipe.broker import EmbeddedBroker, free_port
from sflowpipe.settings import load_settings

PLACEHOLDER_US = 1_700_000_000_000_000  # the receive time of the templates, rewritten per batch
ELEPHANT = ("198.51.100.7", "203.0.113.9")
ELEPHANT_SAMPLES = 5  # of each batch
ELEPHANT_FRAME = 1000  # bytes


def _long(n: int) -> bytes:
    from schemas.writer import encode_long

    return encode_long(n)


def templates(capture: Path, batch: int = 500) -> list[dict]:
    """Full flow-sample batches of the capture, through the ingest path's batcher."""
    from ingest.batches import AgentBatches
    from ingest.sflow.datagram import decode_datagram

    batches = AgentBatches(batch, 1e9)
    out = []
    for d in read_udp_payloads(str(capture)):
        try:
            out += batches.add(decode_datagram(d.payload), "192.0.2.250", PLACEHOLDER_US)
        except Exception:  # a datagram the ingester drops
            continue
    return [b.datum for b in out if b.kind == "flow" and b.samples == batch]


def with_elephant(datum: dict, sampling_rate: int) -> dict:
    """The batch with its first samples replaced by the new flow's (TCP, one data source)."""
    d = {k: list(v) if isinstance(v, list) else v for k, v in datum.items()}
    for i in range(ELEPHANT_SAMPLES):
        d["src_ip"][i], d["dst_ip"][i] = ELEPHANT
        d["ip_version"][i] = 4
        d["frame_length"][i] = ELEPHANT_FRAME
        d["sampling_rate"][i] = sampling_rate
    return d


class _Watch(threading.Thread):
    """Counts the worker's enriched batches and notes when the new flow's event arrives."""

    def __init__(self, clients, codec, enriched: str, events: str) -> None:
        super().__init__(daemon=True)
        self.clients, self.codec = clients, codec
        self.topics = (enriched, events)
        self.enriched = 0
        self.event: tuple[float, dict] | None = None
        self.others = 0
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        # a short fetch wait: Tansu answers a fetch only when its wait is over (processors/fetch_wait.py),
        # which would add up to librdkafka's 500 ms to the measured delay
        c = self.clients.consumer(f"bench-{time.time_ns()}", {"auto.offset.reset": "earliest",
                                                              "fetch.wait.max.ms": 10})
        try:
            parts = []
            while not self.stop.is_set() and not parts:
                md = c.list_topics(timeout=10).topics
                if all(t in md and md[t].partitions for t in self.topics):
                    parts = [TopicPartition(t, p) for t in self.topics for p in md[t].partitions]
                else:
                    time.sleep(0.2)
            for tp in parts:
                tp.offset = c.get_watermark_offsets(tp, timeout=10)[1]
            c.assign(parts)
            self.ready.set()
            while not self.stop.is_set():
                for m in c.consume(500, 0.05):
                    if m.error() is not None:
                        continue
                    if m.topic() == self.topics[0]:
                        self.enriched += 1
                        continue
                    at = time.time()
                    _, e = self.codec.decode(m.value())
                    if e.get("flowKey") == ",".join(ELEPHANT) and self.event is None:
                        self.event = (at, e)
                    else:
                        self.others += 1
        finally:
            c.close()


def _smoothed_crossing(stamps: list[float], per_batch: float, t: float, threshold: float) -> float | None:
    """When the flow's smoothed value first goes over ``threshold``: contributions ``per_batch`` at
    ``stamps``, smoothed as the worker does (processors.flows.FlowTable)."""
    from processors.flows import FlowTable

    table = FlowTable(t, 10)
    for at in stamps:
        table.add(at, "a", "ds", "k", per_batch)
        if table.value(at, "a", "ds", "k") > threshold:
            return at
    return None


def run_once(tree: Path | None, label: str, bootstrap: str, args, tmp: Path, run: int, bg: list[bytes],
             el: list[bytes], settings) -> dict | None:
    from ingest.publisher import Publisher
    from ingest.spill import SpillQueue
    from sflowpipe.kafka import wiring
    from sflowpipe.metrics import Metrics

    prefix = f"bt{int(time.time()) % 10**6}r{run}."
    s = load_settings(**{"kafka.bootstrap_servers": bootstrap, "kafka.topic_prefix": prefix, "kafka.partitions": 1,
                         "ingest.spill_dir": str(tmp / f"spill{run}")})
    clients, codec = wiring(s)
    topic = prefix + "flow-samples"
    publisher = Publisher(clients, SpillQueue(tmp / f"spill{run}", 64 << 20), Metrics(), client_id="bench-threshold")
    clients.ensure_topics([prefix + n for n in ("flow-samples", "counter-samples", "discard-samples",
                                                 "enriched-flow-samples", "events")])
    publisher.start()
    defs = tmp / "defs.yaml"
    defs.write_text(yaml.safe_dump(DEFINITIONS))
    cmd = command(tree, ["process", "--definitions", str(defs)])
    env = {**os.environ, **cmd.env, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix, "SFLOWPIPE_KAFKA__PARTITIONS": "1",
           "SFLOWPIPE_PROCESSORS__APP_ID": f"{prefix}bench", "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp / f"faust{run}"),
           "SFLOWPIPE_PROCESSORS__SESSION_TIMEOUT_S": "6", "SFLOWPIPE_PROCESSORS__WEB_PORT": str(free_port()),
           "SFLOWPIPE_ENRICH__OFFICE365_ENABLED": "false", "SFLOWPIPE_LOG_LEVEL": "WARNING"}
    watch = _Watch(clients, codec, prefix + "enriched-flow-samples", prefix + "events")
    watch.start()
    proc = subprocess.Popen(cmd.argv, env=env, cwd=cmd.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    threshold = float(DEFINITIONS["thresholds"]["elephant"]["value"])
    interval = 500 / args.rate
    old = _long(PLACEHOLDER_US) * 500
    sent = 0
    stamps: list[float] = []
    try:
        watch.ready.wait(60)
        # a trickle until the worker has joined and works (its start-up would leave it a backlog)
        until = time.monotonic() + args.warmup_max
        while watch.enriched == 0 and time.monotonic() < until and proc.poll() is None:
            publisher.publish(topic, b"192.0.2.250", bg[sent % len(bg)].replace(old, _long(time.time_ns() // 1000) * 500, 1))
            publisher.service()
            sent += 1
            time.sleep(0.1)
        while sent - watch.enriched > 0 and time.monotonic() < until:
            publisher.service()
            time.sleep(0.05)
        watch.enriched = sent = 0
        start = time.monotonic()
        cpu_start = _cpu(proc.pid)
        caught_up_since = None
        t0 = None
        deadline = start + args.warmup_max
        cpu0 = None
        while True:
            due = start + sent * interval
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.time()
            if t0 is None:
                behind = sent - watch.enriched
                if behind <= max(5, args.rate / 500 * 0.5):  # the worker is within 0.5 s of the input
                    caught_up_since = caught_up_since or time.monotonic()
                else:
                    caught_up_since = None
                late = time.monotonic() > deadline
                if late or (caught_up_since is not None and time.monotonic() - caught_up_since >= 1.0):
                    if late:  # measured all the same: its lag is part of its delay
                        print(f"  {label}: not within 0.5 s of the input for 1 s in {args.warmup_max:.0f} s "
                              f"({watch.enriched} of {sent} batches processed; worker CPU "
                              f"{(_cpu(proc.pid) - cpu_start) / (time.monotonic() - start):.0%} of a core)", flush=True)
                    t0 = now
                    cpu0 = _cpu(proc.pid)
                    sent_at_t0 = sent
            templates_now = el if t0 is not None else bg
            message = templates_now[sent % len(templates_now)]
            message = message.replace(old, _long(int(now * 1e6)) * 500, 1)
            publisher.publish(topic, b"192.0.2.250", message)
            publisher.service()
            if t0 is not None:
                stamps.append(now)
            sent += 1
            if watch.event is not None or (t0 is not None and now - t0 > args.watch):
                break
        cpu = _cpu(proc.pid) - cpu0 if cpu0 is not None else 0.0
        achieved = (sent - sent_at_t0) * 500 / max(1e-9, time.time() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        watch.stop.set()
        watch.join(15)
        publisher.stop(timeout=10)
    per_batch = ELEPHANT_SAMPLES * ELEPHANT_FRAME * args.sampling_rate
    tc = _smoothed_crossing(stamps, per_batch, 2.0, threshold)
    result = {"t0": t0, "tc": tc, "event": watch.event, "rate": achieved, "cpu": cpu}
    if watch.event is None:
        print(f"  {label}: no event within {args.watch:.0f} s of T0 ({achieved:,.0f} samples/s published)")
        return result
    te, e = watch.event
    print(f"  {label}: {achieved:,.0f} flow samples/s; new flow at {per_batch / interval:,.0f} bytes/s "
          f"({per_batch / interval / threshold:.1f}x the threshold) from T0", flush=True)
    print(f"    event on the topic {te - t0:.3f} s after T0 = smoothing {tc - t0:.3f} s (smoothed value over "
          f"the threshold at Tc) + pipeline {te - tc:.3f} s; the worker raised it at +{e['timestamp'] / 1000 - t0:.3f} s "
          f"(its batch time); worker CPU {cpu / max(1e-9, te - t0):.0%} of a core meanwhile", flush=True)
    return result


def main(settings, args) -> int:
    capture = Path(getattr(args, "capture", None) or DEFAULT_CAPTURE)
    from schemas.codec import Codec

    codec = Codec()
    base = templates(capture)
    if not base:
        print(f"{capture}: no full flow-sample batch")
        return 1
    # the sampling rate that makes ELEPHANT_SAMPLES per batch the wanted multiple of the threshold
    threshold = float(DEFINITIONS["thresholds"]["elephant"]["value"])
    batches_per_s = args.rate / 500
    args.sampling_rate = max(1, round(args.over * threshold / (batches_per_s * ELEPHANT_SAMPLES * ELEPHANT_FRAME)))
    bg = [codec.encode("flow_sample_batch", d) for d in base]
    el = [codec.encode("flow_sample_batch", with_elephant(d, args.sampling_rate)) for d in base]
    broker = None
    bootstrap = getattr(args, "bootstrap_servers", None)
    if not bootstrap:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    tmp = Path(tempfile.mkdtemp(prefix="sflowpipe-bench-threshold-"))
    print(f"one worker, {args.rate:,.0f} flow samples/s in batches of 500; threshold 'elephant' on flow 'pair' "
          f"(t = 2 s) at {threshold:,.0f} bytes/s; the new flow {ELEPHANT[0]} -> {ELEPHANT[1]} at {args.over}x it")
    print(f"  smoothing alone, for a step from nothing to {args.over}x: -t ln(1 - 1/{args.over}) = "
          f"{-2.0 * __import__('math').log(1 - 1 / args.over):.3f} s")
    try:
        with contextlib.ExitStack() as stack:
            runs = [("this checkout", None)]
            if args.baseline:
                runs.insert(0, (f"baseline {args.baseline}", stack.enter_context(baseline_tree(args.baseline))))
            for i, (label, tree) in enumerate(runs):
                run_once(tree, label, bootstrap, args, tmp, i, bg, el, settings)
    finally:
        if broker:
            broker.stop()
    return 0
