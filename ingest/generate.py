"""`sflowpipe generate`: synthetic sFlow from the project's own encoder, for demos and load tests.

N agents, each with interfaces; flow samples drawn from a mix of many small flows and a few
elephant flows (full-size frames, a large share of the samples: above 10 Mbit/s once scaled by
the sampling rate), plus interface counters every ``counter_interval`` seconds.

Optionally a DNS-amplification flood (``flood_target``, switched with ``flooding``): UDP from
source port 53 of many reflectors to one address, full-size frames, ``flood_share`` of the flow
samples, so a threshold on ``ipdestination,udpsourceport`` frames fires on it while the normal
mix (whose DNS flows go *to* port 53) never does. The DNS packets carry DNS messages (queries for
a few names, ANY answers in the flood) so that the DNS flow keys have something to show.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from dataclasses import dataclass

from ingest.sflow.counter_records import EthernetCounters, IfCounters
from ingest.sflow.encode import encode_datagram
from ingest.sflow.flow_records import ExtendedSwitch, SampledHeader
from ingest.sflow.model import CounterSample, Datagram, FlowSample
from sflowpipe.net import parse_hostport


def ipv4_packet(src: str, dst: str, proto: int, sport: int, dport: int, length: int, flags: int = 0x18,
                ttl: int = 64, payload: bytes = b"") -> bytes:
    """An Ethernet/IPv4/TCP-or-UDP header as a switch would sample it (first 128 bytes at most)."""
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    if proto == 6:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)
    else:
        l4 = struct.pack(">HHHH", sport, dport, max(8, length - 20), 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, length, 0, 0x4000, ttl, proto, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    pkt = eth + ip + l4 + payload[: max(0, length - 20 - len(l4))]
    return (pkt + bytes(max(0, min(128, length + 14) - len(pkt))))[:128]


DNS_NAMES = ("www.example.com", "api.example.net", "cdn.example.org", "mail.example.com", "ntp.example.net")


def dns_payload(f: Flow) -> bytes:
    """What a UDP flow to port 53 carries: a query for one of DNS_NAMES (picked by the source port, so
    the random sequence is untouched); from port 53 (the flood): an answer to an ANY query."""
    if f.proto != 17 or 53 not in (f.sport, f.dport):
        return b""
    query = f.dport == 53
    name = DNS_NAMES[f.sport % len(DNS_NAMES)] if query else "example.com"
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", (f.sport if query else f.dport) & 0xFFFF, 0x0100 if query else 0x8180, 1,
                       0 if query else 20, 0, 0) + qname + struct.pack(">HH", 1 if query else 255, 1)


@dataclass
class Flow:
    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    size: int  # frame bytes
    weight: float  # share of samples


def make_flood(rng: random.Random, target: str, reflectors: int = 50, size: int = 1400) -> list[Flow]:
    """DNS answers from many open resolvers to the victim's random ports."""
    return [Flow(f"203.0.113.{1 + i % 254}" if i < 254 else f"198.18.{i // 254}.{1 + i % 254}", target, 17, 53,
                 rng.randrange(1024, 65535), size, 1.0) for i in range(reflectors)]


def make_flows(rng: random.Random, n_mice: int = 200, n_elephants: int = 3) -> list[Flow]:
    flows = []
    for i in range(n_elephants):
        flows.append(Flow(f"10.1.{i}.10", f"192.0.2.{10 + i}", 6, 40000 + i, 443, 1500, 40.0))
    for _ in range(n_mice):
        proto = rng.choice((6, 6, 17))
        flows.append(Flow(f"10.{rng.randrange(2, 250)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                          f"198.51.100.{rng.randrange(1, 255)}", proto, rng.randrange(1024, 65535),
                          rng.choice((80, 443, 53, 123, 22, 8080)), rng.randrange(64, 1500), 1.0))
    return flows


