"""The OpenAPI document (api/openapi.py): valid OpenAPI 3.0, typed parameters, definition bodies
that are the validation models' own schema, and answers the API really gives that match it."""

from __future__ import annotations

import time

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from api.openapi import Param
from api.server import Api
from api.state import ApiState
from sflowpipe.settings import FlowDefinition
from sflowpipe.typed import SecretStr
from tests.api.test_server import _client, _feed, _settings
from tests.api.test_sflow_rt_paths import _flow_log, _ingester_status


def _document() -> dict:
    s = _settings()
    return Api(s.api, s.limits, ApiState(s.api), lambda *a: None).openapi_document()


def _validator(doc: dict, schema: dict) -> OAS30Validator:
    """``schema`` checked with its ``#/components/...`` references resolved in ``doc``."""
    return OAS30Validator({**schema, "components": doc["components"]})


def _answer_schema(doc: dict, path: str, status: str = "200", method: str = "get") -> dict:
    return doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


def _params(doc: dict, path: str, method: str = "get") -> dict[str, dict]:
    return {p["name"]: p for p in doc["paths"][path][method]["parameters"]}


def test_the_document_is_valid_openapi_3_0():
    doc = _document()
    validate(doc)  # raises, naming the fault, on an invalid document
    assert doc["openapi"] == "3.0.3"
    s = _settings(token=SecretStr("secret"))
    secured = Api(s.api, s.limits, ApiState(s.api), lambda *a: None).openapi_document()
    validate(secured)
    assert secured["security"] == [{"bearer": []}, {"basic": []}]


def test_parameters_are_typed_with_defaults_and_choices():
    doc = _document()
    af = _params(doc, "/activeflows/{agent}/{name}/json")
    assert af["maxFlows"]["schema"] == {"type": "integer", "default": 100}
    assert af["minValue"]["schema"] == {"type": "number", "default": 0}
    assert af["aggMode"]["schema"] == {"type": "string", "enum": ["max", "sum"], "default": "max"}
    assert af["agent"]["in"] == "path" and af["agent"]["required"] and af["agent"]["schema"] == {"type": "string"}
    ev = _params(doc, "/events/json")
    assert ev["eventID"]["schema"]["type"] == "integer" and ev["timeout"]["schema"]["type"] == "number"
    assert ev["maxEvents"]["schema"] == {"type": "integer", "default": 100, "minimum": 1}
    assert ev["thresholdID"]["schema"] == {"type": "string"}  # a (name, description) pair: a string
    agents = _params(doc, "/agents/json")["agent"]
    assert agents["schema"] == {"type": "array", "items": {"type": "string"}} and agents["explode"]
    export = _params(doc, "/app/prometheus/scripts/export.js/flows/{agent}/txt")
    assert export["metric"]["required"] and export["scale"]["schema"]["type"] == "number"
    # the old shape still reads as it did
    assert Param.of(("x", "a thing")).openapi()["schema"] == {"type": "string"}


