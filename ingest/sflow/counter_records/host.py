"""Host counter blocks 0:2000-0:2010 (sflow_host.txt).

Host description, adapters, parent, CPU, memory, disk I/O, network I/O and the MIB-II IP, ICMP,
TCP and UDP groups.
"""

from __future__ import annotations

import struct
import uuid

from ingest.sflow.counter_records._common import _end_check, _fixed, _tool_str
from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.layout import (
    F32,
    PERCENT,
    U32,
    U32S,
    U64,
    Custom,
    enc_string,
    fmt_mac,
    mac_to_wire,
    need,
    read_string,
    read_u32,
)
from ingest.sflow.model import Record

# sflowtool's string buffer sizes (src/sflow.h); getString keeps at most size - 1 bytes
SFL_MAX_HOSTNAME_LEN = 64
SFL_MAX_OSRELEASE_LEN = 32

# ---------------------------------------------------------------- 0:2000 host_descr


class HostDescr(Record):
    """Physical or virtual host description (0:2000), sflow_host.txt."""

    hostname: str
    uuid: str  # 8-4-4-4-12 lowercase hex
    machine_type: int  # 0 unknown, 1 other, 2 x86, 3 x86_64, 4 ia64, ...
    os_name: int  # 0 unknown, 1 other, 2 linux, 3 windows, 4 darwin, ...
    os_release: str


_TWO_U32 = struct.Struct(">II")


def _decode_host_descr(buf: memoryview, off: int, length: int) -> HostDescr:
    end = off + length
    hostname, off = read_string(buf, off, end, "host_descr hostname")
    need(buf, off, 24, end, "host_descr")
    uid = str(uuid.UUID(bytes=bytes(buf[off : off + 16])))
    machine_type, os_name = _TWO_U32.unpack_from(buf, off + 16)
    os_release, off = read_string(buf, off + 24, end, "host_descr os_release")
    _end_check(off, end, "host_descr")
    return HostDescr(hostname, uid, machine_type, os_name, os_release)


def _encode_host_descr(r: HostDescr) -> bytes:
    return (enc_string(r.hostname) + uuid.UUID(r.uuid).bytes + _TWO_U32.pack(r.machine_type, r.os_name)
            + enc_string(r.os_release))


def _sflowtool_host_descr(r: HostDescr, out: dict, p: str) -> None:
    if r.hostname:
        out[p + "hostname"] = _tool_str(r.hostname, SFL_MAX_HOSTNAME_LEN - 1)
    out[p + "UUID"] = r.uuid
    out[p + "machine_type"] = str(r.machine_type)
    out[p + "os_name"] = str(r.os_name)
    if r.os_release:
        out[p + "os_release"] = _tool_str(r.os_release, SFL_MAX_OSRELEASE_LEN - 1)


HOST_DESCR = Custom("host_descr", HostDescr, _decode_host_descr, _encode_host_descr, _sflowtool_host_descr)

# ---------------------------------------------------------------- 0:2001 host_adapters


class Adaptor(Record):
    """One network adapter of a host: its ifIndex and MAC addresses."""

    if_index: int
    macs: tuple[str, ...]


class HostAdapters(Record):
    """Host network adapters (0:2001), sflow_host.txt."""

    adaptors: tuple[Adaptor, ...]


def _decode_host_adapters(buf: memoryview, off: int, length: int) -> HostAdapters:
    end = off + length
    n = read_u32(buf, off, end, "host_adapters")
    off += 4
    if n > (end - off) // 8:
        raise DecodeError(off - 4, f"host_adapters: {n} adapters cannot fit in {end - off} bytes",
                          DecodeReason.TRUNCATED)
    adaptors = []
    for _ in range(n):
        need(buf, off, 8, end, "host_adapters adapter")
        if_index, nmacs = _TWO_U32.unpack_from(buf, off)
        off += 8
        if nmacs > (end - off) // 8:
            raise DecodeError(off - 4, f"host_adapters: {nmacs} MACs cannot fit in {end - off} bytes",
                              DecodeReason.TRUNCATED)
        macs = tuple(bytes(buf[o : o + 6]).hex(":") for o in range(off, off + 8 * nmacs, 8))
        off += 8 * nmacs
        adaptors.append(Adaptor(if_index, macs))
    _end_check(off, end, "host_adapters")
    return HostAdapters(tuple(adaptors))


