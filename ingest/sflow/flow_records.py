"""Flow records (flow_data): the sFlow v5 structures carried in flow and discard samples.

Each entry of ``FLOW_RECORDS`` maps ``(enterprise, format)`` to a codec (layout.Fixed or
layout.Custom) that decodes, encodes and prints the record the way sflowtool does.

Structures and names: sflow_version_5.txt, sflow_tunnels.txt, sflow_80211.txt, sflow_host.txt,
sflow_application.txt, sflow_memcache.txt, sflow_http.txt, sflow_discards.txt. The table holds every
flow record sflowtool 6.x decodes; anything else (e.g. 0:1037 extended ACL, which sflowtool only
tags) stays an UnknownRecord. sflowtool's output quirks are reproduced in the ``sflowtool``
printers only, never in the model.
"""

from __future__ import annotations

import struct

from ingest.sflow.errors import DecodeError
from ingest.sflow.header import DecodedHeader, decode_header, header_sflowtool
from ingest.sflow.layout import (
    F,
    IP4,
    IP6,
    MAC,
    U32,
    U32S,
    Custom,
    Fixed,
    enc_address,
    enc_opaque,
    enc_string,
    fmt_ip,
    fmt_mac,
    ip6_full,
    mac_from_wire,
    mac_to_wire,
    read_address,
)
from ingest.sflow.model import Record

# ---------------------------------------------------------------- 0:1 sampled_header


class SampledHeader(Record):
    """sampled_header (0:1): the first bytes of the sampled packet, and their parse."""

    header_protocol: int  # 1 = Ethernet (ISO 802.3), 11 = IPv4, 12 = IPv6, ...
    frame_length: int  # original length of the packet, before sampling
    stripped: int  # bytes removed from the packet before the header was taken (e.g. FCS)
    header: bytes
    decoded: DecodedHeader | None = None

    @classmethod
    def of(cls, header_protocol: int, frame_length: int, stripped: int, header: bytes) -> "SampledHeader":
        return cls(header_protocol, frame_length, stripped, header, decode_header(header_protocol, header))


_HEADER_HEAD = struct.Struct(">IIII")


def _decode_sampled_header(buf: memoryview, off: int, length: int) -> SampledHeader:
    end = off + length
    if length < 16:
        raise DecodeError(off, f"sampled_header record length {length} is too short")
    proto, frame_length, stripped, n = _HEADER_HEAD.unpack_from(buf, off)
    off += 16
    # the record length may leave out the header's final padding (sflowtool pads it before checking)
    if n > end - off or ((n + 3) & ~3) != ((end - off + 3) & ~3):
        raise DecodeError(off - 4, f"sampled_header: header length {n} does not fill the record ({end - off} bytes)")
    header = bytes(buf[off : off + n])
    return SampledHeader(proto, frame_length, stripped, header, decode_header(proto, header))


def _encode_sampled_header(r: SampledHeader) -> bytes:
    return _HEADER_HEAD.pack(r.header_protocol, r.frame_length, r.stripped, 0)[:12] + enc_opaque(r.header)


def _sflowtool_sampled_header(r: SampledHeader, out: dict, p: str) -> None:
    out[p + "flowSampleType"] = "HEADER"
    out[p + "headerProtocol"] = str(r.header_protocol)
    out[p + "sampledPacketSize"] = str(r.frame_length)
    out[p + "strippedBytes"] = str(r.stripped)
    out[p + "headerLen"] = str(len(r.header))
    # sflowtool's 2048-byte string buffer holds at most 682 bytes as "XX-"
    out[p + "headerBytes"] = r.header[:682].hex("-").upper()
    header_sflowtool(r, out, p)


# ---------------------------------------------------------------- helpers

_U64S = struct.Struct(">Q")
_I32S = struct.Struct(">i")


class _Reader:
    """Walks one record body [off, off + length): every read is checked against the record end.

    The XDR padding after a string or MAC may fall past an unpadded record length (the datagram
    layer pads record lengths to 4 bytes); ``done`` then requires the fields to fill the padded
    length exactly.
    """

    __slots__ = ("buf", "start", "pos", "end", "length", "what")

    def __init__(self, buf: memoryview, off: int, length: int, what: str) -> None:
        self.buf = buf
        self.start = self.pos = off
        self.end = off + length
        self.length = length
        self.what = what

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise DecodeError(pos, f"{self.what}: truncated, needs {n} bytes, {max(self.end - pos, 0)} left")
        self.pos = pos + n
        return pos

    def u32(self) -> int:
        return U32S.unpack_from(self.buf, self._need(4))[0]

    def i32(self) -> int:
        return _I32S.unpack_from(self.buf, self._need(4))[0]

    def u64(self) -> int:
        return _U64S.unpack_from(self.buf, self._need(8))[0]

    def u32s(self) -> tuple[int, ...]:
        """XDR ``unsigned int x<>``: a count, then that many values."""
        n = self.u32()
        if n > (self.end - self.pos) // 4:
            raise DecodeError(self.pos - 4, f"{self.what}: {n} values cannot fit in {self.end - self.pos} bytes")
        return struct.unpack_from(f">{n}I", self.buf, self._need(4 * n))

    def string(self) -> str:
        n = self.u32()
        if n > self.end - self.pos:
            raise DecodeError(self.pos - 4,
                              f"{self.what}: string length {n} exceeds the {self.end - self.pos} bytes left")
        pos = self.pos
        self.pos = pos + ((n + 3) & ~3)
        return bytes(self.buf[pos : pos + n]).decode("utf-8", "replace")

    def mac(self) -> str:
        pos = self._need(6)
        self.pos = pos + 8  # XDR pads a MAC to 8 bytes
        return mac_from_wire(bytes(self.buf[pos : pos + 6]))

    def address(self) -> str:
        a, self.pos = read_address(self.buf, self.pos, self.end, self.what)
        return a

    def done(self) -> None:
        if self.pos - self.start != ((self.length + 3) & ~3):
            raise DecodeError(self.pos, f"{self.what}: record length {self.length}, "
                                        f"its fields take {self.pos - self.start} bytes")


def _u32s(vals) -> bytes:
    return struct.pack(f">I{len(vals)}I", len(vals), *vals)


def _mac(mac: str) -> bytes:
    return mac_to_wire(mac) + b"\0\0"


