"""The controls' state machine with a fake clock: apply once, refusals, release timing, restart."""

from __future__ import annotations

import json

from sflowpipe.settings import ControlPolicy
from sinks.control.state import APPLIED, ControlState, key_of


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def policy(**kw) -> ControlPolicy:
    return ControlPolicy(threshold="udp_reflection", min_hold_s=5, release_below_s=2, **kw)


def event(key: str = "192.0.2.10,53", value: float = 50_000.0, agent: str = "192.0.2.200") -> dict:
    return {"eventID": 1, "thresholdID": "udp_reflection", "agent": agent, "dataSource": "3",
            "metric": "reflection", "value": value, "threshold": 10_000.0, "flowKey": key, "timestamp": 0}


def apply(state: ControlState, name: str, ev: dict):
    d = state.on_event(name, ev)
    if d.verdict == "apply":
        state.applied(d.control)
    return d


def test_applies_once_then_active():
    clock = Clock()
    s = ControlState({"dns": policy()}, clock)
    assert s.policies_for("udp_reflection") == ["dns"]
    assert s.policies_for("elephant") == []
    d = apply(s, "dns", event())
    assert d.verdict == "apply"
    assert d.control.fields["k0"] == "192.0.2.10" and d.control.fields["k1"] == "53"
    assert d.control.fields["policy"] == "dns" and d.control.threshold == 10_000.0
    # the same key from another agent / data source: already active, nothing to do
    assert apply(s, "dns", event(agent="192.0.2.201")).verdict == "active"
    assert s.count("dns") == 1


def test_refused_by_allow_list_and_cap():
    s = ControlState({"dns": policy(allow=["192.0.2.0/28", "2001:db8::/32"], max_controls=2)}, Clock())
    d = s.on_event("dns", event("192.0.2.10,53"))
    assert d.verdict == "refuse" and "allow" in d.reason
    assert s.on_event("dns", event("2001:db8::1,53")).verdict == "refuse"
    assert apply(s, "dns", event("198.51.100.1,53")).verdict == "apply"
    assert apply(s, "dns", event("198.51.100.2,53")).verdict == "apply"
    d = s.on_event("dns", event("198.51.100.3,53"))
    assert d.verdict == "refuse" and "max_controls" in d.reason
    assert s.on_event("dns", {**event(), "flowKey": None}).verdict == "refuse"


def test_address_key_names_the_part_to_match():
    s = ControlState({"p": policy(allow=["10.0.0.0/8"], address_key=1)}, Clock())
    assert s.on_event("p", event("192.0.2.1,10.1.2.3")).verdict == "refuse"
    assert s.on_event("p", event("10.1.2.3,192.0.2.1")).verdict == "apply"


def test_release_needs_min_hold_and_time_below():
    clock = Clock()
    s = ControlState({"dns": policy()}, clock)
    c = apply(s, "dns", event()).control
    values = {"192.0.2.10,53": 50_000.0}

    def observe(dt: float) -> list:
        clock.t += dt
        s.observe(lambda flow, key: values.get(key, 0.0) if flow == "reflection" else 99e9)
        return s.due()

    assert observe(0) == []
    values.clear()  # the flood stops at once: below (absent = 0) ...
    assert observe(1) == []
    assert observe(2) == []  # below 2 s but held only 3 s
    values["192.0.2.10,53"] = 20_000.0  # back over: the below timer restarts
    assert observe(1.5) == []
    values["192.0.2.10,53"] = 10_000.0  # equal is not over
    assert observe(0.5) == []  # held 5 s, below 0 s
    assert observe(1.9) == []
    assert observe(0.2) == [c]
    s.released(c)
    assert s.count("dns") == 0 and s.due() == []
    assert apply(s, "dns", event()).verdict == "apply"  # a new flood: a new control