def test_definition_bodies_are_the_validation_models_schema():
    doc = _document()
    put = doc["paths"]["/flow/{name}/json"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FlowDefinition"}
    flow = doc["components"]["schemas"]["FlowDefinition"]
    assert flow == FlowDefinition.model_json_schema()
    assert set(flow["properties"]) == {"keys", "value", "filter", "t", "n", "fs", "log", "flowStart", "activeTimeout",
                                       "aggMode", "dropped"}
    assert flow["additionalProperties"] is False
    assert flow["properties"]["t"] == {"type": "number", "default": 2.0,
                                       "description": FlowDefinition.model_fields["t"].description}
    assert flow["properties"]["activeTimeout"]["minimum"] == 0 and flow["properties"]["activeTimeout"]["exclusiveMinimum"]
    assert flow["properties"]["filter"]["nullable"] is True
    threshold = doc["components"]["schemas"]["ThresholdDefinition"]
    assert threshold["required"] == ["metric", "value"] and threshold["properties"]["byFlow"]["type"] == "boolean"
    forwarding = doc["components"]["schemas"]["ForwardingDefinition"]
    assert forwarding["properties"]["port"] == {"type": "integer", "minimum": 1, "maximum": 65535, "default": 6343}
    for path, schema in (("/threshold/{name}/json", "ThresholdDefinition"), ("/group/{name}/json", "GroupSet"),
                         ("/forwarding/{name}/json", "ForwardingDefinition"), ("/topology/json", "Topology")):
        body = doc["paths"][path]["put"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{schema}"}, path
        assert doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == body


def test_every_json_answer_and_error_is_typed():
    doc = _document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            r = op["responses"]
            assert "401" in r, (method, path)
            if method in ("put", "delete"):
                assert "204" in r and "403" in r, (method, path)
                continue
            content = r["200"]["content"]
            if path.endswith("/txt") or path == "/version":
                assert content == {"text/plain": {"schema": {"type": "string"}}}, path
            else:
                assert content["application/json"]["schema"], f"GET {path}: an untyped answer"
    assert _answer_schema(doc, "/activeflows/{agent}/{name}/json") == {
        "type": "array", "items": {"$ref": "#/components/schemas/ActiveFlow"}}
    refused = doc["paths"]["/flow/{name}/json"]["put"]["responses"]
    assert refused["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert refused["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "text/plain" in doc["paths"]["/flow/{name}/json"]["get"]["responses"]["404"]["content"]
    assert "text/plain" in doc["paths"]["/events/json"]["get"]["responses"]["400"]["content"]
    event = doc["components"]["schemas"]["Event"]  # from the events topic's Avro schema
    assert event["properties"]["timestamp"]["type"] == "integer" and event["properties"]["value"]["type"] == "number"
    assert event["properties"]["flowKey"]["nullable"] is True and "flowKey" not in event["required"]


@pytest.mark.asyncio
async def test_the_api_answers_as_its_document_says():
    """The schemas are checked against real answers of a fed API, so they cannot drift from it."""
    doc = _document()
    client, state, _ = await _client(_settings())
    try:
        now = int(time.time() * 1000)
        _feed(state, now)
        state.status_message(_ingester_status(now))
        state.add("event", {"eventID": 7, "thresholdID": "elephant", "agent": "10.0.0.1", "dataSource": "1",
                            "metric": "pair", "value": 2e6, "threshold": 1e6, "flowKey": "a,b", "timestamp": now}, 0, 3)
        state.add("event", {"eventID": 8, "thresholdID": "util", "agent": "10.0.0.1", "dataSource": "1",
                            "metric": "ifinutilization", "value": 91.0, "threshold": 90.0, "flowKey": None,
                            "timestamp": now}, 0, 4)
        assert (await client.put("/flow/pair/json", json={"keys": "ipsource,ipdestination", "log": True})).status == 204
        assert (await client.put("/threshold/elephant/json", json={"metric": "pair", "value": 1e6})).status == 204
        assert (await client.put("/group/lan/json", json={"inside": ["10.0.0.0/8"]})).status == 204
        assert (await client.put("/topology/json", json={"links": {"l1": {"node1": "a", "port1": "p1", "node2": "b",
                                                                          "port2": "p2"}}})).status == 204
        state.add("flow_log", _flow_log("pair", "10.0.0.5,10.0.0.6", now - 2000), 0, 1)
        state.status_message({"kind": "flowkeys", "worker": "w0", "time": now,
                              "keys": {"ipsource": now - 100, "ipdestination": now}})
        checked = 0
        for path in ("/activeflows/ALL/pair/json", "/events/json", "/flows/json", "/agents/json",
                     "/metric/ALL/ifinoctets,sum:ifinoctets,pair/json", "/dump/ALL/ALL/json",
                     "/table/ALL/ifinoctets,ifinutilization/json", "/sflowpipe/status/json", "/flow/json",
                     "/flow/pair/json", "/threshold/json", "/group/json", "/topology/json", "/metrics/json",
                     "/metric/10.0.0.1/json", "/analyzer/json", "/license/json", "/flowkeys/json"):
            template = _template(doc, path)
            r = await client.get(path)
            assert r.status == 200, path
            body = await r.json()
            assert body, f"{path}: nothing to check"
            _validator(doc, _answer_schema(doc, template)).validate(body)
            checked += 1
        assert checked == 18
        # a refusal: the JSON error body as documented
        r = await client.put("/flow/bad/json", json={"keys": "ipsource,nosuchkey"})
        assert r.status == 400
        _validator(doc, _answer_schema(doc, "/flow/{name}/json", "400", "put")).validate(await r.json())
    finally:
        await client.close()


@pytest.mark.parametrize("body, accepted", [
    ({"keys": "ipsource", "value": "frames", "t": 10, "n": 10, "log": True, "activeTimeout": 30}, True),
    ({"keys": "ipsource", "bogus": 1}, False),  # an unknown field
    ({"keys": "ipsource", "activeTimeout": 0}, False),  # must be > 0
    ({"keys": "ipsource", "log": [1]}, False),  # not a boolean
])
@pytest.mark.asyncio
async def test_a_flow_body_the_schema_refuses_is_refused_by_the_api(body, accepted):
    """The explorer's body schema and the API's validation are one: they agree on every body."""
    doc = _document()
    schema_ok = _validator(doc, {"$ref": "#/components/schemas/FlowDefinition"}).is_valid(body)
    client, _, _ = await _client(_settings())
    try:
        status = (await client.put("/flow/f/json", json=body)).status
    finally:
        await client.close()
    assert (schema_ok, status == 204) == (accepted, accepted)


def _template(doc: dict, path: str) -> str:
    """The document's path template that ``path`` matches."""
    parts = path.split("/")
    for template in doc["paths"]:
        t = template.split("/")
        if len(t) == len(parts) and all(a == b or a.startswith("{") for a, b in zip(t, parts)):
            return template
    raise AssertionError(f"{path}: no such path in the document")