_ENCODE = {"u32": U32S.pack, "i32": _I32S.pack, "u64": _U64S.pack, "string": enc_string, "address": enc_address,
           "mac": _mac, "u32s": _u32s}


def _var(name: str, cls: type, kinds: str, tool) -> Custom:
    """Codec for a record of variable-length fields, written as the XDR kinds of its fields in order:
    u32, i32, u64, string, address (sFlow address), mac, u32s (``unsigned int x<>``)."""
    kinds_ = kinds.split()
    attrs = cls.__struct_fields__
    assert len(kinds_) == len(attrs), (name, kinds_, attrs)
    readers = tuple(getattr(_Reader, k) for k in kinds_)
    writers = tuple(zip(attrs, (_ENCODE[k] for k in kinds_)))

    def decode(buf: memoryview, off: int, length: int):
        r = _Reader(buf, off, length, name)
        rec = cls(*[read(r) for read in readers])
        r.done()
        return rec

    def encode(rec) -> bytes:
        return b"".join(enc(getattr(rec, a)) for a, enc in writers)

    return Custom(name, cls, decode, encode, tool)


def _cstr(s: str, buf_len: int) -> str:
    """A string as sflowtool's getString() keeps it: at most buf_len - 1 bytes, up to a NUL."""
    b = s.encode("utf-8")[: buf_len - 1]
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "replace")


_STRBUF = 2048  # sflowtool's MAX_STRBUF_LEN: its SFStr scratch strings silently stop there


class _SFStr:
    """sflowtool's bounded string builder, for the lists it prints (AS paths, label stacks...)."""

    __slots__ = ("parts", "n")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def append(self, s: str) -> None:
        s = s[: max(_STRBUF - self.n - 1, 0)]
        self.parts.append(s)
        self.n += len(s)

    def array32(self, vals, sep: str) -> None:
        for i, v in enumerate(vals):
            t = str(v)
            if self.n + 1 + len(t) >= _STRBUF:
                return
            if i:
                t = sep + t
            self.parts.append(t)
            self.n += len(t)

    def hex_0x(self, b: bytes) -> None:
        if _STRBUF - self.n < 3:
            return
        room = (_STRBUF - self.n - 2 - 1) // 2
        t = "0x" + b[:room].hex()
        self.parts.append(t)
        self.n += len(t)

    def __str__(self) -> str:
        return "".join(self.parts)


def _typed(codec: Fixed, extended_type: str) -> Custom:
    """A fixed-layout record whose sflowtool output starts with an extendedType line."""

    def tool(r, out: dict, p: str) -> None:
        out[p + "extendedType"] = extended_type
        codec.sflowtool(r, out, p)

    return Custom(codec.name, codec.cls, codec.decode, codec.encode, tool)


def _ports(proto: int, src: int, dst: int, flags: int, out: dict, p: str) -> None:
    if proto == 1:
        out[p + "ICMPType"] = str(dst)  # sflowtool assumes the ICMP type travels as the dst port
    elif proto == 6:
        out[p + "TCPSrcPort"] = str(src)
        out[p + "TCPDstPort"] = str(dst)
        out[p + "TCPFlags"] = str(flags)
    elif proto == 17:
        out[p + "UDPSrcPort"] = str(src)
        out[p + "UDPDstPort"] = str(dst)


# ---------------------------------------------------------------- 0:2 sampled_ethernet, 0:3 ipv4, 0:4 ipv6
# The tunnel records 0:1021-0:1026 carry the same structures (sflow_tunnels.txt): each gets its own
# class (the encoder finds a record's tag from its class) over one shared layout.


class _Ethernet(Record):
    length: int  # MAC packet length, excluding lower layer encapsulations, including FCS
    src_mac: str
    dst_mac: str
    eth_type: int  # the spec's ``type`` (the model's tag field is "type")


class _IPv4(Record):
    length: int  # IP packet length, excluding lower layer encapsulations
    protocol: int  # IP protocol type (e.g. TCP = 6, UDP = 17)
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    tcp_flags: int
    tos: int


class _IPv6(Record):
    length: int
    protocol: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    tcp_flags: int
    priority: int


class SampledEthernet(_Ethernet):
    """sampled_ethernet (0:2): the decoded Ethernet header of the sampled packet."""


class SampledIpv4(_IPv4):
    """sampled_ipv4 (0:3): the decoded IPv4 header of the sampled packet."""


class SampledIpv6(_IPv6):
    """sampled_ipv6 (0:4): the decoded IPv6 header of the sampled packet."""


class ExtendedL2TunnelEgress(_Ethernet):
    """extended_l2_tunnel_egress (0:1021): outer Ethernet header added on egress."""


class ExtendedL2TunnelIngress(_Ethernet):
    """extended_l2_tunnel_ingress (0:1022): outer Ethernet header removed on ingress."""


class ExtendedIpv4TunnelEgress(_IPv4):
    """extended_ipv4_tunnel_egress (0:1023): outer IPv4 header added on egress."""


class ExtendedIpv4TunnelIngress(_IPv4):
    """extended_ipv4_tunnel_ingress (0:1024): outer IPv4 header removed on ingress."""


class ExtendedIpv6TunnelEgress(_IPv6):
    """extended_ipv6_tunnel_egress (0:1025): outer IPv6 header added on egress."""


class ExtendedIpv6TunnelIngress(_IPv6):
    """extended_ipv6_tunnel_ingress (0:1026): outer IPv6 header removed on ingress."""


_ETHERNET_ROWS = (
    F("length", U32, None),
    F("src_mac", MAC, None),
    F("dst_mac", MAC, None),
    F("eth_type", U32, None),
)
_IPV4_ROWS = (
    F("length", U32, None),
    F("protocol", U32, None),
    F("src_ip", IP4, None),
    F("dst_ip", IP4, None),
    F("src_port", U32, None),
    F("dst_port", U32, None),
    F("tcp_flags", U32, None),
    F("tos", U32, None),
)
_IPV6_ROWS = _IPV4_ROWS[:2] + (F("src_ip", IP6, None), F("dst_ip", IP6, None)) + _IPV4_ROWS[4:7] + (
    F("priority", U32, None),)


