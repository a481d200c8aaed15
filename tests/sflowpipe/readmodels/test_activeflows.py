import pytest

from sflowpipe.readmodels.activeflows import ActiveFlows


def msg(agent, ts, flows):
    return {"flow": "pair", "agent": agent, "timestamp": ts, "value": "bytes",
            "flows": [{"dataSource": ds, "key": k, "value": v} for ds, k, v in flows]}


def test_merge_max_and_sum_across_agents_and_data_sources():
    af = ActiveFlows()
    af.update_all([
        msg("a", 1, [("1", "x", 10.0), ("2", "x", 30.0), ("1", "y", 5.0)]),
        msg("b", 1, [("7", "x", 20.0), ("7", "z", 1.0)]),
        msg("a", 0, [("1", "old", 999.0)]),  # older than the latest for agent a: ignored
    ])
    mx = af.merged("pair")
    assert [(r["key"], r["value"], r["agent"], r["dataSource"]) for r in mx] == [
        ("x", 30.0, "a", "2"), ("y", 5.0, "a", "1"), ("z", 1.0, "b", "7")]
    sm = af.merged("pair", agg_mode="sum", max_flows=1)
    assert [(r["key"], r["value"]) for r in sm] == [("x", 60.0)]
    assert [r["key"] for r in af.merged("pair", agents=["b"], min_value=2.0)] == ["x"]


def test_max_counts_a_flow_crossing_switches_once_sum_adds_it_up():
    # flow f crosses two switches (seen twice), g only once; agent/dataSource: where it is largest
    af = ActiveFlows()
    af.update_all([msg("sw1", 1, [("1", "f", 10.0), ("2", "h", 1.0)]),
                   msg("sw2", 1, [("4", "f", 8.0), ("5", "g", 12.0)])])
    as_rows = lambda rows: [(r["key"], r["value"], r["agent"], r["dataSource"]) for r in rows]  # noqa: E731
    assert as_rows(af.merged("pair")) == [("g", 12.0, "sw2", "5"), ("f", 10.0, "sw1", "1"), ("h", 1.0, "sw1", "2")]
    assert as_rows(af.merged("pair", agg_mode="sum")) == [
        ("f", 18.0, "sw1", "1"), ("g", 12.0, "sw2", "5"), ("h", 1.0, "sw1", "2")]
    assert as_rows(af.merged("pair", agg_mode="sum", agents=["sw2"])) == [("g", 12.0, "sw2", "5"),
                                                                         ("f", 8.0, "sw2", "4")]
    assert [r["key"] for r in af.merged("pair", min_value=5.0)] == ["g", "f"]
    with pytest.raises(ValueError):
        af.merged("pair", agg_mode="median")


def test_stale_messages_are_left_out():
    af = ActiveFlows()
    af.update_all([msg("a", 1_000, [("1", "x", 1.0)]), msg("b", 5_000, [("1", "y", 2.0)])])
    assert [r["key"] for r in af.merged("pair", since_ms=2_000)] == ["y"]


def test_negative_max_flows_is_no_flows():
    # the API and the exporter pass maxFlows through: a negative slice used to drop the smallest
    # flow instead (the workers' copy of this merge clamped at 0)
    af = ActiveFlows()
    af.update(msg("a", 1, [("1", "x", 3.0), ("1", "y", 2.0), ("1", "z", 1.0)]))
    assert af.merged("pair", max_flows=-1) == []
    assert af.merged("pair", max_flows=0) == []
    assert [r["key"] for r in af.merged("pair", max_flows=2)] == ["x", "y"]
