"""Application counter blocks 0:2200-0:2207 and the vendor tables 5703:1 (NVIDIA) and 4413:3 (Broadcom).

memcache, HTTP, application operations/resources/workers, VDI and Open vSwitch datapath counters;
NVIDIA GPU counters and Broadcom switch ASIC table utilisation.
"""

from __future__ import annotations

import struct

from ingest.sflow.counter_records._common import _fixed, _tool_str
from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.layout import U32, U64, Custom, enc_string, read_string
from ingest.sflow.model import Record

# sflowtool's string buffer sizes (src/sflow.h); getString keeps at most size - 1 bytes
SFLAPP_MAX_APPLICATION_LEN = 32

# ---------------------------------------------------------------- 0:2200 memcache (deprecated), 0:2204 memcache


class MemcacheCountersV1(Record):
    """memcached counters, deprecated structure (0:2200)."""

    uptime: int
    rusage_user: int
    rusage_system: int
    curr_connections: int
    total_connections: int
    connection_structures: int
    cmd_get: int
    cmd_set: int
    cmd_flush: int
    get_hits: int
    get_misses: int
    delete_misses: int
    delete_hits: int
    incr_misses: int
    incr_hits: int
    decr_misses: int
    decr_hits: int
    cas_misses: int
    cas_hits: int
    cas_badval: int
    auth_cmds: int
    auth_errors: int
    bytes_read: int
    bytes_written: int
    limit_maxbytes: int
    accepting_conns: int
    listen_disabled_num: int
    threads: int
    conn_yields: int
    bytes: int
    curr_items: int
    total_items: int
    evictions: int


_MEMCACHE_V1_WIDE = {"bytes_read", "bytes_written", "bytes"}
MEMCACHE_COUNTERS_V1 = _fixed("memcache_counters_v1", MemcacheCountersV1, tuple(
    (a, U64 if a in _MEMCACHE_V1_WIDE else U32, "memcache_" + a) for a in MemcacheCountersV1.__struct_fields__))


class MemcacheCounters(Record):
    """memcached counters (0:2204), sflow_memcache.txt."""

    cmd_set: int
    cmd_touch: int
    cmd_flush: int
    get_hits: int
    get_misses: int
    delete_hits: int
    delete_misses: int
    incr_hits: int
    incr_misses: int
    decr_hits: int
    decr_misses: int
    cas_hits: int
    cas_misses: int
    cas_badval: int
    auth_cmds: int
    auth_errors: int
    threads: int
    conn_yields: int
    listen_disabled_num: int
    curr_connections: int
    rejected_connections: int
    total_connections: int
    connection_structures: int
    evictions: int
    reclaimed: int
    curr_items: int
    total_items: int
    bytes_read: int
    bytes_written: int
    bytes: int
    limit_maxbytes: int


_MEMCACHE_WIDE = {"bytes_read", "bytes_written", "bytes", "limit_maxbytes"}
MEMCACHE_COUNTERS = _fixed("memcache_counters", MemcacheCounters, tuple(
    (a, U64 if a in _MEMCACHE_WIDE else U32, "memcache_" + a) for a in MemcacheCounters.__struct_fields__))

# ---------------------------------------------------------------- 0:2201 http_counters


class HttpCounters(Record):
    """HTTP method and status counters (0:2201), sflow_http.txt."""

    method_option_count: int
    method_get_count: int
    method_head_count: int
    method_post_count: int
    method_put_count: int
    method_delete_count: int
    method_trace_count: int
    method_connect_count: int
    method_other_count: int
    status_1xx_count: int
    status_2xx_count: int
    status_3xx_count: int
    status_4xx_count: int
    status_5xx_count: int
    status_other_count: int


HTTP_COUNTERS = _fixed("http_counters", HttpCounters, tuple(
    (a, U32, "http_" + ("methd_connect_count" if a == "method_connect_count" else a.replace("xx", "XX")))
    for a in HttpCounters.__struct_fields__))

