"""The REST API (sFlow-RT's paths and JSON shapes) and the web UI, on aiohttp.

``ROUTES`` is the one table of what is served: the handlers are registered from it and the
OpenAPI document (``/api-docs``, ``/openapi.json``) is generated from it. Definitions written
here go to the config topic (every worker, sink and API instance applies them from there) and
into this instance's state at once, so a GET right after a PUT sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from api import analyzer
from api.aggregate import AGGREGATIONS
from api.history import History, HistoryError
from api.openapi import Param, document
from api.state import ApiState
from sflowpipe.config_plane import DefinitionError, loads, over_cap, parse
from sflowpipe import __version__
from sflowpipe.auth import CHALLENGE, Authenticator
from sflowpipe.metrics import Metrics
from sflowpipe.settings import ApiSettings, LimitSettings
from sflowpipe.status import API_FIELDS, STATUS_EVERY_S, component_status, instance_id
from sflowpipe.names import parse_agents
from sflowpipe.readmodels.activeflows import AGG_MODES
from sflowpipe.readmodels.exporter import BadRequest

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
EXPORT_JS = "/app/prometheus/scripts/export.js"  # sFlow-RT's prometheus app, served here too
EXPORT_FLOW_PARAMS = [
    Param("metric", "Prometheus metric name", required=True),
    Param("key", "flow keys, repeated or comma separated", repeated=True),
    ("value", "flow value (bytes, frames...)"), ("filter", "flow filter"),
    Param("label", "label names replacing key names, by position", repeated=True),
    Param("scale", "multiply values", "number", 1), Param("minValue", "smallest value", "number", 0.1),
    Param("maxFlows", "flows returned", "integer", 20),
    Param("aggMode", "over agents and data sources", enum=("max", "sum"), default="max"),
    ("flow", "name a flow definition directly")]
HISTORY_RANGE_PARAMS = [
    Param("range", "back from now (ignored with from)", enum=("15m", "1h", "6h", "24h", "7d", "30d"), default="15m"),
    Param("from", "custom range start, epoch seconds (with to, instead of range)", "integer", minimum=0),
    Param("to", "custom range end, epoch seconds (default now)", "integer", minimum=0)]
HISTORY_FLOW_PARAMS = [
    ("dimensions", "flow-sample columns to group by, comma separated (default src_ip,dst_ip): agent, in_if, "
     "out_if, src_ip, dst_ip, protocol, src_port, dst_port, src_country, dst_country, src_asn, dst_asn, vlan..."),
    ("filter", "e.g. protocol = 6 and dst_port in (80, 443) and not src_ip = 10.0.0.0/8"),
    *HISTORY_RANGE_PARAMS, Param("n", "top N keys (1-50)", "integer", 10, minimum=1),
    Param("value", "rates in bytes/s, bits/s or frames/s", enum=("bytes", "bits", "frames"), default="bytes")]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    try:
        text = json.dumps(data, allow_nan=False)
    except ValueError:  # a NaN or infinity got into a value: null, as JSON has no such number
        log.warning("non-finite number in a %d answer, sent as null", status)
        text = json.dumps(_finite(data), allow_nan=False)
    return web.Response(text=text, status=status, content_type="application/json")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _error(status: int, message: str) -> web.Response:
    return web.Response(text=message + "\n", status=status, content_type="text/plain")


def _refusal(kind: str, name: str, e: DefinitionError) -> web.Response:
    """400 with a JSON body naming the fault: error, kind, name and, where known, field, token, position."""
    log.info("refused %s %s: %s", kind, name, e)
    return _json({**e.detail, "kind": kind, "name": name}, status=400)


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer\n") from None


def _float(request: web.Request, name: str, default: float) -> float:
    try:
        v = float(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number\n") from None
    if not math.isfinite(v):  # float() takes nan, inf and 1e999
        raise web.HTTPBadRequest(text=f"{name} must be a finite number\n")
    return v


class Api:
    """Owns the aiohttp application: routes, authentication, the static UI."""

    def __init__(self, cfg: ApiSettings, limits: LimitSettings, state: ApiState,
                 publisher: Callable[[str, str, Any], tuple[int, int] | None], history: History | None = None):
        self.cfg = cfg
        self.history = history  # ClickHouse's tables, for /history/*: None when the API was given none
        self.limits = limits
        self.state = state
        self.publisher = publisher  # writes a definition to the config topic: (partition, offset)
        self.closing = asyncio.Event()  # set at shutdown: open long-polls answer at once
        self.metrics = Metrics()  # served by api/service.py on api.metrics_listen
        self.metrics.describe("sflowpipe_api_requests_total", "counter", "HTTP requests answered, by method, route "
                              "(the path template) and status", labels=("method", "route", "status"))
        self.metrics.describe("sflowpipe_api_request_seconds", "histogram", "time to answer a request (long-polls "
                              "included), by route", labels=("route",))
        self.long_polls = self.metrics.gauge("sflowpipe_api_long_polls_open", "long-polls waiting now "
                                             "(/events/json, /flows/json with a timeout)")
        self.instance = instance_id("api")
        self.auth = Authenticator(cfg, log, "api")
        if not cfg.defines_flows:  # read-only: no path defines anything, a scrape neither
            state.exporter.publish_definition = None
        elif state.exporter.publish_definition is None:  # export.js scrapes define the flows they name
            state.exporter.publish_definition = lambda name, body: self.publisher("flow", name, body)
        self.routes: list[tuple[str, str, Handler, str, list[Param | tuple[str, str]]]] = [
            # method, path, handler, summary, query parameters ((name, description): a string, or a
            # typed Param); bodies and answers: api/openapi.py's OPERATIONS
            ("GET", "/version", self.version, "Software version", []),
            ("GET", "/flow/json", self.list_kind("flow"), "All flow definitions", []),
            ("GET", "/flow/{name}/json", self.get_kind("flow"), "A flow definition", []),
            ("PUT", "/flow/{name}/json", self.put_kind("flow"), "Define a flow: {keys, value, filter, t, n, fs}", []),
            ("DELETE", "/flow/{name}/json", self.delete_kind("flow"), "Delete a flow", []),
            ("GET", "/activeflows/{agent}/{name}/json", self.activeflows, "Largest flows now",
             [Param("maxFlows", "flows returned", "integer", 100), Param("minValue", "smallest value", "number", 0),
              Param("aggMode", "over agents and data sources", enum=AGG_MODES, default="max")]),
            ("GET", "/threshold/json", self.list_kind("threshold"), "All thresholds", []),
            ("GET", "/threshold/{name}/json", self.get_kind("threshold"), "A threshold", []),
            ("PUT", "/threshold/{name}/json", self.put_kind("threshold"),
             "Set a threshold: {metric, value, byFlow, timeout, filter}", []),
            ("DELETE", "/threshold/{name}/json", self.delete_kind("threshold"), "Delete a threshold", []),
            ("GET", "/events/json", self.events, "Events newest first; long-polls when none is newer",
             [Param("eventID", "return events after this id", "integer", -1),
              Param("maxEvents", "at most this many", "integer", 100, minimum=1),
              Param("timeout", "seconds to wait for an event (at most 600)", "number", 0),
              ("thresholdID", "only this threshold")]),
            ("GET", "/flows/json", self.flows, "Logged flows (log: true definitions) newest first; long-polls "
             "when none is newer", [Param("flowID", "return flows after this id", "integer", -1),
                                    ("name", "only this flow definition"),
                                    Param("maxFlows", "at most this many", "integer", 100, minimum=1),
                                    Param("timeout", "seconds to wait for a flow (at most 600)", "number", 0)]),
            ("GET", "/flowkeys/json", self.flowkeys, "Flow keys seen lately and ms since last seen", []),
            ("GET", "/group/json", self.list_kind("group"), "All address group sets", []),
            ("PUT", "/group/json", self.put_groups, "Replace every address group set: {set: {group: [CIDR...]}}",
             []),
            ("GET", "/group/{name}/json", self.get_kind("group"), "An address group set", []),
            ("PUT", "/group/{name}/json", self.put_kind("group"), "Set address groups: {group: [CIDR, ...]}", []),
            ("DELETE", "/group/{name}/json", self.delete_kind("group"), "Delete a group set", []),
            ("GET", "/forwarding/json", self.list_kind("forwarding"), "All forwarding targets", []),
            ("GET", "/forwarding/{name}/json", self.get_kind("forwarding"), "A forwarding target", []),
            ("PUT", "/forwarding/{name}/json", self.put_kind("forwarding"),
             "Forward raw sFlow to {address, port} (sflowpipe forward --from-config)", []),
            ("DELETE", "/forwarding/{name}/json", self.delete_kind("forwarding"), "Stop forwarding", []),
            ("GET", "/topology/json", self.get_topology, "The network topology", []),
            ("PUT", "/topology/json", self.put_topology, "Set the network topology: {nodes, links}", []),
            ("GET", "/agents/json", self.agents, "Agents sending sFlow, with sFlow-RT's session counters",
             [Param("agent", "only these agents", repeated=True)]),
            ("GET", "/analyzer/json", self.analyzer, "Pipeline health in sFlow-RT's analyzer fields", []),
            ("GET", "/prometheus/analyzer/txt", self.prometheus_analyzer, "Pipeline health in Prometheus format", []),
            ("GET", "/license/json", self.license, "License type and status (sFlow-RT's shape)", []),
            ("GET", "/metrics/json", self.metric_names, "Active metric names and ms since last seen", []),
            ("GET", "/metric/{agent}/json", self.agent_metrics, "All metrics of an agent", []),
            ("GET", "/metric/{agent}/{metric}/json", self.metric,
             "Counter and flow metrics (flow: topKeys; DATASOURCE.NAME selects one data source), summarized over "
             "agents (';' list or ALL) and data sources by a prefix: " + ", ".join(a + ":" for a in AGGREGATIONS), []),
            ("GET", "/dump/{agent}/{metric}/json", self.dump, "Every data source's value of metrics (ALL: every one)",
             []),
            ("GET", "/table/{agent}/{metric}/json", self.table,
             "Metrics tabulated per agent and data source; sort:NAME:-N sorts by NAME (largest first) and keeps N",
             []),
            ("GET", "/prometheus/metrics/{agent}/{metric}/txt", self.prometheus, "Metrics in Prometheus format", []),
            ("GET", EXPORT_JS + "/flows/{agent}/txt", self.export_flows,
             "Top flows in Prometheus format (sFlow-RT's prometheus app)", EXPORT_FLOW_PARAMS),
            ("GET", EXPORT_JS + "/dump/{agent}/{metric}/txt", self.prometheus,
             "Metrics in Prometheus format (sFlow-RT's prometheus app)", []),
            ("GET", "/sflowpipe/status/json", self.status, "Pipeline status: ingesters, rates, drops, sink lag; "
             "processors', sinks', controls' and this API's own numbers", []),
            ("GET", "/history/flows/json", self.from_history("flows"),
             "Top N flows over time from ClickHouse (rollup tables where they suffice): rates per step, the rest as "
             "other, totals", HISTORY_FLOW_PARAMS),
            ("GET", "/history/sankey/json", self.from_history("sankey"),
             "Top N flows over a time range from ClickHouse as a Sankey: nodes per dimension, links with totals",
             HISTORY_FLOW_PARAMS),
            ("GET", "/history/counters/json", self.from_history("counters"),
             "An interface's traffic, utilization, errors and discards over time, from ClickHouse's counters",
             [("agent", "the agent's IP address (required)"), ("ifindex", "the interface's ifIndex (required)"),
              *HISTORY_RANGE_PARAMS]),
            ("GET", "/history/status/json", self.from_history("status"),
             "Flow and counter samples per second of each agent over time, from ClickHouse", HISTORY_RANGE_PARAMS),
            ("GET", "/history/events/json", self.from_history("events"),
             "Threshold events of a time range from ClickHouse, newest first (as /events/json)",
             [("agent", "only this agent's"), ("dataSource", "only this data source's (ifIndex)"),
              ("thresholdID", "only this threshold's"), ("address", "only those whose flow key holds this address"),
              Param("maxEvents", "at most this many (1-1000)", "integer", 100, minimum=1), *HISTORY_RANGE_PARAMS]),
            ("GET", "/api-docs", self.openapi, "This OpenAPI document", []),
            ("GET", "/openapi.json", self.openapi, "This OpenAPI document", []),
        ]

    # ---------------------------------------------------------------- application

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.metrics_middleware, self.auth_middleware])
        app.cleanup_ctx.append(self._own_status_every)
        for method, path, handler, _, _ in self.routes:
            app.router.add_route(method, path, handler)
        app.router.add_get("/", _to_ui)
        app.router.add_get("/ui/", _to_ui)
        app.router.add_static("/ui/", STATIC, follow_symlinks=False)
        return app

    def own_status(self) -> dict:
        """This instance's numbers, read from its own registry as a status message's (sflowpipe/status.py);
        not published: each API instance shows its own."""
        return component_status("api", "sflowpipe-api", self.instance, self.metrics, API_FIELDS)

    async def _own_status_every(self, app: web.Application):
        """Keeps this instance's status in the state every 2 s, as the other components' arrive:
        the status page's API row and its requests per second."""
        async def tick() -> None:
            while True:
                self.state.add_component("api", self.own_status())
                await asyncio.sleep(STATUS_EVERY_S)

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    @web.middleware
    async def metrics_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts each request by its route template (bounded: never the raw path)."""
        info = request.match_info
        route = getattr(info.route.resource, "canonical", None) if info.route.resource is not None else None
        route = route or "unmatched"
        t0 = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            self.metrics.inc("sflowpipe_api_requests_total",
                             labels=(("method", request.method), ("route", route), ("status", str(status))))
            self.metrics.observe("sflowpipe_api_request_seconds", time.perf_counter() - t0, (("route", route),))

    @web.middleware
    async def auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        a = self.cfg
        if not self.auth.allows(request.headers.get("Authorization"), request.remote):
            return web.Response(status=401, text="authentication required\n", headers={"WWW-Authenticate": CHALLENGE})
        if a.read_only and request.method not in ("GET", "HEAD", "OPTIONS"):
            return _error(403, "read-only API: definitions cannot be changed here")
        try:
            return await handler(request)
        except (BadRequest, ValueError) as e:
            return _error(getattr(e, "status", 400), str(e).strip())

    # ---------------------------------------------------------------- definitions

    def list_kind(self, kind: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return _json(self.state.get_definitions(kind))
        return handler

    def get_kind(self, kind: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            d = self.state.get_definition(kind, request.match_info["name"])
            return _json(d) if d is not None else _error(404, f"no {kind} {request.match_info['name']}")
        return handler

    def put_kind(self, kind: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            return await self._define(kind, name, await request.text())
        return handler

    async def _define(self, kind: str, name: str, text: str) -> web.Response:
        """Check a definition with the workers' code, then publish it and apply it here."""
        try:
            body = loads(text)  # scripts often send no Content-Type
        except ValueError as e:
            return _refusal(kind, name, DefinitionError(f"{kind} {name}: body is not JSON: {e}"))
        try:
            typed = parse(kind, name, body)
        except DefinitionError as e:
            return _refusal(kind, name, e)
        if typed is None:
            return _refusal(kind, name, DefinitionError(f"{kind} {name}: empty definition (use DELETE)"))
        if (full := self._over_cap(kind, [name])) is not None:
            return full
        where = await asyncio.get_running_loop().run_in_executor(None, self.publisher, kind, name, body)
        self.state.define(kind, name, typed, written=where)
        return web.Response(status=204)

    async def put_groups(self, request: web.Request) -> web.Response:
        """sFlow-RT's PUT /group/json: the body is every group set; sets not in it are deleted."""
        try:
            sets = loads(await request.text())
        except ValueError as e:
            return _refusal("group", "", DefinitionError(f"group: body is not JSON: {e}"))
        if not isinstance(sets, dict):
            return _refusal("group", "", DefinitionError("group: expected {set name: {group: [CIDR, ...]}}"))
        typed = {}
        for name, body in sets.items():  # every set checked before any is published
            try:
                typed[name] = parse("group", name, body)
            except DefinitionError as e:
                return _refusal("group", name, e)
        if (full := self._over_cap("group", list(sets), replace=True)) is not None:
            return full
        loop = asyncio.get_running_loop()
        for name in set(self.state.get_definitions("group")) - set(sets):
            where = await loop.run_in_executor(None, self.publisher, "group", name, None)
            self.state.define("group", name, None, written=where)
        for name, body in sets.items():
            where = await loop.run_in_executor(None, self.publisher, "group", name, body)
            self.state.define("group", name, typed[name], written=where)
        return web.Response(status=204)

    def _over_cap(self, kind: str, names: list[str], replace: bool = False) -> web.Response | None:
        """409 naming the limit when defining ``names`` would pass the cap on ``kind`` (``replace``:
        they are all there will be)."""
        have = set() if replace else set(self.state.get_definitions(kind))
        e = over_cap(self.limits, kind, len(have | set(names)))
        if e is None:
            return None
        log.warning("refused %s %s: %s", kind, ",".join(names[:3]), e)
        return _json({**e.detail, "kind": kind, "name": names[0] if len(names) == 1 else ""}, status=409)

    async def get_topology(self, request: web.Request) -> web.Response:
        return _json(self.state.get_definition("topology", "topology") or {})

    async def put_topology(self, request: web.Request) -> web.Response:
        """Published as definition kind ``topology`` named ``topology`` (``link:`` keys use it)."""
        return await self._define("topology", "topology", await request.text())

    def delete_kind(self, kind: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            where = await asyncio.get_running_loop().run_in_executor(None, self.publisher, kind, name, None)
            self.state.define(kind, name, None, written=where)
            return web.Response(status=204)
        return handler

    # ---------------------------------------------------------------- live data

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(text=__version__, content_type="text/plain")

    async def activeflows(self, request: web.Request) -> web.Response:
        agg = request.query.get("aggMode", "max")
        if agg not in AGG_MODES:
            return _error(400, "aggMode must be max or sum")
        rows = self.state.active_flows(parse_agents(request.match_info["agent"]), request.match_info["name"],
                                       _int(request, "maxFlows", 100), _float(request, "minValue", 0.0), agg)
        return _json(rows)

    async def events(self, request: web.Request) -> web.Response:
        after = _int(request, "eventID", -1)
        max_events = max(1, _int(request, "maxEvents", 100))
        threshold = request.query.get("thresholdID")
        with self.long_polls.track_inprogress():
            return _json(await _long_poll(lambda: self.state.events_after(after, max_events, threshold),
                                          _float(request, "timeout", 0.0), self.closing))

    async def flows(self, request: web.Request) -> web.Response:
        after = _int(request, "flowID", -1)
        max_flows = max(1, _int(request, "maxFlows", 100))
        name = request.query.get("name")
        with self.long_polls.track_inprogress():
            return _json(await _long_poll(lambda: self.state.flows_after(after, max_flows, name),
                                          _float(request, "timeout", 0.0), self.closing))

    async def flowkeys(self, request: web.Request) -> web.Response:
        return _json(self.state.flow_keys())

    async def analyzer(self, request: web.Request) -> web.Response:
        return _json(self.state.analyzer(self.own_status()))

    async def prometheus_analyzer(self, request: web.Request) -> web.Response:
        return web.Response(text=analyzer.render(self.state.analyzer(self.own_status())),
                            headers={"Content-Type": PROMETHEUS_TEXT})

    async def license(self, request: web.Request) -> web.Response:
        return _json(self.state.license())

    async def agents(self, request: web.Request) -> web.Response:
        agents = self.state.agents()
        wanted = request.query.getall("agent", [])
        if wanted:
            agents = {a: v for a, v in agents.items() if a in wanted}
        return _json(agents)

    async def metric_names(self, request: web.Request) -> web.Response:
        return _json(self.state.metric_names())

    async def agent_metrics(self, request: web.Request) -> web.Response:
        rows = self.state.metric_values(parse_agents(request.match_info["agent"]))
        return _json({f"{r['dataSource']}.{r['metricName']}": r["metricValue"] for r in rows})

    async def metric(self, request: web.Request) -> web.Response:
        specs = [s for s in unquote(request.match_info["metric"]).split(",") if s]
        return _json(self.state.metric(parse_agents(request.match_info["agent"]), specs))

    async def dump(self, request: web.Request) -> web.Response:
        spec = unquote(request.match_info["metric"])
        names = None if spec in ("ALL", "") else [s for s in re.split(r"[,;]", spec) if s]
        return _json(self.state.metric_values(parse_agents(request.match_info["agent"]), names, text=True))

    async def table(self, request: web.Request) -> web.Response:
        specs = [s for s in unquote(request.match_info["metric"]).split(",") if s]
        return _json(self.state.table(parse_agents(request.match_info["agent"]), specs))

    async def prometheus(self, request: web.Request) -> web.Response:
        spec = unquote(request.match_info["metric"])
        names = None if spec in ("ALL", "") else spec.split(",")
        text = self.state.exporter.render_metrics(parse_agents(request.match_info["agent"]), names)
        return web.Response(text=text, headers={"Content-Type": PROMETHEUS_TEXT})

    async def export_flows(self, request: web.Request) -> web.Response:
        """The exporter's own rendering (sflowpipe/readmodels/exporter.py, as sinks/prometheus.py serves
        it); a scrape naming keys no definition has defines that flow on the config topic, as
        sFlow-RT's app does (hence the executor)."""
        query = {k: request.query.getall(k) for k in request.query}
        agents = parse_agents(request.match_info["agent"])
        text = await asyncio.get_running_loop().run_in_executor(
            None, self.state.exporter.render_flows, agents, query)
        return web.Response(text=text, headers={"Content-Type": PROMETHEUS_TEXT})

    async def status(self, request: web.Request) -> web.Response:
        return _json(self.state.pipeline_status())

    def from_history(self, what: str) -> Handler:
        """/history/{what}/json: api/history.py's answer; its refusals (400) and ClickHouse away (503) as
        JSON {"error", "field"}."""
        async def handler(request: web.Request) -> web.Response:
            if self.history is None:
                return _json({"error": "history needs ClickHouse: this API was started without its settings"}, 503)
            try:
                return _json(await getattr(self.history, what)(dict(request.query)))
            except HistoryError as e:
                log.info("history %s: %s", what, e)
                return _json(e.detail, status=e.status)
        return handler

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(self.openapi_document())

    def openapi_document(self) -> dict:
        a = self.cfg
        return document(self.routes, "sflowpipe REST API (sFlow-RT compatible subset)", __version__,
                        secured=a.token is not None or bool(a.basic_user))

async def _long_poll(fetch: Callable[[], list], timeout: float, closing: asyncio.Event | None = None) -> list:
    """``fetch()`` until it finds something, ``timeout`` seconds (at most 600) have passed or the
    server is ``closing`` (a shutdown must not wait for the clients' timeouts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(max(0.0, timeout), 600.0)
    while True:
        found = fetch()
        if found or loop.time() >= deadline or (closing is not None and closing.is_set()):
            return found
        await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))


async def _to_ui(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui/index.html")

