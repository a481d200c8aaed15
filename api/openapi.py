"""The REST API's OpenAPI 3.0 document (``/openapi.json``, read by the explorer api/static/api.html).

The route table (api/server.py) gives each operation its method, path, summary and query
parameters; what a client needs beside that is here, attachable per route without changing the
table's shape:

- a query parameter is a ``(name, description)`` pair (typed string) or a :class:`Param` with its
  type, default and choices;
- ``OPERATIONS`` maps ``(method, path)`` to an :class:`Operation`: the request body and the
  answers (200 and the errors the handler gives). Routes not in it get what their path says
  (``/txt``: Prometheus text; a PUT: 204; a GET: some JSON).

Definition bodies are the validation models' own JSON Schema (sflowpipe/settings.py,
``model_json_schema``), events the Avro schema of the events topic: one source for each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import SCHEMA_DIR
from sflowpipe.names import AGENT_COUNTERS
from sflowpipe.settings import FlowDefinition, ForwardingDefinition, ThresholdDefinition

REF = "#/components/schemas/"


@dataclass(frozen=True)
class Param:
    """A typed query parameter. ``type``: string, integer, number or boolean; ``repeated``: may be
    given more than once (an array)."""

    name: str
    description: str
    type: str = "string"
    default: Any = None
    enum: tuple = ()
    minimum: float | None = None
    repeated: bool = False
    required: bool = False

    @classmethod
    def of(cls, p: Param | tuple[str, str]) -> Param:
        return p if isinstance(p, Param) else cls(*p)

    def openapi(self) -> dict:
        schema: dict[str, Any] = {"type": self.type}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.repeated:
            schema = {"type": "array", "items": schema}
        out = {"name": self.name, "in": "query", "required": self.required, "description": self.description,
               "schema": schema}
        if self.repeated:
            out.update(style="form", explode=True)
        return out


def ref(name: str) -> dict:
    return {"$ref": REF + name}


def json_body(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_body(description: str, example: str | None = None) -> dict:
    media: dict[str, Any] = {"schema": {"type": "string"}}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"text/plain": media}}


def refusal(description: str) -> dict:
    """A JSON error answer: ``{"error": message, ...}`` (a refused definition, a limit reached)."""
    return json_body(ref("Error"), description)


@dataclass(frozen=True)
class Operation:
    """What the route table does not say about one operation: its request body's schema and its
    answers by status (200's included when it is not the default)."""

    body: dict | None = None
    responses: dict[str, dict] = field(default_factory=dict)


# ---------------------------------------------------------------- schemas


def _avro_schema(stem: str) -> dict:
    """JSON Schema of the newest version of a flat Avro record in schemas/ (primitives, arrays,
    nullable unions): what the API serves of that topic's messages."""
    path = max(SCHEMA_DIR.glob(f"{stem}.v*.avsc"), key=lambda p: int(p.stem.rsplit(".v", 1)[1]))
    record = json.loads(path.read_text())

    def of(t: Any) -> dict:
        if isinstance(t, list):
            members = [m for m in t if m != "null"]
            out = of(members[0]) if len(members) == 1 else {"anyOf": [of(m) for m in members]}
            if "null" in t:
                out["nullable"] = True
            return out
        if isinstance(t, dict) and t.get("type") == "array":
            return {"type": "array", "items": of(t["items"])}
        return {"long": {"type": "integer", "format": "int64"}, "int": {"type": "integer", "format": "int32"},
                "double": {"type": "number"}, "float": {"type": "number"}, "boolean": {"type": "boolean"},
                "string": {"type": "string"}}[t if isinstance(t, str) else t["type"]]

    props = {}
    for f in record["fields"]:
        props[f["name"]] = of(f["type"]) | ({"description": f["doc"]} if "doc" in f else {})
    return {"type": "object", "description": record.get("doc", ""), "properties": props,
            "required": [f["name"] for f in record["fields"] if "default" not in f]}


def _obj(props: dict[str, dict], required: Iterable[str] = (), description: str = "", extra: bool | dict = False,
         ) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    if extra is not False:
        out["additionalProperties"] = extra
    return out


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
MS_AGO = {"type": "integer", "description": "milliseconds ago"}
EPOCH_MS = {"type": "integer", "format": "int64", "description": "milliseconds since the Unix epoch"}


def _strings(description: str) -> dict:
    return {"type": "array", "items": STR, "description": description}


def _map(value: dict, description: str) -> dict:
    return {"type": "object", "additionalProperties": value, "description": description}


def component_schemas() -> dict[str, dict]:
    event = _avro_schema("event")
    event["properties"]["eventID"]["description"] = "this event's id: its position on the events topic; " \
        "pass the newest one seen as eventID= to get only newer ones"
    event["properties"]["processorEventID"] = {"type": "integer", "format": "int64",
                                               "description": "the id the processor gave the event"}
    metric_value = {"anyOf": [NUM, STR], "description": "a number; text for ifname and host_name"}
    component = _obj({"component": STR, "instance": STR, "alive": BOOL, "lastSeen": MS_AGO,
                      "per_s": {"type": "number", "description": "the component's main count per second"}},
                     description="one instance's own numbers (sflowpipe/status.py), beside these fields",
                     extra=True)
    return {
        "Error": _obj({"error": {"type": "string", "description": "what is wrong"},
                       "kind": {"type": "string", "description": "the definition kind refused"},
                       "name": {"type": "string", "description": "the definition name refused"},
                       "field": {"type": "string", "description": "the field at fault (keys, filter, value...)"},
                       "token": {"type": "string", "description": "the offending text"},
                       "position": {"type": "integer", "description": "character offset of the fault in field"},
                       "limit": {"type": "integer", "description": "the limit reached (409)"}},
                      ["error"], "A refused request: the message and, where known, where the fault is"),
        "FlowDefinition": FlowDefinition.model_json_schema(),
        "ThresholdDefinition": ThresholdDefinition.model_json_schema(),
        "ForwardingDefinition": ForwardingDefinition.model_json_schema(),
        "GroupSet": _map(_strings("addresses or CIDRs"), "address groups: {group name: [CIDR, ...]}"),
        "Topology": _obj({
            "nodes": _map(_obj({"agent": {"type": "string", "description": "the node's sFlow agent address"},
                                "ports": _map(_obj({"ifindex": {"anyOf": [STR, INT], "description": "ifIndex"}}),
                                              "{port name: {ifindex}}")}),
                          "{node name: {agent, ports}}"),
            "links": _map(_obj({"node1": STR, "port1": STR, "node2": STR, "port2": STR},
                               ["node1", "port1", "node2", "port2"]), "{link name: {node1, port1, node2, port2}}")},
            description="sFlow-RT's topology: link ends placed by node agent and port ifindex, else by the host "
                        "and port names agents report", extra=False),
        "ActiveFlow": _obj({"key": {"type": "string", "description": "flow key values joined by the definition's fs"},
                            "value": {"type": "number", "description": "smoothed rate in the definition's value "
                                                                       "unit per second (bytes: bytes/s)"},
                            "agent": {"type": "string", "description": "where the largest contribution was seen"},
                            "dataSource": STR}, ["key", "value", "agent", "dataSource"]),
        "Event": event,
        "LoggedFlow": _obj({"flowID": {"type": "integer", "format": "int64", "description": "pass the newest seen "
                                       "as flowID= to get only newer ones"},
                            "name": {"type": "string", "description": "the flow definition"},
                            "agent": STR, "dataSource": STR, "flowKeys": STR,
                            "value": {"type": "number", "description": "total over the interval in the "
                                                                       "definition's unit"},
                            "start": EPOCH_MS, "end": EPOCH_MS},
                           ["flowID", "name", "agent", "dataSource", "flowKeys", "value", "start", "end"]),
        "Agent": _obj({**{k: INT for k in AGENT_COUNTERS},
                       "sFlowDatagramSource": _strings("source addresses of its datagrams"),
                       "lastSeen": MS_AGO, "firstSeen": MS_AGO,
                       "ingesters": _strings("ingesters receiving it"),
                       "sFlowFlowDatasources": INT, "sFlowCounterDatasources": INT,
                       "uptime": {"type": "integer", "description": "ms, from the agent's datagrams"},
                       "dataSources": _strings("data sources with fresh metrics")},
                      AGENT_COUNTERS, "sFlow-RT's session counters of one agent, summed over ingesters"),
        "Metric": _obj({"metricName": STR, "metricN": {"type": "integer", "description": "readings summarized"},
                        "metricValue": NUM, "agent": STR, "dataSource": STR, "lastUpdate": MS_AGO,
                        "lastUpdateMax": MS_AGO, "lastUpdateMin": MS_AGO,
                        "topKeys": {"type": "array", "items": _obj({"key": STR, "value": NUM}, extra=True),
                                    "description": "a flow metric's largest keys"}},
                       ["metricName", "metricN"], "sFlow-RT's summary of one metric over agents and data sources"),
        "MetricValue": _obj({"agent": STR, "dataSource": STR, "metricName": STR, "metricValue": metric_value,
                             "lastUpdate": MS_AGO, "ifName": STR},
                            ["agent", "dataSource", "metricName", "metricValue", "lastUpdate"]),
        "Status": _obj({
            "time": EPOCH_MS, "uptime_s": INT, "agents": INT,
            "ingesters": {"type": "array", "items": _obj({
                "ingester": STR, "listen": {"type": "string", "nullable": True}, "alive": BOOL, "lastSeen": MS_AGO,
                "datagrams_per_s": NUM, "samples_per_s": NUM, "agents": INT, "datagrams": INT, "malformed": INT,
                "kernel_drops": INT, "kafka_dropped": INT, "spill_pending": INT})},
            "totals": _obj({k: NUM for k in ("datagrams_per_s", "samples_per_s")} |
                           {k: INT for k in ("datagrams", "malformed", "kernel_drops", "kafka_dropped",
                                             "spill_pending")}),
            "sinks": _map({}, "consumer lag per sink group"),
            "processors": {"type": "array", "items": component}, "sink_instances": {"type": "array", "items": component},
            "controls": {"type": "array", "items": component}, "api": {"type": "array", "items": component},
            "events": {"type": "integer", "description": "events read"},
            "flows": _strings("flow definitions"), "thresholds": _strings("thresholds")},
            ["time", "ingesters", "totals"], "The pipeline's status (the status page)"),
    }


# ---------------------------------------------------------------- operations

PATH_PARAMS = {
    "agent": ("agent address, several separated by ';', or ALL", "ALL"),
    "name": ("definition name", None),
    "metric": ("metric names separated by ',' (ALL: every one)", None),
}
ERR_400 = text_body("bad parameter (the message names it)")
ERR_404 = text_body("no such definition")
DEFINITION_REFUSED = {"400": refusal("the definition is refused: the message names the field and token"),
                      "409": refusal("the definitions of this kind reached their limit")}


def _definition_ops(kind: str, schema: str, list_path: str, one_path: str) -> dict[tuple[str, str], Operation]:
    every = {"type": "object", "additionalProperties": ref(schema), "description": f"every {kind} by name"}
    return {("GET", list_path): Operation(responses={"200": json_body(every)}),
            ("GET", one_path): Operation(responses={"200": json_body(ref(schema)), "404": ERR_404}),
            ("PUT", one_path): Operation(body=ref(schema), responses=DEFINITION_REFUSED)}


# /history/*/json (api/history.py): ClickHouse's answers over a time range cut into steps
_RATES = {"type": "array", "items": {"type": "number", "nullable": True}, "description": "one value per step "
          "(null: nothing in that step)"}
_RANGE = {"from": {**INT, "description": "epoch s"}, "to": {**INT, "description": "epoch s"},
          "step": {**INT, "description": "seconds per point"}, "times": {"type": "array", "items": INT,
                                                                        "description": "each step's start, epoch s"}}
HISTORY_FLOWS = _obj({**_RANGE, "value": STR, "unit": {**STR, "enum": ["bytes/s", "bits/s", "frames/s"]},
                      "table_used": {**STR, "enum": ["flows_1m", "flows_1h", "flow_samples"]},
                      "series": {"type": "array", "items": _obj({"key": {"type": "array", "items": STR},
                                                                 "label": STR, "values": _RATES})},
                      "other": _RATES,
                      "totals": {"type": "array", "items": _obj({"key": {"type": "array", "items": STR}, "label": STR,
                                                                 "total": NUM, "avg_rate": NUM})}},
                     description="the top N keys of the dimensions over time; everything else as other")
HISTORY_SANKEY = _obj({"nodes": {"type": "array", "items": _obj({"name": STR, "dimension": STR})},
                       "links": {"type": "array", "items": _obj({"source": INT, "target": INT, "value": NUM})}},
                      description="source -> destination bytes over the range")
HISTORY_COUNTERS = _obj({**_RANGE, "series": _map(_RATES, "in_bps, out_bps, in_utilization, out_utilization, "
                                                  "in_errors, out_errors, in_discards, out_discards"),
                         "units": _map(STR, "each series' unit")}, description="one interface's counters over time")
HISTORY_STATUS = _obj({**_RANGE, "series": {"type": "array", "items": _obj({
    "agent": STR, "flow_samples_per_s": _RATES, "counter_samples_per_s": _RATES})}},
    description="samples per second per agent over time")
HISTORY_EVENTS = _obj({"from": _RANGE["from"], "to": _RANGE["to"],
                      "events": {"type": "array", "items": ref("Event")}}, description="events of the range, newest first")
HISTORY_ERRORS = {"400": refusal("a parameter is refused: the message names it (the filter's: position and token)"),
                  "503": refusal("ClickHouse cannot be reached: the message names the cause")}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/version"): Operation(responses={"200": text_body("the version")}),
    **_definition_ops("flow", "FlowDefinition", "/flow/json", "/flow/{name}/json"),
    **_definition_ops("threshold", "ThresholdDefinition", "/threshold/json", "/threshold/{name}/json"),
    **_definition_ops("forwarding target", "ForwardingDefinition", "/forwarding/json", "/forwarding/{name}/json"),
    **_definition_ops("group set", "GroupSet", "/group/json", "/group/{name}/json"),
    ("PUT", "/group/json"): Operation(body=_map(ref("GroupSet"), "{set name: {group: [CIDR, ...]}}; sets not "
                                                "named are deleted"), responses=DEFINITION_REFUSED),
    ("GET", "/topology/json"): Operation(responses={"200": json_body(ref("Topology"))}),
    ("PUT", "/topology/json"): Operation(body=ref("Topology"), responses=DEFINITION_REFUSED),
    ("GET", "/activeflows/{agent}/{name}/json"): Operation(
        responses={"200": json_body({"type": "array", "items": ref("ActiveFlow")}, "the largest flows, largest "
                                    "first"), "400": ERR_400}),
    ("GET", "/events/json"): Operation(
        responses={"200": json_body({"type": "array", "items": ref("Event")}, "events, newest first"),
                   "400": ERR_400}),
    ("GET", "/flows/json"): Operation(
        responses={"200": json_body({"type": "array", "items": ref("LoggedFlow")}, "logged flows, newest first"),
                   "400": ERR_400}),
    ("GET", "/flowkeys/json"): Operation(responses={"200": json_body(_map(MS_AGO, "{flow key: ms since seen}"))}),
    ("GET", "/agents/json"): Operation(responses={"200": json_body(_map(ref("Agent"), "{agent address: counters}"))}),
    ("GET", "/analyzer/json"): Operation(responses={"200": json_body(_obj(
        {"version": STR, "uptime": MS_AGO, "sFlowAgents": INT, "sFlowDatagramsReceived": INT,
         "sFlowFlowSamples": INT, "sFlowCounterSamples": INT, "sFlowParseErrors": INT, "ingesters": INT},
        ["version", "uptime"], "sFlow-RT's analyzer fields and sflowpipe's own", extra=True))}),
    ("GET", "/license/json"): Operation(responses={"200": json_body(_obj(
        {"analyzer": _obj({}, extra=True), "license": _obj({}, extra=True)}, ["analyzer", "license"]))}),
    ("GET", "/metrics/json"): Operation(responses={"200": json_body(_map(MS_AGO, "{metric name: ms since seen}"))}),
    ("GET", "/metric/{agent}/json"): Operation(responses={"200": json_body(_map(
        {"anyOf": [NUM, STR]}, "{DATASOURCE.METRIC: value}"))}),
    ("GET", "/metric/{agent}/{metric}/json"): Operation(
        responses={"200": json_body({"type": "array", "items": ref("Metric")}, "one summary per metric named"),
                   "400": ERR_400}),
    ("GET", "/dump/{agent}/{metric}/json"): Operation(
        responses={"200": json_body({"type": "array", "items": ref("MetricValue")}), "400": ERR_400}),
    ("GET", "/table/{agent}/{metric}/json"): Operation(
        responses={"200": json_body({"type": "array", "items": {"type": "array", "items": ref("MetricValue")}},
                                    "one row per agent and data source, one cell per metric"), "400": ERR_400}),
    ("GET", "/sflowpipe/status/json"): Operation(responses={"200": json_body(ref("Status"))}),
    **{("GET", p): Operation(responses={"200": json_body({"type": "object", "description": "OpenAPI 3.0"})})
       for p in ("/api-docs", "/openapi.json")},
    **{("GET", path): Operation(responses={"200": json_body(schema), **HISTORY_ERRORS})
       for path, schema in (("/history/flows/json", HISTORY_FLOWS), ("/history/sankey/json", HISTORY_SANKEY),
                            ("/history/counters/json", HISTORY_COUNTERS), ("/history/status/json", HISTORY_STATUS),
                            ("/history/events/json", HISTORY_EVENTS))},
}


