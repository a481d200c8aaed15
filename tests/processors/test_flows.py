"""Smoothed flow values, top-N, merging across data sources, pruning and checkpoints."""

from __future__ import annotations

import json
import math

import pytest

from processors.flows import FlowTable


def steady(table: FlowTable, rate: float, start: float, stop: float, dt: float, key: str = "k",
           agent: str = "a", ds: str = "1") -> float:
    """Feed ``rate`` units/s as one contribution every ``dt`` from start to stop; returns the last time."""
    now = start
    steps = int(round((stop - start) / dt))
    for i in range(1, steps + 1):
        now = start + i * dt
        table.add(now, agent, ds, key, rate * dt)
    return now


@pytest.mark.parametrize("t", [0.5, 2.0, 10.0])
def test_steady_rate_converges_within_1pct_after_5t(t):
    tab = FlowTable(t, 5)
    end = steady(tab, 1000.0, 0.0, 5 * t, t / 200)
    v = tab.value(end, "a", "1", "k")
    assert v == pytest.approx(1000.0, rel=0.01)
    # and the same from top()
    assert tab.top(end, "a", "1")[0][1] == pytest.approx(v)


def test_time_average_is_exact_even_with_coarse_batches():
    # contributions once per second with t = 2: the value saw-tooths, but averages to the rate
    tab = FlowTable(2.0, 5)
    end = steady(tab, 100.0, 0.0, 40.0, 1.0)
    samples = [tab.value(end + i / 1000, "a", "1", "k") for i in range(1000)]
    assert sum(samples) / len(samples) == pytest.approx(100.0, rel=0.01)


def test_decay_after_stream_stops():
    t = 3.0
    tab = FlowTable(t, 5)
    end = steady(tab, 500.0, 0.0, 30.0, 0.01)
    v0 = tab.value(end, "a", "1", "k")
    for dt in (0.1, 1.0, 3.0, 10.0):
        assert tab.value(end + dt, "a", "1", "k") == pytest.approx(v0 * math.exp(-dt / t), rel=1e-12)
    # reading does not change the stored state
    assert tab.value(end, "a", "1", "k") == pytest.approx(v0)


def test_single_contribution_and_two_at_once():
    tab = FlowTable(2.0, 5)
    tab.add(10.0, "a", "1", "k", 100.0)
    assert tab.value(10.0, "a", "1", "k") == pytest.approx(50.0)
    tab.add(10.0, "a", "1", "k", 60.0)  # same instant: simply adds a/t
    assert tab.value(10.0, "a", "1", "k") == pytest.approx(80.0)
    tab.add(12.0, "a", "1", "k", 20.0)
    assert tab.value(12.0, "a", "1", "k") == pytest.approx(80.0 * math.exp(-1) + 10.0)


def test_late_contribution_is_decayed_not_rewound():
    tab = FlowTable(2.0, 5)
    tab.add(10.0, "a", "1", "k", 100.0)
    tab.add(8.0, "a", "1", "k", 100.0)  # 2 s late
    assert tab.value(10.0, "a", "1", "k") == pytest.approx(50.0 + 50.0 * math.exp(-1))


def test_add_batch_matches_add():
    a, b = FlowTable(2.0, 5), FlowTable(2.0, 5)
    evaluated = [(0, "x", 100.0), (1, "x", 50.0), (2, "y", 10.0), (3, "x", 5.0)]
    ds_list = ["1", "1", "1", "2"]
    a.add_batch(5.0, "ag", ds_list, evaluated)
    for i, k, v in evaluated:
        b.add(5.0, "ag", ds_list[i], k, v)
    for ds in ("1", "2"):
        ta, tb = a.top(6.0, "ag", ds), b.top(6.0, "ag", ds)
        assert [k for k, _ in ta] == [k for k, _ in tb]
        assert [v for _, v in ta] == pytest.approx([v for _, v in tb])
    assert a.value(5.0, "ag", "1", "x") == pytest.approx(75.0)
    assert a.value(5.0, "ag", "2", "x") == pytest.approx(2.5)
    a.add_batch(5.0, "ag", ds_list, [])  # nothing: no-op
    assert a.agents() == ["ag"]


def test_top_n_ordering_and_limit():
    tab = FlowTable(1.0, 5)
    for i in range(12):
        tab.add(0.0, "a", "1", f"k{i}", float(i + 1))
    top = tab.top(0.0, "a", "1")
    assert [k for k, _ in top] == ["k11", "k10", "k9", "k8", "k7"]
    assert [v for _, v in top] == [12.0, 11.0, 10.0, 9.0, 8.0]
    # a newer flow overtakes decayed ones
    tab.add(5.0, "a", "1", "new", 1.0)
    assert tab.top(5.0, "a", "1")[0][0] == "new"
    assert tab.top(5.0, "a", "nope") == []
    assert tab.top(5.0, "nope", "1") == []


