"""Parse of a sampled packet header (flow record 0:1): Ethernet, 802.1Q/QinQ, 802.2 LLC/SNAP,
IEEE 802.11 data frames, IPv4, IPv6 (with extension headers), TCP/UDP/ICMP, and the inner
packet of VXLAN, Geneve, GRE (incl. transparent Ethernet bridging / NVGRE) and IP-in-IP tunnels.

``decode_header`` follows sflowtool's decodeLinkLayer / decode80211MAC / decodeIPV4 /
decodeIPV6 / decodeIPLayer4 step by step, including where they give up, so every field
sflowtool prints is present exactly when sflowtool prints it (``header_sflowtool`` only
formats a ``DecodedHeader``). On top of that it fills what sflowtool does not print: ICMPv6
type/code, IPv4 flags, the IPv6 fragment header, the tunnelled packet (``inner``, ``vni``) and
the protocol, destination address and port of the packet an ICMP error quotes (``icmp_quoted_*``).

Where sflowtool would read past the end of the header (it reads on into the rest of the
datagram), this parse stops instead. It never raises.
"""

from __future__ import annotations

import struct
from socket import AF_INET, AF_INET6, inet_ntop

import msgspec

from ingest.sflow.layout import ip6_full


class DecodedHeader(msgspec.Struct, frozen=True, gc=False):
    """The L2-L4 fields found in a sampled header (None: not present / not reached).

    Offsets count from the start of the sampled header (also in ``inner``).
    """

    # ---- L2: Ethernet (or IEEE 802.11: the MACs the frame's ToDS/FromDS bits designate)
    dst_mac: str | None = None  # 'aa:bb:cc:dd:ee:ff'
    src_mac: str | None = None
    vlans: tuple[tuple[int, int], ...] = ()  # (vlan id, priority) of the 802.1Q/ad tags, outermost first
    eth_type: int | None = None  # the Ethernet type the IP decode went on with (after VLANs, LLC/SNAP)
    vsnap_oui: str | None = None  # vendor-specific SNAP OUI 'AA-BB-CC' (no decode beyond)
    tx_mac: str | None = None  # 802.11 only: transmitter (addr2) and receiver (addr1)
    rx_mac: str | None = None
    # ---- L3
    ip_version: int | None = None  # 4 or 6 when an IP header was found where sflowtool looks for one
    ip_offset: int | None = None  # offset of the IP header
    src_ip: str | None = None  # IPv4 dotted quad, IPv6 RFC 5952 compressed
    dst_ip: str | None = None
    ip_protocol: int | None = None  # IPv6: the next header after the extension headers
    tos: int | None = None  # IPv4 TOS byte, IPv6 traffic class
    ttl: int | None = None  # IPv4 TTL, IPv6 hop limit
    ip_total_length: int | None = None  # IPv4 total length
    ip_id: int | None = None  # IPv4 identification (network byte order value)
    ip_flags: int | None = None  # IPv4 flags (3 bits: reserved, DF, MF)
    fragment_offset: int | None = None  # IPv4 header, or IPv6 fragment extension header (8-byte units)
    flow_label: int | None = None  # IPv6
    payload_length: int | None = None  # IPv6 (0: jumbo)
    ext_headers: tuple[int, ...] = ()  # IPv6 extension headers walked (0, 43, 44, 51, 60)
    # ---- L4 (sflowtool decodes L4 only with at least 8 bytes left)
    src_port: int | None = None  # TCP/UDP
    dst_port: int | None = None
    tcp_flags: int | None = None  # None when the TCP header is cut before the flags byte
    udp_length: int | None = None
    icmp_type: int | None = None  # ICMP (1) and ICMPv6 (58)
    icmp_code: int | None = None
    # ---- tunnels (not printed by sflowtool)
    vni: int | None = None  # VXLAN or Geneve VNI, or NVGRE VSID (GRE key >> 8 over 0x6558)
    inner: DecodedHeader | None = None  # the encapsulated packet (VXLAN, Geneve, GRE, IP-in-IP)
    # ---- (last: a header without them is built with fewer arguments, which is measurably faster)
    # ---- the packet quoted in an ICMP error (ICMPv4 types 3, 11, 12; ICMPv6 types 1-4; not printed by sflowtool)
    icmp_quoted_protocol: int | None = None  # its IP protocol (IPv6: next header after extension headers)
    icmp_quoted_dst_ip: str | None = None  # its destination address (same text forms as dst_ip)
    icmp_quoted_dst_port: int | None = None  # its TCP/UDP/SCTP destination port


