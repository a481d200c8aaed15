"""Ingest benchmark: `sflowpipe bench ingest`.

Two `sflowpipe ingest` processes, this checkout's and the baseline revision's (bench/baseline.py:
the code before the speed work of issue 16), run side by side with the same interpreter, each
publishing to a local broker (a Tansu started here unless --bootstrap-servers is given). A sender
replays a capture (overflowd by default) over loopback UDP at fixed rates, stepped up, to one
ingester then the other at each rate, until both lose datagrams. It prints

(a) CPU per flow sample published by this checkout's ingester (the process's user + system time,
    its Kafka client's threads included, at its highest lossless rate) beside `sflowtool -j`'s CPU
    per sample (rusage of the child) on a pcap of the same payloads, and their ratio;
(b) the highest lossless rate of each ingester, and their ratio;

then where this checkout's time goes, per flow sample, on the same path in-process. The sender,
the ingesters and the broker share the machine's cores: absolute figures move with the machine
and its load, only the ratios of one run are comparable.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.baseline import DEFAULT_BASELINE, BaselineError, Command, baseline_tree, command
from bench.decode import DEFAULT_CAPTURE
from ingest.pcap import read_udp_payloads
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.model import FlowSample
from sflowpipe.broker import EmbeddedBroker, free_port


def _sender(payloads: list[bytes], port: int, rate: float, first: int, n: int, done) -> None:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    m = len(payloads)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        d = due - time.monotonic()
        if d > 0.0002:
            time.sleep(d)
        s.sendto(payloads[(first + i) % m], ("127.0.0.1", port))
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
    """User + system time of a process, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class IngesterProcess:
    """One `sflowpipe ingest` process of a tree, on its own UDP and metrics ports."""

    def __init__(self, name: str, cmd: Command, bootstrap: str) -> None:
        self.name = name
        self.port, self.mport = free_port(), free_port()
        self.spill = tempfile.mkdtemp(prefix="sflowpipe-bench-")
        env = {**os.environ, **cmd.env, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "SFLOWPIPE_KAFKA__TOPIC_PREFIX": f"bench{int(time.time() * 1000) % 10**8}{name}.",
               "SFLOWPIPE_INGEST__LISTEN": f"127.0.0.1:{self.port}",
               "SFLOWPIPE_INGEST__METRICS_LISTEN": f"127.0.0.1:{self.mport}",
               "SFLOWPIPE_INGEST__SPILL_DIR": self.spill, "SFLOWPIPE_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(cmd.argv, env=env, cwd=cmd.cwd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.sent = 0  # datagrams sent to it so far (where the next step starts in the payloads)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.metrics()
                if m.get("sflowpipe_kafka_spill_pending_messages", 0) == 0:
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the {self.name} ingester exited with {self.proc.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} ingester did not start within {timeout:.0f} s")
            time.sleep(0.1)

    def metrics(self) -> dict[str, float]:
        return _metrics(self.mport)

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.spill, ignore_errors=True)


def _flows(m: dict) -> float:
    return m.get('sflowpipe_ingest_samples_total{kind="flow"}', 0)


def run_step(ing: IngesterProcess, payloads: list[bytes], flows_per: list[int], rate: float,
             seconds: float) -> dict:
    """Send ``rate`` datagrams/s for ``seconds`` to one ingester; what it received, published and spent."""
    n = max(1, int(rate * seconds))
    m0, cpu0 = ing.metrics(), ing.cpu()
    done = mp.Value("d", 0.0)
    sender = mp.get_context("fork").Process(target=_sender, args=(payloads, ing.port, rate, ing.sent, n, done))
    sender.start()
    sender.join()
    flows_sent = sum(flows_per[(ing.sent + i) % len(flows_per)] for i in range(n))
    ing.sent += n
    # until everything received is published: the producer's queue empty and the flow count still
    m = m0
    deadline, last, still = time.monotonic() + 30, -1.0, 0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        m = ing.metrics()
        seen = (m.get("sflowpipe_ingest_datagrams_received_total", 0) - m0.get("sflowpipe_ingest_datagrams_received_total", 0)
                + m.get("sflowpipe_ingest_kernel_drops", 0) - m0.get("sflowpipe_ingest_kernel_drops", 0))
        still = still + 1 if _flows(m) == last else 0
        last = _flows(m)
        if seen >= n and m.get("sflowpipe_kafka_producer_queue_messages", 1) == 0 and still >= 2:
            break
    cpu = ing.cpu() - cpu0
    received = m.get("sflowpipe_ingest_datagrams_received_total", 0) - m0.get("sflowpipe_ingest_datagrams_received_total", 0)
    published = _flows(m) - _flows(m0)
    return {"rate": rate, "sent": n, "seconds": done.value, "received": received, "flows_sent": flows_sent,
            "flows_published": published, "cpu": cpu,
            "lossless": received == n and published == flows_sent}