def _ethernet(name: str, cls: type, prefix: str) -> Custom:
    fx = Fixed(name, cls, _ETHERNET_ROWS)

    def tool(r: _Ethernet, out: dict, p: str) -> None:
        out[p + "flowSampleType"] = prefix + "ETHERNET"
        p += prefix
        out[p + "ethernet_type"] = str(r.eth_type)
        out[p + "ethernet_len"] = str(r.length)
        out[p + "ethernet_src"] = fmt_mac(r.src_mac)
        out[p + "ethernet_dst"] = fmt_mac(r.dst_mac)

    return Custom(name, cls, fx.decode, fx.encode, tool)


def _ipv4(name: str, cls: type, prefix: str) -> Custom:
    fx = Fixed(name, cls, _IPV4_ROWS)

    def tool(r: _IPv4, out: dict, p: str) -> None:
        out[p + "flowSampleType"] = prefix + "IPV4"
        p += prefix
        out[p + "sampledPacketSize"] = str(r.length)
        out[p + "IPSize"] = str(r.length)
        out[p + "srcIP"] = r.src_ip
        out[p + "dstIP"] = r.dst_ip
        out[p + "IPProtocol"] = str(r.protocol)
        out[p + "IPTOS"] = str(r.tos)
        _ports(r.protocol, r.src_port, r.dst_port, r.tcp_flags, out, p)

    return Custom(name, cls, fx.decode, fx.encode, tool)


def _ipv6(name: str, cls: type, prefix: str) -> Custom:
    fx = Fixed(name, cls, _IPV6_ROWS)

    def tool(r: _IPv6, out: dict, p: str) -> None:
        out[p + "flowSampleType"] = prefix + "IPV6"
        p += prefix
        out[p + "sampledPacketSize"] = str(r.length)
        out[p + "IPSize"] = str(r.length)
        out[p + "srcIP6"] = ip6_full(r.src_ip)
        out[p + "dstIP6"] = ip6_full(r.dst_ip)
        out[p + "IPProtocol"] = str(r.protocol)
        out[p + "priority"] = str(r.priority)
        _ports(r.protocol, r.src_port, r.dst_port, r.tcp_flags, out, p)

    return Custom(name, cls, fx.decode, fx.encode, tool)


# ---------------------------------------------------------------- 0:1001 extended_switch


class ExtendedSwitch(Record):
    """extended_switch (0:1001): 802.1Q VLAN and priority in and out."""

    src_vlan: int
    src_priority: int
    dst_vlan: int
    dst_priority: int


EXTENDED_SWITCH = Fixed("extended_switch", ExtendedSwitch, (
    F("src_vlan", U32, "in_vlan"),
    F("src_priority", U32, "in_priority"),
    F("dst_vlan", U32, "out_vlan"),
    F("dst_priority", U32, "out_priority"),
))


# ---------------------------------------------------------------- 0:1002 extended_router


class ExtendedRouter(Record):
    """extended_router (0:1002): IP forwarding: next hop and prefix lengths."""

    next_hop: str
    src_mask_len: int
    dst_mask_len: int


def _sflowtool_router(r: ExtendedRouter, out: dict, p: str) -> None:
    out[p + "extendedType"] = "ROUTER"
    out[p + "nextHop"] = fmt_ip(r.next_hop)
    out[p + "srcSubnetMask"] = str(r.src_mask_len)
    out[p + "dstSubnetMask"] = str(r.dst_mask_len)


# ---------------------------------------------------------------- 0:1003 extended_gateway

AS_SET = 1  # as_path_type: unordered set of ASs
AS_SEQUENCE = 2  # ordered sequence of ASs


class ExtendedGateway(Record):
    """extended_gateway (0:1003): BGP routing of the destination."""

    next_hop: str  # the border router to use for the destination network
    as_number: int  # AS of this router (the spec's ``as``)
    src_as: int
    src_peer_as: int
    dst_as_path: tuple[tuple[int, tuple[int, ...]], ...]  # segments: (AS_SET or AS_SEQUENCE, ASNs)
    communities: tuple[int, ...]
    local_pref: int


def _decode_gateway(buf: memoryview, off: int, length: int) -> ExtendedGateway:
    r = _Reader(buf, off, length, "extended_gateway")
    next_hop = r.address()
    as_number, src_as, src_peer_as, n = r.u32(), r.u32(), r.u32(), r.u32()
    if n > (r.end - r.pos) // 8:
        raise DecodeError(r.pos - 4, f"extended_gateway: {n} AS path segments cannot fit in {r.end - r.pos} bytes")
    path = tuple((r.u32(), r.u32s()) for _ in range(n))
    rec = ExtendedGateway(next_hop, as_number, src_as, src_peer_as, path, r.u32s(), r.u32())
    r.done()
    return rec


def _encode_gateway(r: ExtendedGateway) -> bytes:
    parts = [enc_address(r.next_hop),
             struct.pack(">IIII", r.as_number, r.src_as, r.src_peer_as, len(r.dst_as_path))]
    for seg_type, asns in r.dst_as_path:
        parts.append(U32S.pack(seg_type) + _u32s(asns))
    parts.append(_u32s(r.communities))
    parts.append(U32S.pack(r.local_pref))
    return b"".join(parts)


def _sflowtool_gateway(r: ExtendedGateway, out: dict, p: str) -> None:
    out[p + "extendedType"] = "GATEWAY"
    out[p + "bgp_nexthop"] = fmt_ip(r.next_hop)
    out[p + "my_as"] = str(r.as_number)
    out[p + "src_as"] = str(r.src_as)
    out[p + "src_peer_as"] = str(r.src_peer_as)
    segs = r.dst_as_path
    dst_as = dst_peer_as = 0
    if segs:
        # sflowtool: segments run together, AS_SETs in parentheses, e.g. "1-2(3-4)5"
        s = _SFStr()
        for seg_type, asns in segs:
            if seg_type == AS_SET:
                s.append("(")
            s.array32(asns, "-")
            if seg_type == AS_SET:
                s.append(")")
        out[p + "dst_as_path"] = str(s)
        # It takes the first word after the first segment's header and the word before the end of
        # the last segment, even when a segment is empty: reproduce what those words hold.
        first = segs[0][1]
        dst_peer_as = first[0] if first else (segs[1][0] if len(segs) > 1 else len(r.communities))
        last = segs[-1][1]
        dst_as = last[-1] if last else 0
    out[p + "dst_as"] = str(dst_as)
    out[p + "dst_peer_as"] = str(dst_peer_as)
    if r.communities:
        s = _SFStr()
        s.array32(r.communities, "-")
        out[p + "BGP_communities"] = str(s)
    out[p + "BGP_localpref"] = str(r.local_pref)


