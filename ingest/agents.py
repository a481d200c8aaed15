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
        # agent -> {(source_id_type, source_id_index): [last sample number, last drops]} of its flow
        # samples, and -> {(type, index): [last sample number]} of its counter samples: a data source
        # is in its agent's set of data sources exactly when it has an entry here
        self.flow_state: dict[str, dict[tuple[int, int], list[int]]] = {}
        self.counter_state: dict[str, dict[tuple[int, int], list[int]]] = {}

    def add(self, dg: Datagram, source: str, size: int, now: float | None = None) -> None:
        flows = [(s.source_id_type, s.source_id_index, s.sequence_number, s.drops) for s in dg.samples
                 if isinstance(s, FlowSample)]
        counters = [(s.source_id_type, s.source_id_index, s.sequence_number) for s in dg.samples
                    if isinstance(s, CounterSample)]
        self.add_samples(dg.agent_address, dg.sub_agent_id, dg.sequence_number, dg.uptime, source, size, flows,
                         counters, now)

    def add_samples(self, agent: str, sub_agent_id: int, sequence_number: int, uptime: int, source: str, size: int,
                    flows, counters, now: float | None = None) -> None:
        """One datagram: ``flows`` (source_id_type, source_id_index, sequence_number, drops) of its flow
        samples, ``counters`` (source_id_type, source_id_index, sequence_number) of its counter samples."""
        c = self.counters.get(agent)
        if c is None:
            if len(self.counters) >= self.max_agents:
                return
            c = self.counters[agent] = dict.fromkeys(AGENT_COUNTERS, 0)
            self.sources[agent] = set()
            self.data_sources[agent] = (set(), set())
            self.flow_state[agent] = {}
            self.counter_state[agent] = {}
            self.first_seen[agent] = now or time.time()
        self.last_seen[agent] = now or time.time()
        self.uptime[agent] = uptime
        self.sources[agent].add(source)
        c["sFlowBytesReceived"] += size
        self._count(c, "sFlowDatagrams", _sequence(self.last_datagram, (agent, sub_agent_id), sequence_number),
                    received="sFlowDatagramsReceived", duplicates="sFlowDatagramsDuplicates")
        if flows:
            state = self.flow_state[agent]
            for t, i, seq, drops in flows:
                st = state.get((t, i))
                if st is None:
                    state[(t, i)] = [seq, drops]
                    self.data_sources[agent][0].add(data_source(t, i))
                    continue
                prev = st[0]
                if seq != prev + 1:  # else the next one: nothing but the number to keep
                    self._out_of_line(c, "sFlowFlow", st, prev, seq)
                else:
                    st[0] = seq
                if drops > st[1]:  # drops is a running total in each sample
                    c["sFlowFlowDrops"] += drops - st[1]
                st[1] = drops
            c["sFlowFlowSamples"] += len(flows)
        if counters:
            state = self.counter_state[agent]
            for t, i, seq in counters:
                st = state.get((t, i))
                if st is None:
                    state[(t, i)] = [seq]
                    self.data_sources[agent][1].add(data_source(t, i))
                elif seq != st[0] + 1:
                    self._out_of_line(c, "sFlowCounter", st, st[0], seq)
                else:
                    st[0] = seq
            c["sFlowCounterSamples"] += len(counters)

    @staticmethod
    def _out_of_line(c: dict[str, int], prefix: str, st: list[int], prev: int, seq: int) -> None:
        """A sample number other than the last one + 1 (``_sequence`` for a known data source)."""
        if seq == prev:
            c[prefix + "DuplicateSamples"] += 1
        elif seq < prev and prev - seq < RESTART_GAP:
            c[prefix + "OutOfOrderSamples"] += 1
        else:
            st[0] = seq
            if seq > prev and seq - prev < RESTART_GAP:
                c[prefix + "LostSamples"] += seq - prev - 1

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