def _encode_host_adapters(r: HostAdapters) -> bytes:
    parts = [U32S.pack(len(r.adaptors))]
    for a in r.adaptors:
        parts.append(_TWO_U32.pack(a.if_index, len(a.macs)))
        parts.extend(mac_to_wire(m) + b"\0\0" for m in a.macs)
    return b"".join(parts)


def _sflowtool_host_adapters(r: HostAdapters, out: dict, p: str) -> None:
    out[p + "adaptor_list"] = [
        {p + "ifIndex": str(a.if_index), p + "MACs": str(len(a.macs)), p + "mac_list": [fmt_mac(m) for m in a.macs]}
        for a in r.adaptors
    ]


HOST_ADAPTERS = Custom("host_adapters", HostAdapters, _decode_host_adapters, _encode_host_adapters,
                       _sflowtool_host_adapters)

# ---------------------------------------------------------------- 0:2002 host_parent


class HostParent(Record):
    """The container of a virtual host (0:2002): its sFlowDataSource class and index."""

    container_type: int
    container_index: int


HOST_PARENT = _fixed("host_parent", HostParent, (
    ("container_type", U32, "parent_dsClass"),
    ("container_index", U32, "parent_dsIndex"),
))

# ---------------------------------------------------------------- 0:2003 host_cpu


class HostCpu(Record):
    """Host CPU (0:2003). Times in milliseconds; the last three fields (December 2014) may be absent."""

    load_one: float
    load_five: float
    load_fifteen: float
    proc_run: int
    proc_total: int
    cpu_num: int
    cpu_speed: int  # MHz
    uptime: int  # seconds
    cpu_user: int
    cpu_nice: int
    cpu_system: int
    cpu_idle: int
    cpu_wio: int
    cpu_intr: int
    cpu_sintr: int
    interrupts: int
    contexts: int
    cpu_steal: int | None = None
    cpu_guest: int | None = None
    cpu_guest_nice: int | None = None


HOST_CPU = _fixed("host_cpu", HostCpu, (
    ("load_one", F32, "cpu_load_one"),
    ("load_five", F32, "cpu_load_five"),
    ("load_fifteen", F32, "cpu_load_fifteen"),
    ("proc_run", U32, "cpu_proc_run"),
    ("proc_total", U32, "cpu_proc_total"),
    ("cpu_num", U32, "cpu_num"),
    ("cpu_speed", U32, "cpu_speed"),
    ("uptime", U32, "cpu_uptime"),
    ("cpu_user", U32, "cpu_user"),
    ("cpu_nice", U32, "cpu_nice"),
    ("cpu_system", U32, "cpu_system"),
    ("cpu_idle", U32, "cpu_idle"),
    ("cpu_wio", U32, "cpu_wio"),
    ("cpu_intr", U32, "cpuintr"),
    ("cpu_sintr", U32, "cpu_sintr"),
    ("interrupts", U32, "cpuinterrupts"),
    ("contexts", U32, "cpu_contexts"),
    ("cpu_steal", U32, "cpu_steal"),
    ("cpu_guest", U32, "cpu_guest"),
    ("cpu_guest_nice", U32, "cpu_guest_nice"),
), optional_tail=3)

# ---------------------------------------------------------------- 0:2004 host_memory


class HostMemory(Record):
    """Host memory (0:2004), bytes and page/swap counts."""

    mem_total: int
    mem_free: int
    mem_shared: int
    mem_buffers: int
    mem_cached: int
    swap_total: int
    swap_free: int
    page_in: int
    page_out: int
    swap_in: int
    swap_out: int


