"""sFlow-RT's per-agent session counters (``/agents/json``), counted where datagrams arrive.

sFlow-RT reports for each agent the datagrams and samples it received and what the sequence
numbers say about the rest: duplicates (a number seen again), out of order (a number lower than
the last) and lost (a gap). Datagram numbers are per (agent, sub-agent); sample numbers per
(agent, data source, kind), as sFlow v5 defines them. An ingester publishes these in its status
message (ingest/service.py); the API sums them over ingesters.
"""

from __future__ import annotations

import time
from typing import Any

from ingest.sflow.model import CounterSample, Datagram, FlowSample
from sflowpipe.names import AGENT_COUNTERS, data_source

# sequence numbers further apart than this are an agent restart, not loss
RESTART_GAP = 1 << 20


def _sequence(last: dict, key: Any, seq: int) -> str:
    """Classify ``seq`` against the last number of ``key``: new, next, lost:N, duplicate, out_of_order."""
    prev = last.get(key)
    if prev is None:
        last[key] = seq
        return "new"
    if seq == prev:
        return "duplicate"
    if seq < prev and prev - seq < RESTART_GAP:
        return "out_of_order"
    last[key] = seq
    if seq > prev + 1 and seq - prev < RESTART_GAP:
        return f"lost:{seq - prev - 1}"
    return "next"


class AgentCounters:
    """Owns the counters and sequence state of up to ``max_agents`` agents (the rest are not counted:
    spoofed sources must not grow this without bound)."""

    def __init__(self, max_agents: int = 10_000) -> None:
        self.max_agents = max_agents
        self.counters: dict[str, dict[str, int]] = {}
        self.sources: dict[str, set[str]] = {}  # agent -> addresses datagrams came from
        self.data_sources: dict[str, tuple[set, set]] = {}  # agent -> (flow, counter) data sources
        self.first_seen: dict[str, float] = {}
        self.last_seen: dict[str, float] = {}
        self.uptime: dict[str, int] = {}
        self.last_datagram: dict[tuple[str, int], int] = {}
        self.last_sample: dict[tuple, int] = {}
        self.last_drops: dict[tuple, int] = {}

    def add(self, dg: Datagram, source: str, size: int, now: float | None = None) -> None:
        agent = dg.agent_address
        c = self.counters.get(agent)
        if c is None:
            if len(self.counters) >= self.max_agents:
                return
            c = self.counters[agent] = dict.fromkeys(AGENT_COUNTERS, 0)
            self.sources[agent] = set()
            self.data_sources[agent] = (set(), set())
            self.first_seen[agent] = now or time.time()
        self.last_seen[agent] = now or time.time()
        self.uptime[agent] = dg.uptime
        self.sources[agent].add(source)
        c["sFlowBytesReceived"] += size
        self._count(c, "sFlowDatagrams", _sequence(self.last_datagram, (agent, dg.sub_agent_id), dg.sequence_number),
                    received="sFlowDatagramsReceived", duplicates="sFlowDatagramsDuplicates")
        flow_ds, counter_ds = self.data_sources[agent]
        for s in dg.samples:
            if isinstance(s, FlowSample):
                ds = data_source(s.source_id_type, s.source_id_index)
                flow_ds.add(ds)
                self._count(c, "sFlowFlow", _sequence(self.last_sample, (agent, ds, "flow"), s.sequence_number))
                prev = self.last_drops.get((agent, ds))
                if prev is not None and s.drops > prev:  # drops is a running total in each sample
                    c["sFlowFlowDrops"] += s.drops - prev
                self.last_drops[(agent, ds)] = s.drops
            elif isinstance(s, CounterSample):
                ds = data_source(s.source_id_type, s.source_id_index)
                counter_ds.add(ds)
                self._count(c, "sFlowCounter", _sequence(self.last_sample, (agent, ds, "counter"), s.sequence_number))

    @staticmethod
    def _count(c: dict[str, int], prefix: str, outcome: str, received: str | None = None,
               duplicates: str | None = None) -> None:
        c[received or prefix + "Samples"] += 1
        if outcome == "duplicate":
            c[duplicates or prefix + "DuplicateSamples"] += 1
        elif outcome == "out_of_order":
            c[prefix + ("OutOfOrder" if received else "OutOfOrderSamples")] += 1
        elif outcome.startswith("lost:"):
            c[prefix + ("Lost" if received else "LostSamples")] += int(outcome[5:])

    def snapshot(self, now: float | None = None) -> dict[str, dict]:
        """{agent: sFlow-RT's /agents/json fields}; times as sFlow-RT gives them (ms ago, agent uptime ms)."""
        now = now or time.time()
        out = {}
        for agent, c in self.counters.items():
            flow_ds, counter_ds = self.data_sources[agent]
            out[agent] = {**c, "sFlowFlowDatasources": len(flow_ds), "sFlowCounterDatasources": len(counter_ds),
                          "sFlowDatagramSource": sorted(self.sources[agent]),
                          "firstSeen": int((now - self.first_seen[agent]) * 1000),
                          "lastSeen": int((now - self.last_seen[agent]) * 1000), "uptime": self.uptime[agent]}
        return out

