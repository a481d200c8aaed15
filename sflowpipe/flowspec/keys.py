"""The base flow key table (agent, macsource, ipsource, tcpflags, vni, ...), its column extractors and Key."""

from __future__ import annotations

import re
from typing import Callable

from ingest.sflow.discard_reasons import DISCARD_REASONS
from sflowpipe.names import data_sources
from sflowpipe.flowspec.payload_keys import PAYLOAD_KEYS
from sflowpipe.flowspec.context import CACHE_LIMIT, ColFn, EvalContext, column_at, needing, note_needs

_S = tuple(str(i) for i in range(65536))  # int -> decimal text, for the 16-bit fields
_TCPFLAGS = tuple(format(i, "09b") for i in range(512))
_BIGINT: dict[int, str] = {}


def _istr(v: int) -> str:
    s = _BIGINT.get(v)
    if s is None:
        if len(_BIGINT) > CACHE_LIMIT:
            _BIGINT.clear()
        s = _BIGINT[v] = str(v)
    return s


_MAC: dict[str, str] = {}


def _mac_col(col: list) -> list:
    c = _MAC
    if len(c) > CACHE_LIMIT:
        c.clear()
    for m in set(col):
        if m not in c and m is not None:
            c[m] = m.replace(":", "").replace("-", "").upper()
    c[None] = None  # type: ignore[index]
    return [c[m] for m in col]


# ------------------------------------------------------------------ base keys
# Each builder takes the tunnel level and returns ColFn. Keys marked outer_only have no ``.N`` form.


def _ip_key(field: str, version: int) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [
                s if v == version else None
                for s, v in zip(column_at(ctx, level, field), column_at(ctx, level, "ip_version"))
            ]

        return col

    return build


def _ip_int_key(field: str, version: int, conv: Callable[[int], int] | None = None,
                table: tuple = _S) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        if conv is None:

            def col(ctx: EvalContext) -> list:
                S = table
                return [
                    S[x] if v == version and x is not None else None
                    for x, v in zip(column_at(ctx, level, field), column_at(ctx, level, "ip_version"))
                ]

        else:

            def col(ctx: EvalContext) -> list:
                S = table
                return [
                    S[conv(x)] if v == version and x is not None else None
                    for x, v in zip(column_at(ctx, level, field), column_at(ctx, level, "ip_version"))
                ]

        return col

    return build


def _l4_key(field: str, protos: tuple[int, ...], table: tuple = _S) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        if len(protos) == 1:
            proto = protos[0]

            def col(ctx: EvalContext) -> list:
                T = table
                return [
                    T[x] if p == proto and x is not None else None
                    for x, p in zip(column_at(ctx, level, field), column_at(ctx, level, "ip_protocol"))
                ]

        else:
            ps = frozenset(protos)

            def col(ctx: EvalContext) -> list:
                T = table
                return [
                    T[x] if p in ps and x is not None else None
                    for x, p in zip(column_at(ctx, level, field), column_at(ctx, level, "ip_protocol"))
                ]

        return col

    return build


def _icmp6_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                S[x] if p == 58 and v == 6 and x is not None else None
                for x, p, v in zip(
                    column_at(ctx, level, field), column_at(ctx, level, "ip_protocol"), column_at(ctx, level, "ip_version")
                )
            ]

        return col

    return build


def _icmp4_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                S[x] if p == 1 and v == 4 and x is not None else None
                for x, p, v in zip(
                    column_at(ctx, level, field), column_at(ctx, level, "ip_protocol"), column_at(ctx, level, "ip_version")
                )
            ]

        return col

    return build


def _mac_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        return lambda ctx: _mac_col(column_at(ctx, level, field))

    return build


