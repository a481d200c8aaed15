"""Packet records: the sampled header and the decoded Ethernet/IPv4/IPv6 headers, plain and tunnelled.

sampled_header (0:1), sampled_ethernet/ipv4/ipv6 (0:2-0:4), the tunnel variants of those
structures (0:1021-0:1026) and the decapsulation and VNI records (0:1027-0:1030).
Structures and names: sflow_version_5.txt, sflow_tunnels.txt.
"""

from __future__ import annotations

import struct

from ingest.sflow.errors import DecodeError
from ingest.sflow.header import DecodedHeader, decode_header, header_sflowtool
from ingest.sflow.layout import IP4, IP6, MAC, U32, Custom, F, Fixed, enc_opaque, fmt_mac, ip6_full
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


def decode_sampled_header(buf: memoryview, off: int, length: int) -> SampledHeader:
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


def encode_sampled_header(r: SampledHeader) -> bytes:
    return _HEADER_HEAD.pack(r.header_protocol, r.frame_length, r.stripped, 0)[:12] + enc_opaque(r.header)


def sflowtool_sampled_header(r: SampledHeader, out: dict, p: str) -> None:
    out[p + "flowSampleType"] = "HEADER"
    out[p + "headerProtocol"] = str(r.header_protocol)
    out[p + "sampledPacketSize"] = str(r.frame_length)
    out[p + "strippedBytes"] = str(r.stripped)
    out[p + "headerLen"] = str(len(r.header))
    # sflowtool's 2048-byte string buffer holds at most 682 bytes as "XX-"
    out[p + "headerBytes"] = r.header[:682].hex("-").upper()
    header_sflowtool(r, out, p)


SAMPLED_HEADER = Custom("sampled_header", SampledHeader, decode_sampled_header, encode_sampled_header,
                        sflowtool_sampled_header)


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


SAMPLED_ETHERNET = _ethernet("sampled_ethernet", SampledEthernet, "")
SAMPLED_IPV4 = _ipv4("sampled_ipv4", SampledIpv4, "")
SAMPLED_IPV6 = _ipv6("sampled_ipv6", SampledIpv6, "")
EXTENDED_L2_TUNNEL_EGRESS = _ethernet("extended_l2_tunnel_egress", ExtendedL2TunnelEgress, "tunnel_l2_out_")
EXTENDED_L2_TUNNEL_INGRESS = _ethernet("extended_l2_tunnel_ingress", ExtendedL2TunnelIngress, "tunnel_l2_in_")
EXTENDED_IPV4_TUNNEL_EGRESS = _ipv4("extended_ipv4_tunnel_egress", ExtendedIpv4TunnelEgress, "tunnel_ipv4_out_")
EXTENDED_IPV4_TUNNEL_INGRESS = _ipv4("extended_ipv4_tunnel_ingress", ExtendedIpv4TunnelIngress, "tunnel_ipv4_in_")
EXTENDED_IPV6_TUNNEL_EGRESS = _ipv6("extended_ipv6_tunnel_egress", ExtendedIpv6TunnelEgress, "tunnel_ipv6_out_")
EXTENDED_IPV6_TUNNEL_INGRESS = _ipv6("extended_ipv6_tunnel_ingress", ExtendedIpv6TunnelIngress, "tunnel_ipv6_in_")


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


EXTENDED_DECAPSULATE_EGRESS = _decap("extended_decapsulate_egress", ExtendedDecapsulateEgress, "out_")
EXTENDED_DECAPSULATE_INGRESS = _decap("extended_decapsulate_ingress", ExtendedDecapsulateIngress, "in_")
EXTENDED_VNI_EGRESS = _vni("extended_vni_egress", ExtendedVniEgress, "out_")
EXTENDED_VNI_INGRESS = _vni("extended_vni_ingress", ExtendedVniIngress, "in_")
