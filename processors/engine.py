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
from processors.flows import FlowTable
from processors.flowlog import FlowLog, idle_timeout
from processors.flowkeys import FlowKeysSeen
from sflowpipe.flowspec import EvalContext, compile_flow, compile_key, parse_definition
from sflowpipe.flowspec.context import Budget, BudgetExceeded
from processors.discards import discard_columns
from sflowpipe.topology import LearnedTopology, Topology, parse_topology
from processors.thresholds import Event, Thresholds, EventIds
from sflowpipe.names import data_sources
from sflowpipe.settings import FlowDefinition, ThresholdDefinition

log = logging.getLogger(__name__)

# A batch received longer ago than this is a replay (backlog after a restart, lag): it is accounted
# at its receive time (processors/app.py batch_time). Below it, the processor's clock is used, so
# clock skew between the ingest and processor hosts up to this much changes nothing.
REPLAY_LAG_S = 2.0


_EDGE_KEYS = (compile_key("direction"), compile_key("link:inputifindex"))
_AGENT_DS = "0"  # aggMode agent: sFlow's ifIndex 0, "all ports of the device as one data source"
BUDGET_EVENT = "budget"  # thresholdID of the event saying a flow definition was disabled (metric: the flow)
DEFAULT_BUDGET_S = 1.0  # settings.limits.definition_budget_s: 2 ms per sample of a default (500-sample) batch


class _Flow:
    __slots__ = ("name", "definition", "compiled", "table", "log", "dropped", "agg_mode", "disabled", "superseded")

    def __init__(self, name: str, definition: FlowDefinition) -> None:
        self.name = name
        self.definition = definition
        self.disabled: str | None = None  # why it is no longer evaluated (it ran past its budget)
        self.superseded = False  # deleted or redefined on the config thread; the change is queued
        fd = parse_definition(name, definition.model_dump(by_alias=True))
        self.compiled = compile_flow(fd)
        self.dropped = fd.dropped
        self.agg_mode = fd.agg_mode
        self.table = FlowTable(fd.t, fd.n)
        self.log = (FlowLog(name, fd.fs, idle_timeout(fd.t), definition.active_timeout, definition.flow_start)
                    if definition.log else None)  # sFlow-RT log: true (flow-logs topic)