# ---------------------------------------------------------------- parse

_ETH = struct.Struct(">6s6sH")
_U16 = struct.Struct(">H")
_VLAN = struct.Struct(">HH")  # TCI, next type
_IP4 = struct.Struct(">BBHHHBBxx4s4s")  # vihl tos len id frag ttl proto (csum) src dst
_IP6 = struct.Struct(">IHBB16s16s")  # ver/class/label, payload len, next header, hop limit, src, dst
_TCP = struct.Struct(">HH8xxB")  # ports, (seq, ack, offset), flags: 14 bytes
_PORTS = struct.Struct(">HH")
_UDP = struct.Struct(">HHH")
_GRE = struct.Struct(">HH")
_U32 = struct.Struct(">I")
_80211 = struct.Struct("<H2x6s6s6s")  # frame control (little endian), duration, addr1..3
# the common sampled header's first bytes in one unpack: Ethernet, then IPv4 (no options) or IPv6
_ETH_IP4 = struct.Struct(">12sHBBHHHBBxx4s4s")
# the same with the TCP/UDP ports, UDP length and TCP flags, MACs and addresses read as pairs
_ETH_IP4_L4 = struct.Struct(">12sHBBHHHBBxx8sHHH7xB")
_ETH_VLAN_IP4_L4 = struct.Struct(">12s2xHHBBHHHBBxx8sHHH7xB")  # the same behind one 802.1Q tag (its TCI)
_ETH_IP6 = struct.Struct(">12sHIHBB16s16s")

_TPIDS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200, 0x9300))
_IP6_EXT = frozenset((0, 43, 44, 51, 60))  # hop-by-hop, routing, fragment, auth, destination options
_ONCE = (None,)
_MAX_DEPTH = 3  # tunnels within tunnels
_ICMP4_ERRORS = frozenset((3, 11, 12))  # dest unreachable, time exceeded, parameter problem
_ICMP6_ERRORS = frozenset((1, 2, 3, 4))  # dest unreachable, packet too big, time exceeded, parameter problem
_PORT_PROTOS = frozenset((6, 17, 132))  # TCP, UDP, SCTP: destination port at offset 2

# address text caches (addresses repeat a lot in a flow stream); bounded: cleared when full
_IP4_TEXT: dict[bytes, str] = {}
_IP6_TEXT: dict[bytes, str] = {}
_MAC_TEXT: dict[bytes, str] = {}
_TEXT_CACHE_MAX = 1 << 16


def _ip4_text(a: bytes) -> str:
    if len(_IP4_TEXT) >= _TEXT_CACHE_MAX:
        _IP4_TEXT.clear()
    t = _IP4_TEXT[a] = inet_ntop(AF_INET, a)
    return t


def _ip6_text(a: bytes) -> str:
    if len(_IP6_TEXT) >= _TEXT_CACHE_MAX:
        _IP6_TEXT.clear()
    t = _IP6_TEXT[a] = inet_ntop(AF_INET6, a)
    return t


def _mac_text(a: bytes) -> str:
    if len(_MAC_TEXT) >= _TEXT_CACHE_MAX:
        _MAC_TEXT.clear()
    t = _MAC_TEXT[a] = a.hex(":")
    return t


# (destination, source) MACs and (source, destination) IPv4 addresses by their wire bytes: one look-up a pair
_MAC_PAIRS: dict[bytes, tuple[str, str]] = {}
_IP4_PAIRS: dict[bytes, tuple[str, str]] = {}


def _mac_pair(a: bytes) -> tuple[str, str]:
    if len(_MAC_PAIRS) >= _TEXT_CACHE_MAX:
        _MAC_PAIRS.clear()
    t = _MAC_PAIRS[a] = (a[:6].hex(":"), a[6:].hex(":"))
    return t


def _ip4_pair(a: bytes) -> tuple[str, str]:
    if len(_IP4_PAIRS) >= _TEXT_CACHE_MAX:
        _IP4_PAIRS.clear()
    t = _IP4_PAIRS[a] = (inet_ntop(AF_INET, a[:4]), inet_ntop(AF_INET, a[4:]))
    return t


