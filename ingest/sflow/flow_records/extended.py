"""Extended records: switch, router, gateway, user, URL, MPLS, NAT, VLAN tunnel and 802.11 data of a flow.

0:1001-0:1012 and 0:1020 (sflow_version_5.txt), 0:1013-0:1015 (sflow_80211.txt).
"""

from __future__ import annotations

import struct

from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.flow_records._common import (
    _cstr,
    _Reader,
    _SFStr,
    _typed,
    _u32s,
    _var,
    ip6_text,
    u32_array,
)
from ingest.sflow.flow_records.packet import (
    SampledHeader,
    decode_sampled_header,
    encode_sampled_header,
    sflowtool_sampled_header,
)
from ingest.sflow.layout import (
    IP4_WORD_TEXT,
    U32,
    U32S,
    Custom,
    F,
    Fixed,
    enc_address,
    fmt_ip,
    fmt_mac,
    ip4_word_text,
)
from ingest.sflow.model import Record

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


# the FLOW_RECORDS entry: EXTENDED_SWITCH (the bare layout) preceded by sflowtool's extendedType line
EXTENDED_SWITCH_RECORD = _typed(EXTENDED_SWITCH, "SWITCH")


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


EXTENDED_ROUTER = _var("extended_router", ExtendedRouter, "address u32 u32", _sflowtool_router)


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
    """The happy path: the record is all 32-bit words, read in one unpack and walked by index.
    Whatever a check refuses is decoded (and refused) by _decode_gateway_checked."""
    if length < 24 or length & 3:  # shorter than an IPv4 next hop and four words, or fields cannot fill it
        return _decode_gateway_checked(buf, off, length)
    # next hop (type, address), as, src_as, src_peer_as, n segments, n x (type, n ASNs, ASNs),
    # n communities, communities, local_pref
    words = u32_array(length >> 2).unpack_from(buf, off)
    nw = len(words)
    t = words[0]
    if t == 1:
        next_hop = IP4_WORD_TEXT.get(words[1]) or ip4_word_text(words[1])
        i = 2
    elif t == 2 and length >= 36:
        next_hop = ip6_text(bytes(buf[off + 4 : off + 20]))
        i = 5
    else:
        return _decode_gateway_checked(buf, off, length)
    as_number, src_as, src_peer_as, n = words[i : i + 4]
    i += 4
    if n > (nw - i) // 2:
        return _decode_gateway_checked(buf, off, length)
    if n == 1:  # the usual AS path: one AS_SEQUENCE
        j = i + 2 + words[i + 1]
        if j > nw:
            return _decode_gateway_checked(buf, off, length)
        path: tuple = ((words[i], words[i + 2 : j]),)
        i = j
    else:
        segments = []
        for _ in range(n):
            if nw - i < 2:
                return _decode_gateway_checked(buf, off, length)
            j = i + 2 + words[i + 1]
            if j > nw:
                return _decode_gateway_checked(buf, off, length)
            segments.append((words[i], words[i + 2 : j]))
            i = j
        path = tuple(segments)
    if i >= nw:
        return _decode_gateway_checked(buf, off, length)
    j = i + 1 + words[i]
    if j + 1 != nw:  # the communities, local_pref, and nothing after
        return _decode_gateway_checked(buf, off, length)
    return ExtendedGateway(next_hop, as_number, src_as, src_peer_as, path, words[i + 1 : j], words[j])


def _decode_gateway_checked(buf: memoryview, off: int, length: int) -> ExtendedGateway:
    r = _Reader(buf, off, length, "extended_gateway")
    next_hop = r.address()
    as_number, src_as, src_peer_as, n = r.u32(), r.u32(), r.u32(), r.u32()
    if n > (r.end - r.pos) // 8:
        raise DecodeError(r.pos - 4, f"extended_gateway: {n} AS path segments cannot fit in {r.end - r.pos} bytes",
                          DecodeReason.TRUNCATED)
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


EXTENDED_GATEWAY = Custom("extended_gateway", ExtendedGateway, _decode_gateway, _encode_gateway,
                          _sflowtool_gateway)


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


EXTENDED_USER = _var("extended_user", ExtendedUser, "u32 string u32 string", _sflowtool_user)


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


EXTENDED_URL = _var("extended_url", ExtendedUrl, "u32 string string", _sflowtool_url)


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


EXTENDED_MPLS = _var("extended_mpls", ExtendedMpls, "address u32s u32s", _sflowtool_mpls)


