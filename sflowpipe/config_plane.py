"""Flow, threshold and group definitions: from the settings/YAML file at start-up, then live
from the compacted config topic, so every worker sees every definition.

Config topic messages: key ``flow:NAME``, ``threshold:NAME``, ``group:NAME``,
``forwarding:NAME`` or ``topology:topology`` (sFlow-RT's /topology/json body; one) (UTF-8), value the
definition as JSON (the same shape as in the YAML file), or empty/null to delete it. The
topic is compacted: the latest value per key is the definition. Every worker reads the whole
topic (no consumer group), so the topic's partition count does not matter.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sflowpipe.settings import FlowDefinition, ForwardingDefinition, LimitSettings, Settings, ThresholdDefinition
from sflowpipe.typed import ValidationError

if TYPE_CHECKING:
    from sflowpipe.kafka import KafkaClients
# The flow compiler, the Kafka client and YAML are imported where used: the API and the exporter
# check their start-up definitions (often none) before they connect (README "Start-up").

log = logging.getLogger(__name__)

KINDS = ("flow", "threshold", "group", "forwarding", "topology")  # every kind on the config topic
TOPOLOGY_NAME = "topology"  # the one topology definition
Listener = Callable[[str, str, Any], None]  # (kind, name, definition or None)


class DefinitionError(ValueError):
    """A definition that cannot be used; the message names the bad key or token.

    ``detail`` is the JSON body of the refusal: ``error`` and, where known, the ``field``, the
    offending ``token`` and its ``position`` in that field."""

    def __init__(self, message: str, detail: dict | None = None) -> None:
        super().__init__(message)
        self.detail = {"error": message, **(detail or {})}


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e999
        raise ValueError(f"{text} is not a finite number")
    return v


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number JSON allows")


def loads(text: str | bytes) -> Any:
    """A definition's JSON body, strictly: no NaN, Infinity or numbers that overflow to infinity
    (Python's json takes them; they would be stored, fire thresholds on every value and make the
    API's JSON invalid). Raises ValueError."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def dumps(body: Any) -> str:
    """JSON that any parser reads (refuses NaN and infinities: ValueError)."""
    return json.dumps(body, allow_nan=False)


def over_cap(limits: LimitSettings, kind: str, count: int) -> DefinitionError | None:
    """The refusal of a ``count``-th definition of ``kind`` beyond its cap in ``limits`` (None: within)."""
    cap = limits.cap(kind)
    if cap is None or count <= cap:
        return None
    return DefinitionError(f"{kind} definitions are limited to {cap} (limits.max_{kind}s)",
                           {"field": f"limits.max_{kind}s", "limit": cap})


def check_caps(limits: LimitSettings, definitions: list[tuple[str, str, Any]]) -> None:
    """Raise DefinitionError when ``definitions`` ((kind, name, body), later ones replacing earlier
    ones of the same name) hold more of a kind than its cap."""
    names: dict[str, set[str]] = {}
    for kind, name, _ in definitions:
        names.setdefault(kind, set()).add(name)
    for kind, n in names.items():
        if (e := over_cap(limits, kind, len(n))) is not None:
            raise e


def parse(kind: str, name: str, body: Any) -> Any:
    """Validate one definition with the code the workers run (a flow is compiled: keys, filter,
    value); returns the typed definition (or None to delete). Every path that accepts a
    definition (REST, CLI, YAML file, config topic) calls this, so nothing uncomputable is stored."""
    if body is None:
        return None
    from sflowpipe.flowspec import FlowSpecError, parse_definition
    from sflowpipe.topology import parse_topology

    try:
        if kind == "flow":
            typed = FlowDefinition.model_validate(body)
            try:
                parse_definition(name, typed.model_dump(by_alias=True))
            except FlowSpecError as e:
                detail = e.detail()
                detail.pop("error")
                raise DefinitionError(f"flow {name}: {e}".replace(f"flow {name}: flow {name!r}: ", f"flow {name}: "),
                                      detail) from None
            return typed
        if kind == "threshold":
            return ThresholdDefinition.model_validate(body)
        if kind == "group":
            return _parse_groups(name, body)
        if kind == "forwarding":
            return ForwardingDefinition.model_validate(body)
        if kind == "topology":
            if name != TOPOLOGY_NAME:
                raise DefinitionError(f"topology {name}: the topology definition is named {TOPOLOGY_NAME!r}",
                                      {"field": "name", "token": name})
            try:
                return parse_topology(body)
            except FlowSpecError as e:
                detail = e.detail()
                detail.pop("error")
                raise DefinitionError(str(e), detail) from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "definition"
        raise DefinitionError(f"{kind} {name}: {where}: {first['msg']}", {"field": where}) from None
    raise DefinitionError(f"unknown definition kind {kind!r} (expected {', '.join(KINDS[:-1])} or {KINDS[-1]})")


def _parse_groups(name: str, body: Any) -> dict[str, list[str]]:
    """A group set: {group name: [CIDR, ...]}, every CIDR checked."""
    if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
        raise DefinitionError(f"group {name}: expected {{group name: [CIDR, ...]}}")
    out: dict[str, list[str]] = {}
    for group, cidrs in body.items():
        for c in cidrs:
            try:
                ipaddress.ip_network(str(c).strip(), strict=False)
            except ValueError:
                raise DefinitionError(f"group {name}: {group}: {c!r} is not an address or CIDR",
                                      {"field": str(group), "token": str(c)}) from None
        out[str(group)] = [str(c).strip() for c in cidrs]
    return out


def startup_definitions(settings: Settings) -> list[tuple[str, str, Any]]:
    """Definitions from settings and the YAML file (the file wins over settings)."""
    out: list[tuple[str, str, Any]] = []
    for name, fd in settings.processors.flows.items():
        out.append(("flow", name, parse("flow", name, fd.model_dump(by_alias=True))))
    for name, td in settings.processors.thresholds.items():
        out.append(("threshold", name, td))
    for name, g in settings.enrich.groups.items():
        out.append(("group", name, g))
    path = settings.processors.definitions_file
    if path:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        out += [(kind, name, parse(kind, name, body)) for kind, name, body in file_definitions(data)]
    check_caps(settings.limits, out)
    return out


def file_definitions(data: dict) -> list[tuple[str, str, Any]]:
    """(kind, name, body) of a definitions file: sections flows, thresholds, groups and topology (one
    sFlow-RT /topology/json body), unparsed."""
    out = [(kind, name, body) for section, kind in (("flows", "flow"), ("thresholds", "threshold"),
                                                    ("groups", "group"))
           for name, body in (data.get(section) or {}).items()]
    if data.get("topology"):
        out.append(("topology", TOPOLOGY_NAME, data["topology"]))
    return out


def publish(settings: Settings, kind: str, name: str, body: Any, timeout: float = 30.0,
            clients: KafkaClients | None = None) -> tuple[int, int] | None:
    """Write (or, with body None, delete) a definition on the config topic; where it was written
    (partition, offset), so that the writer can tell its own write from older ones still to be read."""
    from sflowpipe.kafka import KafkaClients

    return publish_to(clients or KafkaClients(settings.kafka), settings.kafka.topic(settings.topics.config),
                      kind, name, body, timeout)


def publish_to(clients: KafkaClients, topic: str, kind: str, name: str, body: Any,
               timeout: float = 30.0) -> tuple[int, int] | None:
    """``publish`` for a component: its Kafka clients and the (prefixed) config topic, no Settings
    (``functools.partial(publish_to, clients, topic)`` is a component's publisher)."""
    if kind not in KINDS:
        raise DefinitionError(f"unknown definition kind {kind!r}")
    if body is not None:
        parse(kind, name, body)
    clients.ensure_topics([topic], config={"cleanup.policy": "compact"})
    p = clients.producer()
    value = None if body is None else dumps(body).encode()
    where: list[tuple[int, int]] = []

    def delivered(err, msg) -> None:
        if err is None and msg.offset() is not None and msg.offset() >= 0:
            where.append((msg.partition(), msg.offset()))

    p.produce(topic, value, f"{kind}:{name}".encode(), on_delivery=delivered)
    if p.flush(timeout):
        raise RuntimeError("config topic: message not delivered")
    return where[0] if where else None


class ConfigWatcher:
    """Owns a consumer of the whole config topic and tells listeners about every change."""

    def __init__(self, clients: KafkaClients, topic: str, limits: LimitSettings, listener: Listener,
                 older: Callable[[str, str, int, int], bool] | None = None) -> None:
        self.clients = clients
        self.limits = limits
        self.listener = listener
        # older(kind, name, partition, offset): True for a message older than what the owner wrote
        # itself and applied already (an API answering a GET right after its PUT)
        self.older = older
        self.topic = topic  # the config topic, prefixed
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.names: dict[str, set[str]] = {}  # defined names per kind, for the caps in limits

    def count(self, definitions: list[tuple[str, str, Any]]) -> None:
        """Definitions applied otherwise (start-up): they count toward the caps in limits."""
        for kind, name, d in definitions:
            if d is not None:
                self.names.setdefault(kind, set()).add(name)

    def start(self) -> None:
        # built here, not in the thread: a client setting librdkafka refuses stops the start, in one line
        self.consumer = self.clients.consumer("sflowpipe-config-reader", {"enable.auto.commit": False})
        self.thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(10)

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        c = self.consumer
        try:
            while not self.stopping.is_set():
                try:
                    md = c.list_topics(self.topic, timeout=5).topics.get(self.topic)
                    if md is not None and md.error is None and md.partitions:
                        break
                except KafkaException:
                    pass
                self.stopping.wait(1.0)
            else:
                return
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in md.partitions])
            while not self.stopping.is_set():
                for m in c.consume(100, 0.5):
                    if m.error() is None:
                        self._apply(m.key(), m.value(), m.partition(), m.offset())
        finally:
            c.close()

    def _apply(self, key: bytes | None, value: bytes | None, partition: int = -1, offset: int = -1) -> None:
        try:
            kind, _, name = (key or b"").decode().partition(":")
            if not name:
                raise DefinitionError(f"config key {key!r}: expected kind:name")
            if self.older is not None and self.older(kind, name, partition, offset):
                return
            body = loads(value) if value else None
            typed = parse(kind, name, body)
            names = self.names.setdefault(kind, set())
            if typed is not None and name not in names:
                refusal = over_cap(self.limits, kind, len(names) + 1)
                if refusal is not None:
                    raise refusal
            self.listener(kind, name, typed)
            (names.discard if typed is None else names.add)(name)
        except (DefinitionError, ValueError) as e:
            msg = f"config topic: rejected {key!r}: {e}"
            self.errors.append(msg)
            log.error(msg)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
