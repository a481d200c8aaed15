"""The controls' state machine, free of Kafka and of the actions so it can be tested with a fake clock.

A control is identified by (policy, flow key). ``ControlState.on_event`` decides what a threshold
event means for a policy: apply (new control), refuse (allow-listed address, or the policy's
``max_controls`` reached) or nothing (already active: a byFlow threshold fires once per agent and
data source, so one flood raises several events for the same key). ``observe`` feeds it the
flows' current values; ``due`` names the controls to release: held ``min_hold_s`` and below
their threshold for ``release_below_s``. The caller performs the action and then records the
outcome (``applied`` / ``released``), so a failed action changes nothing here, except that a
failed apply is remembered (``apply_failed``) and handed back by ``apply_retries`` every
``apply_retry_s`` for as long as the flow stays over its threshold: an attack that goes on is
not left unblocked because the controller was down when its one event came.

Durable form: ``record()`` is the JSON value written to the compacted controls topic under
``key_of(policy, flow key)``; ``restore()`` takes the topic's latest values back after a restart.
Times are wall-clock seconds (``applied_at`` survives a restart); the below-threshold timer is
not persisted: after a restart it starts again, which only delays a release.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sflowpipe.names import split_flow_key
from sflowpipe.settings import ControlPolicy

APPLIED = "applied"
RELEASED = "released"


def key_of(policy: str, flow_key: str) -> str:
    """The controls topic key of a control."""
    return f"{policy}|{flow_key}"


@dataclass
class Control:
    policy: str
    key: str
    fields: dict[str, Any]  # template fields: key, k0.., agent, dataSource, value, threshold, policy
    applied_at: float
    state: str = APPLIED
    below_since: float | None = None  # not persisted
    retry_at: float = 0.0  # a failed release is tried again from then on (not persisted)

    @property
    def threshold(self) -> float:
        return float(self.fields.get("threshold", 0.0))

    @property
    def metric(self) -> str:
        return str(self.fields.get("metric", ""))

    def record(self) -> dict[str, Any]:
        return {"policy": self.policy, "key": self.key, "fields": self.fields, "applied_at": self.applied_at,
                "state": self.state}


@dataclass(frozen=True)
class Decision:
    """What an event means: ``apply`` (with the new, not yet applied control), ``refuse`` (with
    the reason) or ``active`` (already controlled: nothing to do)."""

    verdict: str
    control: Control | None = None
    reason: str = ""


def event_fields(policy: str, event: dict[str, Any], fs: str = ",") -> dict[str, Any]:
    """The template fields of a control triggered by a threshold event."""
    key = event.get("flowKey") or ""
    out: dict[str, Any] = {"policy": policy, "key": key, "agent": event.get("agent", ""),
                           "dataSource": event.get("dataSource", ""), "metric": event.get("metric", ""),
                           "value": event.get("value", 0.0), "threshold": event.get("threshold", 0.0)}
    for i, part in enumerate(split_flow_key(key, fs)):
        out[f"k{i}"] = part
    return out


@dataclass
class PolicyState:
    name: str
    policy: ControlPolicy
    allow: list = field(default_factory=list)

    def allowed(self, key: str) -> bool:
        """Whether the key's address part is in an allow-listed prefix (a non-address: never)."""
        parts = split_flow_key(key)
        if self.policy.address_key >= len(parts):
            return False
        try:
            addr = ipaddress.ip_address(parts[self.policy.address_key].strip())
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self.allow)


