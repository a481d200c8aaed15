"""The imported network topology (sFlow-RT's /topology/json body) and what flows ask of it.

sFlow-RT's shape: ``{"nodes": {NODE: {"agent": ADDRESS, "ports": {PORT: {"ifindex": "N"}}}},
"links": {LINK: {"node1": NODE, "port1": PORT, "node2": NODE, "port2": PORT}}}``; ``nodes`` is
optional. A link end is placed at (agent, ifIndex) from the node's ``agent`` and the port's
``ifindex`` where given; otherwise, as sFlow-RT does, from what the agent itself reports in its
counter samples: its host name (host_descr, 0:2000) is the node, a data source's port name
(port_name, 0:1005) the port (:class:`LearnedTopology`). sFlow-RT can also ask SNMP; sflowpipe
does not.

``link:inputifindex`` / ``link:outputifindex`` give the name of the link whose end is that
(agent, ifIndex): the packet came in on (left by) an inter-switch link. A port that is no link's
end (an edge port) gives no value, so the filter ``link:inputifindex=null`` keeps edge traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sflowpipe.flowspec.errors import FlowSpecError


def _ifindex_text(v: Any) -> str | None:
    """sFlow-RT writes ifindex as a string ("3"); accept an integer too."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v >= 0:
        return str(v)
    if isinstance(v, str) and v.strip().isdigit():
        return str(int(v.strip()))
    return None


@dataclass(frozen=True)
class Topology:
    """A validated topology: the body as given and the (agent, ifIndex) -> link name index."""

    nodes: dict
    links: dict
    _ends: dict = field(default_factory=dict, compare=False, repr=False)  # (agent, ifindex) -> link
    _named: dict = field(default_factory=dict, compare=False, repr=False)  # (node, port) -> link, unplaced ends

    def as_json(self) -> dict:
        """The body, as GET /topology/json serves it."""
        return {"nodes": self.nodes, "links": self.links}

    def model_dump(self, **_: Any) -> dict:
        """As the typed definitions (pydantic models) dump themselves: the API serves every kind alike."""
        return self.as_json()

    def link(self, agent: str | None, ifindex: str | None) -> str | None:
        """Name of the link with an end at (agent, ifIndex text), or None (edge or unknown port)."""
        return self._ends.get((agent, ifindex))

    @property
    def resolved_ends(self) -> int:
        return len(self._ends)

    @property
    def named_ends(self) -> bool:
        """Some link ends wait for an agent to report its host and port names."""
        return bool(self._named)


class LearnedTopology:
    """The topology as one worker sees it: ends the body places, then ends placed by the host name
    and port names an agent reports in its counter samples (``text_of(agent)``: {data source:
    {"host_name"|"ifname": value}}, processors.counters.CounterMetrics.text)."""

    __slots__ = ("topology", "text_of", "_names")

    def __init__(self, topology: Topology, text_of: Callable[[str], dict]) -> None:
        self.topology = topology
        self.text_of = text_of
        self._names: dict = {}  # agent -> (host name, {ifindex: ifname}), for this view's life (a batch)

    def link(self, agent: str | None, ifindex: str | None) -> str | None:
        t = self.topology
        found = t._ends.get((agent, ifindex))
        if found is not None or not t._named or agent is None:
            return found
        names = self._names.get(agent)
        if names is None:
            text = self.text_of(agent)
            host = next((v["host_name"] for v in text.values() if v.get("host_name")), None)
            names = self._names[agent] = (host, {ds: v["ifname"] for ds, v in text.items() if v.get("ifname")})
        host, ports = names
        port = ports.get(ifindex)
        return t._named.get((host, port)) if host is not None and port is not None else None


def parse_topology(body: Any) -> Topology:
    """Validate sFlow-RT's topology body; raises FlowSpecError naming the bad part."""
    if not isinstance(body, dict):
        raise FlowSpecError("topology: expected an object with nodes and links", field="topology")
    unknown = set(body) - {"nodes", "links", "version"}
    if unknown:
        name = sorted(unknown)[0]
        raise FlowSpecError(f"topology: unknown attribute {name!r} (want nodes, links)", field=name, token=name)
    nodes = body.get("nodes") or {}
    links = body.get("links") or {}
    if not isinstance(nodes, dict):
        raise FlowSpecError("topology: nodes must be an object {name: {agent, ports}}", field="nodes")
    if not isinstance(links, dict):
        raise FlowSpecError("topology: links must be an object {name: {node1, port1, node2, port2}}",
                            field="links")
    ports: dict[tuple[str, str], tuple[str | None, str | None]] = {}  # (node, port) -> (agent, ifindex)
    for nname, node in nodes.items():
        if not isinstance(node, dict):
            raise FlowSpecError(f"topology: node {nname!r} must be an object", field=f"nodes.{nname}", token=nname)
        agent = node.get("agent")
        if agent is not None and not isinstance(agent, str):
            raise FlowSpecError(f"topology: node {nname!r}: agent must be a string", field=f"nodes.{nname}.agent")
        nports = node.get("ports") or {}
        if not isinstance(nports, dict):
            raise FlowSpecError(f"topology: node {nname!r}: ports must be an object {{name: {{ifindex}}}}",
                                field=f"nodes.{nname}.ports")
        for pname, port in nports.items():
            if not isinstance(port, dict):
                raise FlowSpecError(f"topology: node {nname!r} port {pname!r} must be an object",
                                    field=f"nodes.{nname}.ports.{pname}", token=pname)
            ifx = port.get("ifindex")
            if ifx is not None and _ifindex_text(ifx) is None:
                raise FlowSpecError(f"topology: node {nname!r} port {pname!r}: bad ifindex {ifx!r}",
                                    field=f"nodes.{nname}.ports.{pname}.ifindex", token=str(ifx))
            ports[(nname, pname)] = (agent, _ifindex_text(ifx))
    ends: dict[tuple[str, str], str] = {}
    named: dict[tuple[str, str], str] = {}
    for lname, link in links.items():
        if not isinstance(link, dict):
            raise FlowSpecError(f"topology: link {lname!r} must be an object", field=f"links.{lname}", token=lname)
        for attr in ("node1", "port1", "node2", "port2"):
            if not isinstance(link.get(attr), str) or not link.get(attr):
                raise FlowSpecError(f"topology: link {lname!r}: {attr} must be a non-empty string",
                                    field=f"links.{lname}.{attr}", token=attr)
        for n, p in (("node1", "port1"), ("node2", "port2")):
            agent, ifx = ports.get((link[n], link[p]), (None, None))
            if agent is not None and ifx is not None:
                ends[(agent, ifx)] = lname
            else:
                named[(link[n], link[p])] = lname
    return Topology(nodes=nodes, links=links, _ends=ends, _named=named)
