"""Flow keys from what sits above L4 in the sampled header (ARP, DNS, ICMP echo) and from the
application records of a sample (HTTP, memcache, application transactions, sockets), with
sFlow-RT's names; and the ``requests`` value.

They read cold columns of the flow batch (the raw ``header``, ``ip_offset``, ``records``): each
column function is marked with what it reads (``needing``), so the app decodes whole batches only
while a definition uses one of these keys. The payload of each sample is parsed once per batch
(ingest/sflow/payload.py) and cached in the EvalContext; every key of the family reads that.

Value formats: numbers in decimal, flags ``true``/``false``, MACs as 12 upper-case hex digits,
DNS names with their trailing dot (``www.example.com.``), enumerations (HTTP method, memcache
command, application status) by name, as sFlow-RT prints them.
"""

from __future__ import annotations

from typing import Callable

from ingest.sflow.flow_records import (
    AppInitiator,
    AppOperation,
    AppParentContext,
    AppTarget,
    ExtendedSocketIpv4,
    ExtendedSocketIpv6,
    HttpRequest,
    HttpRequestV1,
    MemcacheOperation,
)
from ingest.sflow.payload import dns_offset, parse_arp, parse_dns, parse_icmp_echo, transport_offset
from sflowpipe.flowspec.context import ColFn, EvalContext, column_at, inner_headers, needing

_HEADER = frozenset(("header",))
_IP_PAYLOAD = frozenset(("header", "ip_offset"))
_RECORDS = frozenset(("records",))
_ETH_ARP = 0x0806

# ---------------------------------------------------------------- parsed payload columns (per batch)


def _cached(ctx: EvalContext, key: tuple, make: Callable[[], list]) -> list:
    col = ctx.cache.get(key)
    if col is None:
        col = ctx.cache[key] = make()
    return col


def _arp_col(ctx: EvalContext) -> list:
    """The ARP packet of each sample: Ethernet frames of type 0x0806, after their 802.1Q tags."""

    def make() -> list:
        out = []
        for hp, et, h, tags in zip(column_at(ctx, 0, "header_protocol"), column_at(ctx, 0, "eth_type"),
                                   column_at(ctx, 0, "header"), column_at(ctx, 0, "vlans")):
            out.append(parse_arp(h, 14 + 4 * len(tags or ()), len(h))
                       if et == _ETH_ARP and hp == 1 and h is not None else None)
        return out

    return _cached(ctx, ("#arp",), make)


def _dns_col(ctx: EvalContext, level: int) -> list:
    """The DNS message of each sample's UDP/TCP segment to or from port 53 (at tunnel ``level``)."""

    def make() -> list:
        out = []
        cols = zip(column_at(ctx, 0, "header"), column_at(ctx, level, "ip_offset"), column_at(ctx, level, "ip_protocol"),
                   column_at(ctx, level, "src_port"), column_at(ctx, level, "dst_port"))
        for h, ipo, proto, sp, dp in cols:
            msg = None
            if h is not None and (sp == 53 or dp == 53) and ipo is not None:
                end = len(h)
                p = dns_offset(h, transport_offset(h, ipo, end), end, proto, sp, dp)
                if p is not None:
                    msg = parse_dns(h, p, end)
            out.append(msg)
        return out

    return _cached(ctx, ("#dns", level), make)


def _echo_col(ctx: EvalContext, level: int) -> list:
    """The ICMPv4 echo request/reply of each sample (at tunnel ``level``)."""

    def make() -> list:
        out = []
        cols = zip(column_at(ctx, 0, "header"), column_at(ctx, level, "ip_offset"), column_at(ctx, level, "ip_protocol"),
                   column_at(ctx, level, "ip_version"), column_at(ctx, level, "icmp_type"))
        for h, ipo, proto, v, t in cols:
            echo = None
            if h is not None and proto == 1 and v == 4 and (t == 8 or t == 0) and ipo is not None:
                end = len(h)
                l4 = transport_offset(h, ipo, end)
                echo = parse_icmp_echo(h, l4, end) if l4 is not None else None
            out.append(echo)
        return out

    return _cached(ctx, ("#echo", level), make)


_RECORD_NAME = {cls: f"sflowpipe.{cls.__name__}" for cls in (
    HttpRequest, HttpRequestV1, MemcacheOperation, AppOperation, AppParentContext, AppInitiator, AppTarget,
    ExtendedSocketIpv4, ExtendedSocketIpv6)}


def _record_col(ctx: EvalContext, *classes: type) -> list:
    """Each sample's first record of one of these types (its field dict), or None."""
    names = frozenset(_RECORD_NAME[c] for c in classes)

    def make() -> list:
        out = []
        for recs in column_at(ctx, 0, "records"):
            found = None
            for r in recs or ():
                if type(r) is tuple and r[0] in names:  # decoded union members are (record name, fields)
                    found = r[1]
                    break
            out.append(found)
        return out

    return _cached(ctx, ("#rec", names), make)