HOST_MEMORY = _fixed("host_memory", HostMemory, (
    ("mem_total", U64, "mem_total"),
    ("mem_free", U64, "mem_free"),
    ("mem_shared", U64, "mem_shared"),
    ("mem_buffers", U64, "mem_buffers"),
    ("mem_cached", U64, "mem_cached"),
    ("swap_total", U64, "swap_total"),
    ("swap_free", U64, "swap_free"),
    ("page_in", U32, "page_in"),
    ("page_out", U32, "page_out"),
    ("swap_in", U32, "swap_in"),
    ("swap_out", U32, "swap_out"),
))

# ---------------------------------------------------------------- 0:2005 host_disk_io


class HostDiskIo(Record):
    """Host disk I/O (0:2005). part_max_used in percent (None = unknown); times in milliseconds."""

    disk_total: int
    disk_free: int
    part_max_used: float | None
    reads: int
    bytes_read: int
    read_time: int
    writes: int
    bytes_written: int
    write_time: int


HOST_DISK_IO = _fixed("host_disk_io", HostDiskIo, (
    ("disk_total", U64, "disk_total"),
    ("disk_free", U64, "disk_free"),
    ("part_max_used", PERCENT, "disk_partition_max_used"),
    ("reads", U32, "disk_reads"),
    ("bytes_read", U64, "disk_bytes_read"),
    ("read_time", U32, "disk_read_time"),
    ("writes", U32, "disk_writes"),
    ("bytes_written", U64, "disk_bytes_written"),
    ("write_time", U32, "disk_write_time"),
))

# ---------------------------------------------------------------- 0:2006 host_net_io


class HostNetIo(Record):
    """Host network I/O (0:2006)."""

    bytes_in: int
    pkts_in: int
    errs_in: int
    drops_in: int
    bytes_out: int
    pkts_out: int
    errs_out: int
    drops_out: int


HOST_NET_IO = _fixed("host_net_io", HostNetIo, (
    ("bytes_in", U64, "nio_bytes_in"),
    ("pkts_in", U32, "nio_pkts_in"),
    ("errs_in", U32, "nio_errs_in"),
    ("drops_in", U32, "nio_drops_in"),
    ("bytes_out", U64, "nio_bytes_out"),
    ("pkts_out", U32, "nio_pkts_out"),
    ("errs_out", U32, "nio_errs_out"),
    ("drops_out", U32, "nio_drops_out"),
))

# ---------------------------------------------------------------- 0:2007 .. 0:2010 MIB-II ip, icmp, tcp, udp


def _mib_rows(cls: type, names: tuple[str, ...]) -> tuple:
    """MIB-II rows: the model attributes are the MIB object names in snake_case, in wire order."""
    attrs = cls.__struct_fields__
    assert [a.replace("_", "") for a in attrs] == [n.lower() for n in names], cls
    return tuple((a, U32, n) for a, n in zip(attrs, names))


_IP_NAMES = ("ipForwarding", "ipDefaultTTL", "ipInReceives", "ipInHdrErrors", "ipInAddrErrors",
             "ipForwDatagrams", "ipInUnknownProtos", "ipInDiscards", "ipInDelivers", "ipOutRequests",
             "ipOutDiscards", "ipOutNoRoutes", "ipReasmTimeout", "ipReasmReqds", "ipReasmOKs", "ipReasmFails",
             "ipFragOKs", "ipFragFails", "ipFragCreates")
_ICMP_NAMES = ("icmpInMsgs", "icmpInErrors", "icmpInDestUnreachs", "icmpInTimeExcds", "icmpInParamProbs",
               "icmpInSrcQuenchs", "icmpInRedirects", "icmpInEchos", "icmpInEchoReps", "icmpInTimestamps",
               "icmpInAddrMasks", "icmpInAddrMaskReps", "icmpOutMsgs", "icmpOutErrors", "icmpOutDestUnreachs",
               "icmpOutTimeExcds", "icmpOutParamProbs", "icmpOutSrcQuenchs", "icmpOutRedirects", "icmpOutEchos",
               "icmpOutEchoReps", "icmpOutTimestamps", "icmpOutTimestampReps", "icmpOutAddrMasks",
               "icmpOutAddrMaskReps")