class ControlState:
    """Every control of every policy; the service's only mutable state."""

    def __init__(self, policies: dict[str, ControlPolicy], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.policies = {name: PolicyState(name, p, [ipaddress.ip_network(c, strict=False) for c in p.allow])
                         for name, p in policies.items()}
        self.active: dict[tuple[str, str], Control] = {}
        # failed applies to try again: (policy, key) -> (the triggering event, when to try)
        self.pending: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self.started = clock()

    # ------------------------------------------------------------------ events

    def policies_for(self, threshold: str) -> list[str]:
        return [name for name, p in self.policies.items() if p.policy.threshold == threshold]

    def on_event(self, policy: str, event: dict[str, Any]) -> Decision:
        ps = self.policies[policy]
        key = event.get("flowKey")
        if not key:
            return Decision("refuse", reason="event without a flow key (a byFlow threshold is needed)")
        if (policy, key) in self.active:
            return Decision("active", self.active[(policy, key)])
        if ps.allowed(key):
            self.pending.pop((policy, key), None)
            return Decision("refuse", reason="address in the allow list")
        if self.count(policy) >= ps.policy.max_controls:
            self.pending.pop((policy, key), None)  # a refusal ends the retries of a failed apply
            return Decision("refuse", reason=f"max_controls ({ps.policy.max_controls}) reached")
        return Decision("apply", Control(policy, key, event_fields(policy, event), self.clock()))

    def count(self, policy: str) -> int:
        return sum(1 for p, _ in self.active if p == policy)

    # ------------------------------------------------------------------ outcomes

    def applied(self, control: Control) -> None:
        control.state = APPLIED
        control.below_since = None
        self.active[(control.policy, control.key)] = control
        self.pending.pop((control.policy, control.key), None)

    def apply_failed(self, control: Control, event: dict[str, Any]) -> None:
        p = self.policies[control.policy].policy
        self.pending[(control.policy, control.key)] = (event, self.clock() + p.apply_retry_s)

    def apply_retries(self, value_of: Callable[[str, str], float]) -> list[tuple[str, dict[str, Any]]]:
        """(policy, event) of the failed applies due again whose flow is still over its threshold;
        those whose flow is gone are forgotten (nothing left to block)."""
        now = self.clock()
        out = []
        for (policy, key), (event, at) in list(self.pending.items()):
            if now < at:
                continue
            if policy not in self.policies or value_of(str(event.get("metric", "")), key) <= float(
                    event.get("threshold", 0.0)):
                del self.pending[(policy, key)]
                continue
            self.pending[(policy, key)] = (event, now + self.policies[policy].policy.apply_retry_s)
            out.append((policy, event))
        return out

    def released(self, control: Control) -> None:
        control.state = RELEASED
        self.active.pop((control.policy, control.key), None)

    def release_failed(self, control: Control, retry_in: float) -> None:
        control.retry_at = self.clock() + retry_in

    # ------------------------------------------------------------------ measurements

    def observe(self, value_of: Callable[[str, str], float]) -> None:
        """``value_of(flow name, flow key)``: the flow's current value (0 when absent)."""
        now = self.clock()
        for c in self.active.values():
            if value_of(c.metric, c.key) > c.threshold:
                c.below_since = None
            elif c.below_since is None:
                c.below_since = now

    def due(self) -> list[Control]:
        """Controls to release now: held long enough, below their threshold long enough."""
        now = self.clock()
        out = []
        for (policy, _), c in self.active.items():
            p = self.policies[policy].policy if policy in self.policies else None
            hold = p.min_hold_s if p else 0.0
            below = p.release_below_s if p else 0.0
            if (c.below_since is not None and now - c.applied_at >= hold and now - c.below_since >= below
                    and now >= c.retry_at):
                out.append(c)
        return out

    # ------------------------------------------------------------------ durability

    def restore(self, records: dict[str, dict[str, Any] | None]) -> list[Control]:
        """The compacted topic's latest value per key: the controls still applied come back
        (one of a policy no longer configured is released, without an action, as soon as its
        flow is below its threshold: nothing stays forever)."""
        out = []
        for value in records.values():
            if not value or value.get("state") != APPLIED:
                continue
            c = Control(value["policy"], value["key"], dict(value.get("fields") or {}), float(value["applied_at"]))
            self.active[(c.policy, c.key)] = c
            out.append(c)
        return out
