"""Application records: sockets, proxy sockets, memcache, HTTP, application transactions, TCP info, entities.

0:2100-0:2103, 0:2200-0:2206, 0:2209, 0:2210. Structures and names: sflow_host.txt,
sflow_memcache.txt, sflow_http.txt, sflow_application.txt.
"""

from __future__ import annotations

from ingest.sflow.flow_records._common import _cstr, _strings, _typed, _var
from ingest.sflow.layout import IP4, IP6, U32, Custom, F, Fixed
from ingest.sflow.model import Record

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


EXTENDED_SOCKET_IPV4 = _socket("extended_socket_ipv4", ExtendedSocketIpv4, IP4, "socket4")
EXTENDED_SOCKET_IPV6 = _socket("extended_socket_ipv6", ExtendedSocketIpv6, IP6, "socket6")
EXTENDED_PROXY_SOCKET_IPV4 = _socket("extended_proxy_socket_ipv4", ExtendedProxySocketIpv4, IP4, "proxy_socket4")
EXTENDED_PROXY_SOCKET_IPV6 = _socket("extended_proxy_socket_ipv6", ExtendedProxySocketIpv6, IP6, "proxy_socket6")


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


MEMCACHE_OPERATION = _var("memcache_operation", MemcacheOperation, "u32 u32 string u32 u32 u32 u32",
                          _sflowtool_memcache)


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


HTTP_REQUEST_V1 = _var("http_request", HttpRequestV1, "u32 u32 " + "string " * 6 + "u64 u32 i32", _sflowtool_http)
HTTP_REQUEST = _var("http_request", HttpRequest, "u32 u32 " + "string " * 7 + "u64 u64 u32 i32", _sflowtool_http)


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


APP_OPERATION = _var("app_operation", AppOperation, "string string string string u64 u64 u32 u32", _sflowtool_app)
APP_PARENT_CONTEXT = _strings(AppParentContext, "app_parent_context",
                              ("server_context_application", "server_context_operation", "server_context_attributes"),
                              (SFLAPP_MAX_APPLICATION_LEN, SFLAPP_MAX_OPERATION_LEN, SFLAPP_MAX_ATTRIBUTES_LEN), "")
APP_INITIATOR = _strings(AppInitiator, "app_initiator", ("actor_initiator",), (SFLAPP_MAX_ACTOR_LEN,), "")
APP_TARGET = _strings(AppTarget, "app_target", ("actor_target",), (SFLAPP_MAX_ACTOR_LEN,), "")


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


# the FLOW_RECORDS entry: EXTENDED_TCP_INFO (the bare layout) with sflowtool's direction line
EXTENDED_TCP_INFO_RECORD = Custom("extended_tcp_info", ExtendedTcpInfo, EXTENDED_TCP_INFO.decode,
                                  EXTENDED_TCP_INFO.encode, _sflowtool_tcp_info)


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


# the FLOW_RECORDS entry: EXTENDED_ENTITIES (the bare layout) preceded by sflowtool's extendedType line
EXTENDED_ENTITIES_RECORD = _typed(EXTENDED_ENTITIES, "entities")
