"""Per-data-source counter metrics with sFlow-RT's metric names and units.

``CounterMetrics.update(batch)`` takes one decoded counter_sample_batch datum (Avro, as read
from Kafka) and returns the metrics of its samples, one ``Metric`` per (data source, name).

Names follow sFlow-RT (https://sflow-rt.com/metrics.php):

* generic interface (0:1): ``ifindex``, ``ifspeed`` (bits/s), ``iftype`` (IANAifType number),
  ``ifdirection`` (sFlow code: 0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out),
  ``ifadminstatus`` / ``ifoperstatus`` (SNMP code: 1 up, 2 down), per-second rates
  ``ifinoctets`` (bytes/s), ``ifinucastpkts``, ``ifinmulticastpkts``, ``ifinbroadcastpkts``,
  ``ifindiscards``, ``ifinerrors``, ``ifinunknownprotos`` and the ``ifout*`` equivalents,
  ``ifinpkts`` / ``ifoutpkts`` (ucast + multicast + broadcast) and ``ifinutilization`` /
  ``ifoututilization`` (``octets/s * 800 / ifspeed``, percent);
* Ethernet (0:2): ``eth_*`` error and collision rates;
* port name / OpenFlow port (0:1005, 0:1004): ``of_port``; text ``ifname``, ``of_dpid``;
* processor (0:1001, switches): ``cpu_utilization`` = 5s_cpu, ``mem_total``, ``mem_free``,
  ``mem_used``, ``mem_utilization``;
* host (0:2000-0:2006): text ``host_name``, ``machine_type``, ``os_name``, ``os_release``;
  ``load_one``/``five``/``fifteen``, ``proc_run``, ``proc_total``, ``cpu_num``, ``cpu_speed``,
  ``uptime`` (s), ``interrupts`` / ``contexts`` (per second), ``cpu_user``, ``cpu_nice``,
  ``cpu_system``, ``cpu_idle``, ``cpu_wio``, ``cpu_intr``, ``cpu_sintr``, ``cpu_steal``,
  ``cpu_guest``, ``cpu_guest_nice`` (percent of the CPU time of the interval, from the tick
  counter deltas) and ``cpu_utilization`` (100 - idle share); memory gauges (bytes) with
  ``mem_used = mem_total - mem_free - mem_buffers - mem_cached`` (buffers and page cache count as
  free, as ``free``/Ganglia do) and ``mem_utilization = 100 * mem_used / mem_total``,
  ``page_in``/``page_out``/``swap_in``/``swap_out`` per second; ``disk_total``, ``disk_free``,
  ``part_max_used`` (percent), ``disk_utilization = 100 * (total - free) / total`` and per-second
  ``reads``, ``bytes_read``, ``read_time``, ``writes``, ``bytes_written``, ``write_time``; network
  ``bytes_in``, ``pkts_in``, ``errs_in``, ``drops_in`` and the ``*_out`` rates.

Other counter records are ignored. ``Metric.value`` is always a float (the metrics topic and
thresholds need numbers): where sFlow-RT shows an enumeration as text (iftype "ethernetCsmacd",
ifdirection "full-duplex", ifadminstatus/ifoperstatus "up"/"down") the metric carries the code
and ``IF_TYPES`` / ``IF_DIRECTIONS`` / ``IF_STATUS`` give sFlow-RT's text. Pure text attributes
(``TEXT_METRICS``: ifname, of_dpid, host_name, machine_type, os_name, os_release) are not
metrics; ``text(agent)`` returns their latest values per data source.

Data sources are named like sFlow-RT: the ifIndex as a string for class 0 ("3") and
"<class>.<index>" for the others ("2.1" for a Host sFlow physical host, "3.7" for a virtual
one). The sub-agent id is part of the rate state key (so two sub-agents never mix counters) but
not of the name.

Rates: counter deltas between two consecutive samples of the same (agent, sub-agent, data
source), divided by the delta of the agent's uptime; by the delta of the receive times when the
agent reports no uptime (0) or its uptime went backwards while the sample sequence number
carried on. Counters wrap at their wire width (2**32 or 2**64, from the record layouts in
ingest.sflow.counter_records); a wrapped delta of half the range or more is a reset, not a wrap,
and gives no rate. No rates at all for an interval where the sample sequence number did not
advance (agent restart, discontinuity, duplicate), or where the uptime went backwards with it
(agent restart). After an uptime that went backwards a counter that went backwards gives no
rate. A counter equal to all ones (sFlow's "unknown") gives no value. The first sample of a
data source gives gauges only.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from ingest.sflow.counter_records import (
    ETHERNET_COUNTERS,
    HOST_CPU,
    HOST_DISK_IO,
    HOST_MEMORY,
    HOST_NET_IO,
    IF_COUNTERS,
    OF_PORT,
    PROCESSOR,
)
from ingest.sflow.layout import U32, U64
from sflowpipe.names import data_source

__all__ = ["CounterMetrics", "IF_DIRECTIONS", "IF_STATUS", "IF_TYPES", "Metric", "TEXT_METRICS"]

NAMESPACE = "sflowpipe."
M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
# a 32-bit uptime (ms) wraps after 49.7 days: treat a backwards step from this close to the top
# to this close to zero as a wrap, not a restart
_UPTIME_WRAP_WINDOW_MS = 3_600_000


class Metric(NamedTuple):
    agent: str
    data_source: str
    name: str
    value: float
    timestamp_us: int


# ---------------------------------------------------------------- enumerations (text metrics)

# IANAifType names for the common types; others are printed as their number
IF_TYPES = {
    1: "other", 6: "ethernetCsmacd", 7: "iso88023Csmacd", 9: "iso88025TokenRing", 15: "fddi",
    23: "ppp", 24: "softwareLoopback", 53: "propVirtual", 62: "fastEther", 69: "fastEtherFX",
    71: "ieee80211", 117: "gigabitEthernet", 131: "tunnel", 135: "l2vlan", 136: "l3ipvlan",
    161: "ieee8023adLag", 166: "mpls", 209: "bridge",
}
IF_DIRECTIONS = {0: "unknown", 1: "full-duplex", 2: "half-duplex", 3: "in", 4: "out"}
IF_STATUS = {1: "up", 2: "down"}  # ifAdminStatus / ifOperStatus codes
# sflow_host.txt machine_type and os_name enumerations
MACHINE_TYPES = ("unknown", "other", "x86", "x86_64", "ia64", "sparc", "alpha", "powerpc", "m68k", "mips",
                 "arm", "hppa", "s390")
OS_NAMES = ("unknown", "other", "linux", "windows", "darwin", "hpux", "aix", "dragonfly", "freebsd", "netbsd",
            "openbsd", "osf", "solaris", "java")

TEXT_METRICS = frozenset({"ifname", "of_dpid", "host_name", "machine_type", "os_name", "os_release"})

# ---------------------------------------------------------------- per-record conversion tables

_WIDTH = {U32: M32, U64: M64}


def _masks(codec) -> dict[str, int]:
    """Field -> all-ones mask of its wire width, for the unsigned integer fields of a layout."""
    return {f.attr: _WIDTH[f.kind] for f in codec.fields if f.kind in _WIDTH}


Emit = Callable[[str, Any], None]


class _Spec(NamedTuple):
    gauges: tuple  # (metric, field, mask or None)
    rates: tuple  # (metric, field, mask): emitted as delta / seconds
    ticks: tuple  # (field, mask): tracked for deltas, not emitted directly
    derive: Callable | None  # derive(rec, deltas, seconds, emit)
    derived: tuple  # names derive() can emit


def _spec(codec, gauges=(), rates=(), ticks=(), derive=None, derived=()) -> _Spec:
    m = _masks(codec) if hasattr(codec, "fields") else {}
    for _, field in rates:
        assert field in m, (codec.name, field)
    return _Spec(tuple((n, f, m.get(f)) for n, f in gauges), tuple((n, f, m[f]) for n, f in rates),
                 tuple((f, m[f]) for f in ticks), derive, tuple(derived))


def _if_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    st = rec.get("if_status")
    if st is not None:
        emit("ifadminstatus", 1.0 if st & 1 else 2.0)
        emit("ifoperstatus", 1.0 if st & 2 else 2.0)
    if not secs:
        return
    speed = rec.get("if_speed")
    speed = speed if speed and speed != M64 else 0
    for side in ("in", "out"):
        o = d.get(f"if_{side}_octets")
        if o is not None and speed:
            emit(f"if{side}utilization", o / secs * 800.0 / speed)
        u, m, b = d.get(f"if_{side}_ucast_pkts"), d.get(f"if_{side}_multicast_pkts"), d.get(f"if_{side}_broadcast_pkts")
        if u is not None and m is not None and b is not None:
            emit(f"if{side}pkts", (u + m + b) / secs)


_CPU_STATES = ("cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_wio", "cpu_intr", "cpu_sintr")
_CPU_OPTIONAL = ("cpu_steal",)
# guest time is already counted in user (guest_nice in nice): a share of the total, not part of it
_CPU_GUEST = ("cpu_guest", "cpu_guest_nice")


def _cpu_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    if secs is None:
        return
    parts = [d.get(f) for f in _CPU_STATES]
    if any(p is None for p in parts):
        return
    total = sum(parts) + sum(d[f] for f in _CPU_OPTIONAL if d.get(f) is not None)
    if total <= 0:
        return
    scale = 100.0 / total
    for f in _CPU_STATES + _CPU_OPTIONAL + _CPU_GUEST:
        v = d.get(f)
        if v is not None:
            emit(f, v * scale)
    emit("cpu_utilization", (total - d["cpu_idle"]) * scale)


def _known(v, mask=M64):
    return v is not None and v != mask


def _mem_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    total, free = rec.get("mem_total"), rec.get("mem_free")
    if not (_known(total) and _known(free)) or total <= 0:
        return
    used = total - free
    for f in ("mem_buffers", "mem_cached"):
        v = rec.get(f)
        if _known(v):
            used -= v
    used = max(used, 0)
    emit("mem_used", float(used))
    emit("mem_utilization", 100.0 * used / total)


def _disk_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    total, free = rec.get("disk_total"), rec.get("disk_free")
    if _known(total) and _known(free) and total > 0:
        emit("disk_utilization", 100.0 * max(total - free, 0) / total)


def _processor_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    cpu = rec.get("five_sec_cpu")
    if cpu is not None:
        emit("cpu_utilization", float(cpu))
    total, free = rec.get("total_memory"), rec.get("free_memory")
    if _known(total) and _known(free) and total > 0:
        used = max(total - free, 0)
        emit("mem_total", float(total))
        emit("mem_free", float(free))
        emit("mem_used", float(used))
        emit("mem_utilization", 100.0 * used / total)


def _descr_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    if rec.get("hostname"):
        emit("host_name", rec["hostname"])
    mt, os_ = rec.get("machine_type"), rec.get("os_name")
    if mt is not None:
        emit("machine_type", MACHINE_TYPES[mt] if 0 <= mt < len(MACHINE_TYPES) else str(mt))
    if os_ is not None:
        emit("os_name", OS_NAMES[os_] if 0 <= os_ < len(OS_NAMES) else str(os_))
    if rec.get("os_release"):
        emit("os_release", rec["os_release"])


def _port_name_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    if rec.get("name"):
        emit("ifname", rec["name"])


def _of_port_derive(rec: dict, d: dict, secs: float | None, emit: Emit) -> None:
    dpid = rec.get("datapath_id")
    if dpid is not None:
        emit("of_dpid", f"{dpid & M64:016x}")


class _NoFields:
    name = "none"


SPECS: dict[str, _Spec] = {
    NAMESPACE + "IfCounters": _spec(
        IF_COUNTERS,
        gauges=(("ifindex", "if_index"), ("ifspeed", "if_speed"), ("iftype", "if_type"),
                ("ifdirection", "if_direction")),
        rates=(("ifinoctets", "if_in_octets"), ("ifinucastpkts", "if_in_ucast_pkts"),
               ("ifinmulticastpkts", "if_in_multicast_pkts"), ("ifinbroadcastpkts", "if_in_broadcast_pkts"),
               ("ifindiscards", "if_in_discards"), ("ifinerrors", "if_in_errors"),
               ("ifinunknownprotos", "if_in_unknown_protos"),
               ("ifoutoctets", "if_out_octets"), ("ifoutucastpkts", "if_out_ucast_pkts"),
               ("ifoutmulticastpkts", "if_out_multicast_pkts"), ("ifoutbroadcastpkts", "if_out_broadcast_pkts"),
               ("ifoutdiscards", "if_out_discards"), ("ifouterrors", "if_out_errors")),
        derive=_if_derive,
        derived=("ifadminstatus", "ifoperstatus", "ifinutilization", "ifoututilization", "ifinpkts",
                 "ifoutpkts")),
    NAMESPACE + "EthernetCounters": _spec(
        ETHERNET_COUNTERS,
        rates=(("eth_alignmenterrors", "dot3_stats_alignment_errors"), ("eth_fcserrors", "dot3_stats_fcs_errors"),
               ("eth_singlecollisions", "dot3_stats_single_collision_frames"),
               ("eth_multiplecollisions", "dot3_stats_multiple_collision_frames"),
               ("eth_sqetesterrors", "dot3_stats_sqe_test_errors"),
               ("eth_deferredtx", "dot3_stats_deferred_transmissions"),
               ("eth_latecollision", "dot3_stats_late_collisions"),
               ("eth_excessivecollisions", "dot3_stats_excessive_collisions"),
               ("eth_internalmactxerrors", "dot3_stats_internal_mac_transmit_errors"),
               ("eth_carriersenseerrors", "dot3_stats_carrier_sense_errors"),
               ("eth_frametoolongs", "dot3_stats_frame_too_longs"),
               ("eth_internalmacrxerrors", "dot3_stats_internal_mac_receive_errors"),
               ("eth_symbolerrors", "dot3_stats_symbol_errors"))),
    NAMESPACE + "PortName": _spec(_NoFields, derive=_port_name_derive, derived=("ifname",)),
    NAMESPACE + "OfPort": _spec(OF_PORT, gauges=(("of_port", "port_no"),), derive=_of_port_derive,
                                derived=("of_dpid",)),
    NAMESPACE + "Processor": _spec(PROCESSOR, derive=_processor_derive,
                                   derived=("cpu_utilization", "mem_total", "mem_free", "mem_used",
                                            "mem_utilization")),
    NAMESPACE + "HostDescr": _spec(_NoFields, derive=_descr_derive,
                                   derived=("host_name", "machine_type", "os_name", "os_release")),
    NAMESPACE + "HostCpu": _spec(
        HOST_CPU,
        gauges=(("load_one", "load_one"), ("load_five", "load_five"), ("load_fifteen", "load_fifteen"),
                ("proc_run", "proc_run"), ("proc_total", "proc_total"), ("cpu_num", "cpu_num"),
                ("cpu_speed", "cpu_speed"), ("uptime", "uptime")),
        rates=(("interrupts", "interrupts"), ("contexts", "contexts")),
        ticks=_CPU_STATES + _CPU_OPTIONAL + _CPU_GUEST,
        derive=_cpu_derive,
        derived=_CPU_STATES + _CPU_OPTIONAL + _CPU_GUEST + ("cpu_utilization",)),
    NAMESPACE + "HostMemory": _spec(
        HOST_MEMORY,
        gauges=tuple((f, f) for f in ("mem_total", "mem_free", "mem_shared", "mem_buffers", "mem_cached",
                                      "swap_total", "swap_free")),
        rates=tuple((f, f) for f in ("page_in", "page_out", "swap_in", "swap_out")),
        derive=_mem_derive, derived=("mem_used", "mem_utilization")),
    NAMESPACE + "HostDiskIo": _spec(
        HOST_DISK_IO,
        gauges=(("disk_total", "disk_total"), ("disk_free", "disk_free"), ("part_max_used", "part_max_used")),
        rates=tuple((f, f) for f in ("reads", "bytes_read", "read_time", "writes", "bytes_written", "write_time")),
        derive=_disk_derive, derived=("disk_utilization",)),
    NAMESPACE + "HostNetIo": _spec(
        HOST_NET_IO,
        rates=tuple((f, f) for f in ("bytes_in", "pkts_in", "errs_in", "drops_in", "bytes_out", "pkts_out",
                                     "errs_out", "drops_out"))),
}


def _check_specs() -> None:
    """Counter fields are the keys of the per-data-source state: they must be unique."""
    seen: dict[str, str] = {}
    for rec, spec in SPECS.items():
        for f in [r[1] for r in spec.rates] + [t[0] for t in spec.ticks]:
            assert seen.setdefault(f, rec) == rec, f"counter field {f} in {rec} and {seen[f]}"


_check_specs()
_NAMES = tuple(sorted({n for s in SPECS.values()
                       for n in [g[0] for g in s.gauges] + [r[0] for r in s.rates] + list(s.derived)}
                      - TEXT_METRICS))


# ---------------------------------------------------------------- the processor


class CounterMetrics:
    """sFlow-RT style metrics from counter samples, with per-(agent, data source) rate state.

    State per agent: ``{"<sub_agent_id>/<data source>": {"up": uptime_ms, "seq": sequence_number,
    "t": receive_time_us, "c": {counter field: last raw value}}}``, JSON-serialisable.
    """

    def __init__(self) -> None:
        self._state: dict[str, dict[str, dict]] = {}
        self._text: dict[str, dict[str, dict[str, str]]] = {}

    # -- state

    @staticmethod
    def names() -> tuple[str, ...]:
        """Every metric name ``update`` can produce (all numeric)."""
        return _NAMES

    def text(self, agent: str) -> dict[str, dict[str, str]]:
        """Latest text attributes (``TEXT_METRICS``) of the agent: {data source: {name: value}}."""
        return {ds: dict(v) for ds, v in self._text.get(agent, {}).items()}

    def agents(self) -> list[str]:
        return list(self._state)

    def snapshot(self, agent: str) -> dict:
        """The agent's rate state (last counter values per data source), JSON-serialisable."""
        return {k: {"up": e["up"], "seq": e["seq"], "t": e["t"], "c": dict(e["c"])}
                for k, e in self._state.get(agent, {}).items()}

    def restore(self, agent: str, data: dict) -> None:
        """Continue from a snapshot (replaces the agent's state)."""
        self._state[agent] = {k: {"up": int(e["up"]), "seq": int(e["seq"]), "t": int(e["t"]),
                                  "c": {f: int(v) for f, v in e["c"].items()}}
                              for k, e in data.items()}

    def forget(self, agent: str) -> None:
        self._state.pop(agent, None)
        self._text.pop(agent, None)

    # -- processing

    def update(self, batch: dict) -> list[Metric]:
        agent = batch["agent_address"]
        state = self._state.setdefault(agent, {})
        out: list[Metric] = []
        for s in batch["samples"]:
            ds, t, values = self._sample(agent, state, s)
            out += [Metric(agent, ds, name, v, t) for name, v in values]
        return out

    def update_latest(self, batch: dict, latest: dict[str, dict[str, float]]) -> None:
        """``update``, keeping only each metric's latest value: ``latest[data source][name]`` (what a
        report publishes; no Metric object per value: a counter sample gives dozens)."""
        agent = batch["agent_address"]
        state = self._state.setdefault(agent, {})
        for s in batch["samples"]:
            ds, _, values = self._sample(agent, state, s)
            if values:
                found = latest.get(ds)
                if found is None:
                    latest[ds] = dict(values)
                else:
                    found.update(values)

    @staticmethod
    def _interval(prev: dict, up: int, seq: int, t: int) -> tuple[float | None, bool]:
        """Seconds since the previous sample (None: no rates) and whether the uptime went backwards."""
        if not 0 < ((seq - prev["seq"]) & M32) < (1 << 31):
            return None, False  # sequence reset (restart), duplicate or discontinuity
        pup = prev["up"]
        if up > pup:
            return (up - pup) / 1000.0, False
        if up < pup and pup > M32 - _UPTIME_WRAP_WINDOW_MS and up < _UPTIME_WRAP_WINDOW_MS:
            return ((up - pup) & M32) / 1000.0, False  # 32-bit uptime wrap
        if up == pup and up != 0:
            return None, False  # same poll again
        # no uptime reported (0), or it went backwards while the sequence number carried on
        dt = (t - prev["t"]) / 1e6
        return (dt if dt > 0 else None), up < pup

    def _sample(self, agent: str, state: dict, s: dict) -> tuple[str, int, list[tuple[str, float]]]:
        """One sample's (data source, receive time, [(metric, value)...]); its text attributes are kept."""
        ds = data_source(s["source_id_type"], s["source_id_index"])
        key = f"{s['sub_agent_id']}/{ds}"
        t = s["receive_time_us"]
        up, seq = s["uptime_ms"], s["sequence_number"]
        prev = state.get(key)
        secs, backwards = (None, False) if prev is None else self._interval(prev, up, seq, t)
        old = prev["c"] if prev is not None and secs is not None else None
        counters: dict[str, int] = {}
        out: list[tuple[str, float]] = []
        append = out.append

        def emit(name: str, value: Any) -> None:
            if name in TEXT_METRICS:
                self._text.setdefault(agent, {}).setdefault(ds, {})[name] = value
            else:
                append((name, value))

        for rname, rec in s["records"]:
            spec = SPECS.get(rname)
            if spec is None:
                continue
            for name, field, mask in spec.gauges:
                v = rec.get(field)
                if v is not None and v != mask:
                    append((name, float(v)))
            deltas: dict[str, int] = {}
            for name, field, mask in spec.rates:
                v = rec.get(field)
                if v is None or v == mask:
                    continue
                counters[field] = v
                if old is not None:  # _delta inline (a call per counter per sample showed in profiles)
                    o = old.get(field)
                    if o is None or o == mask:
                        continue
                    if v >= o:
                        d = v - o
                    elif backwards:
                        continue
                    else:
                        d = (v - o) & mask
                        if d > mask >> 1:
                            continue
                    deltas[field] = d
                    append((name, d / secs))
            for field, mask in spec.ticks:
                v = rec.get(field)
                if v is None or v == mask:
                    continue
                counters[field] = v
                if old is not None:
                    d = self._delta(old.get(field), v, mask, backwards)
                    if d is not None:
                        deltas[field] = d
            if spec.derive is not None:
                spec.derive(rec, deltas, secs, emit)
        if counters:  # a sample without counter records (descriptions only) leaves the state alone
            state[key] = {"up": up, "seq": seq, "t": t, "c": counters}
        return ds, t, out

    @staticmethod
    def _delta(o: int | None, v: int, mask: int, backwards: bool) -> int | None:
        if o is None or o == mask:
            return None
        if v >= o:
            return v - o
        if backwards:
            return None  # counter reset together with the uptime: no rate
        d = (v - o) & mask  # wrapped at the counter's width
        return d if d <= (mask >> 1) else None  # half the range or more: a reset, not a wrap