HEADER_ETHERNET, HEADER_IPV4, HEADER_IPV6, HEADER_80211 = 1, 11, 12, 15


# Sampled headers whose parse raised, by exception class, in this process: the datagram still
# decodes (its header fields stay empty) and the ingester exports the count
# (sflowpipe_ingest_header_decode_failures_total), so a parser bug shows instead of hiding.
HEADER_FAILURES: dict[str, int] = {}


def decode_header(protocol: int, header: bytes) -> DecodedHeader | None:
    """Parse a sampled header of the given header_protocol; None when nothing was found."""
    try:
        return _decode(header, protocol, 0, len(header), 0)
    except Exception as e:  # belt and braces: a sampled header never fails a decode, but is counted
        name = type(e).__name__
        HEADER_FAILURES[name] = HEADER_FAILURES.get(name, 0) + 1
        return None


def _decode(b, proto: int, pos: int, end: int, depth: int) -> DecodedHeader | None:
    """The packet at ``pos``: the usual sampled packet here in one pass, any other in _decode_general.

    The usual packet: untagged Ethernet, IPv4 (not a fragment) or IPv6 (no extension header), TCP
    with its flags or UDP that is not a tunnel; or IPv4 without options behind one 802.1Q tag. What
    is built for it is what _decode_general builds, field for field (tests compare the two);
    anything else, or any check that fails, goes there.
    """
    if proto == 1 and end - pos >= 34:
        if end - pos >= 48 and b[pos + 12] == 8:  # IPv4 without options: the TCP/UDP words in the same unpack
            macs, t, vihl, tos, tot_len, ip_id, fo, ttl, ip_proto, ips, sport, dport, w, flags = \
                _ETH_IP4_L4.unpack_from(b, pos)
            if t == 0x0800 and vihl == 0x45 and not fo & 0x1FFF:
                if ip_proto == 6:
                    dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                    s, d = _IP4_PAIRS.get(ips) or _ip4_pair(ips)
                    return DecodedHeader(dm, sm, (), t, None, None, None, 4, pos + 14, s, d, 6, tos, ttl, tot_len,
                                         ip_id, fo >> 13, 0, None, None, (), sport, dport, flags)
                if ip_proto == 17 and dport != 4789 and dport != 6081:
                    dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                    s, d = _IP4_PAIRS.get(ips) or _ip4_pair(ips)
                    return DecodedHeader(dm, sm, (), t, None, None, None, 4, pos + 14, s, d, 17, tos, ttl, tot_len,
                                         ip_id, fo >> 13, 0, None, None, (), sport, dport, None, w)
        elif end - pos >= 52 and b[pos + 12] == 0x81 and b[pos + 13] == 0:  # the same behind one 802.1Q tag
            macs, tci, t, vihl, tos, tot_len, ip_id, fo, ttl, ip_proto, ips, sport, dport, w, flags = \
                _ETH_VLAN_IP4_L4.unpack_from(b, pos)
            if t == 0x0800 and vihl == 0x45 and not fo & 0x1FFF:
                if ip_proto == 6:
                    dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                    s, d = _IP4_PAIRS.get(ips) or _ip4_pair(ips)
                    return DecodedHeader(dm, sm, ((tci & 0x0FFF, tci >> 13),), t, None, None, None, 4, pos + 18, s, d,
                                         6, tos, ttl, tot_len, ip_id, fo >> 13, 0, None, None, (), sport, dport, flags)
                if ip_proto == 17 and dport != 4789 and dport != 6081:
                    dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                    s, d = _IP4_PAIRS.get(ips) or _ip4_pair(ips)
                    return DecodedHeader(dm, sm, ((tci & 0x0FFF, tci >> 13),), t, None, None, None, 4, pos + 18, s, d,
                                         17, tos, ttl, tot_len, ip_id, fo >> 13, 0, None, None, (), sport, dport, None,
                                         w)
        macs, t, vihl, tos, tot_len, ip_id, fo, ttl, ip_proto, s, d = _ETH_IP4.unpack_from(b, pos)
        if t == 0x0800:
            if 0x45 <= vihl <= 0x4F and not fo & 0x1FFF:
                p = pos + 14 + (vihl & 15) * 4
                if ip_proto == 6:
                    if end - p >= 14:
                        sport, dport, flags = _TCP.unpack_from(b, p)
                        dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                        return DecodedHeader(
                            dm, sm, (), t, None, None, None, 4, pos + 14, _IP4_TEXT.get(s) or _ip4_text(s),
                            _IP4_TEXT.get(d) or _ip4_text(d), 6, tos, ttl, tot_len, ip_id, fo >> 13, 0, None,
                            None, (), sport, dport, flags)
                elif ip_proto == 17 and end - p >= 8:
                    sport, dport, udp_len = _UDP.unpack_from(b, p)
                    if dport != 4789 and dport != 6081:
                        dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                        return DecodedHeader(
                            dm, sm, (), t, None, None, None, 4, pos + 14, _IP4_TEXT.get(s) or _ip4_text(s),
                            _IP4_TEXT.get(d) or _ip4_text(d), 17, tos, ttl, tot_len, ip_id, fo >> 13, 0, None,
                            None, (), sport, dport, None, udp_len)
        elif t == 0x86DD and end - pos >= 54:
            macs, t, vcl, plen, nh, ttl, s, d = _ETH_IP6.unpack_from(b, pos)
            if vcl >> 28 == 6:
                if nh == 6:
                    if end - pos >= 68:
                        sport, dport, flags = _TCP.unpack_from(b, pos + 54)
                        dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                        return DecodedHeader(
                            dm, sm, (), t, None, None, None, 6, pos + 14, _IP6_TEXT.get(s) or _ip6_text(s),
                            _IP6_TEXT.get(d) or _ip6_text(d), 6, (vcl >> 20) & 0xFF, ttl, None, None, None,
                            None, vcl & 0xFFFFF, plen, (), sport, dport, flags)
                elif nh == 17 and end - pos >= 62:
                    sport, dport, udp_len = _UDP.unpack_from(b, pos + 54)
                    if dport != 4789 and dport != 6081:
                        dm, sm = _MAC_PAIRS.get(macs) or _mac_pair(macs)
                        return DecodedHeader(
                            dm, sm, (), t, None, None, None, 6, pos + 14, _IP6_TEXT.get(s) or _ip6_text(s),
                            _IP6_TEXT.get(d) or _ip6_text(d), 17, (vcl >> 20) & 0xFF, ttl, None, None, None,
                            None, vcl & 0xFFFFF, plen, (), sport, dport, None, udp_len)
    return _decode_general(b, proto, pos, end, depth)