class Generator:
    """Builds datagrams for a set of agents; one call to ``datagram()`` per datagram sent."""

    def __init__(self, agents: int = 2, interfaces: int = 8, sampling_rate: int = 1000, samples_per_datagram: int = 6,
                 counter_interval: float = 5.0, seed: int = 1, elephants: int = 3, flood_target: str | None = None,
                 flood_share: float = 0.5, flood_reflectors: int = 50, flood_size: int = 1400) -> None:
        self.rng = random.Random(seed)
        self.agents = [f"192.0.2.{200 + i}" for i in range(agents)]
        self.interfaces = interfaces
        self.sampling_rate = sampling_rate
        self.per_dg = samples_per_datagram
        self.counter_interval = counter_interval
        self.flows = make_flows(self.rng, n_elephants=elephants)
        self.weights = [f.weight for f in self.flows]
        self.seq = {a: 0 for a in self.agents}
        # sFlow v5 numbers samples and counts the sample pool per data source (per sampler/poller)
        self.flow_seq: dict[tuple[str, int], int] = {}
        self.counter_seq: dict[tuple[str, int], int] = {}
        self.pool: dict[tuple[str, int], int] = {}
        self.octets = {(a, i): 0 for a in self.agents for i in range(1, interfaces + 1)}
        self.last_counters = {a: float("-inf") for a in self.agents}
        self.start: float | None = None
        self.n = 0
        self.flood_target = flood_target
        self.flood_share = flood_share
        # its own generator: switching the flood on and off leaves the normal mix's sequence alone
        self.flood_rng = random.Random(seed + 1)
        self.flood = make_flood(self.flood_rng, flood_target, flood_reflectors, flood_size) if flood_target else []
        self.flooding = False  # set True to mix the flood in (needs flood_target)

    def datagram(self, now: float | None = None) -> bytes:
        now = time.monotonic() if now is None else now
        if self.start is None:
            self.start = now - 1000.0  # agents have been up a while
        agent = self.agents[self.n % len(self.agents)]
        self.n += 1
        samples = []
        if now - self.last_counters[agent] >= self.counter_interval:
            self.last_counters[agent] = now
            samples.extend(self._counters(agent))
        for flow in self.rng.choices(self.flows, self.weights, k=self.per_dg):
            if self.flooding and self.flood and self.flood_rng.random() < self.flood_share:
                flow = self.flood_rng.choice(self.flood)
            samples.append(self._flow_sample(agent, flow))
        self.seq[agent] += 1
        uptime = int((now - self.start) * 1000) & 0xFFFFFFFF
        return encode_datagram(Datagram(5, agent, 0, self.seq[agent], uptime, tuple(samples)))

    def _flow_sample(self, agent: str, f: Flow) -> FlowSample:
        inp = 1 + hash((f.src, agent)) % self.interfaces
        seq = self.flow_seq[(agent, inp)] = self.flow_seq.get((agent, inp), 0) + 1
        pool = self.pool[(agent, inp)] = self.pool.get((agent, inp), 0) + self.sampling_rate
        out = 1 + hash((f.dst, agent)) % self.interfaces
        self.octets[(agent, inp)] += f.size * self.sampling_rate
        header = ipv4_packet(f.src, f.dst, f.proto, f.sport, f.dport, f.size - 14, payload=dns_payload(f))
        return FlowSample(False, seq & 0xFFFFFFFF, 0, inp, self.sampling_rate,
                          pool & 0xFFFFFFFF, 0, 0, inp, 0, out, (
                              SampledHeader.of(1, f.size + 4, 4, header),
                              ExtendedSwitch(10, 0, 10, 0),
                          ))

    def _counters(self, agent: str) -> list[CounterSample]:
        out = []
        for i in range(1, self.interfaces + 1):
            octets = self.octets[(agent, i)] & 0xFFFFFFFFFFFFFFFF
            seq = self.counter_seq[(agent, i)] = self.counter_seq.get((agent, i), 0) + 1
            out.append(CounterSample(False, seq & 0xFFFFFFFF, 0, i, (
                IfCounters(i, 6, 10_000_000_000, 1, 3, octets, octets // 800, 0, 0, 0, 0, 0,
                           octets // 2, octets // 1600, 0, 0, 0, 0, 0),
                EthernetCounters(*([0] * 13)),
            )))
        return out


def run(args, settings) -> int:
    host, port = parse_hostport(args.to, 6343, "0.0.0.0", what="target")
    gen = Generator(args.agents, args.interfaces, args.sampling_rate, args.samples_per_datagram,
                    args.counter_interval, args.seed, args.elephants, getattr(args, "flood_target", None))
    flood_after = getattr(args, "flood_after", 0) or 0
    flood_duration = getattr(args, "flood_duration", 0) or 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + args.duration if args.duration else None
    sent = 0
    t0 = time.monotonic()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            while (deadline is None or time.monotonic() < deadline) and (not args.count or sent < args.count):
                if gen.flood:
                    elapsed = time.monotonic() - t0
                    gen.flooding = elapsed >= flood_after and (not flood_duration
                                                               or elapsed < flood_after + flood_duration)
                sock.sendto(gen.datagram(), (host, port))
                sent += 1
                if args.rate:
                    delay = t0 + sent / args.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except KeyboardInterrupt:
            pass
    print(f"sent {sent} datagrams to {args.to}")
    return 0