# ---------------------------------------------------------------- 0:1004 extended_user


class ExtendedUser(Record):
    """extended_user (0:1004): source and destination user names (e.g. from RADIUS/TACACS)."""

    src_charset: int  # MIBEnum (RFC 2978); 106 = UTF-8, 0 = unknown
    src_user: str
    dst_charset: int
    dst_user: str


def _sflowtool_user(r: ExtendedUser, out: dict, p: str) -> None:
    out[p + "extendedType"] = "USER"
    out[p + "src_user_charset"] = str(r.src_charset)
    out[p + "dst_user_charset"] = str(r.dst_charset)
    out[p + "src_user"] = _cstr(r.src_user, 200)
    out[p + "dst_user"] = _cstr(r.dst_user, 200)


# ---------------------------------------------------------------- 0:1005 extended_url


class ExtendedUrl(Record):
    """extended_url (0:1005): the URL and Host of an HTTP request."""

    direction: int  # 1 = source address is the server, 2 = destination address is the server
    url: str
    host: str


def _sflowtool_url(r: ExtendedUrl, out: dict, p: str) -> None:
    out[p + "extendedType"] = "URL"
    out[p + "url_direction"] = str(r.direction)
    out[p + "url"] = _cstr(r.url, 200)
    out[p + "host"] = _cstr(r.host, 200)


# ---------------------------------------------------------------- 0:1006 extended_mpls


class ExtendedMpls(Record):
    """extended_mpls (0:1006): MPLS next hop and label stacks (RFC 3032 entries, top first)."""

    next_hop: str
    in_stack: tuple[int, ...]
    out_stack: tuple[int, ...]


def _label_stack(stack: tuple[int, ...], out: dict, key: str) -> None:
    """sflowtool's "label.exp.bos.ttl" entries joined by '-' (only for a non-empty stack)."""
    if stack:
        s = _SFStr()
        for j, lab in enumerate(stack):
            if j:
                s.append("-")
            s.array32((lab >> 12, (lab >> 9) & 7, (lab >> 8) & 1, lab & 255), ".")
        out[key] = str(s)


def _sflowtool_mpls(r: ExtendedMpls, out: dict, p: str) -> None:
    out[p + "extendedType"] = "MPLS"
    out[p + "mpls_nexthop"] = fmt_ip(r.next_hop)
    _label_stack(r.in_stack, out, p + "mpls_input_stack")
    _label_stack(r.out_stack, out, p + "mpls_output_stack")


# ---------------------------------------------------------------- 0:1007 extended_nat, 0:1020 extended_nat_port


class ExtendedNat(Record):
    """extended_nat (0:1007): source and destination addresses after translation."""

    src_address: str
    dst_address: str


def _sflowtool_nat(r: ExtendedNat, out: dict, p: str) -> None:
    out[p + "extendedType"] = "NAT"
    out[p + "nat_src"] = fmt_ip(r.src_address)
    out[p + "nat_dst"] = fmt_ip(r.dst_address)


class ExtendedNatPort(Record):
    """extended_nat_port (0:1020): source and destination ports after translation."""

    src_port: int
    dst_port: int


EXTENDED_NAT_PORT = Fixed("extended_nat_port", ExtendedNatPort, (
    F("src_port", U32, "nat_src_port"),
    F("dst_port", U32, "nat_dst_port"),
))


# ---------------------------------------------------------------- 0:1008-0:1011 MPLS tunnel, VC, FTN, LDP FEC


class ExtendedMplsTunnel(Record):
    """extended_mpls_tunnel (0:1008): the MPLS tunnel (LSP) carrying the packet."""

    tunnel_lsp_name: str
    tunnel_id: int
    tunnel_cos: int


class ExtendedMplsVc(Record):
    """extended_mpls_vc (0:1009): the MPLS virtual circuit carrying the packet."""

    vc_instance_name: str
    vll_vc_id: int
    vc_label_cos: int


def _name_id_cos(cls: type, what: str, keys: tuple[str, str, str]) -> Custom:
    def tool(rec, out: dict, p: str) -> None:
        name, a, b = (getattr(rec, f) for f in cls.__struct_fields__)
        if name:
            out[p + keys[0]] = _cstr(name, 100)
        out[p + keys[1]] = str(a)
        out[p + keys[2]] = str(b)

    return _var(what, cls, "string u32 u32", tool)


class ExtendedMplsFtn(Record):
    """extended_mpls_FTN (0:1010): FEC-to-NHLFE entry (MPLS-FTN-STD-MIB mplsFTNTable)."""

    mpls_ftn_descr: str
    mpls_ftn_mask: int


def _sflowtool_ftn(r: ExtendedMplsFtn, out: dict, p: str) -> None:
    if r.mpls_ftn_descr:
        out[p + "mpls_ftn_descr"] = _cstr(r.mpls_ftn_descr, 100)
    out[p + "mpls_ftn_mask"] = str(r.mpls_ftn_mask)


class ExtendedMplsLdpFec(Record):
    """extended_mpls_LDP_FEC (0:1011): LDP FEC prefix length (MPLS-LDP-STD-MIB mplsFecTable)."""

    mpls_fec_addr_prefix_length: int


EXTENDED_MPLS_LDP_FEC = Fixed("extended_mpls_LDP_FEC", ExtendedMplsLdpFec, (
    F("mpls_fec_addr_prefix_length", U32, "mpls_fec_addr_prefix_len"),
))


# ---------------------------------------------------------------- 0:1012 extended_vlantunnel


class ExtendedVlanTunnel(Record):
    """extended_vlantunnel (0:1012): stripped outer 802.1Q layers, each TPID << 16 | TCI, outermost first."""

    stack: tuple[int, ...]


def _sflowtool_vlan_tunnel(r: ExtendedVlanTunnel, out: dict, p: str) -> None:
    if r.stack:
        # sflowtool: "0x<TPID>" then "pri.cfi.vlan" with no separator, e.g. "0x81000.0.100"
        s = _SFStr()
        for j, lab in enumerate(r.stack):
            if j:
                s.append("-")
            s.hex_0x(bytes(((lab >> 24) & 255, (lab >> 16) & 255)))
            s.array32(((lab >> 13) & 7, (lab >> 12) & 1, lab & 4095), ".")
        out[p + "vlan_tunnel"] = str(s)