# ---------------------------------------------------------------- 0:1007 extended_nat, 0:1020 extended_nat_port


class ExtendedNat(Record):
    """extended_nat (0:1007): source and destination addresses after translation."""

    src_address: str
    dst_address: str


def _sflowtool_nat(r: ExtendedNat, out: dict, p: str) -> None:
    out[p + "extendedType"] = "NAT"
    out[p + "nat_src"] = fmt_ip(r.src_address)
    out[p + "nat_dst"] = fmt_ip(r.dst_address)


EXTENDED_NAT = _var("extended_nat", ExtendedNat, "address address", _sflowtool_nat)


class ExtendedNatPort(Record):
    """extended_nat_port (0:1020): source and destination ports after translation."""

    src_port: int
    dst_port: int


EXTENDED_NAT_PORT = Fixed("extended_nat_port", ExtendedNatPort, (
    F("src_port", U32, "nat_src_port"),
    F("dst_port", U32, "nat_dst_port"),
))


# the FLOW_RECORDS entry: EXTENDED_NAT_PORT (the bare layout) preceded by sflowtool's extendedType line
EXTENDED_NAT_PORT_RECORD = _typed(EXTENDED_NAT_PORT, "NAT PORT")


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


EXTENDED_MPLS_TUNNEL = _name_id_cos(ExtendedMplsTunnel, "extended_mpls_tunnel",
                                    ("mpls_tunnel_lsp_name", "mpls_tunnel_id", "mpls_tunnel_cos"))
EXTENDED_MPLS_VC = _name_id_cos(ExtendedMplsVc, "extended_mpls_vc", ("mpls_vc_name", "mpls_vll_vc_id", "mpls_vc_cos"))


class ExtendedMplsFtn(Record):
    """extended_mpls_FTN (0:1010): FEC-to-NHLFE entry (MPLS-FTN-STD-MIB mplsFTNTable)."""

    mpls_ftn_descr: str
    mpls_ftn_mask: int


def _sflowtool_ftn(r: ExtendedMplsFtn, out: dict, p: str) -> None:
    if r.mpls_ftn_descr:
        out[p + "mpls_ftn_descr"] = _cstr(r.mpls_ftn_descr, 100)
    out[p + "mpls_ftn_mask"] = str(r.mpls_ftn_mask)


EXTENDED_MPLS_FTN = _var("extended_mpls_FTN", ExtendedMplsFtn, "string u32", _sflowtool_ftn)


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


EXTENDED_VLANTUNNEL = _var("extended_vlantunnel", ExtendedVlanTunnel, "u32s", _sflowtool_vlan_tunnel)


# ---------------------------------------------------------------- 0:1013-0:1015 IEEE 802.11


class Extended80211Payload(Record):
    """extended_80211_payload (0:1013): the unencrypted payload of an encrypted 802.11 frame."""

    cipher_suite: int  # OUI << 8 | suite type (802.11i), e.g. 0x000FAC04 = CCMP
    header: SampledHeader  # sflowtool reads the payload as a sampled_header structure


def _decode_80211_payload(buf: memoryview, off: int, length: int) -> Extended80211Payload:
    if length < 4:
        raise DecodeError(off, f"extended_80211_payload record length {length} is too short", DecodeReason.BAD_LENGTH)
    return Extended80211Payload(U32S.unpack_from(buf, off)[0], decode_sampled_header(buf, off + 4, length - 4))


def _encode_80211_payload(r: Extended80211Payload) -> bytes:
    return U32S.pack(r.cipher_suite) + encode_sampled_header(r.header)


def _sflowtool_80211_payload(r: Extended80211Payload, out: dict, p: str) -> None:
    out[p + "cipher_suite"] = str(r.cipher_suite)
    sflowtool_sampled_header(r.header, out, p)


EXTENDED_80211_PAYLOAD = Custom("extended_80211_payload", Extended80211Payload, _decode_80211_payload,
                                _encode_80211_payload, _sflowtool_80211_payload)


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


EXTENDED_80211_RX = _var("extended_80211_rx", Extended80211Rx, "string mac u32 u32 u64 u32 u32 u32",
                         _sflowtool_80211_rx)


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


EXTENDED_80211_TX = _var("extended_80211_tx", Extended80211Tx, "string mac u32 u32 u32 u32 u32 u64 u32",
                         _sflowtool_80211_tx)