# ---------------------------------------------------------------- key builders


def _text(v) -> str | None:
    if v is None or v == "":
        return None
    if v is True:
        return "true"
    if v is False:
        return "false"
    return v if isinstance(v, str) else str(v)


def _arp_key(attr: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [_text(getattr(a, attr)) if a is not None else None for a in _arp_col(ctx)]

        return needing(_HEADER, col)

    return build


def _dns_key(attr: str, fmt: Callable = _text) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [fmt(getattr(m, attr)) if m is not None else None for m in _dns_col(ctx, level)]

        return needing(_IP_PAYLOAD, col)

    return build


def _echo_key(attr: str) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [str(getattr(e, attr)) if e is not None else None for e in _echo_col(ctx, level)]

        return needing(_IP_PAYLOAD, col)

    return build


def _record_key(classes: tuple[type, ...], field: str, fmt: Callable = _text) -> Callable[[int], ColFn]:
    def build(level: int) -> ColFn:
        def col(ctx: EvalContext) -> list:
            return [fmt(r.get(field)) if r is not None else None for r in _record_col(ctx, *classes)]

        return needing(_RECORDS, col)

    return build


def _named(names: tuple[str, ...]) -> Callable:
    """An enumeration by name (its number in decimal when the name is unknown)."""

    def fmt(v) -> str | None:
        if v is None:
            return None
        return names[v] if 0 <= v < len(names) else str(v)

    return fmt


# DNS query types by name (IANA DNS parameters; the common ones)
DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 17: "RP",
             18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX",
             37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG",
             47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA",
             55: "HIP", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB",
             65: "HTTPS", 99: "SPF", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR",
             252: "AXFR", 255: "ANY", 256: "URI", 257: "CAA"}


def _qtype_name(v) -> str | None:
    return None if v is None else DNS_TYPES.get(v) or f"TYPE{v}"  # RFC 3597 form for the rest


HTTP_METHODS = ("OTHER", "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT")  # sflow_http.txt
MEMCACHE_PROTOCOLS = ("OTHER", "ASCII", "BINARY")  # sflow_memcache.txt
MEMCACHE_COMMANDS = ("OTHER", "SET", "ADD", "REPLACE", "APPEND", "PREPEND", "CAS", "GET", "GETS", "INCR", "DECR",
                     "TOUCH", "STATS", "FLUSH", "VERSION", "QUIT", "DELETE")
MEMCACHE_STATUS = ("UNKNOWN", "OK", "ERROR", "CLIENT_ERROR", "SERVER_ERROR", "STORED", "NOT_STORED", "EXISTS",
                   "NOT_FOUND", "DELETED")
APP_STATUS = ("SUCCESS", "OTHER", "TIMEOUT", "INTERNAL_ERROR", "BAD_REQUEST", "FORBIDDEN", "TOO_LARGE",
              "NOT_IMPLEMENTED", "NOT_FOUND", "UNAVAILABLE", "UNAUTHORIZED")  # sflow_application.txt


def _http_protocol(v) -> str | None:
    return None if v is None else f"HTTP/{v // 1000}.{v % 1000}"  # encoded major * 1000 + minor


_HTTP = (HttpRequest, HttpRequestV1)
_SOCK4, _SOCK6, _SOCK = (ExtendedSocketIpv4,), (ExtendedSocketIpv6,), (ExtendedSocketIpv4, ExtendedSocketIpv6)
_APP = (AppOperation,)