def _write_pcap(path: str, payloads: list[bytes]) -> None:
    """The payloads as Ethernet/IPv4/UDP frames of a pcap file, what ``sflowtool -r`` reads."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for p in payloads:
            udp = struct.pack(">HHHH", 50000, 6343, 8 + len(p), 0) + p
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + udp
            frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
            f.write(struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)


def sflowtool_cpu(binary: str, payloads: list[bytes], runs: int = 3) -> float | None:
    """CPU seconds (least of ``runs``) of ``sflowtool -j -r`` over a pcap of the payloads; None without it."""
    exe = shutil.which(binary)
    if not exe:
        return None
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.pcap")
        _write_pcap(path, payloads)
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([exe, "-j", "-r", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            best = cpu if best is None else min(best, cpu)
    return best


def profile(payloads: list[bytes], bootstrap: str) -> float:
    """Where the time goes, per flow sample, on this checkout's path in-process; returns the whole
    path's µs per flow sample."""
    from ingest.batches import AgentBatches
    from ingest.pipeline import IngestPipeline
    from ingest.rows import decode_rows
    from ingest.service import quiet_gc
    from schemas.codec import Codec
    from sflowpipe.kafka import KafkaClients
    from sflowpipe.metrics import Metrics
    from sflowpipe.settings import KafkaSettings, load_settings

    class Discard:
        def publish(self, topic, key, value):
            pass

        def service(self):
            pass

    def timed(fn) -> float:
        fn()  # warm the caches
        best = None
        for _ in range(3):
            t0 = time.process_time()
            fn()
            t = time.process_time() - t0
            best = t if best is None else min(best, t)
        return best

    quiet_gc()  # as an ingester process runs
    now = 1_700_000_000_000_000
    decoded = [decode_rows(p, now) for p in payloads]
    flows = sum(len(r.flows) for r in decoded)
    t_decode = timed(lambda: [decode_rows(p, now) for p in payloads])

    def batch():
        b = AgentBatches(500, 1e9)
        out = []
        for r in decoded:
            out += b.add_rows(r.agent, "127.0.0.1", r.flows, r.mixed)
        return out + b.drain()

    t_rows = timed(batch)
    codec = Codec()
    stems = {"flow": "flow_sample_batch", "counters": "counter_sample_batch", "discards": "discard_sample_batch"}
    batches = batch()
    t_avro = timed(lambda: [codec.encode(stems[b.kind], b.datum) for b in batches])
    values = [codec.encode(stems[b.kind], b.datum) for b in batches]
    s = load_settings()
    pipeline = IngestPipeline(s.ingest, s.kafka, s.topics, Discard(), Metrics(), codec)

    def handle():
        for p in payloads:
            pipeline.handle(p, "127.0.0.1", 6343, now)
        pipeline.drain()

    t_handle = timed(handle)
    prod = KafkaClients(KafkaSettings(bootstrap_servers=bootstrap)).producer({"linger.ms": 20,
                                                                              "compression.type": "zstd"})

    def produce():
        for p in payloads:
            prod.produce("bench-profile", p)
        for v in values:
            prod.produce("bench-profile", v)
        prod.poll(0)

    t_produce = timed(produce)
    prod.flush(30)
    per = 1e6 / flows
    print(f"profile of this checkout, µs CPU per flow sample ({flows} flow samples, {len(payloads)} datagrams; "
          f"least of 3 runs each):")
    for name, t in (("decode to rows (ingest/rows.py)", t_decode), ("batch columns", t_rows),
                    ("batch Avro encode", t_avro), ("produce() calls", t_produce)):
        print(f"  {name:34s} {t * per:6.2f}")
    print(f"  {'whole pipeline (handle + drain)':34s} {t_handle * per:6.2f}  (the above but produce, and the raw "
          f"envelope, counts, agent counters)")
    print(f"  {'whole pipeline + produce':34s} {(t_handle + t_produce) * per:6.2f}")
    return (t_handle + t_produce) * per


def _rates(start: float, step: float, limit: float) -> list[float]:
    out, r = [], start
    while r <= limit:
        out.append(round(r, -1))
        r *= step
    return out