def test_prune_and_agents():
    tab = FlowTable(1.0, 5)
    tab.add(0.0, "a", "1", "big", 1000.0)
    tab.add(0.0, "a", "1", "small", 1.0)
    tab.add(0.0, "b", "2", "tiny", 0.5)
    assert sorted(tab.agents()) == ["a", "b"]
    assert len(tab) == 3
    dropped = tab.prune(2.0, min_value=0.5)  # small: 1*e^-2 = 0.135, tiny 0.07; big 135
    assert dropped == 2
    assert tab.agents() == ["a"]
    assert tab.data_sources("a") == ["1"]
    assert [k for k, _ in tab.top(2.0, "a", "1")] == ["big"]
    assert tab.values(2.0, "a", "1") == [("big", pytest.approx(1000.0 * math.exp(-2)))]
    assert tab.values(2.0, "a", "nope") == []
    assert tab.prune(100.0, min_value=0.5) == 1
    tab.add(0.0, "c", "1", "k", 1.0)
    tab.forget("c")
    assert tab.agents() == []
    assert tab.agents() == [] and len(tab) == 0


def test_entries_per_data_source_are_capped():
    tab = FlowTable(2.0, 5)
    assert tab.max_keys == 100
    assert FlowTable(2.0, 20).max_keys == 200
    for i in range(1000):
        tab.add(0.0, "a", "1", f"k{i}", float(i))
    assert len(tab) <= tab.max_keys + tab.max_keys // 4
    # the largest survive eviction
    assert [k for k, _ in tab.top(0.0, "a", "1")] == ["k999", "k998", "k997", "k996", "k995"]
    tab.prune(0.0, 0.0)
    assert len(tab) == tab.max_keys
    # add_batch is capped too
    tab2 = FlowTable(2.0, 5, max_keys=10)
    tab2.add_batch(0.0, "a", ["1"] * 100, [(i, f"k{i}", float(i)) for i in range(100)])
    assert len(tab2) == 10
    assert tab2.top(0.0, "a", "1")[0] == ("k99", pytest.approx(99 / 2))


def test_snapshot_restore_round_trip():
    tab = FlowTable(2.0, 5)
    tab.add(10.0, "a", "1", "x", 100.0)
    tab.add(10.0, "a", "3", "y", 40.0)
    tab.add(10.0, "b", "1", "z", 7.0)
    snap = json.loads(json.dumps(tab.snapshot("a")))
    assert tab.snapshot("nobody") == {"t": 2.0, "data_sources": {}}

    other = FlowTable(2.0, 5)
    other.restore("a", snap, 10.0)
    for ds in ("1", "3"):
        assert [k for k, _ in other.top(12.0, "a", ds)] == [k for k, _ in tab.top(12.0, "a", ds)]
        assert [v for _, v in other.top(12.0, "a", ds)] == pytest.approx([v for _, v in tab.top(12.0, "a", ds)])
    assert other.agents() == ["a"]

    # restoring later: read at the restore time, the values are decayed to it
    later = FlowTable(2.0, 5)
    later.restore("a", snap, 14.0)
    assert later.value(14.0, "a", "1", "x") == pytest.approx(50.0 * math.exp(-2))
    # but they keep their own time: a worker catching up on the samples since the snapshot reads them
    # as they were then, not decayed by the blank between the snapshot and the restore
    assert later.value(10.0, "a", "1", "x") == pytest.approx(50.0)
    catching_up = FlowTable(2.0, 5)
    catching_up.restore("a", snap, 14.0)
    catching_up.add(11.0, "a", "1", "x", 20.0)  # replayed, accounted at its receive time
    assert catching_up.value(11.0, "a", "1", "x") == pytest.approx(50.0 * math.exp(-0.5) + 10.0)
    # updates continue from there
    later.add(16.0, "a", "1", "x", 20.0)
    assert later.value(16.0, "a", "1", "x") == pytest.approx(50.0 * math.exp(-3) + 10.0)

    # restore replaces the agent's state; an empty snapshot removes it
    tab.restore("a", {"t": 2.0, "data_sources": {}}, 20.0)
    assert tab.agents() == ["b"]


def test_bad_t():
    with pytest.raises(ValueError):
        FlowTable(0.0, 5)


def test_end_to_end_with_flowspec():
    from sflowpipe.flowspec import EvalContext, compile_flow, parse_definition
    from sflowpipe.names import data_sources

    b = {
        "agent_address": "192.0.2.1",
        "source_id_type": [0, 0, 0],
        "source_id_index": [1, 2, 1],
        "sampling_rate": [10, 10, 10],
        "frame_length": [100, 200, 300],
        "ip_version": [4, 4, 4],
        "src_ip": ["10.0.0.1", "10.0.0.1", "10.0.0.2"],
        "dst_ip": ["10.0.0.9"] * 3,
        "ip_protocol": [6, 6, 6],
    }
    fd = parse_definition("src", {"keys": "ipsource", "value": "bytes", "t": 1})
    tab = FlowTable(fd.t, fd.n)
    ds = data_sources(b["source_id_type"], b["source_id_index"])
    tab.add_batch(0.0, b["agent_address"], ds, compile_flow(fd).evaluate(b, None, EvalContext(b)))
    assert tab.top(0.0, "192.0.2.1", "1") == [("10.0.0.2", 3000.0), ("10.0.0.1", 1000.0)]
    assert tab.top(0.0, "192.0.2.1", "2") == [("10.0.0.1", 2000.0)]