_TCP_NAMES = ("tcpRtoAlgorithm", "tcpRtoMin", "tcpRtoMax", "tcpMaxConn", "tcpActiveOpens", "tcpPassiveOpens",
              "tcpAttemptFails", "tcpEstabResets", "tcpCurrEstab", "tcpInSegs", "tcpOutSegs", "tcpRetransSegs",
              "tcpInErrs", "tcpOutRsts", "tcpInCsumErrors")
_UDP_NAMES = ("udpInDatagrams", "udpNoPorts", "udpInErrors", "udpOutDatagrams", "udpRcvbufErrors",
              "udpSndbufErrors", "udpInCsumErrors")


class HostIp(Record):
    """MIB-II IP group (0:2007)."""

    ip_forwarding: int
    ip_default_ttl: int
    ip_in_receives: int
    ip_in_hdr_errors: int
    ip_in_addr_errors: int
    ip_forw_datagrams: int
    ip_in_unknown_protos: int
    ip_in_discards: int
    ip_in_delivers: int
    ip_out_requests: int
    ip_out_discards: int
    ip_out_no_routes: int
    ip_reasm_timeout: int
    ip_reasm_reqds: int
    ip_reasm_oks: int
    ip_reasm_fails: int
    ip_frag_oks: int
    ip_frag_fails: int
    ip_frag_creates: int


class HostIcmp(Record):
    """MIB-II ICMP group (0:2008)."""

    icmp_in_msgs: int
    icmp_in_errors: int
    icmp_in_dest_unreachs: int
    icmp_in_time_excds: int
    icmp_in_param_probs: int
    icmp_in_src_quenchs: int
    icmp_in_redirects: int
    icmp_in_echos: int
    icmp_in_echo_reps: int
    icmp_in_timestamps: int
    icmp_in_addr_masks: int
    icmp_in_addr_mask_reps: int
    icmp_out_msgs: int
    icmp_out_errors: int
    icmp_out_dest_unreachs: int
    icmp_out_time_excds: int
    icmp_out_param_probs: int
    icmp_out_src_quenchs: int
    icmp_out_redirects: int
    icmp_out_echos: int
    icmp_out_echo_reps: int
    icmp_out_timestamps: int
    icmp_out_timestamp_reps: int
    icmp_out_addr_masks: int
    icmp_out_addr_mask_reps: int


class HostTcp(Record):
    """MIB-II TCP group (0:2009)."""

    tcp_rto_algorithm: int
    tcp_rto_min: int
    tcp_rto_max: int
    tcp_max_conn: int
    tcp_active_opens: int
    tcp_passive_opens: int
    tcp_attempt_fails: int
    tcp_estab_resets: int
    tcp_curr_estab: int
    tcp_in_segs: int
    tcp_out_segs: int
    tcp_retrans_segs: int
    tcp_in_errs: int
    tcp_out_rsts: int
    tcp_in_csum_errors: int


class HostUdp(Record):
    """MIB-II UDP group (0:2010)."""

    udp_in_datagrams: int
    udp_no_ports: int
    udp_in_errors: int
    udp_out_datagrams: int
    udp_rcvbuf_errors: int
    udp_sndbuf_errors: int
    udp_in_csum_errors: int


HOST_IP = _fixed("host_ip", HostIp, _mib_rows(HostIp, _IP_NAMES))
HOST_ICMP = _fixed("host_icmp", HostIcmp, _mib_rows(HostIcmp, _ICMP_NAMES))
HOST_TCP = _fixed("host_tcp", HostTcp, _mib_rows(HostTcp, _TCP_NAMES))
HOST_UDP = _fixed("host_udp", HostUdp, _mib_rows(HostUdp, _UDP_NAMES))