# ---------------------------------------------------------------- 0:2202 app_operations


class AppOperations(Record):
    """Application operation counters (0:2202), sflow_application.txt."""

    application: str
    success: int
    other: int
    timeout: int
    internal_error: int
    bad_request: int
    forbidden: int
    too_large: int
    not_implemented: int
    not_found: int
    unavailable: int
    unauthorized: int


_APP_OPS = struct.Struct(">11I")
_APP_OPS_TOOL = ("status_OK", "errors_OTHER", "errors_TIMEOUT", "errors_INTERNAL_ERROR", "errors_BAD_REQUEST",
                 "errors_FORBIDDEN", "errors_TOO_LARGE", "errors_NOT_IMPLEMENTED", "errors_NOT_FOUND",
                 "errors_UNAVAILABLE", "errors_UNAUTHORIZED")


def _decode_app_operations(buf: memoryview, off: int, length: int) -> AppOperations:
    end = off + length
    app, off = read_string(buf, off, end, "app_operations application")
    if end - off != _APP_OPS.size:
        raise DecodeError(off, f"app_operations: {end - off} bytes after the name, expected {_APP_OPS.size}",
                          DecodeReason.BAD_LENGTH)
    return AppOperations(app, *_APP_OPS.unpack_from(buf, off))


def _encode_app_operations(r: AppOperations) -> bytes:
    return enc_string(r.application) + _APP_OPS.pack(*(getattr(r, a) for a in AppOperations.__struct_fields__[1:]))


def _sflowtool_app_operations(r: AppOperations, out: dict, p: str) -> None:
    if r.application:
        out[p + "application"] = _tool_str(r.application, SFLAPP_MAX_APPLICATION_LEN - 1)
    for key, attr in zip(_APP_OPS_TOOL, AppOperations.__struct_fields__[1:]):
        out[p + key] = str(getattr(r, attr))


APP_OPERATIONS = Custom("app_operations", AppOperations, _decode_app_operations, _encode_app_operations,
                        _sflowtool_app_operations)

# ---------------------------------------------------------------- 0:2203 app_resources, 0:2206 app_workers


class AppResources(Record):
    """Application resources (0:2203), sflow_application.txt. Times in milliseconds."""

    user_time: int
    system_time: int
    mem_used: int
    mem_max: int
    fd_open: int
    fd_max: int
    conn_open: int
    conn_max: int


APP_RESOURCES = _fixed("app_resources", AppResources, (
    ("user_time", U32, "user_time"),
    ("system_time", U32, "system_time"),
    ("mem_used", U64, "memory_used"),
    ("mem_max", U64, "memory_max"),
    ("fd_open", U32, "files_open"),
    ("fd_max", U32, "files_max"),
    ("conn_open", U32, "connections_open"),
    ("conn_max", U32, "connections_max"),
))


class AppWorkers(Record):
    """Application worker pool (0:2206), sflow_application.txt."""

    workers_active: int
    workers_idle: int
    workers_max: int
    req_delayed: int
    req_dropped: int


APP_WORKERS = _fixed("app_workers", AppWorkers, (
    ("workers_active", U32, "workers_active"),
    ("workers_idle", U32, "workers_idle"),
    ("workers_max", U32, "workers_max"),
    ("req_delayed", U32, "requests_delayed"),
    ("req_dropped", U32, "requests_dropped"),
))

# ---------------------------------------------------------------- 0:2205 vdi_counters


class VdiCounters(Record):
    """Virtual desktop infrastructure counters (0:2205)."""

    sessions_current: int
    sessions_total: int
    sessions_duration: int  # seconds, all sessions
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    rx_packets_lost: int
    tx_packets_lost: int
    rtt_min_ms: int
    rtt_max_ms: int
    rtt_avg_ms: int
    audio_rx_bytes: int
    audio_tx_bytes: int
    audio_tx_limit: int  # bits per second
    img_rx_bytes: int
    img_tx_bytes: int
    img_frames: int
    img_qual_min: int
    img_qual_max: int
    img_qual_avg: int
    usb_rx_bytes: int
    usb_tx_bytes: int