def operation(method: str, path: str, summary: str, params: Iterable[Param | tuple[str, str]],
              extra: Operation | None) -> dict:
    """One operation object of the document."""
    parameters = []
    for p in _path_params(path):
        description, example = PATH_PARAMS.get(p, ("", None))
        parameters.append({"name": p, "in": "path", "required": True, "description": description,
                           "schema": STR} | ({"example": example} if example else {}))
    parameters += [Param.of(p).openapi() for p in params]
    op: dict[str, Any] = {"summary": summary, "operationId": _operation_id(method, path), "parameters": parameters,
                          "tags": [_tag(path)]}
    responses: dict[str, dict] = {}
    if method in ("PUT", "DELETE"):
        responses["204"] = {"description": "done"}
        responses["403"] = text_body("read-only API: definitions cannot be changed here")
    elif path.endswith("/txt"):
        responses["200"] = text_body("Prometheus text format")
        responses["400"] = ERR_400
    else:
        responses["200"] = json_body({})
    responses["401"] = text_body("authentication required")
    if extra is not None:
        responses.update(extra.responses)
        if extra.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": extra.body}}}
    op["responses"] = dict(sorted(responses.items()))
    return op


def document(routes: Iterable[tuple], title: str, version: str, secured: bool,
             operations: dict[tuple[str, str], Operation] = OPERATIONS) -> dict:
    """The document of ``routes`` (the server's table: method, path, handler, summary, parameters)."""
    paths: dict[str, dict] = {}
    for method, path, _, summary, params in routes:
        paths.setdefault(path, {})[method.lower()] = operation(method, path, summary, params,
                                                               operations.get((method, path)))
    used = {op["tags"][0] for ops in paths.values() for op in ops.values()}
    tags = [{"name": n, "description": d} for n, d in TAGS.items() if n in used]
    tags += [{"name": n} for n in dict.fromkeys(op["tags"][0] for ops in paths.values() for op in ops.values())
             if n not in TAGS]
    doc: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": title, "version": version, "description": DESCRIPTION},
                           "tags": tags, "paths": paths, "components": {"schemas": component_schemas()}}
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"},
                                                "basic": {"type": "http", "scheme": "basic"}}
        doc["security"] = [{"bearer": []}, {"basic": []}]
    return doc


