"""Virtual host and JVM counter blocks: 0:2100-0:2104 (hypervisor and domains) and 0:2105-0:2106 (JVM)."""

from __future__ import annotations

from ingest.sflow.counter_records._common import _end_check, _fixed, _tool_str
from ingest.sflow.layout import U32, U64, Custom, enc_string, read_string
from ingest.sflow.model import Record

# sflowtool's string buffer sizes (src/sflow.h); getString keeps at most size - 1 bytes
SFLJVM_MAX_VMNAME_LEN = 64
SFLJVM_MAX_VENDOR_LEN = 32
SFLJVM_MAX_VERSION_LEN = 32

# ---------------------------------------------------------------- 0:2100 .. 0:2104 virtual hosts


class VirtNode(Record):
    """Hypervisor (0:2100)."""

    mhz: int  # expected CPU frequency
    cpus: int  # active CPUs
    memory: int  # bytes
    memory_free: int  # unassigned bytes
    num_domains: int


VIRT_NODE = _fixed("virt_node", VirtNode, (
    ("mhz", U32, "vnode_mhz"),
    ("cpus", U32, "vnode_cpus"),
    ("memory", U64, "vnode_memory"),
    ("memory_free", U64, "vnode_memory_free"),
    ("num_domains", U32, "vnode_num_domains"),
))


class VirtCpu(Record):
    """Virtual domain CPU (0:2101)."""

    state: int  # virDomainState
    cpu_time: int  # milliseconds
    nr_virt_cpu: int


VIRT_CPU = _fixed("virt_cpu", VirtCpu, (
    ("state", U32, "vcpu_state"),
    ("cpu_time", U32, "vcpu_cpu_mS"),
    ("nr_virt_cpu", U32, "vcpu_cpuCount"),
))


class VirtMemory(Record):
    """Virtual domain memory (0:2102), bytes."""

    memory: int
    max_memory: int


VIRT_MEMORY = _fixed("virt_memory", VirtMemory, (
    ("memory", U64, "vmem_memory"),
    ("max_memory", U64, "vmem_maxMemory"),
))


class VirtDiskIo(Record):
    """Virtual domain disk I/O (0:2103)."""

    capacity: int
    allocation: int
    available: int
    rd_req: int
    rd_bytes: int
    wr_req: int
    wr_bytes: int
    errs: int


VIRT_DISK_IO = _fixed("virt_disk_io", VirtDiskIo, (
    ("capacity", U64, "vdsk_capacity"),
    ("allocation", U64, "vdsk_allocation"),
    ("available", U64, "vdsk_available"),
    ("rd_req", U32, "vdsk_rd_req"),
    ("rd_bytes", U64, "vdsk_rd_bytes"),
    ("wr_req", U32, "vdsk_wr_req"),
    ("wr_bytes", U64, "vdsk_wr_bytes"),
    ("errs", U32, "vdsk_errs"),
))


class VirtNetIo(Record):
    """Virtual domain network I/O (0:2104)."""

    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int


VIRT_NET_IO = _fixed("virt_net_io", VirtNetIo, (
    ("rx_bytes", U64, "vnio_bytes_in"),
    ("rx_packets", U32, "vnio_pkts_in"),
    ("rx_errs", U32, "vnio_errs_in"),
    ("rx_drop", U32, "vnio_drops_in"),
    ("tx_bytes", U64, "vnio_bytes_out"),
    ("tx_packets", U32, "vnio_pkts_out"),
    ("tx_errs", U32, "vnio_errs_out"),
    ("tx_drop", U32, "vnio_drops_out"),
))

# ---------------------------------------------------------------- 0:2105 jvm_runtime, 0:2106 jvm_statistics


class JvmRuntime(Record):
    """Java virtual machine identity (0:2105), sflow_jvm.txt."""

    vm_name: str
    vm_vendor: str
    vm_version: str


def _decode_jvm_runtime(buf: memoryview, off: int, length: int) -> JvmRuntime:
    end = off + length
    name, off = read_string(buf, off, end, "jvm_runtime vm_name")
    vendor, off = read_string(buf, off, end, "jvm_runtime vm_vendor")
    version, off = read_string(buf, off, end, "jvm_runtime vm_version")
    _end_check(off, end, "jvm_runtime")
    return JvmRuntime(name, vendor, version)


def _sflowtool_jvm_runtime(r: JvmRuntime, out: dict, p: str) -> None:
    if r.vm_name:
        out[p + "jvm_name"] = _tool_str(r.vm_name, SFLJVM_MAX_VMNAME_LEN - 1)
    if r.vm_vendor:
        out[p + "jvm_vendor"] = _tool_str(r.vm_vendor, SFLJVM_MAX_VENDOR_LEN - 1)
    if r.vm_version:
        out[p + "jvm_version"] = _tool_str(r.vm_version, SFLJVM_MAX_VERSION_LEN - 1)


JVM_RUNTIME = Custom("jvm_runtime", JvmRuntime, _decode_jvm_runtime,
                     lambda r: enc_string(r.vm_name) + enc_string(r.vm_vendor) + enc_string(r.vm_version),
                     _sflowtool_jvm_runtime)


class JvmStatistics(Record):
    """Java virtual machine statistics (0:2106); the file-descriptor counts may be absent."""

    heap_initial: int
    heap_used: int
    heap_committed: int
    heap_max: int
    non_heap_initial: int
    non_heap_used: int
    non_heap_committed: int
    non_heap_max: int
    gc_count: int
    gc_time: int  # milliseconds
    classes_loaded: int
    classes_total: int
    classes_unloaded: int
    compilation_time: int  # milliseconds
    thread_num_live: int
    thread_num_daemon: int
    thread_started: int
    fd_open_count: int | None = None
    fd_max_count: int | None = None


JVM_STATISTICS = _fixed("jvm_statistics", JvmStatistics, (
    ("heap_initial", U64, "heap_mem_initial"),
    ("heap_used", U64, "heap_mem_used"),
    ("heap_committed", U64, "heap_mem_committed"),
    ("heap_max", U64, "heap_mem_max"),
    ("non_heap_initial", U64, "non_heap_mem_initial"),
    ("non_heap_used", U64, "non_heap_mem_used"),
    ("non_heap_committed", U64, "non_heap_mem_committed"),
    ("non_heap_max", U64, "non_heap_mem_max"),
    ("gc_count", U32, "gc_count"),
    ("gc_time", U32, "gc_mS"),
    ("classes_loaded", U32, "classes_loaded"),
    ("classes_total", U32, "classes_total"),
    ("classes_unloaded", U32, "classes_unloaded"),
    ("compilation_time", U32, "compilation_mS"),
    ("thread_num_live", U32, "threads_live"),
    ("thread_num_daemon", U32, "threads_daemon"),
    ("thread_started", U32, "threads_started"),
    ("fd_open_count", U32, "fds_open"),
    ("fd_max_count", U32, "fds_max"),
), optional_tail=2)
