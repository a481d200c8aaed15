"""Limits at the REST API (issue 12, "Why" 6): NaN and infinities refused in bodies and query
parameters, the answers always valid JSON, and a cap on how many definitions there may be."""

from __future__ import annotations

import json

import pytest

from api.state import ApiState
from sflowpipe.config_plane import DefinitionError, check_caps, loads, parse
from sflowpipe.settings import Settings
from tests.api.test_server import _client, _feed, _settings


def _strict(text: str):
    """JSON as a strict parser (a browser's, jq) reads it: NaN and Infinity are not JSON."""
    def refuse(c):
        raise ValueError(c)
    return json.loads(text, parse_constant=refuse)


@pytest.mark.asyncio
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
async def test_non_finite_numbers_in_a_definition_are_refused(number):
    client, _, rec = await _client(_settings())
    try:
        for path, body in (("/threshold/t/json", f'{{"metric": "x", "value": {number}}}'),
                           ("/threshold/t/json", f'{{"metric": "x", "value": 1, "timeout": {number}}}'),
                           ("/flow/f/json", f'{{"keys": "ipsource", "t": {number}}}'),
                           ("/flow/f/json", f'{{"keys": "ipsource", "log": true, "activeTimeout": {number}}}')):
            r = await client.put(path, data=body)
            assert r.status == 400, (path, body, await r.text())
            assert "error" in _strict(await r.text())
        assert rec.calls == []
        assert _strict(await (await client.get("/threshold/json")).text()) == {}
        assert _strict(await (await client.get("/flow/json")).text()) == {}
    finally:
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/activeflows/ALL/pair/json?minValue={}", "/events/json?timeout={}",
                                  "/flows/json?timeout={}"])
async def test_non_finite_query_parameters_are_refused(path):
    client, state, _ = await _client(_settings())
    try:
        _feed(state)
        for v in ("nan", "inf", "-inf", "1e999", "Infinity"):
            r = await client.get(path.format(v))
            assert r.status == 400 and "finite" in await r.text(), (path, v)
        assert (await client.get(path.format("0"))).status == 200
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_answers_stay_valid_json_when_a_value_is_not_finite():
    """A definition stored before these checks (or a value that overflowed) is sent as null, never
    as the bare NaN that JSON parsers refuse."""
    client, state, _ = await _client(_settings())
    try:
        state.define("threshold", "old", parse("threshold", "old", {"metric": "x", "value": 1}).model_copy(
            update={"value": float("nan")}))
        state.define("flow", "f", parse("flow", "f", {"keys": "ipsource"}).model_copy(update={"t": float("inf")}))
        assert _strict(await (await client.get("/threshold/json")).text())["old"]["value"] is None
        assert _strict(await (await client.get("/flow/json")).text())["f"]["t"] is None
        assert _strict(await (await client.get("/flow/f/json")).text())["t"] is None
    finally:
        await client.close()


def test_config_topic_bodies_are_read_strictly():
    for text in ('{"metric": "x", "value": NaN}', '{"metric": "x", "value": 1e999}', '[Infinity]'):
        with pytest.raises(ValueError):
            loads(text)
    assert loads('{"metric": "x", "value": 1e300}')["value"] == 1e300


def _limited(**limits) -> Settings:
    s = _settings()
    return s.model_copy(update={"limits": s.limits.model_copy(update=limits)})


@pytest.mark.asyncio
async def test_definitions_beyond_the_cap_are_refused_naming_the_limit():
    s = _limited(max_flows=3, max_thresholds=1, max_groups=2)
    client, state, rec = await _client(s, ApiState(s.api))
    try:
        for i in range(3):
            assert (await client.put(f"/flow/f{i}/json", json={"keys": "ipsource"})).status == 204
        r = await client.put("/flow/f3/json", json={"keys": "ipsource"})
        assert r.status == 409
        body = _strict(await r.text())
        assert body["field"] == "limits.max_flows" and body["limit"] == 3 and "limited to 3" in body["error"]
        assert "f3" not in _strict(await (await client.get("/flow/json")).text())
        # redefining one that exists is not a new one; after a DELETE there is room again
        assert (await client.put("/flow/f1/json", json={"keys": "ipdestination"})).status == 204
        assert (await client.delete("/flow/f0/json")).status == 204
        assert (await client.put("/flow/f3/json", json={"keys": "ipsource"})).status == 204
        assert (await client.put("/threshold/a/json", json={"metric": "f1", "value": 1})).status == 204
        assert (await client.put("/threshold/b/json", json={"metric": "f1", "value": 1})).status == 409
        r = await client.put("/group/json", json={"a": {"x": ["10.0.0.0/8"]}, "b": {}, "c": {}})
        assert r.status == 409 and _strict(await r.text())["field"] == "limits.max_groups"
        assert (await client.put("/group/json", json={"a": {"x": ["10.0.0.0/8"]}, "b": {}})).status == 204
        assert [c[:2] for c in rec.calls if c[2] is not None].count(("flow", "f3")) == 1
    finally:
        await client.close()


def test_definitions_files_beyond_the_cap_are_refused():
    s = _limited(max_flows=2)
    check_caps(s.limits, [("flow", "a", None), ("flow", "b", None), ("flow", "a", None), ("threshold", "t", None)])
    with pytest.raises(DefinitionError) as ei:
        check_caps(s.limits, [("flow", n, None) for n in "abc"])
    assert "limits.max_flows" in str(ei.value)


@pytest.mark.asyncio
async def test_a_pattern_that_needs_backtracking_is_refused_at_the_put_and_the_issue_pattern_accepted():
    client, _, rec = await _client(_settings())
    try:
        flt = "ipprotocol=6&ipsource~(10)\\1.*"
        r = await client.put("/flow/bad/json", json={"keys": "ipsource", "filter": flt})
        body = _strict(await r.text())
        assert r.status == 400 and body["field"] == "filter" and body["position"] == flt.index("\\1")
        assert body["token"] == "(10)\\1.*" and "linear time" in body["error"] and rec.calls == []
        issue = "ipsource~" + ".*" * 40 + "x"
        assert (await client.put("/flow/issue/json", json={"keys": "ipsource", "filter": issue})).status == 204
    finally:
        await client.close()