# name -> (builder, allows a ``.N`` tunnel level suffix): merged into keys.BASE_KEYS
PAYLOAD_KEYS: dict[str, tuple[Callable[[int], ColFn], bool]] = {
    # ARP (Ethernet/IPv4, outer frame)
    "arpoperation": (_arp_key("operation"), False),
    "arpmacsender": (_arp_key("sender_mac"), False),
    "arpipsender": (_arp_key("sender_ip"), False),
    "arpmactarget": (_arp_key("target_mac"), False),
    "arpiptarget": (_arp_key("target_ip"), False),
    # DNS messages on UDP/TCP port 53
    "dnsid": (_dns_key("id"), True),
    "dnsqr": (_dns_key("qr"), True),
    "dnsopcode": (_dns_key("opcode"), True),
    "dnsaa": (_dns_key("aa"), True),
    "dnstc": (_dns_key("tc"), True),
    "dnsrd": (_dns_key("rd"), True),
    "dnsra": (_dns_key("ra"), True),
    "dnsrcode": (_dns_key("rcode"), True),
    "dnsqdcount": (_dns_key("qdcount"), True),
    "dnsancount": (_dns_key("ancount"), True),
    "dnsnscount": (_dns_key("nscount"), True),
    "dnsarcount": (_dns_key("arcount"), True),
    "dnsqname": (_dns_key("qname"), True),
    "dnsqtype": (_dns_key("qtype"), True),
    "dnsqtypename": (_dns_key("qtype", _qtype_name), True),
    "dnsqclass": (_dns_key("qclass"), True),
    # ICMPv4 echo request / reply
    "icmpid": (_echo_key("id"), True),
    "icmpseqno": (_echo_key("seqno"), True),
    # HTTP requests (0:2206, 0:2201)
    "httpmethod": (_record_key(_HTTP, "method", _named(HTTP_METHODS)), False),
    "httpprotocol": (_record_key(_HTTP, "protocol", _http_protocol), False),
    "httpurl": (_record_key(_HTTP, "uri"), False),
    "httphost": (_record_key(_HTTP, "host"), False),
    "httpreferer": (_record_key(_HTTP, "referer"), False),
    "httpuseragent": (_record_key(_HTTP, "useragent"), False),
    "httpxff": (_record_key((HttpRequest,), "xff"), False),
    "httpauthuser": (_record_key(_HTTP, "authuser"), False),
    "httpmimetype": (_record_key(_HTTP, "mime_type"), False),
    "httpstatus": (_record_key(_HTTP, "status"), False),
    # memcache operations (0:2200)
    "memcacheprotocol": (_record_key((MemcacheOperation,), "protocol", _named(MEMCACHE_PROTOCOLS)), False),
    "memcachecommand": (_record_key((MemcacheOperation,), "cmd", _named(MEMCACHE_COMMANDS)), False),
    "memcachekey": (_record_key((MemcacheOperation,), "key"), False),
    "memcachenkeys": (_record_key((MemcacheOperation,), "nkeys"), False),
    "memcachestatus": (_record_key((MemcacheOperation,), "status", _named(MEMCACHE_STATUS)), False),
    # application transactions (0:2202-0:2205)
    "application": (_record_key(_APP, "application"), False),
    "operation": (_record_key(_APP, "operation"), False),
    "attributes": (_record_key(_APP, "attributes"), False),
    "status": (_record_key(_APP, "status", _named(APP_STATUS)), False),
    "statusdescr": (_record_key(_APP, "status_descr"), False),
    "parentapplication": (_record_key((AppParentContext,), "application"), False),
    "parentoperation": (_record_key((AppParentContext,), "operation"), False),
    "parentattributes": (_record_key((AppParentContext,), "attributes"), False),
    "actorinitiator": (_record_key((AppInitiator,), "actor"), False),
    "actortarget": (_record_key((AppTarget,), "actor"), False),
    # the server socket of an application transaction (0:2100, 0:2101): local end = server
    "protocol": (_record_key(_SOCK, "protocol"), False),
    "serveraddress": (_record_key(_SOCK4, "local_ip"), False),
    "serveraddress6": (_record_key(_SOCK6, "local_ip"), False),
    "serverport": (_record_key(_SOCK, "local_port"), False),
    "clientaddress": (_record_key(_SOCK4, "remote_ip"), False),
    "clientaddress6": (_record_key(_SOCK6, "remote_ip"), False),
    "clientport": (_record_key(_SOCK, "remote_port"), False),
}


# ---------------------------------------------------------------- the ``requests`` value

_TRANSACTIONS = (HttpRequest, HttpRequestV1, MemcacheOperation, AppOperation)
_MAX_TUNNELS = 3  # the decoder follows tunnels within tunnels this deep (ingest/sflow/header.py)


def _v_requests(ctx: EvalContext) -> list:
    """sFlow-RT's ``requests``: transactions per sample scaled by the sampling rate. A sample counts
    when it carries an application transaction record (HTTP, memcache, app_operation) or its header
    holds an ARP packet or a DNS message (also inside a tunnel); other samples have no value (they do
    not count)."""
    rates = column_at(ctx, 0, "sampling_rate")
    counted = [a is not None or p is not None for a, p in zip(_record_col(ctx, *_TRANSACTIONS), _arp_col(ctx))]
    level = 0
    while level <= _MAX_TUNNELS and (level == 0 or any(x is not None for x in inner_headers(ctx, level))):
        counted = [c or d is not None for c, d in zip(counted, _dns_col(ctx, level))]  # DNS in a tunnel counts too
        level += 1
    return [r if c else None for r, c in zip(rates, counted)]


v_requests = needing(_IP_PAYLOAD | _RECORDS, _v_requests)