# ---------------------------------------------------------------- 0:1013-0:1015 IEEE 802.11


class Extended80211Payload(Record):
    """extended_80211_payload (0:1013): the unencrypted payload of an encrypted 802.11 frame."""

    cipher_suite: int  # OUI << 8 | suite type (802.11i), e.g. 0x000FAC04 = CCMP
    header: SampledHeader  # sflowtool reads the payload as a sampled_header structure


def _decode_80211_payload(buf: memoryview, off: int, length: int) -> Extended80211Payload:
    if length < 4:
        raise DecodeError(off, f"extended_80211_payload record length {length} is too short")
    return Extended80211Payload(U32S.unpack_from(buf, off)[0], _decode_sampled_header(buf, off + 4, length - 4))


def _encode_80211_payload(r: Extended80211Payload) -> bytes:
    return U32S.pack(r.cipher_suite) + _encode_sampled_header(r.header)


def _sflowtool_80211_payload(r: Extended80211Payload, out: dict, p: str) -> None:
    out[p + "cipher_suite"] = str(r.cipher_suite)
    _sflowtool_sampled_header(r.header, out, p)


SFL_MAX_SSID_LEN = 256


class Extended80211Rx(Record):
    """extended_80211_rx (0:1014): the 802.11 reception of the sampled packet."""

    ssid: str
    bssid: str
    version: int  # 1 = a, 2 = b, 3 = g, 4 = n
    channel: int
    speed: int  # bits per second
    rsni: int  # received signal to noise ratio (dot11FrameRprtRSNI)
    rcpi: int  # received channel power (dot11FrameRprtLastRCPI)
    packet_duration: int  # microseconds the packet occupied the medium


def _sflowtool_80211_rx(r: Extended80211Rx, out: dict, p: str) -> None:
    if r.ssid:
        out[p + "rx_SSID"] = _cstr(r.ssid, SFL_MAX_SSID_LEN)
    out[p + "rx_BSSID"] = fmt_mac(r.bssid)
    out[p + "rx_version"] = str(r.version)
    out[p + "rx_channel"] = str(r.channel)
    out[p + "rx_speed"] = str(r.speed)
    out[p + "rx_rsni"] = str(r.rsni)
    out[p + "rx_rcpi"] = str(r.rcpi)
    out[p + "rx_packet_uS"] = str(r.packet_duration)


class Extended80211Tx(Record):
    """extended_80211_tx (0:1015): the 802.11 transmission of the sampled packet."""

    ssid: str
    bssid: str
    version: int
    transmissions: int  # 0 = unknown, 1 = first attempt succeeded, n = n - 1 retransmissions
    packet_duration: int  # microseconds the successful transmission occupied the medium
    retrans_duration: int  # microseconds failed attempts occupied the medium
    channel: int
    speed: int
    power: int  # transmit power, mW


def _sflowtool_80211_tx(r: Extended80211Tx, out: dict, p: str) -> None:
    if r.ssid:
        out[p + "tx_SSID"] = _cstr(r.ssid, SFL_MAX_SSID_LEN)
    out[p + "tx_BSSID"] = fmt_mac(r.bssid)
    out[p + "tx_version"] = str(r.version)
    out[p + "tx_transmissions"] = str(r.transmissions)
    out[p + "tx_packet_uS"] = str(r.packet_duration)
    out[p + "tx_retrans_uS"] = str(r.retrans_duration)
    out[p + "tx_channel"] = str(r.channel)
    out[p + "tx_speed"] = str(r.speed)
    out[p + "tx_power_mW"] = str(r.power)


# ---------------------------------------------------------------- 0:1027-0:1030 decapsulation and VNI


class _Decapsulate(Record):
    inner_header_offset: int  # offset of the inner header within the sampled header, 0 = none


class ExtendedDecapsulateEgress(_Decapsulate):
    """extended_decapsulate_egress (0:1027): the packet is decapsulated on egress."""


class ExtendedDecapsulateIngress(_Decapsulate):
    """extended_decapsulate_ingress (0:1028): the packet was decapsulated on ingress."""


class _Vni(Record):
    vni: int  # virtual network identifier (e.g. VXLAN VNI, NVGRE VSID)


class ExtendedVniEgress(_Vni):
    """extended_vni_egress (0:1029): VNI added on egress."""


class ExtendedVniIngress(_Vni):
    """extended_vni_ingress (0:1030): VNI removed on ingress."""


def _decap(name: str, cls: type, prefix: str) -> Custom:
    fx = Fixed(name, cls, (F("inner_header_offset", U32, None),))

    def tool(r: _Decapsulate, out: dict, p: str) -> None:
        out[p + "extendedType"] = prefix + "decap"
        out[p + prefix + "decap_inner_header_offset"] = str(r.inner_header_offset)

    return Custom(name, cls, fx.decode, fx.encode, tool)


def _vni(name: str, cls: type, prefix: str) -> Custom:
    fx = Fixed(name, cls, (F("vni", U32, None),))

    def tool(r: _Vni, out: dict, p: str) -> None:
        out[p + "extendedType"] = prefix + "VNI"
        out[p + prefix + "VNI"] = str(r.vni)

    return Custom(name, cls, fx.decode, fx.encode, tool)


# ---------------------------------------------------------------- 0:1036-0:1042 queue, delay, drop details


SFL_MAX_FUNCTION_SYMBOL_LEN = 64
SFL_MAX_HW_TRAP_LEN = 64
SFL_MAX_LINUX_REASON_LEN = 64


class ExtendedEgressQueue(Record):
    """extended_egress_queue (0:1036): the egress queue selected for the packet."""

    queue: int


class ExtendedTransitDelay(Record):
    """extended_transit_delay (0:1039): time the packet took through the switch."""

    delay: int  # nanoseconds; 0xFFFFFFFF = that much or more


class ExtendedQueueDepth(Record):
    """extended_queue_depth (0:1040): depth of the egress queue the packet joined."""

    depth: int  # bytes


class ExtendedFunction(Record):
    """extended_function (0:1038): the software function that dropped the packet."""

    symbol: str


class ExtendedHwTrap(Record):
    """extended_hw_trap (0:1041): the devlink hardware trap that caught the packet."""

    group: str
    trap: str


class ExtendedLinuxReason(Record):
    """extended_linux_drop_reason (0:1042): the Linux drop_monitor reason."""

    reason: str


