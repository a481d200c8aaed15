"""The analytics of one worker, without Faust: flows, counter metrics, thresholds.

``Engine`` owns the live state of the agents whose partitions this worker consumes: smoothed
flow values (one FlowTable per flow definition), counter metric state, threshold state. The
Faust app (app.py) feeds it decoded batches, asks it every reporting interval for the active
flows, metrics and events to publish, and checkpoints its per-agent state to a table.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from processors.counters import CounterMetrics
from processors.flows import FlowTable, data_source
from processors.flowspec import EvalContext, compile_flow, parse_definition
from processors.thresholds import Event, Thresholds
from sflowpipe.settings import FlowDefinition, ThresholdDefinition

log = logging.getLogger(__name__)


class _Flow:
    __slots__ = ("name", "definition", "compiled", "table")

    def __init__(self, name: str, definition: FlowDefinition) -> None:
        self.name = name
        self.definition = definition
        fd = parse_definition(name, definition.model_dump())
        self.compiled = compile_flow(fd)
        self.table = FlowTable(fd.t, fd.n)


class Engine:
    """Owns the live analytics state of this worker's agents."""

    def __init__(self, enricher, clock=time.time) -> None:
        self.enricher = enricher
        self.clock = clock
        self.flows: dict[str, _Flow] = {}
        self.thresholds = Thresholds()
        self.counters = CounterMetrics()
        self.pending_metrics: dict[str, dict[tuple[str, str], float]] = {}
        self.samples = 0
        self._ds_cache: dict[tuple[int, int], str] = {}

    # ---------------------------------------------------------------- definitions (live)

    def apply(self, kind: str, name: str, definition: Any) -> None:
        """A definition changed (None: deleted). Raises ValueError naming what is wrong."""
        if kind == "flow":
            if definition is None:
                self.flows.pop(name, None)
                return
            old = self.flows.get(name)
            if old is not None and old.definition == definition:
                return
            self.flows[name] = _Flow(name, definition)
            log.info("flow %s: keys=%s value=%s filter=%s", name, definition.keys, definition.value,
                     definition.filter)
        elif kind == "threshold":
            self.thresholds.set(name, definition if isinstance(definition, ThresholdDefinition) or definition is None
                                else ThresholdDefinition.model_validate(definition))
        elif kind == "group":
            if definition is None:
                self.enricher.groups.remove_groupset(name)
            else:
                self.enricher.groups.set_groupset(name, definition)
        elif kind != "forwarding":  # forwarding targets are the forward sink's
            raise ValueError(f"unknown definition kind {kind!r}")

    # ---------------------------------------------------------------- input

    def on_flow_batch(self, batch: dict, now: float | None = None) -> dict:
        """Account a decoded flow-sample batch; returns its enrichment columns."""
        now = self.clock() if now is None else now
        agent = batch["agent_address"]
        cache = self._ds_cache
        ds = [cache.get(k) or cache.setdefault(k, data_source(*k))
              for k in zip(batch["source_id_type"], batch["source_id_index"])]
        enrich = self.enricher
        ctx = EvalContext(batch, enrich)  # keys shared by several flows are computed once
        for f in self.flows.values():
            f.table.add_batch(now, agent, ds, f.compiled.evaluate(batch, enrich, ctx))
        self.samples += len(ds)
        return enrich.enrich_batch(batch)

    def on_counter_batch(self, batch: dict) -> list:
        metrics = self.counters.update(batch)
        for m in metrics:
            self.pending_metrics.setdefault(m.agent, {})[(m.data_source, m.name)] = m.value
        return metrics

    # ---------------------------------------------------------------- output

    def report(self, now: float | None = None) -> tuple[list[dict], list[dict], list[Event]]:
        """Active flows and metrics to publish, and the events thresholds raise, at ``now``."""
        now = self.clock() if now is None else now
        ts = int(now * 1000)
        active: list[dict] = []
        events: list[Event] = []
        for f in self.flows.values():
            table = f.table
            table.prune(now, 1e-3)
            watching = self.thresholds.watching(f.name)
            for agent in table.agents():
                entries = []
                for ds in table.data_sources(agent):
                    top = table.top(now, agent, ds)
                    entries += [{"dataSource": ds, "key": k, "value": v} for k, v in top]
                    if watching:
                        events += self.thresholds.check(f.name, agent, ds, table.values(now, agent, ds), now)
                if entries:
                    active.append({"flow": f.name, "agent": agent, "timestamp": ts, "value": f.definition.value,
                                   "flows": entries})
        metrics: list[dict] = []
        for agent, values in self.pending_metrics.items():
            metrics.append({"agent": agent, "timestamp": ts, "metrics": [
                {"dataSource": ds, "name": name, "value": float(v)} for (ds, name), v in values.items()]})
            for (ds, name), v in values.items():
                events += self.thresholds.check(name, agent, ds, [(None, float(v))], now)
        self.pending_metrics = {}
        return active, metrics, events

    # ---------------------------------------------------------------- checkpoints

    def snapshot(self, agent: str) -> dict:
        """This agent's state, JSON-serialisable, for the checkpoint table."""
        return {"flows": {name: f.table.snapshot(agent) for name, f in self.flows.items()},
                "counters": self.counters.snapshot(agent)}

    def restore(self, agent: str, state: dict, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for name, data in (state.get("flows") or {}).items():
            f = self.flows.get(name)
            if f is not None and data:
                f.table.restore(agent, data, now)
        if state.get("counters"):
            self.counters.restore(agent, state["counters"])

    def forget(self, agent: str) -> None:
        """Another worker owns this agent now."""
        for f in self.flows.values():
            f.table.forget(agent)
        self.counters.forget(agent)
        self.pending_metrics.pop(agent, None)

    def agents(self) -> set[str]:
        out: set[str] = set()
        for f in self.flows.values():
            out.update(f.table.agents())
        return out
