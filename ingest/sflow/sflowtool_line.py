"""sflowtool's ``-l`` output: one ``FLOW,...`` line per flow sample, one ``CNTR,...`` line per
counter sample (writeFlowLine / writeCountersLine in sflowtool.c).

sflowtool keeps one per-sample state that its record readers fill (and overwrite) as they
come, in record order, and prints the line from that state at the end of the sample. ``_Flow``
below is that state; ``flow_line`` replays the sample's records into it the way sflowtool's
readers do:

- 0:1 sampled_header: sampledPacketSize, stripped, then the header parse (decodeLinkLayer or
  decode80211MAC, then decodeIPV4 / decodeIPV6 / decodeIPLayer4): MACs, the innermost 802.1Q
  VLAN as in_vlan, eth_type, the IP addresses, protocol, TOS, TTL, ports (ICMP: type, code),
  TCP flags and the offset of the IPv4 header;
- 0:2 ethernet, and the L2 tunnel records 0:1021/0:1022 (same reader): MACs and eth_type;
- 0:3 IPv4 / 0:4 IPv6, and the tunnel records 0:1023-0:1026 (same readers): sampledPacketSize,
  addresses, protocol, ports, TCP flags (TCP only); IPv4 also TOS;
- 0:1001 extended_switch: in_vlan, out_vlan;
- 0:2100 / 0:2101 socket4 / socket6: the addresses (local as source, remote as destination).

Record classes come from the flow_records table by (enterprise, format), and their fields are
looked up by attribute name (first of a few candidate names), so the module does not depend on
the record classes' exact spelling.
"""

from __future__ import annotations

from typing import Any

from ingest.sflow.layout import fmt_ip

# ---------------------------------------------------------------- value formatting


def _d(v: int) -> int:
    """printf %d of a 32-bit value."""
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def _x(v: int) -> int:
    """printf %x of a 32-bit value."""
    return v & 0xFFFFFFFF


def _mac(m: Any) -> str:
    if m is None:
        return "000000000000"
    if isinstance(m, (bytes, bytearray, memoryview)):
        return bytes(m).hex()
    return m.replace(":", "").replace("-", "").lower()


def _addr(a: Any) -> str:
    if not a:
        return "-"
    if isinstance(a, (bytes, bytearray)):
        import socket

        a = socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)
    return fmt_ip(a)


# ---------------------------------------------------------------- record kinds

_ETHERNET, _IPV4, _IPV6, _SWITCH, _SOCKET, _HEADER = range(6)
_KIND_BY_TAG = {
    (0, 1): _HEADER,
    (0, 2): _ETHERNET, (0, 1021): _ETHERNET, (0, 1022): _ETHERNET,
    (0, 3): _IPV4, (0, 1023): _IPV4, (0, 1024): _IPV4,
    (0, 4): _IPV6, (0, 1025): _IPV6, (0, 1026): _IPV6,
    (0, 1001): _SWITCH,
    (0, 2100): _SOCKET, (0, 2101): _SOCKET,
}

# candidate attribute names, first found wins
_NAMES = {
    "eth_src": ("src_mac", "src", "eth_src", "source_mac"),
    "eth_dst": ("dst_mac", "dst", "eth_dst", "destination_mac"),
    "eth_type": ("eth_type", "ethernet_type", "type", "mac_type"),
    "length": ("length", "frame_length", "packet_length", "len"),
    "protocol": ("protocol", "ip_protocol", "proto"),
    "src_ip": ("src_ip", "src_address", "src", "source_ip"),
    "dst_ip": ("dst_ip", "dst_address", "dst", "destination_ip"),
    "src_port": ("src_port", "sport", "source_port"),
    "dst_port": ("dst_port", "dport", "destination_port"),
    "tcp_flags": ("tcp_flags", "flags"),
    "tos": ("tos", "ip_tos"),
    "in_vlan": ("src_vlan", "in_vlan"),
    "out_vlan": ("dst_vlan", "out_vlan"),
    "local_ip": ("local_ip", "local_address", "src_ip"),
    "remote_ip": ("remote_ip", "remote_address", "dst_ip"),
}

_kinds: dict[type, int] = {}
_getters: dict[tuple[type, str], str | None] = {}


def _kind(rec: Any) -> int | None:
    cls = type(rec)
    k = _kinds.get(cls, -1)
    if k == -1:
        _load_kinds()
        k = _kinds.get(cls)
        if k is None:
            _kinds[cls] = None  # a record that does not touch the line state
    return k


def _load_kinds() -> None:
    from ingest.sflow import flow_records  # lazily: that module is still growing

    for tag, codec in getattr(flow_records, "FLOW_RECORDS", {}).items():
        k = _KIND_BY_TAG.get(tag)
        if k is not None:
            _kinds[codec.cls] = k


def _get(rec: Any, what: str, default: Any = None) -> Any:
    key = (type(rec), what)
    name = _getters.get(key, "")
    if name == "":
        fields = getattr(type(rec), "__struct_fields__", None)
        name = None
        for n in _NAMES[what]:
            if (n in fields) if fields is not None else hasattr(rec, n):
                name = n
                break
        _getters[key] = name
    return default if name is None else getattr(rec, name, default)


# ---------------------------------------------------------------- flow line