def test_min_hold_after_early_quiet():
    clock = Clock()
    s = ControlState({"dns": policy()}, clock)
    c = apply(s, "dns", event()).control
    s.observe(lambda f, k: 0.0)
    clock.t += 4.9
    s.observe(lambda f, k: 0.0)
    assert s.due() == []
    clock.t += 0.1
    assert s.due() == [c]


def test_failed_release_is_retried_later():
    clock = Clock()
    s = ControlState({"dns": policy()}, clock)
    c = apply(s, "dns", event()).control
    s.observe(lambda f, k: 0.0)
    clock.t += 10
    assert s.due() == [c]
    s.release_failed(c, 30)
    clock.t += 29
    assert s.due() == []
    clock.t += 1
    assert s.due() == [c]


def test_failed_apply_is_retried_while_the_flow_stays_over():
    clock = Clock()
    s = ControlState({"dns": policy(apply_retry_s=10)}, clock)
    ev = event()
    d = s.on_event("dns", ev)
    s.apply_failed(d.control, ev)
    over = {("reflection", "192.0.2.10,53"): 20_000.0}
    clock.t += 9
    assert s.apply_retries(lambda f, k: over.get((f, k), 0.0)) == []  # not yet
    clock.t += 1
    assert s.apply_retries(lambda f, k: over.get((f, k), 0.0)) == [("dns", ev)]
    assert s.apply_retries(lambda f, k: over.get((f, k), 0.0)) == []  # the next try is 10 s later
    clock.t += 10
    assert s.apply_retries(lambda f, k: over.get((f, k), 0.0)) == [("dns", ev)]
    # it worked this time: nothing pending
    s.applied(s.on_event("dns", ev).control)
    clock.t += 10
    assert s.apply_retries(lambda f, k: over.get((f, k), 0.0)) == [] and not s.pending


def test_failed_apply_is_forgotten_once_the_flow_is_gone():
    clock = Clock()
    s = ControlState({"dns": policy(apply_retry_s=10)}, clock)
    ev = event()
    s.apply_failed(s.on_event("dns", ev).control, ev)
    clock.t += 10
    assert s.apply_retries(lambda f, k: 10_000.0) == []  # at the threshold, not over it: the flood is over
    assert not s.pending


def test_a_refused_retry_ends_the_retries():
    clock = Clock()
    s = ControlState({"dns": policy(apply_retry_s=10, max_controls=1)}, clock)
    ev = event()
    s.apply_failed(s.on_event("dns", ev).control, ev)
    apply(s, "dns", event(key="192.0.2.11,53"))  # another flood takes the one control allowed
    clock.t += 10
    assert s.apply_retries(lambda f, k: 50_000.0) == [("dns", ev)]
    assert s.on_event("dns", ev).verdict == "refuse" and not s.pending


def test_restart_from_compacted_records():
    clock = Clock()
    s = ControlState({"dns": policy()}, clock)
    c1 = apply(s, "dns", event("198.51.100.1,53")).control
    c2 = apply(s, "dns", event("198.51.100.2,53")).control
    s.released(c2)
    # what the compacted topic holds (JSON round trip): c1 applied, c2 tombstoned
    topic = {key_of("dns", c1.key): json.loads(json.dumps(c1.record())), key_of("dns", c2.key): None,
             key_of("dns", "198.51.100.3,53"): {**c1.record(), "key": "198.51.100.3,53", "state": "released"}}
    clock.t += 3
    s2 = ControlState({"dns": policy()}, clock)
    restored = s2.restore(topic)
    assert [c.key for c in restored] == [c1.key] and restored[0].state == APPLIED
    assert restored[0].applied_at == c1.applied_at
    # not applied twice ...
    assert s2.on_event("dns", event("198.51.100.1,53")).verdict == "active"
    # ... and not forgotten: released once quiet, min_hold counted from the original apply
    s2.observe(lambda f, k: 0.0)
    clock.t += 2
    assert [c.key for c in s2.due()] == [c1.key]