def _strings(cls: type, what: str, keys: tuple[str, ...], limits: tuple[int, ...], ext: str) -> Custom:
    """A record of strings only; sflowtool prints each non-empty one cut to its buffer (limit - 1 bytes)."""
    printed = tuple(zip(cls.__struct_fields__, keys, limits))

    def tool(rec, out: dict, p: str) -> None:
        if ext:
            out[p + "extendedType"] = ext
        for a, k, limit in printed:
            s = getattr(rec, a)
            if s:
                out[p + k] = _cstr(s, limit)

    return _var(what, cls, " ".join(["string"] * len(keys)), tool)


# ---------------------------------------------------------------- 0:2100-0:2103 sockets


class _Socket4(Record):
    protocol: int  # IP protocol (e.g. TCP = 6, UDP = 17)
    local_ip: str
    remote_ip: str
    local_port: int
    remote_port: int


class _Socket6(Record):
    protocol: int
    local_ip: str
    remote_ip: str
    local_port: int
    remote_port: int


class ExtendedSocketIpv4(_Socket4):
    """extended_socket_ipv4 (0:2100): the server socket of an application transaction."""


class ExtendedSocketIpv6(_Socket6):
    """extended_socket_ipv6 (0:2101): the server socket of an application transaction."""


class ExtendedProxySocketIpv4(_Socket4):
    """extended_proxy_socket_ipv4 (0:2102): the back-end (client) socket of a proxied transaction."""


class ExtendedProxySocketIpv6(_Socket6):
    """extended_proxy_socket_ipv6 (0:2103): the back-end (client) socket of a proxied transaction."""


def _socket(name: str, cls: type, ip: object, kind: str) -> Custom:
    fx = Fixed(name, cls, (
        F("protocol", U32, kind + "_ip_protocol"),
        F("local_ip", ip, kind + "_local_ip"),
        F("remote_ip", ip, kind + "_remote_ip"),
        F("local_port", U32, kind + "_local_port"),
        F("remote_port", U32, kind + "_remote_port"),
    ))
    return _typed(fx, kind)


# ---------------------------------------------------------------- 0:2200 memcache_operation (sflow_memcache.txt)


SFL_MAX_MEMCACHE_KEY = 255


class MemcacheOperation(Record):
    """memcache_operation (0:2200): one sampled memcache command."""

    protocol: int  # 0 other, 1 ASCII, 2 binary
    cmd: int  # 1 set, 2 add, ... 7 get, ... (memcache_cmd)
    key: str
    nkeys: int
    value_bytes: int
    duration_us: int
    status: int  # memcache_status: 1 OK, 2 ERROR, ... 9 DELETED


_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_SPACE = frozenset(b" \t\n\v\f\r")


def url_encode(s: str) -> str:
    """sflowtool's URLEncode() as it runs on little-endian hosts.

    Letters and digits stay, white space becomes '+', any other byte '%' and its two hex digits
    in swapped order (it reads its hex table as native 16-bit words: '/' = 0x2F prints "%F2").
    """
    out = []
    for c in s.encode("utf-8"):
        if c in _ALNUM:
            out.append(chr(c))
        elif c in _SPACE:
            out.append("+")
        else:
            h = "%02X" % c
            out.append("%" + h[1] + h[0])
    return "".join(out)


def _sflowtool_memcache(r: MemcacheOperation, out: dict, p: str) -> None:
    out[p + "flowSampleType"] = "memcache"
    out[p + "memcache_op_protocol"] = str(r.protocol)
    out[p + "memcache_op_cmd"] = str(r.cmd)
    if r.key:
        out[p + "memcache_op_key"] = url_encode(_cstr(r.key, SFL_MAX_MEMCACHE_KEY))
    out[p + "memcache_op_nkeys"] = str(r.nkeys)
    out[p + "memcache_op_value_bytes"] = str(r.value_bytes)
    out[p + "memcache_op_duration_uS"] = str(r.duration_us)
    out[p + "memcache_op_status"] = str(r.status)


# ---------------------------------------------------------------- 0:2201, 0:2206 http_request (sflow_http.txt)

SFL_MAX_HTTP_URI = 255
SFL_MAX_HTTP_HOST = 64
SFL_MAX_HTTP_REFERRER = 255
SFL_MAX_HTTP_USERAGENT = 128
SFL_MAX_HTTP_XFF = 64
SFL_MAX_HTTP_AUTHUSER = 32
SFL_MAX_HTTP_MIMETYPE = 64


class HttpRequestV1(Record):
    """http_request (0:2201): the first, deprecated version (no X-Forwarded-For, no request size)."""

    method: int  # 0 OTHER, 1 OPTIONS, 2 GET, 3 HEAD, 4 POST, 5 PUT, 6 DELETE, 7 TRACE, 8 CONNECT
    protocol: int  # HTTP version * 1000 + minor, e.g. 1001 = HTTP/1.1
    uri: str
    host: str
    referer: str
    useragent: str
    authuser: str
    mime_type: str
    bytes: int  # Content-Length of the response
    duration_us: int
    status: int  # HTTP status code


class HttpRequest(Record):
    """http_request (0:2206): one sampled HTTP request."""

    method: int
    protocol: int
    uri: str
    host: str
    referer: str
    useragent: str
    xff: str  # X-Forwarded-For
    authuser: str
    mime_type: str
    req_bytes: int  # Content-Length of the request
    resp_bytes: int  # Content-Length of the response
    duration_us: int
    status: int


def _sflowtool_http(r: HttpRequest | HttpRequestV1, out: dict, p: str) -> None:
    v2 = type(r) is HttpRequest
    out[p + "flowSampleType"] = "http"
    out[p + "http_method"] = str(r.method)
    out[p + "http_protocol"] = str(r.protocol)
    for key, s, limit in (("http_uri", r.uri, SFL_MAX_HTTP_URI), ("http_host", r.host, SFL_MAX_HTTP_HOST),
                          ("http_referrer", r.referer, SFL_MAX_HTTP_REFERRER),
                          ("http_useragent", r.useragent, SFL_MAX_HTTP_USERAGENT),
                          ("http_xff", r.xff if v2 else "", SFL_MAX_HTTP_XFF),
                          ("http_authuser", r.authuser, SFL_MAX_HTTP_AUTHUSER),
                          ("http_mimetype", r.mime_type, SFL_MAX_HTTP_MIMETYPE)):
        if s:
            out[p + key] = _cstr(s, limit)
    if v2:
        out[p + "http_request_bytes"] = str(r.req_bytes)
    out[p + "http_bytes"] = str(r.resp_bytes if v2 else r.bytes)
    out[p + "http_duration_uS"] = str(r.duration_us)
    out[p + "http_status"] = str(r.status & 0xFFFFFFFF)