class Engine:
    """Owns the live analytics state of this worker's agents."""

    def __init__(self, enricher, clock=time.time, blocklists=None, scans=None,
                 budget_s: float = DEFAULT_BUDGET_S, lag_grace_s: float | None = None) -> None:
        self.enricher = enricher
        # While the worker is catching up (batches still arriving, the newest more than REPLAY_LAG_S
        # old: counted at their receive time), flow values are read at the newest batch's time, at
        # most ``lag_grace_s`` behind the clock: it reports the rates it has read, not those rates
        # decayed by its lag. Live, or silent, they are read at the clock (a read just after each
        # batch would see the top of the smoothing's sawtooth: ~18 % high). None: always the clock.
        self.lag_grace_s = lag_grace_s
        self.data_time = 0.0  # the newest accounted batch's time
        self.data_seen_at = 0.0  # when (by the clock) a batch was last accounted
        # agents restored from a checkpoint whose first flow batch since has not come yet: their
        # backlog is on its way (a report before it reads the restored rates at their own time)
        self.awaiting_backlog: set[str] = set()
        self.budget_s = budget_s  # CPU seconds per flow definition per batch (settings.limits)
        self.budget_exceeded = 0  # definitions disabled for running past it, since start
        self._running: tuple[_Flow, Budget] | None = None  # the flow being evaluated and its budget
        self._ids = EventIds()
        self.blocklists = blocklists  # processors.blocklist.Blocklists or None
        self.scans = scans  # processors.scans.ScanDetector or None
        # raised per batch (blocklists, scans): published with the batch or by report()
        self.pending_events: list[Event] = []
        self.clock = clock
        self.flows: dict[str, _Flow] = {}
        self.thresholds = Thresholds()
        self.counters = CounterMetrics()
        self.pending_metrics: dict[str, dict[str, dict[str, float]]] = {}  # agent -> data source -> name -> value
        self.samples = 0
        self.pending_flow_logs: list[dict] = []  # of redefined / deleted log: true flows
        self.topology: Topology | None = None  # sFlow-RT's /topology/json (link: keys, aggMode edge)
        self.keys_seen = FlowKeysSeen(clock)  # which flow keys had values (/flowkeys/json)
        # cold flow-batch columns some flow reads (payload keys, requests): the app then decodes whole batches
        self.cold_columns: frozenset[str] = frozenset()

    # ---------------------------------------------------------------- definitions (live)

    def apply(self, kind: str, name: str, definition: Any) -> None:
        """A definition changed (None: deleted). Raises ValueError naming what is wrong."""
        if kind == "flow":
            if definition is None:
                self._end_flow_log(self.flows.pop(name, None))
                self._update_cold_columns()
                return
            old = self.flows.get(name)
            if old is not None and old.definition == definition and not (old.disabled or old.superseded):
                return
            self._end_flow_log(old)
            self.flows[name] = _Flow(name, definition)
            self._update_cold_columns()
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
        elif kind == "topology":
            self.topology = (definition if isinstance(definition, Topology) or definition is None
                             else parse_topology(definition))
        elif kind != "forwarding":  # forwarding targets are the forward sink's
            raise ValueError(f"unknown definition kind {kind!r}")

    def interrupt(self, kind: str, name: str, definition: Any) -> None:
        """A definition changed (called from the config watcher's thread, before the change is queued
        for ``apply``): a flow being deleted or redefined is not evaluated any more, even on the batch
        under way, so a DELETE takes effect at once however slow that flow is."""
        f = self.flows.get(name) if kind == "flow" else None
        if f is None or (definition == f.definition and not f.disabled):
            return
        f.superseded = True
        running = self._running
        if running is not None and running[0] is f:
            running[1].cancelled = True

    def _disable(self, f: _Flow, agent: str, spent: float, now: float) -> None:
        """``f`` ran past its budget: no longer evaluated (until redefined), with an event and a count."""
        f.disabled = f"evaluation took {spent:.3f} s of CPU on one batch (budget {self.budget_s} s)"
        self.budget_exceeded += 1
        log.error("flow %s disabled: %s; redefine or delete it (keys=%s filter=%s)", f.name, f.disabled,
                  f.definition.keys, f.definition.filter)
        self.pending_events.append(Event(self._ids.next(now), BUDGET_EVENT, agent, "", f.name, spent,
                                         self.budget_s, None, int(now * 1000)))

    def evaluation_status(self, worker: str, now: float | None = None) -> dict:
        """The status-topic message about bounded evaluation: disabled flows and how many ran over."""
        now = self.clock() if now is None else now
        return {"kind": "evaluation", "worker": worker, "time": int(now * 1000),
                "budget_s": self.budget_s, "budget_exceeded": self.budget_exceeded,
                "disabled": {f.name: f.disabled for f in self.flows.values() if f.disabled}}

    def _update_cold_columns(self) -> None:
        self.cold_columns = frozenset().union(*(f.compiled.needs for f in self.flows.values() if not f.dropped))

    # ---------------------------------------------------------------- input

    def on_flow_batch(self, batch: dict, now: float | None = None) -> dict:
        """Account a decoded flow-sample batch; returns its enrichment columns."""
        now = self.clock() if now is None else now
        if now > self.data_time:
            self.data_time = now
        self.data_seen_at = self.clock()
        agent = batch["agent_address"]
        self.awaiting_backlog.discard(agent)
        ds = data_sources(batch["source_id_type"], batch["source_id_index"])
        enrich = self.enricher
        ctx = EvalContext(batch, enrich, self._topology())  # keys shared by several flows are computed once
        self._evaluate(now, agent, ds, batch, ctx, dropped=False)
        self.keys_seen.observe(ctx, now)
        self.samples += len(ds)
        if self.blocklists is not None:
            self.pending_events += self.blocklists.match_batch(batch, now)
        if self.scans is not None:
            self.pending_events += self.scans.match_batch(batch, now)
        return enrich.enrich_batch(batch)

    def _evaluate(self, now: float, agent: str, ds: list, batch: dict, ctx: EvalContext, dropped: bool) -> None:
        edge_ok = None
        for f in list(self.flows.values()):  # interrupt() may run meanwhile
            if f.dropped is not dropped or f.disabled or f.superseded:
                continue
            evaluated = self._bounded(f, now, agent, batch, ctx)
            if evaluated is None:
                continue
            fds = ds
            if f.agg_mode == "edge" and evaluated:
                if edge_ok is None:  # ingress samples on ports that are no topology link's end
                    edge_ok = [d == "ingress" and lk is None for d, lk in zip(*(k.col(ctx) for k in _EDGE_KEYS))]
                evaluated = [e for e in evaluated if edge_ok[e[0]]]
            elif f.agg_mode == "agent":
                fds = [_AGENT_DS] * len(ds)
            f.table.add_batch(now, agent, fds, evaluated)
            if f.log is not None and evaluated:
                self._log_batch(f, now, agent, fds, batch, ctx, evaluated)

    def take_events(self) -> list[Event]:
        """The events raised per batch so far (blocklists, scans), to publish now."""
        out, self.pending_events = self.pending_events, []
        return out

    def _bounded(self, f: _Flow, now: float, agent: str, batch: dict, ctx: EvalContext) -> list | None:
        """``f`` evaluated on the batch within its budget; None when it was cancelled or ran over.

        A flow is disabled when it runs over twice on the same batch: one overrun can be the
        machine's (a virtual machine's CPU steal is charged to the thread that was running, and the
        first flow to read a key column computes it for all of them); the second try reads the
        columns the first one cached. A flow that is slow by its definition runs over both times."""
        spent = 0.0
        for attempt in (1, 2):
            budget = ctx.budget = Budget(self.budget_s)
            self._running = (f, budget)
            try:
                if f.superseded:  # interrupt() came between the caller's check and _running being set
                    return None
                evaluated = f.compiled.evaluate(batch, ctx.enrich, ctx)
                if budget.spent() > budget.seconds:  # slow where no loop checks: over all the same
                    raise BudgetExceeded()
                return None if f.superseded else evaluated
            except BudgetExceeded:
                if budget.cancelled or f.superseded:
                    return None
                spent = budget.spent()
            finally:
                self._running = None
                ctx.budget = None
        self._disable(f, agent, spent, now)
        return None

    def on_discard_batch(self, batch: dict, now: float | None = None) -> None:
        """Account a decoded discard-sample batch for the flows with ``dropped: true``."""
        if not any(f.dropped for f in self.flows.values()):
            return
        now = self.clock() if now is None else now
        cols = discard_columns(batch)
        ds = data_sources(cols["source_id_type"], cols["source_id_index"])
        ctx = EvalContext(cols, self.enricher, self._topology())
        self._evaluate(now, cols["agent_address"], ds, cols, ctx, dropped=True)
        self.keys_seen.observe(ctx, now, dropped=True)

    def _topology(self):
        """What link: keys look up for one batch: the topology, with ends placed by reported names."""
        t = self.topology
        if t is None or not t.named_ends:
            return t
        return LearnedTopology(t, self.counters.text)

    @property
    def wants_discards(self) -> bool:
        return any(f.dropped for f in self.flows.values())

    def on_counter_batch(self, batch: dict) -> None:
        agent = batch["agent_address"]
        latest = self.pending_metrics.get(agent)
        if latest is None:
            latest = self.pending_metrics[agent] = {}
        self.counters.update_latest(batch, latest)

    # ---------------------------------------------------------------- output

    def report(self, now: float | None = None) -> tuple[list[dict], list[dict], list[Event]]:
        """Active flows and metrics to publish, and the events thresholds raise, at ``now``."""
        now = self.clock() if now is None else now
        at = now
        if (self.lag_grace_s is not None and now - self.data_time > REPLAY_LAG_S
                and (now - self.data_seen_at < REPLAY_LAG_S or self.awaiting_backlog)):
            at = max(self.data_time, now - self.lag_grace_s)  # catching up
        ts = int(now * 1000)
        active: list[dict] = []
        events: list[Event] = []
        events += self.pending_events
        self.pending_events = []
        for f in self.flows.values():
            table = f.table
            table.prune(at, 1e-3)
            watching = self.thresholds.watching(f.name)
            for agent in table.agents():
                entries = []
                for ds in table.data_sources(agent):
                    top = table.top(at, agent, ds)
                    entries += [{"dataSource": ds, "key": k, "value": v} for k, v in top]
                    if watching:
                        events += self.thresholds.check(f.name, agent, ds, table.values(at, agent, ds), now)
                if entries:
                    active.append({"flow": f.name, "agent": agent, "timestamp": ts, "value": f.definition.value,
                                   "flows": entries})
        metrics: list[dict] = []
        for agent, by_ds in self.pending_metrics.items():
            if not any(by_ds.values()):
                continue
            metrics.append({"agent": agent, "timestamp": ts, "metrics": [
                {"dataSource": ds, "name": name, "value": float(v)} for ds, values in by_ds.items()
                for name, v in values.items()]})
            for ds, values in by_ds.items():
                for name, v in values.items():
                    events += self.thresholds.check(name, agent, ds, [(None, float(v))], now)
        self.pending_metrics = {}
        return active, metrics, events

    def _log_batch(self, f: _Flow, now: float, agent: str, ds: list, batch: dict, ctx: EvalContext,
                   evaluated: list) -> None:
        """Feed a log: true flow's FlowLog: key values (the key columns evaluate() computed, cached in
        ctx) and bytes / frames scaled by the sampling rate, for the samples that matched."""
        cols = [k.col(ctx) for k in f.compiled.keys]
        rates = batch.get("sampling_rate") or ()
        lengths = batch.get("frame_length") or ()
        idx = [e[0] for e in evaluated]
        frames = [(rates[i] or 0) if i < len(rates) else 0 for i in idx]
        size = [(lengths[i] or 0) if i < len(lengths) else 0 for i in idx]
        f.log.add(now, agent, [ds[i] for i in idx], [tuple(c[i] for c in cols) for i in idx],
                  [n * r for n, r in zip(size, frames)], frames)

    def _end_flow_log(self, f: _Flow | None) -> None:
        """A log: true flow was redefined or deleted: its open flows end now."""
        if f is not None and f.log is not None:
            self.pending_flow_logs += f.log.flush(self.clock())

    def flow_logs(self, now: float | None = None) -> list[dict]:
        """Flow-log records to publish at ``now`` (flows with ``log: true``, processors/flowlog.py)."""
        now = self.clock() if now is None else now
        out, self.pending_flow_logs = self.pending_flow_logs, []
        for f in self.flows.values():
            if f.log is not None:
                out += f.log.due(now)
        return out

    # ---------------------------------------------------------------- checkpoints

    def snapshot(self, agent: str) -> dict:
        """This agent's state, JSON-serialisable, for the checkpoint table."""
        return {"flows": {name: f.table.snapshot(agent) for name, f in self.flows.items()},
                "flow_logs": {name: f.log.snapshot(agent) for name, f in self.flows.items() if f.log is not None},
                "counters": self.counters.snapshot(agent),
                "thresholds": self.thresholds.snapshot(agent)}

    def restore(self, agent: str, state: dict, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for name, data in (state.get("flows") or {}).items():
            f = self.flows.get(name)
            if f is not None and data:
                f.table.restore(agent, data, now)
                saved = [float(row[2]) for rows in (data.get("data_sources") or {}).values() for row in rows]
                if saved:  # the restored rates are data up to then; the backlog since follows
                    self.data_time = max(self.data_time, min(max(saved), now))
                    self.awaiting_backlog.add(agent)
        for name, data in (state.get("flow_logs") or {}).items():
            f = self.flows.get(name)
            if f is not None and f.log is not None and data:
                f.log.restore(agent, data)
        if state.get("counters"):
            self.counters.restore(agent, state["counters"])
        if state.get("thresholds"):  # what already raised an event stays quiet (no repeat after a restart)
            self.thresholds.restore(agent, state["thresholds"])

    def forget(self, agent: str) -> None:
        """Another worker owns this agent now."""
        for f in self.flows.values():
            f.table.forget(agent)
            if f.log is not None:
                f.log.forget(agent)
        self.counters.forget(agent)
        self.thresholds.forget(agent)
        self.pending_metrics.pop(agent, None)
        self.awaiting_backlog.discard(agent)

    def agents(self) -> set[str]:
        out: set[str] = set()
        for f in self.flows.values():
            out.update(f.table.agents())
        return out
