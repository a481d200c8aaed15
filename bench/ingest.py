"""Ingest benchmark: `sflowpipe bench ingest`.

Replays a capture (overflowd repeated) over loopback UDP, at a fixed rate, into ONE
`sflowpipe ingest` process publishing to a local broker (a Tansu started here unless
--bootstrap-servers is given). Prints flow samples/s published, CPU seconds per 100k samples,
and loss (sent vs received vs published, kernel drops); with --rate 0 it steps the rate up and
reports the highest rate without loss. Then a stage-by-stage profile of the same path in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.decode import DEFAULT_CAPTURE
from ingest.pcap import read_udp_payloads
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.model import FlowSample
from sflowpipe.broker import EmbeddedBroker, free_port


def _sender(payloads: list[bytes], port: int, rate: float, n: int, done) -> None:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        d = due - time.monotonic()
        if d > 0.0002:
            time.sleep(d)
        s.sendto(payloads[i % len(payloads)], ("127.0.0.1", port))
    done.value = time.monotonic() - t0


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            name = key.split("{")[0]
            out[key] = float(value)
            if "{" in key and not name.endswith(("_bucket", "_sum", "_count")):
                out[name] = out.get(name, 0) + float(value)
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(bootstrap: str, payloads: list[bytes], flows_per: list[int], rate: float, n: int) -> dict:
    """One ingester, one run at `rate` datagrams/s for n datagrams; returns the figures."""
    port, mport = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="sflowpipe-bench-")
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "SFLOWPIPE_KAFKA__TOPIC_PREFIX": f"bench{int(time.time() * 1000) % 10**8}.",
           "SFLOWPIPE_INGEST__LISTEN": f"127.0.0.1:{port}", "SFLOWPIPE_INGEST__METRICS_LISTEN": f"127.0.0.1:{mport}",
           "SFLOWPIPE_INGEST__SPILL_DIR": tmp, "SFLOWPIPE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "ingest"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                _metrics(mport)
                break
            except OSError:
                time.sleep(0.1)
        cpu0 = _cpu_seconds(proc.pid)
        done = mp.Value("d", 0.0)
        sender = mp.get_context("fork").Process(target=_sender, args=(payloads, port, rate, n, done))
        t0 = time.monotonic()
        sender.start()
        sender.join()
        # wait until the ingester has published everything it received
        m = _metrics(mport)
        for _ in range(300):
            m = _metrics(mport)
            if (m.get("sflowpipe_kafka_producer_queue_messages", 1) == 0
                    and m.get("sflowpipe_ingest_datagrams_received_total", 0) + m.get("sflowpipe_ingest_kernel_drops", 0) >= n):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        cpu = _cpu_seconds(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    flows_sent = sum(flows_per[i % len(flows_per)] for i in range(n))
    received = m.get("sflowpipe_ingest_datagrams_received_total", 0)
    published = m.get('sflowpipe_ingest_samples_total{kind="flow"}', 0)
    delivered_raw = sum(v for k, v in m.items() if k.startswith("sflowpipe_kafka_messages_delivered_total{")
                        and k.endswith('raw"}'))
    return {"rate": rate, "sent": n, "received": received, "kernel_drops": m.get("sflowpipe_ingest_kernel_drops", 0),
            "flows_sent": flows_sent, "flows_published": published, "raw_delivered": delivered_raw,
            "seconds": done.value, "elapsed": elapsed, "cpu": cpu,
            "spilled": m.get("sflowpipe_kafka_messages_spilled_total", 0)}


def profile(payloads: list[bytes], bootstrap: str) -> None:
    """Where the time goes, per flow sample, on the same path in-process."""
    from ingest.batches import AgentBatches
    from schemas.codec import AvroCodec
    from sflowpipe.kafka import KafkaClients
    from sflowpipe.settings import KafkaSettings

    dgs = [decode_datagram(p) for p in payloads]
    flows = sum(sum(type(s) is FlowSample for s in d.samples) for d in dgs)
    t0 = time.perf_counter()
    for p in payloads:
        decode_datagram(p)
    t_decode = time.perf_counter() - t0
    raw = AvroCodec("raw_datagram")
    t0 = time.perf_counter()
    for p in payloads:
        raw.encode({"receive_time_us": 1, "exporter_address": "127.0.0.1", "exporter_port": 1, "data": p})
    t_raw = time.perf_counter() - t0
    batches = AgentBatches(500, 1e9)
    t0 = time.perf_counter()
    out = []
    for d in dgs:
        out += batches.add(d, "127.0.0.1", 1_700_000_000_000_000)
    out += batches.drain()
    t_rows = time.perf_counter() - t0
    codecs = {"flow": AvroCodec("flow_sample_batch"), "counters": AvroCodec("counter_sample_batch")}
    t0 = time.perf_counter()
    values = [codecs[b.kind].encode(b.datum) for b in out]
    t_avro = time.perf_counter() - t0
    prod = KafkaClients(KafkaSettings(bootstrap_servers=bootstrap)).producer({"linger.ms": 20,
                                                                              "compression.type": "zstd"})
    t0 = time.perf_counter()
    for p in payloads:
        prod.produce("bench-profile", p)
    for v in values:
        prod.produce("bench-profile", v)
    prod.poll(0)
    t_produce = time.perf_counter() - t0
    prod.flush(30)
    per = 1e6 / flows
    print(f"profile, µs per flow sample ({flows} flow samples, {len(payloads)} datagrams):")
    for name, t in (("decode (incl. header parse)", t_decode), ("raw envelope (Avro)", t_raw),
                    ("batch rows (columns)", t_rows), ("batch Avro encode", t_avro),
                    ("produce() calls", t_produce)):
        print(f"  {name:30s} {t * per:6.2f}")
    print(f"  {'total':30s} {(t_decode + t_raw + t_rows + t_avro + t_produce) * per:6.2f}")


def main(settings, args) -> int:
    capture = Path(args.capture) if args.capture else DEFAULT_CAPTURE
    payloads = [d.payload for d in read_udp_payloads(str(capture))]
    flows_per = [sum(type(s) is FlowSample for s in decode_datagram(p).samples) for p in payloads]
    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    try:
        print(f"ingest benchmark: {capture.name}, {sum(flows_per) / len(payloads):.2f} flow samples/datagram, "
              f"broker {bootstrap}, {os.cpu_count()} cores shared by sender, ingester and broker")
        rates = [args.rate] if args.rate else [8000, 12000, 14000, 16000, 18000]
        best = None
        for rate in rates:
            n = max(args.datagrams, int(rate * 5))
            r = run_once(bootstrap, payloads, flows_per, rate, n)
            lost = r["sent"] - r["received"]
            lossless = lost == 0 and r["flows_published"] == r["flows_sent"]
            fps = r["flows_published"] / r["seconds"]
            print(f"rate {rate:7.0f} dg/s: {fps:8.0f} flow samples/s published, "
                  f"CPU {r['cpu'] / (r['flows_sent'] / 100_000):5.2f} s per 100k samples, "
                  f"sent {r['sent']} received {r['received']:.0f} (kernel drops {r['kernel_drops']:.0f}), "
                  f"flow samples sent {r['flows_sent']} published {r['flows_published']:.0f}, "
                  f"raw delivered {r['raw_delivered']:.0f}{'' if lossless else '  LOSS'}")
            if lossless:
                best = (rate, fps)
            elif not args.rate:
                break
        if best:
            print(f"highest lossless rate tried: {best[0]:.0f} datagrams/s = {best[1]:.0f} flow samples/s per ingester")
        profile(payloads * 3, bootstrap)
    finally:
        if broker:
            broker.stop()
    return 0
