"""The imported network topology (sFlow-RT's /topology/json body) and what flows ask of it.

sFlow-RT's shape: ``{"nodes": {NODE: {"agent": ADDRESS, "ports": {PORT: {"ifindex": "N"}}}},
"links": {LINK: {"node1": NODE, "port1": PORT, "node2": NODE, "port2": PORT}}}``. sFlow-RT can
also place a node by LLDP / ifName learned from counters; sflowpipe resolves a link end only
where the node names its ``agent`` and the port its ``ifindex`` (ends without them are kept and
served back, but no sample maps to them).

``link:inputifindex`` / ``link:outputifindex`` give the name of the link whose end is that
(agent, ifIndex): the packet came in on (left by) an inter-switch link. A port that is no link's
end (an edge port) gives no value, so the filter ``link:inputifindex=null`` keeps edge traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.flowspec.errors import FlowSpecError


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
    _ends: dict = field(default_factory=dict, compare=False, repr=False)

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
    return Topology(nodes=nodes, links=links, _ends=ends)
