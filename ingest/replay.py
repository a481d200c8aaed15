"""`sflowpipe replay FILE`: send a capture's sFlow datagrams over UDP, or publish them to Kafka
through the ingester's own pipeline (``--to kafka``)."""

from __future__ import annotations

import socket
import time
from typing import Iterable

from ingest.pcap import UdpDatagram, read_udp_payloads
from sflowpipe.net import parse_hostport


class Pacer:
    """Sleeps so that events follow their capture timestamps (scaled) or a fixed rate."""

    def __init__(self, speed: float, rate: float = 0) -> None:
        self.speed, self.rate = speed, rate
        self.t0 = time.monotonic()
        self.first_ts: float | None = None
        self.n = 0

    def wait(self, ts: float) -> None:
        self.n += 1
        if self.rate > 0:
            due = self.t0 + self.n / self.rate
        elif self.speed > 0:
            if self.first_ts is None:
                self.first_ts = ts
            due = self.t0 + (ts - self.first_ts) / self.speed
        else:
            return
        delay = due - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay)


def send_udp(datagrams: Iterable[UdpDatagram], target: str, speed: float = 1.0, rate: float = 0,
             loops: int = 1) -> int:
    """Send each payload to HOST:PORT; returns how many were sent."""
    host, port = parse_hostport(target, 6343, "0.0.0.0", what="target")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    items = list(datagrams)
    sent = 0
    # a loop lasts as long as the capture (and at least a second): later loops keep its pace
    stamps = [d.ts_sec + d.ts_usec / 1e6 for d in items] or [0.0]
    duration = max(stamps) - min(stamps)
    span = max(1.0, duration + duration / max(1, len(items) - 1))
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        pacer = Pacer(speed, rate)
        for loop in range(loops):
            for d in items:
                pacer.wait(d.ts_sec + d.ts_usec / 1e6 + loop * span)
                while True:
                    try:
                        sock.sendto(d.payload, (host, port))
                        break
                    except BlockingIOError:
                        time.sleep(0.0005)
                sent += 1
    return sent


def publish_kafka(datagrams: Iterable[UdpDatagram], settings, speed: float = 0, keep_timestamps: bool = False,
                  clients=None, codec=None) -> int:
    """Publish through IngestPipeline, as if each datagram had arrived from its capture source."""
    from sflowpipe.metrics import Metrics
    from ingest.pipeline import IngestPipeline
    from ingest.publisher import Publisher
    from ingest.spill import SpillQueue
    from pathlib import Path
    from sflowpipe.kafka import wiring

    if clients is None or codec is None:
        clients, codec = wiring(settings)
    metrics = Metrics()
    spill = SpillQueue(Path(settings.ingest.spill_dir) / "replay", settings.ingest.spill_max_mb << 20)
    publisher = Publisher(clients, spill, metrics, client_id="sflowpipe-replay")
    pipeline = IngestPipeline(settings.ingest, settings.kafka, settings.topics, publisher, metrics, codec)
    clients.ensure_topics(pipeline.topics())
    publisher.start()
    pacer = Pacer(speed)
    n = 0
    # paced, batches are flushed when they are ingest.batch_max_ms old, as the live ingester's are
    # (not only every 256 datagrams: at 20 datagrams/s that made one 500-sample batch every 4 s)
    every = settings.ingest.batch_max_ms / 1000 if speed > 0 else float("inf")
    serviced = time.monotonic()
    try:
        for d in datagrams:
            ts = d.ts_sec + d.ts_usec / 1e6
            pacer.wait(ts)
            t_us = int(ts * 1e6) if keep_timestamps else time.time_ns() // 1000
            pipeline.handle(d.payload, d.src, d.sport, t_us)
            n += 1
            if n % 256 == 0 or time.monotonic() - serviced >= every:
                pipeline.service()
                serviced = time.monotonic()
        pipeline.drain()
        pipeline.service()
    finally:
        publisher.stop(timeout=60)
    return n


def run(args, settings, clients=None, codec=None) -> int:
    datagrams = read_udp_payloads(args.file)
    if args.to == "kafka":
        n = publish_kafka(datagrams, settings, speed=args.speed, keep_timestamps=args.keep_timestamps,
                          clients=clients, codec=codec)
    else:
        n = send_udp(datagrams, args.to, speed=args.speed, rate=args.rate, loops=args.loop)
    print(f"replayed {n} datagrams from {args.file} to {args.to}")
    return 0