DESCRIPTION = ("sFlow-RT's REST paths and JSON shapes, served by the pipeline's API. Definitions written here go "
               "to the config topic: every worker applies them. Try it out sends requests to this server.")
TAGS = {  # the explorer's sections, in this order
    "live data": "top flows, events, logged flows and agents, as the workers compute them now",
    "definitions": "flows, thresholds, address groups, forwarding targets and the topology",
    "metrics": "counter and flow metrics by agent and data source",
    "prometheus": "the same in Prometheus text format",
    "pipeline": "the pipeline's own health and this document",
}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}") for w in path.replace(".", "_").split("/") if w]
    return method.lower() + "_" + "_".join(words)


def _tag(path: str) -> str:
    """The explorer's section of a path: definitions, live data, metrics, Prometheus, pipeline."""
    first = path.strip("/").split("/")[0]
    if first in ("flow", "threshold", "group", "forwarding", "topology"):
        return "definitions"
    if first in ("activeflows", "events", "flows", "flowkeys", "agents"):
        return "live data"
    if first in ("metrics", "metric", "dump", "table"):
        return "metrics"
    if first in ("prometheus", "app"):
        return "prometheus"
    if first in ("version", "analyzer", "license", "sflowpipe", "api-docs", "openapi.json"):
        return "pipeline"
    return first  # a new family of paths (e.g. /history/...): its own section