def _int16_key(field: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [S[x] if x is not None else None for x in column_at(ctx, level, field)]

        return col

    return build


def _vlan_key(which: str, ext: str) -> Callable[[int], ColFn]:
    """vlan / priority: the outermost 802.1Q tag of the sampled header; for the outer packet, else
    the extended switch record's incoming VLAN (access ports sample untagged frames)."""

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            tags = column_at(ctx, level, "vlans")
            if level == 0:
                sw = column_at(ctx, 0, ext)
                # the extended switch record's VLAN and priority are 32-bit fields: any value is text
                return [
                    S[t[0][which]] if t else ((S[x] if 0 <= x < 65536 else _istr(x)) if x is not None else None)
                    for t, x in zip(tags, sw)
                ]
            return [S[t[0][which]] if t else None for t in tags]

        return col

    return build


def _agent_key(level: int) -> ColFn:
    return lambda ctx: [ctx.batch.get("agent_address")] * ctx.n


def _ifindex_key(field: str) -> Callable[[int], ColFn]:
    fmt_field = field + "_format"

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [
                (S[x] if x < 65536 else _istr(x)) if f == 0 and x is not None and x >= 0 else None
                for x, f in zip(column_at(ctx, 0, field), column_at(ctx, 0, fmt_field))
            ]

        return col

    return build


def _datasource_key(level: int) -> ColFn:
    def col(ctx: EvalContext) -> list:
        return data_sources(column_at(ctx, 0, "source_id_type"), column_at(ctx, 0, "source_id_index"))

    return col


_PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp"}
_UNREACH_PORT: dict[tuple[int, int], str] = {}


def _unreach_port_text(proto: int, port: int) -> str:
    k = (proto, port)
    s = _UNREACH_PORT.get(k)
    if s is None:
        if len(_UNREACH_PORT) > CACHE_LIMIT:
            _UNREACH_PORT.clear()
        s = _UNREACH_PORT[k] = f"{_PROTO_NAMES.get(proto) or proto}_{port}"
    return s


def _icmp_unreachable_key(which: str) -> Callable[[int], ColFn]:
    """sFlow-RT's icmpunreachable{net,host,protocol,port}: for an ICMP destination-unreachable
    message of the matching type and code, what its quoted packet was sent to.

    net: the quoted destination address of a network unreachable (v4 3/0, v6 1/0 no route);
    host: of a host unreachable (v4 3/1, v6 1/3 address unreachable);
    protocol: the quoted IP protocol of a protocol unreachable (v4 3/2; v6 has none: parameter
    problem 4/1, unrecognized next header, says the same), ``udp`` or the number, e.g. ``47``;
    port: ``<protocol>_<port>`` of a port unreachable (v4 3/3, v6 1/4), e.g. ``udp_1434``."""
    (v4_type, v4_code), (v6_type, v6_code) = {
        "net": ((3, 0), (1, 0)), "host": ((3, 1), (1, 3)), "protocol": ((3, 2), (4, 1)), "port": ((3, 3), (1, 4)),
    }[which]

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            out = []
            quoted = zip(column_at(ctx, level, "icmp_quoted_protocol"), column_at(ctx, level, "icmp_quoted_dst_ip"),
                         column_at(ctx, level, "icmp_quoted_dst_port"))
            for (p, t, c), (qp, qd, qport) in zip(
                zip(column_at(ctx, level, "ip_protocol"), column_at(ctx, level, "icmp_type"),
                    column_at(ctx, level, "icmp_code")), quoted):
                if (p == 1 and t == v4_type and c == v4_code) or (p == 58 and t == v6_type and c == v6_code):
                    if which == "port":
                        out.append(_unreach_port_text(qp, qport) if qport is not None else None)
                    elif which == "protocol":
                        out.append((_PROTO_NAMES.get(qp) or str(qp)) if qp is not None else None)
                    else:
                        out.append(qd)
                else:
                    out.append(None)
            return out

        return col

    return build


# name -> (builder, allows a ``.N`` tunnel level suffix)
BASE_KEYS: dict[str, tuple[Callable[[int], ColFn], bool]] = {
    # data source and interfaces (outer only)
    "agent": (_agent_key, False),
    "datasource": (_datasource_key, False),
    "inputifindex": (_ifindex_key("input"), False),
    "outputifindex": (_ifindex_key("output"), False),
    # Ethernet
    "macsource": (_mac_key("src_mac"), True),
    "macdestination": (_mac_key("dst_mac"), True),
    "ethernetprotocol": (_int16_key("eth_type"), True),
    "vlan": (_vlan_key("vlan", "src_vlan"), True),
    "priority": (_vlan_key("priority", "src_priority"), True),
    # IPv4
    "ipsource": (_ip_key("src_ip", 4), True),
    "ipdestination": (_ip_key("dst_ip", 4), True),
    "ipprotocol": (_ip_int_key("ip_protocol", 4), True),
    "iptos": (_ip_int_key("tos", 4), True),
    "ipdscp": (_ip_int_key("tos", 4, lambda x: x >> 2), True),
    "ipecn": (_ip_int_key("tos", 4, lambda x: x & 3), True),
    "ipttl": (_ip_int_key("ttl", 4), True),
    # IPv6
    "ip6source": (_ip_key("src_ip", 6), True),
    "ip6destination": (_ip_key("dst_ip", 6), True),
    "ip6nexthdr": (_ip_int_key("ip_protocol", 6), True),
    "ip6tos": (_ip_int_key("tos", 6), True),
    "ip6dscp": (_ip_int_key("tos", 6, lambda x: x >> 2), True),
    "ip6ttl": (_ip_int_key("ttl", 6), True),
    # transport
    "tcpsourceport": (_l4_key("src_port", (6,)), True),
    "tcpdestinationport": (_l4_key("dst_port", (6,)), True),
    "tcpflags": (_l4_key("tcp_flags", (6,), _TCPFLAGS), True),
    "udpsourceport": (_l4_key("src_port", (17,)), True),
    "udpdestinationport": (_l4_key("dst_port", (17,)), True),
    "icmptype": (_icmp4_key("icmp_type"), True),
    "icmpcode": (_icmp4_key("icmp_code"), True),
    "icmp6type": (_icmp6_key("icmp_type"), True),
    "icmp6code": (_icmp6_key("icmp_code"), True),
    # ICMP destination unreachable: what the quoted (unreachable) packet was sent to
    "icmpunreachablenet": (_icmp_unreachable_key("net"), True),
    "icmpunreachablehost": (_icmp_unreachable_key("host"), True),
    "icmpunreachableprotocol": (_icmp_unreachable_key("protocol"), True),
    "icmpunreachableport": (_icmp_unreachable_key("port"), True),
}


def _vni_level(level: int) -> ColFn:  # vni of the packet at ``level`` (any width)
    def col(ctx: EvalContext) -> list:
        return [(_S[x] if 0 <= x < 65536 else _istr(x)) if x is not None else None for x in column_at(ctx, level, "vni")]

    return col


def _tunnel_id_key(proto: int, port: int | None = None) -> Callable[[int], ColFn]:
    """vxlanvni / genevevni (the decoder sets ``vni`` on a UDP packet to port 4789 / 6081) and grevsid
    (on a GRE packet carrying Ethernet, NVGRE): the tunnel identifier, told apart by the carrying
    packet's IP protocol and UDP destination port."""

    def build(level: int) -> ColFn:
        if port is None:

            def col(ctx: EvalContext) -> list:
                return [(_S[x] if 0 <= x < 65536 else _istr(x)) if x is not None and p == proto else None
                        for x, p in zip(column_at(ctx, level, "vni"), column_at(ctx, level, "ip_protocol"))]

        else:

            def col(ctx: EvalContext) -> list:
                return [(_S[x] if 0 <= x < 65536 else _istr(x)) if x is not None and p == proto and d == port
                        else None
                        for x, p, d in zip(column_at(ctx, level, "vni"), column_at(ctx, level, "ip_protocol"),
                                           column_at(ctx, level, "dst_port"))]

        return col

    return build


def _direction_key(level: int) -> ColFn:
    """sFlow-RT's direction: ``ingress`` when the sample's data source is the packet's input
    interface, ``egress`` when it is its output interface (a switch sampling on egress), else none
    (a VLAN or entity data source, or an interface that is neither)."""

    def col(ctx: EvalContext) -> list:
        out = []
        for t, i, fi, x, fo, y in zip(column_at(ctx, 0, "source_id_type"), column_at(ctx, 0, "source_id_index"),
                                      column_at(ctx, 0, "input_format"), column_at(ctx, 0, "input"),
                                      column_at(ctx, 0, "output_format"), column_at(ctx, 0, "output")):
            if t != 0 or i is None:
                out.append(None)
            elif fi == 0 and x == i:
                out.append("ingress")
            elif fo == 0 and y == i:
                out.append("egress")
            else:
                out.append(None)
        return out

    return col


def _offset_key(field: str) -> Callable[[int], ColFn]:
    """An offset into the sampled header (ip_offset): of the outer packet a cold column (past the
    hot prefix the workers decode), of a tunnelled one part of the hot ``inner`` column."""

    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            S = _S
            return [S[x] if x is not None and 0 <= x < 65536 else None for x in column_at(ctx, level, field)]

        return needing(frozenset((field,)), col) if level == 0 else col

    return build


# Keys (and the columns they read) that only discarded-packet notifications have (dropped: true flows).
DROP_KEYS = frozenset({"reason"})


def _reason_key(level: int) -> ColFn:
    """Drop reason of a discarded-packet notification (dropped: true flows): its name from the sFlow
    drop-notification spec (``ttl_exceeded``, ``acl``...), the code where the spec names none."""
    names = DISCARD_REASONS

    def col(ctx: EvalContext) -> list:
        return [(names.get(r) or _istr(r)) if r is not None else None for r in column_at(ctx, 0, "reason")]

    return needing(DROP_KEYS, col)  # a column of discard notifications only: parse_definition checks it


def _dscp_names() -> tuple:
    """DSCP code point names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF, RFC 5865 VA,
    RFC 8622 LE), lower case as iptables / tc write them; a code point without a name is its number."""
    names = {0: "cs0", 1: "le", 44: "va", 46: "ef"}
    names.update({8 * c: f"cs{c}" for c in range(1, 8)})
    names.update({8 * c + 2 * d: f"af{c}{d}" for c in range(1, 5) for d in range(1, 4)})
    return tuple(names.get(i, str(i)) for i in range(64))


_DSCP = _dscp_names()


def _is_broadcast(level: int) -> ColFn:
    """isbroadcast (InMon's apps filter isbroadcast=true): the destination MAC is ff:ff:ff:ff:ff:ff."""

    def col(ctx: EvalContext) -> list:
        return [None if m is None else ("true" if m.lower() in ("ff:ff:ff:ff:ff:ff", "ffffffffffff") else "false")
                for m in column_at(ctx, level, "dst_mac")]

    return col


BASE_KEYS["ipdscpname"] = (_ip_int_key("tos", 4, lambda x: x >> 2, _DSCP), True)
BASE_KEYS["ip6dscpname"] = (_ip_int_key("tos", 6, lambda x: x >> 2, _DSCP), True)
BASE_KEYS["isbroadcast"] = (_is_broadcast, True)
BASE_KEYS["vni"] = (_vni_level, True)  # VXLAN / Geneve VNI, NVGRE VSID of the tunnel at that level (alias)
BASE_KEYS["vxlanvni"] = (_tunnel_id_key(17, 4789), True)
BASE_KEYS["genevevni"] = (_tunnel_id_key(17, 6081), True)
BASE_KEYS["grevsid"] = (_tunnel_id_key(47), True)
BASE_KEYS["direction"] = (_direction_key, False)
BASE_KEYS["ip_offset"] = (_offset_key("ip_offset"), True)
BASE_KEYS["reason"] = (_reason_key, False)
BASE_KEYS.update(PAYLOAD_KEYS)  # ARP, DNS, ICMP echo, application records (sflowpipe/flowspec/payload_keys.py)
KEY_NAMES = frozenset(BASE_KEYS)

# sFlow-RT keys and functions whose values come from outside sFlow (refused with the reason, not as
# unknown): sflowpipe computes flows from sFlow records only.
NOT_FROM_SFLOW: dict[str, str] = {
    "map": "sFlow-RT's map: looks values up in tables a script loads with setMap() (JavaScript API); "
           "sflowpipe has no such tables: use group: with a group set",
}
# ... and key families, by name prefix: sFlow-RT's bgp* keys (bgpsourceas, bgpdestinationas,
# bgpdestinationpeeras, bgpdestinationaspath...) come from the routes it learns over its own BGP
# sessions (bgpAddNeighbor / bgpAddSource in InMon's apps), matched to each sampled address.
NOT_FROM_SFLOW_PREFIXES: dict[str, str] = {
    "bgp": "sFlow-RT's bgp* keys come from routes it learns over its own BGP sessions; sflowpipe keeps no "
           "BGP table: use asn: (offline AS data) on an address key",
}


def not_from_sflow(name: str) -> str | None:
    """Why ``name`` (a key or function name) cannot be computed from sFlow, or None."""
    why = NOT_FROM_SFLOW.get(name)
    if why is None:
        why = next((w for p, w in NOT_FROM_SFLOW_PREFIXES.items() if name.startswith(p)), None)
    return why

KEY_RE = re.compile(r"([a-z0-9_]+)(?:\.([0-9]))?\Z")


class Key:
    """A compiled key (base key or function): ``canon`` text and ``col(ctx)`` (cached per batch)."""

    __slots__ = ("canon", "col", "_raw")

    def __init__(self, canon: str, raw: ColFn) -> None:
        self.canon = canon
        self._raw = raw
        note_needs(raw)  # a key over cold columns makes the flow being compiled need them
        ck = ("#k", canon)

        def col(ctx: EvalContext) -> list:
            c = ctx.cache
            r = c.get(ck)
            if r is None:
                r = c[ck] = raw(ctx)
            return r

        self.col = col