def _decode_general(b, proto: int, pos: int, end: int, depth: int) -> DecodedHeader | None:
    dst_mac = src_mac = eth_type = vsnap_oui = None
    vlans: tuple = ()
    ipv = ipo = src_ip = dst_ip = ip_proto = tos = ttl = None
    tot_len = ip_id = ip_flags = frag = flow_label = plen = None
    exts: tuple = ()
    sport = dport = tcp_flags = udp_len = icmp_type = icmp_code = vni = inner = None
    q_proto = q_dst = q_dport = None

    for _ in _ONCE:  # a block to break out of
        if proto == 1:
            # ---- decodeLinkLayer
            if end - pos < 14:
                return None
            dm, sm, t = _ETH.unpack_from(b, pos)
            dst_mac = _MAC_TEXT.get(dm) or _mac_text(dm)
            src_mac = _MAC_TEXT.get(sm) or _mac_text(sm)
            p = pos + 14
            if t in _TPIDS:
                vl = []
                while t in _TPIDS:
                    if end - p < 4:
                        break
                    tci, t = _VLAN.unpack_from(b, p)
                    vl.append((tci & 0x0FFF, tci >> 13))
                    p += 4
                vlans = tuple(vl)
                if t in _TPIDS:
                    break  # ran out inside the tag stack
            if end - pos < 20:  # sflowtool: not enough for an IPv4 header, counted from the start
                break
            if t <= 1500:
                if (t == 0x0200 or t == 0x0201) and end - p >= 4 and b[p] == 0xFF and b[p + 1] == 0xFF \
                        and 30 <= _U16.unpack_from(b, p + 2)[0] <= 576:
                    break  # IPX
                # 802.3 length: 802.2 LLC
                if end - p < 3:
                    break
                if b[p] == 0xAA and b[p + 1] == 0xAA and b[p + 2] == 0x03:  # SNAP
                    p += 3
                    if end - p < 3:
                        break
                    if b[p] or b[p + 1] or b[p + 2]:
                        vsnap_oui = b[p : p + 3].hex("-").upper()
                        break  # vendor-specific protocol
                    p += 3
                    if end - p < 2:
                        break
                    t = _U16.unpack_from(b, p)[0]
                    p += 2
                elif b[p] == 0x06 and b[p + 1] == 0x06 and b[p + 2] & 1:
                    p += 3  # IP over 802.2
                    t = 0x0800
                else:
                    break
            elif t == 0x0600 and end - p >= 4 and b[p] == 0xFF and b[p + 1] == 0xFF \
                    and 30 <= _U16.unpack_from(b, p + 2)[0] <= 576:
                break  # IPX
            eth_type = t
            if t == 0x0800:
                if end - p < 20 or b[p] >> 4 != 4 or b[p] & 15 < 5:
                    break
                ipv = 4
            elif t == 0x86DD:
                if p >= end or b[p] >> 4 != 6:
                    break
                ipv = 6
            else:
                break
            ipo = p
        elif proto == 11:
            ipv = 4
            ipo = pos
        elif proto == 12:
            ipv = 6
            ipo = pos
        elif proto == 15:
            # ---- decode80211MAC: data frames only
            if end - pos < 24:
                return None
            fc, a1, a2, a3 = _80211.unpack_from(b, pos)
            if (fc >> 2) & 3 != 2:
                return None
            rx, tx = a1.hex(":"), a2.hex(":")
            if fc & 0x100:  # ToDS
                dst_mac = a3.hex(":")
                if fc & 0x200:  # and FromDS: wireless bridge, addr4 is the source
                    if end - pos >= 30:
                        src_mac = b[pos + 24 : pos + 30].hex(":")
                else:
                    src_mac = tx
            else:
                dst_mac = rx
                src_mac = a3.hex(":") if fc & 0x200 else tx
            return DecodedHeader(dst_mac, src_mac, tx_mac=tx, rx_mac=rx)
        else:
            return None

        if ipv == 4:
            # ---- decodeIPV4 (no version check when the header protocol says IPv4)
            if end - ipo < 20:
                break
            vihl, tos, tot_len, ip_id, fo, ttl, ip_proto, s, d = _IP4.unpack_from(b, ipo)
            src_ip = _IP4_TEXT.get(s) or _ip4_text(s)
            dst_ip = _IP4_TEXT.get(d) or _ip4_text(d)
            ip_flags = fo >> 13
            frag = fo & 0x1FFF
            if frag:
                break
            p = ipo + (vihl & 15) * 4
            if p > end:
                break
        else:
            # ---- decodeIPV6
            if end - ipo < 40 or b[ipo] >> 4 != 6:
                break
            vcl, plen, nh, ttl, s, d = _IP6.unpack_from(b, ipo)
            tos = (vcl >> 20) & 0xFF
            flow_label = vcl & 0xFFFFF
            src_ip = _IP6_TEXT.get(s) or _ip6_text(s)
            dst_ip = _IP6_TEXT.get(d) or _ip6_text(d)
            p = ipo + 40
            if nh in _IP6_EXT:
                el = []
                while nh in _IP6_EXT:
                    el.append(nh)
                    if end - p < 2:
                        nh = -1
                        break
                    if nh == 44 and end - p >= 4:
                        frag = _U16.unpack_from(b, p + 2)[0] >> 3
                    nh = b[p]
                    p += 8 * (b[p + 1] + 1)
                    if p > end:  # ran off the end of the header
                        nh = -1
                        break
                exts = tuple(el)
                if nh < 0:
                    break
            ip_proto = nh

        # ---- decodeIPLayer4 (sflowtool wants 8 bytes for any of it)
        left = end - p
        if ip_proto == 6:
            if left >= 14:
                sport, dport, tcp_flags = _TCP.unpack_from(b, p)
            elif left >= 8:
                sport, dport = _PORTS.unpack_from(b, p)
        elif ip_proto == 17:
            if left >= 8:
                sport, dport, udp_len = _UDP.unpack_from(b, p)
                # VXLAN: 8-byte header with the I flag, then Ethernet
                if dport == 4789 and left >= 16 and b[p + 8] & 0x08 and depth < _MAX_DEPTH:
                    vni = _U32.unpack_from(b, p + 12)[0] >> 8
                    inner = _decode(b, 1, p + 16, end, depth + 1)
                # Geneve (RFC 8926) version 0: 8-byte header, options, then the packet of its protocol type
                elif dport == 6081 and left >= 16 and b[p + 8] >> 6 == 0 and depth < _MAX_DEPTH:
                    vni = _U32.unpack_from(b, p + 12)[0] >> 8
                    inner = _inner(b, _U16.unpack_from(b, p + 10)[0], p + 16 + (b[p + 8] & 0x3F) * 4, end,
                                   depth + 1)
        elif ip_proto == 1 or ip_proto == 58:
            if left >= 8:
                icmp_type = b[p]
                icmp_code = b[p + 1]
                if icmp_type in (_ICMP4_ERRORS if ip_proto == 1 else _ICMP6_ERRORS):
                    q_proto, q_dst, q_dport = _quoted(b, ip_proto == 1, p + 8, end)
        elif ip_proto == 47:
            if left >= 4 and depth < _MAX_DEPTH:
                flags, gp = _GRE.unpack_from(b, p)
                if not flags & 0x0007:  # GRE version 0
                    q = p + 4
                    if flags & 0x8000:  # checksum present
                        q += 4
                    if flags & 0x2000:  # key present
                        if gp == 0x6558 and end - q >= 4:
                            vni = _U32.unpack_from(b, q)[0] >> 8
                        q += 4
                    if flags & 0x1000:  # sequence number present
                        q += 4
                    inner = _inner(b, gp, q, end, depth + 1)
        elif ip_proto == 4 or ip_proto == 41:  # IP-in-IP
            if depth < _MAX_DEPTH:
                inner = _inner(b, 0x0800 if ip_proto == 4 else 0x86DD, p, end, depth + 1)

    if q_dst is None and q_proto is None:  # the common case: 29 arguments (see the field order)
        return DecodedHeader(
            dst_mac, src_mac, vlans, eth_type, vsnap_oui, None, None,
            ipv, ipo, src_ip, dst_ip, ip_proto, tos, ttl, tot_len, ip_id, ip_flags, frag, flow_label, plen, exts,
            sport, dport, tcp_flags, udp_len, icmp_type, icmp_code, vni, inner,
        )
    return DecodedHeader(
        dst_mac, src_mac, vlans, eth_type, vsnap_oui, None, None,
        ipv, ipo, src_ip, dst_ip, ip_proto, tos, ttl, tot_len, ip_id, ip_flags, frag, flow_label, plen, exts,
        sport, dport, tcp_flags, udp_len, icmp_type, icmp_code, vni, inner, q_proto, q_dst, q_dport,
    )


