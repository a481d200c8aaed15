"""`sflowpipe ingest`: stateless UDP ingesters publishing decoded sFlow to Kafka.

``Ingester`` is one worker: a socket, the ingest pipeline and the publisher, started in that
order and stopped in reverse. ``run`` starts one in-process, or N worker processes (each with
its own SO_REUSEPORT socket and spill directory) whose metrics the parent serves together.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing as mp
import os
import secrets
import select
import signal
import socket
import threading
import time
from pathlib import Path

from ingest.pipeline import IngestPipeline
from ingest.publisher import Publisher
from ingest.spill import SpillQueue
from ingest.udp import UdpReceiver
from schemas.codec import Codec
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.net import parse_hostport
from prometheus_client import CollectorRegistry
from sflowpipe.metrics import Metrics, MetricsServer, Snapshots
from sflowpipe.settings import IngestSettings, KafkaSettings, Settings, TopicNames
from sflowpipe.signals import on_stop_signals
from sflowpipe.status import (INGEST_AGENT_FIELDS, INGEST_FIELDS, STATUS_TOPIC_CONFIG, component_status,
                              per_label)

log = logging.getLogger(__name__)


def quiet_gc() -> None:
    """Keep the cycle collector off the receive path of an ingester process. Every datagram makes and
    drops many small containers (rows, datums, batches) that never form cycles and that reference
    counting frees; with the default thresholds the collector still walked them (and the process's
    long-lived objects) every 700 allocations: ~8% of an ingester's CPU (perf). What start-up built
    is frozen out of its reach, and it runs a hundred times less often."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class Ingester:
    """Owns one UDP socket and the path from it to Kafka."""

    def __init__(self, cfg: IngestSettings, kafka: KafkaSettings, topics: TopicNames, clients: KafkaClients,
                 codec: Codec, worker: int = 0, metrics: Metrics | None = None) -> None:
        """``kafka`` names the topics (its prefix) with ``topics``."""
        self.cfg = cfg
        self.worker = worker
        self.metrics = metrics or Metrics()
        host, port = parse_hostport(cfg.listen, 6343, "0.0.0.0", what="listen address")
        self.receiver = UdpReceiver(host, port, cfg.rcvbuf_bytes)
        spill = SpillQueue(Path(cfg.spill_dir) / f"worker-{worker}", cfg.spill_max_mb << 20)
        self.publisher = Publisher(clients, spill, self.metrics, client_id=f"sflowpipe-ingest-{worker}",
                                   ensure_topics=lambda: ensure_ingest_topics(kafka, topics, clients))
        self.pipeline = IngestPipeline(cfg, kafka, topics, self.publisher, self.metrics, codec)
        self.stopping = threading.Event()
        self.status_topic = kafka.topic(topics.status)
        # host:pid:worker plus a random tag: replicas on a host network can share host and pid
        self.ident = f"{socket.gethostname()}:{os.getpid()}:{worker}:{secrets.token_hex(2)}"
        m = self.metrics
        m.describe("sflowpipe_ingest_kernel_drops", "gauge", "datagrams the kernel dropped for this socket")
        m.describe("sflowpipe_ingest_socket_rcvbuf_bytes", "gauge", "SO_RCVBUF granted by the kernel")

    def start(self) -> None:
        self.publisher.start()
        self.receiver.start()
        self.metrics.set("sflowpipe_ingest_socket_rcvbuf_bytes", self.receiver.granted_rcvbuf)

    def stop(self) -> None:
        """Stop receiving, publish what is batched, flush the producer."""
        self.receiver.stop()
        self.pipeline.drain()
        self.publisher.stop()

    def run(self) -> None:
        """Receive until stop is requested."""
        sock = self.receiver.sock
        recv = sock.recvfrom
        handle = self.pipeline.handle
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        next_service = next_drops = next_status = 0.0
        status_every = self.cfg.status_interval_s
        while not self.stopping.is_set():
            if poller.poll(5):
                for _ in range(256):  # drain the socket in bursts
                    try:
                        data, peer = recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    host = peer[0]
                    if host.startswith("::ffff:") and "." in host:
                        host = host[7:]
                    handle(data, host, peer[1], time.time_ns() // 1000)
            now = time.monotonic()
            if now >= next_service:
                self.pipeline.service(now)
                next_service = now + 0.01
            if now >= next_drops:
                self.metrics.set("sflowpipe_ingest_kernel_drops", self.receiver.kernel_drops())
                next_drops = now + 1.0
            if now >= next_status:
                self.publish_status()
                next_status = now + status_every

    def status(self) -> dict:
        """This ingester's status message (sflowpipe/status.py), for the API's status page,
        /agents/json and /analyzer/json: its registry's counters, and per agent the session
        counters of ingest/agents.py."""
        agents = per_label(self.metrics, "agent", INGEST_AGENT_FIELDS)
        for agent, counters in self.pipeline.agents.snapshot().items():
            agents.setdefault(agent, {}).update(counters)
        # ``ingester``: the API keys ingesters by it (older messages have no ``instance``)
        return component_status("ingester", "sflowpipe-ingest", self.ident, self.metrics, INGEST_FIELDS,
                                ingester=self.ident, listen=self.cfg.listen, agents=agents)

    def publish_status(self) -> None:
        try:
            self.publisher.publish(self.status_topic, self.ident.encode(), json.dumps(self.status()).encode())
        except Exception as e:  # status is best effort; never stop receiving for it
            log.debug("status not published: %s", e)


def _worker_main(settings: Settings, worker: int, snapshots, ready, clients: KafkaClients, codec: Codec) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s ingest[{worker}] %(levelname)s %(message)s")
    try:
        ing = Ingester(settings.ingest, settings.kafka, settings.topics, clients, codec, worker)
        signal.signal(signal.SIGTERM, lambda *_: ing.stopping.set())
        ing.start()
        quiet_gc()
    except Exception as e:  # the parent says it in one line (a port taken...), not a traceback per worker
        ready.put((worker, None, e.strerror if isinstance(e, OSError) and e.strerror else str(e)))
        return
    ready.put((worker, ing.receiver.port, None))

    def report():
        while not ing.stopping.wait(1.0):
            snapshots.put((worker, ing.metrics.snapshot()))

    t = threading.Thread(target=report, daemon=True)
    t.start()
    try:
        ing.run()
    finally:
        ing.stop()
        snapshots.put((worker, ing.metrics.snapshot()))


def ensure_ingest_topics(k: KafkaSettings, t: TopicNames, clients: KafkaClients) -> None:
    clients.ensure_topics([k.topic(n) for n in (t.raw, t.flow_samples, t.counter_samples, t.discard_samples,
                                                t.deadletter)], timeout=1)
    clients.ensure_topics([k.topic(t.status)], timeout=1, config=STATUS_TOPIC_CONFIG)


def run(settings: Settings, on_ready=None, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    """Run the ingester(s) until SIGTERM/SIGINT; exit code 0 after a clean shutdown. Kafka need not
    answer yet: each ingester creates the topics when it does, and spills to disk until then."""
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    stop = threading.Event()
    on_stop_signals(stop.set)

    if settings.ingest.workers == 1:
        ing = Ingester(settings.ingest, settings.kafka, settings.topics, clients, codec)
        server = MetricsServer(settings.ingest.metrics_listen, ing.metrics, default_port=9343)
        ing.start()
        server.start()
        quiet_gc()
        log.info("ingest ready: UDP %s, metrics %s", settings.ingest.listen, server.url)
        if on_ready:
            on_ready(ing.receiver.port, server.port)
        threading.Thread(target=lambda: (stop.wait(), ing.stopping.set()), daemon=True).start()
        try:
            ing.run()
        finally:
            ing.stop()
            server.stop()
        return 0

    ctx = mp.get_context("spawn")
    snapshots, ready = ctx.Queue(), ctx.Queue()
    workers = Snapshots()  # the workers' latest metrics, served with a worker label
    latest = workers.latest
    procs = [ctx.Process(target=_worker_main, args=(settings, i, snapshots, ready, clients, codec), name=f"ingest-{i}")
             for i in range(settings.ingest.workers)]
    for p in procs:
        p.start()
    ports = [ready.get(timeout=60) for _ in procs]
    failed = next((err for _, _, err in ports if err), None)
    if failed:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(10)
        raise RuntimeError(failed)
    registry = CollectorRegistry()
    registry.register(workers)
    server = MetricsServer(settings.ingest.metrics_listen, registry, default_port=9343)
    server.start()
    log.info("ingest ready: %d workers on UDP %s, metrics %s", len(procs), settings.ingest.listen, server.url)
    if on_ready:
        on_ready(ports[0][1], server.port)
    while not stop.is_set() and any(p.is_alive() for p in procs):
        _collect(snapshots, latest, 0.5)
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for p in procs:
        while p.is_alive() and time.monotonic() < deadline:
            _collect(snapshots, latest, 0.2)
            p.join(0.1)
    _collect(snapshots, latest, 0.2)
    server.stop()
    return 0 if all(p.exitcode == 0 for p in procs) else 1


def _collect(q, latest: dict, timeout: float) -> None:
    try:
        w, snap = q.get(timeout=timeout)
        latest[str(w)] = snap
        while True:
            w, snap = q.get_nowait()
            latest[str(w)] = snap
    except Exception:  # queue.Empty
        pass