# ---------------------------------------------------------------- 0:2202-0:2205 application transactions

SFLAPP_MAX_APPLICATION_LEN = 32
SFLAPP_MAX_OPERATION_LEN = 32
SFLAPP_MAX_ATTRIBUTES_LEN = 255
SFLAPP_MAX_STATUS_LEN = 32
SFLAPP_MAX_ACTOR_LEN = 64
# sflowtool's names for the app_operation status codes (sic: "UNATHORIZED")
APP_STATUS_NAMES = ("SUCCESS", "OTHER", "TIMEOUT", "INTERNAL_ERROR", "BAD_REQUEST", "FORBIDDEN", "TOO_LARGE",
                    "NOT_IMPLEMENTED", "NOT_FOUND", "UNAVAILABLE", "UNATHORIZED")


class AppOperation(Record):
    """app_operation (0:2202): one sampled application transaction."""

    application: str  # context: the application, e.g. "payment"
    operation: str  # context: the operation, e.g. "get.balance"
    attributes: str  # context: URL-encoded attributes, e.g. "user=1234&currency=USD"
    status_descr: str
    req_bytes: int
    resp_bytes: int
    duration_us: int
    status: int  # 0 SUCCESS, 1 OTHER, 2 TIMEOUT, ... (see APP_STATUS_NAMES)


class AppParentContext(Record):
    """app_parent_context (0:2203): the operation that this transaction is part of."""

    application: str
    operation: str
    attributes: str


class AppInitiator(Record):
    """app_initiator (0:2204): who started the transaction."""

    actor: str


class AppTarget(Record):
    """app_target (0:2205): what the transaction acted on."""

    actor: str


def _sflowtool_app(r: AppOperation, out: dict, p: str) -> None:
    out[p + "flowSampleType"] = "applicationOperation"
    for key, s, limit in (("application", r.application, SFLAPP_MAX_APPLICATION_LEN),
                          ("operation", r.operation, SFLAPP_MAX_OPERATION_LEN),
                          ("attributes", r.attributes, SFLAPP_MAX_ATTRIBUTES_LEN),
                          ("status_descr", r.status_descr, SFLAPP_MAX_STATUS_LEN)):
        if s:
            out[p + key] = _cstr(s, limit)
    out[p + "request_bytes"] = str(r.req_bytes)
    out[p + "response_bytes"] = str(r.resp_bytes)
    out[p + "duration_uS"] = str(r.duration_us)
    out[p + "status"] = (APP_STATUS_NAMES[r.status] if r.status < len(APP_STATUS_NAMES)
                         else f"<out-of-range={r.status}>")


# ---------------------------------------------------------------- 0:2209 extended_tcp_info, 0:2210 extended_entities


class ExtendedTcpInfo(Record):
    """extended_tcp_info (0:2209): TCP connection state of the sampled packet (Linux tcp_info)."""

    dir: int  # packet_direction: 0 unknown, 1 received, 2 sent
    snd_mss: int  # cached effective MSS, not including SACKs
    rcv_mss: int  # max. received segment size
    unacked: int  # packets in flight
    lost: int
    retrans: int
    pmtu: int  # last path MTU seen by the socket
    rtt: int  # smoothed RTT, microseconds
    rttvar: int  # RTT variance, microseconds
    snd_cwnd: int  # sending congestion window
    reordering: int
    min_rtt: int  # microseconds


_TCP_DIRECTIONS = ("unknown", "received", "sent")

EXTENDED_TCP_INFO = Fixed("extended_tcp_info", ExtendedTcpInfo, (
    F("dir", U32, None),
    F("snd_mss", U32, "tcpinfo_send_mss"),
    F("rcv_mss", U32, "tcpinfo_receive_mss"),
    F("unacked", U32, "tcpinfo_unacked_pkts"),
    F("lost", U32, "tcpinfo_lost_pkts"),
    F("retrans", U32, "tcpinfo_retrans_pkts"),
    F("pmtu", U32, "tcpinfo_path_mtu"),
    F("rtt", U32, "tcpinfo_rtt_uS"),
    F("rttvar", U32, "tcpinfo_rtt_uS_var"),
    F("snd_cwnd", U32, "tcpinfo_send_congestion_win"),
    F("reordering", U32, "tcpinfo_reordering"),
    F("min_rtt", U32, "tcpinfo_rtt_uS_min"),
))


def _sflowtool_tcp_info(r: ExtendedTcpInfo, out: dict, p: str) -> None:
    # sflowtool prints no extendedType line for this record
    out[p + "tcpinfo_direction"] = _TCP_DIRECTIONS[r.dir] if r.dir < 3 else "<bad value>"
    EXTENDED_TCP_INFO.sflowtool(r, out, p)


class ExtendedEntities(Record):
    """extended_entities (0:2210): the data sources (e.g. VMs, containers) the packet goes between."""

    src_ds_class: int
    src_ds_index: int
    dst_ds_class: int
    dst_ds_index: int


EXTENDED_ENTITIES = Fixed("extended_entities", ExtendedEntities, (
    F("src_ds_class", U32, "entities_src_class"),
    F("src_ds_index", U32, "entities_src_index"),
    F("dst_ds_class", U32, "entities_dst_class"),
    F("dst_ds_index", U32, "entities_dst_index"),
))


# ---------------------------------------------------------------- the table