VDI_COUNTERS = _fixed("vdi_counters", VdiCounters, tuple(
    (a, U32, "vdi_" + a) for a in VdiCounters.__struct_fields__))

# ---------------------------------------------------------------- 0:2207 ovs_dp_stats


class OvsDpStats(Record):
    """Open vSwitch datapath statistics (0:2207)."""

    hits: int
    misses: int
    lost: int
    mask_hits: int
    flows: int
    masks: int


OVS_DP_STATS = _fixed("ovs_dp_stats", OvsDpStats, tuple(
    (a, U32, "OVS_dp_" + a) for a in OvsDpStats.__struct_fields__))

# ---------------------------------------------------------------- 5703:1 nvml_gpu_counters (NVIDIA)


class NvmlGpuCounters(Record):
    """NVIDIA GPU counters (enterprise 5703, format 1), sflow_nvml.txt."""

    device_count: int
    processes: int
    gpu_time: int  # milliseconds with a kernel running
    mem_time: int  # milliseconds with memory being read or written
    mem_total: int  # bytes
    mem_free: int  # bytes
    ecc_errors: int
    energy: int  # millijoules
    temperature: int  # degrees Celsius, maximum across devices
    fan_speed: int  # percent, maximum across devices


NVML_GPU_COUNTERS = _fixed("nvml_gpu_counters", NvmlGpuCounters, (
    ("device_count", U32, "nvml_device_count"),
    ("processes", U32, "nvml_processes"),
    ("gpu_time", U32, "nvml_gpu_mS"),
    ("mem_time", U32, "nvml_mem_mS"),
    ("mem_total", U64, "nvml_mem_bytes_total"),
    ("mem_free", U64, "nvml_mem_bytes_free"),
    ("ecc_errors", U32, "nvml_ecc_errors"),
    ("energy", U32, "nvml_energy_mJ"),
    ("temperature", U32, "nvml_temperature_C"),
    ("fan_speed", U32, "nvml_fan_speed_pc"),
))

# ---------------------------------------------------------------- 4413:3 bcm_tables (Broadcom)


class BcmTables(Record):
    """Broadcom switch ASIC table utilisation (enterprise 4413, format 3), sflow_broadcom_tables.txt."""

    host_entries: int
    host_entries_max: int
    ipv4_entries: int
    ipv4_entries_max: int
    ipv6_entries: int
    ipv6_entries_max: int
    ipv4_ipv6_entries: int
    ipv4_ipv6_entries_max: int
    long_ipv6_entries: int
    long_ipv6_entries_max: int
    total_routes: int
    total_routes_max: int
    ecmp_nexthops: int
    ecmp_nexthops_max: int
    mac_entries: int
    mac_entries_max: int
    ipv4_neighbors: int
    ipv6_neighbors: int
    ipv4_routes: int
    ipv6_routes: int
    acl_ingress_entries: int
    acl_ingress_entries_max: int
    acl_ingress_counters: int
    acl_ingress_counters_max: int
    acl_ingress_meters: int
    acl_ingress_meters_max: int
    acl_ingress_slices: int
    acl_ingress_slices_max: int
    acl_egress_entries: int
    acl_egress_entries_max: int
    acl_egress_counters: int
    acl_egress_counters_max: int
    acl_egress_meters: int
    acl_egress_meters_max: int
    acl_egress_slices: int
    acl_egress_slices_max: int


BCM_TABLES = _fixed("bcm_tables", BcmTables, tuple(
    (a, U32, "bcm_asic_host_entries" if a == "host_entries" else "bcm_" + a)
    for a in BcmTables.__struct_fields__))