_NO_QUOTE = (None, None, None)


def _quoted(b, v4: bool, q: int, end: int) -> tuple:
    """(protocol, destination address, destination port) of the packet an ICMP error quotes at
    ``q``; all None when its IP header is cut short or is not of the ICMP's IP version, the port
    None when the quoted transport header is cut before it."""
    if v4:
        if end - q < 20 or b[q] >> 4 != 4 or b[q] & 15 < 5:
            return _NO_QUOTE
        vihl, _, _, _, fo, _, proto, _, d = _IP4.unpack_from(b, q)
        dst = _IP4_TEXT.get(d) or _ip4_text(d)
        if fo & 0x1FFF:  # a later fragment: no transport header
            return (proto, dst, None)
        l4 = q + (vihl & 15) * 4
    else:
        if end - q < 40 or b[q] >> 4 != 6:
            return _NO_QUOTE
        _, _, proto, _, _, d = _IP6.unpack_from(b, q)
        dst = _IP6_TEXT.get(d) or _ip6_text(d)
        l4 = q + 40
        while proto in _IP6_EXT:  # one step per extension header, bounded by the header length
            if end - l4 < 2:
                return (None, dst, None)
            proto = b[l4]
            l4 += 8 * (b[l4 + 1] + 1)
    if proto in _PORT_PROTOS and end - l4 >= 4:
        return (proto, dst, _PORTS.unpack_from(b, l4)[1])
    return (proto, dst, None)