class _Flow:
    """The part of sflowtool's per-sample state (sample->s) that writeFlowLine prints."""

    __slots__ = ("eth_src", "eth_dst", "eth_type", "in_vlan", "out_vlan", "ipsrc", "ipdst", "proto",
                 "tos", "ttl", "sport", "dport", "tcp_flags", "size", "stripped", "offset4")

    def __init__(self) -> None:
        self.eth_src = self.eth_dst = None
        self.eth_type = self.in_vlan = self.out_vlan = 0
        self.ipsrc = self.ipdst = None
        self.proto = self.tos = self.ttl = self.sport = self.dport = self.tcp_flags = 0
        self.size = self.stripped = self.offset4 = 0

    def header(self, r: Any) -> None:
        # readFlowSample_header
        self.size = r.frame_length
        self.stripped = r.stripped
        d = r.decoded
        if d is None:
            from ingest.sflow.header import decode_header

            d = decode_header(r.header_protocol, r.header)
            if d is None:
                return
        if r.header_protocol == 15:  # decode80211MAC
            if d.src_mac is not None:
                self.eth_src = d.src_mac
                self.eth_dst = d.src_mac  # sic: sflowtool copies the source MAC into eth_dst
            return
        if d.dst_mac is not None:  # decodeLinkLayer
            self.eth_dst = d.dst_mac
            self.eth_src = d.src_mac
            if d.vlans:
                self.in_vlan = d.vlans[-1][0]  # each tag overwrites in_vlan: the innermost stays
            if d.eth_type is not None:
                self.eth_type = d.eth_type
        if d.ip_version == 4:
            self.offset4 = d.ip_offset
        if d.src_ip is None:  # decodeIPV4 / decodeIPV6 gave up early
            return
        self.ipsrc = d.src_ip
        self.ipdst = d.dst_ip
        self.tos = d.tos
        self.ttl = d.ttl
        if d.ip_protocol is None:  # IPv6 extension headers ran off the end
            return
        proto = self.proto = d.ip_protocol
        # decodeIPLayer4
        if proto == 6 or proto == 17:
            if d.src_port is not None:
                self.sport = d.src_port
                self.dport = d.dst_port
                if d.tcp_flags is not None:
                    self.tcp_flags = d.tcp_flags
        elif proto == 1:
            if d.icmp_type is not None:
                self.sport = d.icmp_type
                self.dport = d.icmp_code

    def ethernet(self, r: Any) -> None:
        # readFlowSample_ethernet
        self.eth_src = _get(r, "eth_src")
        self.eth_dst = _get(r, "eth_dst")
        self.eth_type = _get(r, "eth_type", 0) or 0

    def ip(self, r: Any, v4: bool) -> None:
        # readFlowSample_IPv4 / readFlowSample_IPv6
        self.size = _get(r, "length", 0) or 0
        self.ipsrc = _get(r, "src_ip")
        self.ipdst = _get(r, "dst_ip")
        proto = self.proto = _get(r, "protocol", 0) or 0
        if v4:
            self.tos = _get(r, "tos", 0) or 0
        self.sport = _get(r, "src_port", 0) or 0
        self.dport = _get(r, "dst_port", 0) or 0
        if proto == 6:
            self.tcp_flags = _get(r, "tcp_flags", 0) or 0


def flow_line(agent: str, sample: Any) -> str:
    """sflowtool's writeFlowLine for one flow sample (with its trailing newline)."""
    st = _Flow()
    for r in sample.records:
        k = _kind(r)
        if k is None:
            continue
        if k == _HEADER:
            st.header(r)
        elif k == _ETHERNET:
            st.ethernet(r)
        elif k == _IPV4:
            st.ip(r, True)
        elif k == _IPV6:
            st.ip(r, False)
        elif k == _SWITCH:
            st.in_vlan = _get(r, "in_vlan", 0) or 0
            st.out_vlan = _get(r, "out_vlan", 0) or 0
        elif k == _SOCKET:
            st.ipsrc = _get(r, "local_ip")
            st.ipdst = _get(r, "remote_ip")
    return "FLOW,%s,%d,%d,%s,%s,0x%04x,%d,%d,%s,%s,%d,0x%02x,%d,%d,%d,0x%02x,%d,%d,%d\n" % (
        _addr(agent), _d(sample.input), _d(sample.output),
        _mac(st.eth_src), _mac(st.eth_dst), _x(st.eth_type), _d(st.in_vlan), _d(st.out_vlan),
        _addr(st.ipsrc), _addr(st.ipdst), _d(st.proto), _x(st.tos), _d(st.ttl),
        _d(st.sport), _d(st.dport), _x(st.tcp_flags),
        _d(st.size), _d(st.size - st.stripped - st.offset4), _d(sample.sampling_rate),
    )


# ---------------------------------------------------------------- counters line

_IF_FIELDS = (
    "if_index", "if_type", "if_speed", "if_direction", "if_status",
    "if_in_octets", "if_in_ucast_pkts", "if_in_multicast_pkts", "if_in_broadcast_pkts",
    "if_in_discards", "if_in_errors", "if_in_unknown_protos",
    "if_out_octets", "if_out_ucast_pkts", "if_out_multicast_pkts", "if_out_broadcast_pkts",
    "if_out_discards", "if_out_errors", "if_promiscuous_mode",
)
_IF_ZERO = (0,) * len(_IF_FIELDS)
_if_class: list = []


def _if_counters_class() -> type | None:
    if not _if_class:
        from ingest.sflow import counter_records

        codec = getattr(counter_records, "COUNTER_RECORDS", {}).get((0, 1))
        _if_class.append(codec.cls if codec is not None else None)
    return _if_class[0]


def counters_line(agent: str, sample: Any) -> str:
    """sflowtool's writeCountersLine for one counter sample (with its trailing newline).

    Only the generic interface counters (0:1) fill the line; the last such block wins, and a
    sample without one prints zeros.
    """
    cls = _if_counters_class()
    vals = _IF_ZERO
    for r in sample.records:
        if type(r) is cls:
            vals = tuple((getattr(r, f, 0) or 0) & 0xFFFFFFFFFFFFFFFF for f in _IF_FIELDS)
    return "CNTR,%s,%s\n" % (_addr(agent), ",".join(map(str, vals)))