def main(settings, args) -> int:
    capture = Path(args.capture) if args.capture else DEFAULT_CAPTURE
    payloads = [d.payload for d in read_udp_payloads(str(capture))]
    per_dg = [decode_datagram(p).samples for p in payloads]
    flows_per = [sum(type(s) is FlowSample for s in samples) for samples in per_dg]
    samples_per = [len(samples) for samples in per_dg]
    flows_per_dg = sum(flows_per) / len(payloads)
    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    rev = args.baseline or DEFAULT_BASELINE
    try:
        with baseline_tree(rev) as tree:
            print(f"ingest benchmark: {capture.name}, {flows_per_dg:.2f} flow samples/datagram, broker {bootstrap}; "
                  f"{os.cpu_count()} cores shared by the sender, both ingesters and the broker")
            procs = {"this": IngesterProcess("this", command(None, ["ingest"]), bootstrap),
                     "baseline": IngesterProcess("baseline", command(tree, ["ingest"]), bootstrap)}
            try:
                for p in procs.values():
                    p.wait_ready()
                rates = [args.rate] if args.rate else _rates(args.start_rate, args.step, args.max_rate)
                best: dict[str, dict | None] = {name: None for name in procs}
                going = set(procs)
                print(f"each step: {args.seconds:g} s of datagrams to one ingester, then the other "
                      f"(baseline = revision {rev})")
                lost: dict[str, float] = {}  # the lowest rate each lost at
                clean: dict[str, dict[float, float]] = {name: {} for name in procs}  # lossless rate -> µs/flow

                def step(name: str, rate: float) -> None:
                    r = run_step(procs[name], payloads, flows_per, rate, args.seconds)
                    achieved = r["flows_sent"] / r["seconds"] if r["seconds"] else 0
                    per_flow = r["cpu"] / r["flows_published"] * 1e6 if r["flows_published"] else float("nan")
                    print(f"  {name:8s} {rate:7.0f} dg/s (sent at {r['sent'] / r['seconds']:7.0f}): "
                          f"{achieved:8.0f} flow samples/s, CPU {per_flow:5.2f} µs per flow sample, "
                          f"received {r['received']:.0f}/{r['sent']}, flow samples published "
                          f"{r['flows_published']:.0f}/{r['flows_sent']}{'' if r['lossless'] else '  LOSS'}")
                    if r["lossless"]:
                        clean[name][rate] = per_flow
                        if best[name] is None or rate > best[name]["rate"]:
                            r["flow_rate"] = achieved
                            r["per_flow_us"] = per_flow
                            best[name] = r
                    else:
                        lost[name] = min(rate, lost.get(name, rate))

                for i, rate in enumerate(rates):
                    order = list(procs) if i % 2 == 0 else list(procs)[::-1]  # alternate who goes first
                    for name in order:
                        if name in going:
                            step(name, rate)
                            if name in lost and not args.rate:
                                going.discard(name)
                    if not going:
                        break
                if not args.rate:  # one more step each, halfway (geometrically) between its last good and first bad
                    for name in procs:
                        if name in lost and best[name] is not None:
                            step(name, round((best[name]["rate"] * lost[name]) ** 0.5, -1))
            finally:
                for p in procs.values():
                    p.stop()
        this, base = best["this"], best["baseline"]
        print()
        tool_payloads = [payloads[i % len(payloads)] for i in range(args.sflowtool_datagrams)]
        tool_samples = sum(samples_per[i % len(payloads)] for i in range(args.sflowtool_datagrams))
        tool_flows = sum(flows_per[i % len(payloads)] for i in range(args.sflowtool_datagrams))
        tool = sflowtool_cpu(args.sflowtool, tool_payloads)
        if this is None:
            print("(a) no lossless step for this checkout: no CPU figure")
        elif tool is None:
            print(f"(a) this checkout's ingester: {this['per_flow_us']:.2f} µs CPU per flow sample published "
                  f"(at {this['rate']:.0f} dg/s); sflowtool not found ({args.sflowtool}): no ratio")
        else:
            per_sample = tool / tool_samples * 1e6
            print(f"(a) CPU per flow sample published, this checkout's ingester (at {this['rate']:.0f} dg/s): "
                  f"{this['per_flow_us']:.2f} µs; sflowtool -j -r on the same payloads ({args.sflowtool_datagrams} "
                  f"datagrams): {per_sample:.2f} µs per sample ({tool / tool_flows * 1e6:.2f} per flow sample); "
                  f"ratio {this['per_flow_us'] / per_sample:.2f}")
        if this and base:
            print(f"(b) highest lossless rate: this checkout {this['rate']:.0f} dg/s = {this['flow_rate']:.0f} flow "
                  f"samples/s, baseline {base['rate']:.0f} dg/s = {base['flow_rate']:.0f}; ratio "
                  f"{this['flow_rate'] / base['flow_rate']:.2f}"
                  + ("  (this checkout never lost: raise --max-rate)" if "this" in going and not args.rate else ""))
            print(f"    CPU per flow sample at its highest lossless rate: baseline {base['per_flow_us']:.2f} µs "
                  f"(ratio this/baseline {this['per_flow_us'] / base['per_flow_us']:.2f})")
            both = sorted(set(clean["this"]) & set(clean["baseline"]))
            if both:
                rate = both[-1]
                print(f"    at the highest rate both were lossless ({rate:.0f} dg/s): CPU per flow sample this "
                      f"{clean['this'][rate]:.2f} µs, baseline {clean['baseline'][rate]:.2f} µs, ratio "
                      f"{clean['this'][rate] / clean['baseline'][rate]:.2f}")
        else:
            print("(b) a lossless step is missing for one of the two: no ratio (lower --start-rate)")
        print()
        in_process = profile(payloads * 3, bootstrap)
        if tool is not None:
            per_sample = tool / tool_samples * 1e6
            print(f"(a') the same path in-process (no socket, no broker round trips, one busy loop like sflowtool's "
                  f"read of a file): {in_process:.2f} µs per flow sample; ratio to sflowtool -j "
                  f"{in_process / per_sample:.2f}")
    except BaselineError as e:
        print(f"bench ingest: {e}")
        return 2
    finally:
        if broker:
            broker.stop()
    return 0