FLOW_RECORDS = {
    (0, 1): Custom("sampled_header", SampledHeader, _decode_sampled_header, _encode_sampled_header,
                   _sflowtool_sampled_header),
    (0, 2): _ethernet("sampled_ethernet", SampledEthernet, ""),
    (0, 3): _ipv4("sampled_ipv4", SampledIpv4, ""),
    (0, 4): _ipv6("sampled_ipv6", SampledIpv6, ""),
    (0, 1001): _typed(EXTENDED_SWITCH, "SWITCH"),
    (0, 1002): _var("extended_router", ExtendedRouter, "address u32 u32", _sflowtool_router),
    (0, 1003): Custom("extended_gateway", ExtendedGateway, _decode_gateway, _encode_gateway, _sflowtool_gateway),
    (0, 1004): _var("extended_user", ExtendedUser, "u32 string u32 string", _sflowtool_user),
    (0, 1005): _var("extended_url", ExtendedUrl, "u32 string string", _sflowtool_url),
    (0, 1006): _var("extended_mpls", ExtendedMpls, "address u32s u32s", _sflowtool_mpls),
    (0, 1007): _var("extended_nat", ExtendedNat, "address address", _sflowtool_nat),
    (0, 1008): _name_id_cos(ExtendedMplsTunnel, "extended_mpls_tunnel",
                            ("mpls_tunnel_lsp_name", "mpls_tunnel_id", "mpls_tunnel_cos")),
    (0, 1009): _name_id_cos(ExtendedMplsVc, "extended_mpls_vc", ("mpls_vc_name", "mpls_vll_vc_id", "mpls_vc_cos")),
    (0, 1010): _var("extended_mpls_FTN", ExtendedMplsFtn, "string u32", _sflowtool_ftn),
    (0, 1011): EXTENDED_MPLS_LDP_FEC,
    (0, 1012): _var("extended_vlantunnel", ExtendedVlanTunnel, "u32s", _sflowtool_vlan_tunnel),
    (0, 1013): Custom("extended_80211_payload", Extended80211Payload, _decode_80211_payload,
                      _encode_80211_payload, _sflowtool_80211_payload),
    (0, 1014): _var("extended_80211_rx", Extended80211Rx, "string mac u32 u32 u64 u32 u32 u32", _sflowtool_80211_rx),
    (0, 1015): _var("extended_80211_tx", Extended80211Tx, "string mac u32 u32 u32 u32 u32 u64 u32",
                    _sflowtool_80211_tx),
    (0, 1020): _typed(EXTENDED_NAT_PORT, "NAT PORT"),
    (0, 1021): _ethernet("extended_l2_tunnel_egress", ExtendedL2TunnelEgress, "tunnel_l2_out_"),
    (0, 1022): _ethernet("extended_l2_tunnel_ingress", ExtendedL2TunnelIngress, "tunnel_l2_in_"),
    (0, 1023): _ipv4("extended_ipv4_tunnel_egress", ExtendedIpv4TunnelEgress, "tunnel_ipv4_out_"),
    (0, 1024): _ipv4("extended_ipv4_tunnel_ingress", ExtendedIpv4TunnelIngress, "tunnel_ipv4_in_"),
    (0, 1025): _ipv6("extended_ipv6_tunnel_egress", ExtendedIpv6TunnelEgress, "tunnel_ipv6_out_"),
    (0, 1026): _ipv6("extended_ipv6_tunnel_ingress", ExtendedIpv6TunnelIngress, "tunnel_ipv6_in_"),
    (0, 1027): _decap("extended_decapsulate_egress", ExtendedDecapsulateEgress, "out_"),
    (0, 1028): _decap("extended_decapsulate_ingress", ExtendedDecapsulateIngress, "in_"),
    (0, 1029): _vni("extended_vni_egress", ExtendedVniEgress, "out_"),
    (0, 1030): _vni("extended_vni_ingress", ExtendedVniIngress, "in_"),
    (0, 1036): _typed(Fixed("extended_egress_queue", ExtendedEgressQueue, (F("queue", U32, "egress_queue_id"),)),
                      "egress_queue"),
    (0, 1038): _strings(ExtendedFunction, "extended_function", ("symbol",), (SFL_MAX_FUNCTION_SYMBOL_LEN,),
                        "function"),
    (0, 1039): _typed(Fixed("extended_transit_delay", ExtendedTransitDelay, (F("delay", U32, "transit_delay_nS"),)),
                      "transit_delay"),
    (0, 1040): _typed(Fixed("extended_queue_depth", ExtendedQueueDepth, (F("depth", U32, "queue_depth_bytes"),)),
                      "queue_depth"),
    (0, 1041): _strings(ExtendedHwTrap, "extended_hw_trap", ("hw_trap_group", "hw_trap_name"),
                        (SFL_MAX_HW_TRAP_LEN, SFL_MAX_HW_TRAP_LEN), "hw_trap"),
    (0, 1042): _strings(ExtendedLinuxReason, "extended_linux_drop_reason", ("linux_drop_reason",),
                        (SFL_MAX_LINUX_REASON_LEN,), "linux_reason"),
    (0, 2100): _socket("extended_socket_ipv4", ExtendedSocketIpv4, IP4, "socket4"),
    (0, 2101): _socket("extended_socket_ipv6", ExtendedSocketIpv6, IP6, "socket6"),
    (0, 2102): _socket("extended_proxy_socket_ipv4", ExtendedProxySocketIpv4, IP4, "proxy_socket4"),
    (0, 2103): _socket("extended_proxy_socket_ipv6", ExtendedProxySocketIpv6, IP6, "proxy_socket6"),
    (0, 2200): _var("memcache_operation", MemcacheOperation, "u32 u32 string u32 u32 u32 u32", _sflowtool_memcache),
    (0, 2201): _var("http_request", HttpRequestV1, "u32 u32 " + "string " * 6 + "u64 u32 i32", _sflowtool_http),
    (0, 2202): _var("app_operation", AppOperation, "string string string string u64 u64 u32 u32", _sflowtool_app),
    (0, 2203): _strings(AppParentContext, "app_parent_context",
                        ("server_context_application", "server_context_operation", "server_context_attributes"),
                        (SFLAPP_MAX_APPLICATION_LEN, SFLAPP_MAX_OPERATION_LEN, SFLAPP_MAX_ATTRIBUTES_LEN), ""),
    (0, 2204): _strings(AppInitiator, "app_initiator", ("actor_initiator",), (SFLAPP_MAX_ACTOR_LEN,), ""),
    (0, 2205): _strings(AppTarget, "app_target", ("actor_target",), (SFLAPP_MAX_ACTOR_LEN,), ""),
    (0, 2206): _var("http_request", HttpRequest, "u32 u32 " + "string " * 7 + "u64 u64 u32 i32", _sflowtool_http),
    (0, 2209): Custom("extended_tcp_info", ExtendedTcpInfo, EXTENDED_TCP_INFO.decode, EXTENDED_TCP_INFO.encode,
                      _sflowtool_tcp_info),
    (0, 2210): _typed(EXTENDED_ENTITIES, "entities"),
}
