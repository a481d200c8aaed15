"""Threshold semantics: one event per crossing, byFlow, hysteresis/re-arm after timeout, filters."""

from processors.thresholds import Thresholds
from sflowpipe.settings import ThresholdDefinition


def th(**kw) -> Thresholds:
    t = Thresholds()
    t.set("big", ThresholdDefinition(**{"metric": "pair", "value": 100.0, "timeout": 10, **kw}))
    return t


def test_by_flow_one_event_per_flow_key_until_rearmed():
    t = th(byFlow=True)
    ev = t.check("pair", "a", "1", [("k1", 150.0), ("k2", 50.0)], now=0)
    assert [(e.flowKey, e.value, e.threshold) for e in ev] == [("k1", 150.0, 100.0)]
    assert t.check("pair", "a", "1", [("k1", 160.0), ("k2", 120.0)], now=1)[0].flowKey == "k2"
    assert t.check("pair", "a", "1", [("k1", 170.0), ("k2", 130.0)], now=2) == []
    # k1 goes under at t=3; re-arms after 10 s under; over again at 14 -> a new event
    assert t.check("pair", "a", "1", [("k1", 10.0), ("k2", 130.0)], now=3) == []
    assert t.check("pair", "a", "1", [("k1", 10.0), ("k2", 130.0)], now=8) == []
    assert t.check("pair", "a", "1", [("k1", 10.0), ("k2", 130.0)], now=13.5) == []
    ev = t.check("pair", "a", "1", [("k1", 200.0), ("k2", 130.0)], now=14)
    assert [e.flowKey for e in ev] == ["k1"]


def test_without_by_flow_only_the_first():
    t = th()
    ev = t.check("pair", "a", "1", [("k1", 150.0), ("k2", 250.0)], now=0)
    assert len(ev) == 1
    assert t.check("pair", "a", "1", [("k3", 300.0)], now=1) == []
    assert t.check("pair", "a", "2", [("k3", 300.0)], now=1)[0].dataSource == "2"


def test_going_back_over_before_timeout_does_not_fire():
    t = th(byFlow=True)
    assert t.check("pair", "a", "1", [("k", 150.0)], now=0)
    assert t.check("pair", "a", "1", [("k", 50.0)], now=1) == []
    assert t.check("pair", "a", "1", [("k", 150.0)], now=5) == []  # under for only 4 s
    assert t.check("pair", "a", "1", [("k", 50.0)], now=6) == []
    assert t.check("pair", "a", "1", [("k", 50.0)], now=16.5) == []  # re-armed now
    assert len(t.check("pair", "a", "1", [("k", 150.0)], now=17)) == 1


def test_filter_and_ids_increase():
    t = th(filter={"agent": ["10.0.0.1"], "dataSource": "3"})
    assert t.check("pair", "10.0.0.2", "3", [("k", 500.0)], now=0) == []
    assert t.check("pair", "10.0.0.1", "4", [("k", 500.0)], now=0) == []
    e1 = t.check("pair", "10.0.0.1", "3", [("k", 500.0)], now=0)[0]
    t.set("other", ThresholdDefinition(metric="pair", value=1.0))
    e2 = t.check("pair", "10.0.0.1", "3", [("k", 500.0)], now=0)[0]
    assert e2.eventID > e1.eventID and e2.thresholdID == "other"


def test_counter_metric_thresholds_have_no_flow_key():
    t = Thresholds()
    t.set("util", ThresholdDefinition(metric="ifinutilization", value=80))
    ev = t.check("ifinutilization", "a", "3", [(None, 95.0)], now=0)
    assert ev[0].flowKey is None and ev[0].metric == "ifinutilization"


def test_restored_state_raises_no_event_again_and_still_rearms():
    import json

    a = th(byFlow=True)
    [first] = a.check("pair", "a", "1", [("k1", 150.0), ("k2", 10.0)], now=0)
    a.check("pair", "b", "1", [("k9", 150.0)], now=0)  # another agent: not in a's snapshot
    a.check("pair", "a", "1", [("k1", 150.0), ("k2", 10.0)], now=1)
    snap = json.loads(json.dumps(a.snapshot("a")))  # it goes through the JSON checkpoint table
    assert snap["fired"]["big"] == [["1", "k1", None, first.eventID, first.timestamp]]

    b = th(byFlow=True)  # the restarted worker
    b.restore("a", snap)
    assert b.check("pair", "a", "1", [("k1", 170.0), ("k2", 10.0)], now=2) == []  # still over: no repeat
    [new] = b.check("pair", "a", "1", [("k1", 170.0), ("k2", 120.0)], now=3)  # a new crossing still fires
    assert new.flowKey == "k2" and new.eventID > first.eventID
    b.check("pair", "a", "1", [("k1", 10.0), ("k2", 120.0)], now=4)  # k1 under: re-arms 10 s later
    assert b.check("pair", "a", "1", [("k1", 150.0), ("k2", 120.0)], now=13) == []
    b.check("pair", "a", "1", [("k1", 10.0), ("k2", 120.0)], now=14)
    mid = json.loads(json.dumps(b.snapshot("a")))  # the under-since time survives a restart too
    c = th(byFlow=True)
    c.restore("a", mid)
    assert [e.flowKey for e in c.check("pair", "a", "1", [("k1", 10.0), ("k2", 120.0)], now=24)] == []
    assert [e.flowKey for e in c.check("pair", "a", "1", [("k1", 150.0), ("k2", 120.0)], now=25)] == ["k1"]
    assert b.check("pair", "b", "1", [("k9", 150.0)], now=2)[0].agent == "b"  # b's worker never saw agent b
    c.forget("a")
    assert c.snapshot("a")["fired"] == {}
