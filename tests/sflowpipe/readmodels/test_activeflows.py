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