def _inner(b, eth_type: int, pos: int, end: int, depth: int) -> DecodedHeader | None:
    """The packet a tunnel carries, by its Ethernet type."""
    if pos >= end:
        return None
    if eth_type == 0x6558:  # transparent Ethernet bridging
        return _decode(b, 1, pos, end, depth)
    if eth_type == 0x0800:
        if b[pos] >> 4 != 4 or b[pos] & 15 < 5:
            return None
        return _decode(b, 11, pos, end, depth)
    if eth_type == 0x86DD:
        if b[pos] >> 4 != 6:
            return None
        return _decode(b, 12, pos, end, depth)
    return None


# ---------------------------------------------------------------- sflowtool output


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def header_sflowtool(rec, out: dict, p: str) -> None:
    """Add to ``out`` what sflowtool prints after headerBytes for a sampled_header record.

    Keys are prefixed with ``p``; values are strings. A repeated key (IP6HeaderExtension)
    keeps its first position and last value, as json.loads reads sflowtool's line.
    """
    d = rec.decoded
    if d is None:
        d = decode_header(rec.header_protocol, rec.header)
        if d is None:
            return
    if rec.header_protocol == HEADER_80211:
        for key, mac in (("srcMAC", d.src_mac), ("dstMAC", d.dst_mac), ("txMAC", d.tx_mac), ("rxMAC", d.rx_mac)):
            if mac is not None:
                out[p + key] = mac.replace(":", "")
        return
    if d.dst_mac is not None:
        out[p + "dstMAC"] = d.dst_mac.replace(":", "")
        out[p + "srcMAC"] = d.src_mac.replace(":", "")
        for i, (vid, pri) in enumerate(d.vlans):
            if i == 0:
                out[p + "decodedVLAN"] = str(vid)
                out[p + "decodedPriority"] = str(pri)
            else:
                out[f"{p}decodedVLAN.{i}"] = str(vid)
                out[f"{p}decodedPriority.{i}"] = str(pri)
        if d.vsnap_oui is not None:
            out[p + "VSNAP_OUI"] = d.vsnap_oui
        if d.eth_type is not None:
            out[p + "ethernet_type"] = str(d.eth_type)
    if d.ip_version is None:
        return
    out[p + "IPSize"] = str(_signed32(rec.frame_length - rec.stripped - d.ip_offset))
    if d.src_ip is None:
        return
    if d.ip_version == 4:
        out[p + "ip.tot_len"] = str(d.ip_total_length)
        out[p + "srcIP"] = d.src_ip
        out[p + "dstIP"] = d.dst_ip
        out[p + "IPProtocol"] = str(d.ip_protocol)
        out[p + "IPTOS"] = str(d.tos)
        out[p + "IPTTL"] = str(d.ttl)
        ip_id = d.ip_id
        out[p + "IPID"] = str(((ip_id & 0xFF) << 8) | (ip_id >> 8))  # printed without ntohs
        if d.fragment_offset:
            out[p + "IPFragmentOffset"] = str(d.fragment_offset)
            return
    else:
        out[p + "IPTOS"] = str(d.tos)
        out[p + "IP6_label"] = "0x%x" % d.flow_label
        out[p + "IPV6_payloadLen"] = str(d.payload_length) if d.payload_length else "<jumbo>"
        out[p + "IPTTL"] = str(d.ttl)
        out[p + "srcIP6"] = ip6_full(d.src_ip)
        out[p + "dstIP6"] = ip6_full(d.dst_ip)
        for e in d.ext_headers:
            out[p + "IP6HeaderExtension"] = str(e)
        if d.ip_protocol is None:
            return
        out[p + "IPProtocol"] = str(d.ip_protocol)
    proto = d.ip_protocol
    if proto == 6:
        if d.src_port is not None:
            out[p + "TCPSrcPort"] = str(d.src_port)
            out[p + "TCPDstPort"] = str(d.dst_port)
            if d.tcp_flags is not None:
                out[p + "TCPFlags"] = str(d.tcp_flags)
    elif proto == 17:
        if d.src_port is not None:
            out[p + "UDPSrcPort"] = str(d.src_port)
            out[p + "UDPDstPort"] = str(d.dst_port)
            out[p + "UDPBytes"] = str(d.udp_length)
    elif proto == 1:
        if d.icmp_type is not None:
            out[p + "ICMPType"] = str(d.icmp_type)
            out[p + "ICMPCode"] = str(d.icmp_code)
