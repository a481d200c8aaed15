"""Counter records (counter_data): the sFlow v5 structures carried in counter samples.

Each entry of ``COUNTER_RECORDS`` maps ``(enterprise, format)`` to a codec (layout.Fixed or
layout.Custom) that decodes, encodes and prints the record the way sflowtool does.
"""

from __future__ import annotations

import struct
import uuid

from ingest.sflow.errors import DecodeError
from ingest.sflow.layout import (
    F32,
    MAC,
    PERCENT,
    U32,
    U32S,
    U64,
    Custom,
    F,
    Fixed,
    Kind,
    enc_string,
    fmt_mac,
    mac_to_wire,
    need,
    read_string,
    read_u32,
    tool_string,
)
from ingest.sflow.model import Record

# sflowtool's string buffer sizes (src/sflow.h); getString keeps at most size - 1 bytes
SFL_MAX_HOSTNAME_LEN = 64
SFL_MAX_OSRELEASE_LEN = 32
SFL_MAX_PORTNAME_LEN = 255
SFLJVM_MAX_VMNAME_LEN = 64
SFLJVM_MAX_VENDOR_LEN = 32
SFLJVM_MAX_VERSION_LEN = 32
SFLAPP_MAX_APPLICATION_LEN = 32

# ---------------------------------------------------------------- 0:1 if_counters


class IfCounters(Record):
    """Generic interface counters (0:1), RFC 2233."""

    if_index: int
    if_type: int
    if_speed: int
    if_direction: int  # 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out
    if_status: int  # bit 0 admin up, bit 1 oper up
    if_in_octets: int
    if_in_ucast_pkts: int
    if_in_multicast_pkts: int
    if_in_broadcast_pkts: int
    if_in_discards: int
    if_in_errors: int
    if_in_unknown_protos: int
    if_out_octets: int
    if_out_ucast_pkts: int
    if_out_multicast_pkts: int
    if_out_broadcast_pkts: int
    if_out_discards: int
    if_out_errors: int
    if_promiscuous_mode: int


IF_COUNTERS = Fixed("if_counters", IfCounters, (
    F("if_index", U32, "ifIndex"),
    F("if_type", U32, "networkType"),
    F("if_speed", U64, "ifSpeed"),
    F("if_direction", U32, "ifDirection"),
    F("if_status", U32, "ifStatus"),
    F("if_in_octets", U64, "ifInOctets"),
    F("if_in_ucast_pkts", U32, "ifInUcastPkts"),
    F("if_in_multicast_pkts", U32, "ifInMulticastPkts"),
    F("if_in_broadcast_pkts", U32, "ifInBroadcastPkts"),
    F("if_in_discards", U32, "ifInDiscards"),
    F("if_in_errors", U32, "ifInErrors"),
    F("if_in_unknown_protos", U32, "ifInUnknownProtos"),
    F("if_out_octets", U64, "ifOutOctets"),
    F("if_out_ucast_pkts", U32, "ifOutUcastPkts"),
    F("if_out_multicast_pkts", U32, "ifOutMulticastPkts"),
    F("if_out_broadcast_pkts", U32, "ifOutBroadcastPkts"),
    F("if_out_discards", U32, "ifOutDiscards"),
    F("if_out_errors", U32, "ifOutErrors"),
    F("if_promiscuous_mode", U32, "ifPromiscuousMode"),
))

# ---------------------------------------------------------------- local kinds and helpers

U8 = Kind("B", None, None, str)
# a signed 32-bit field that sflowtool prints with %u
I32_AS_U32 = Kind("i", None, None, lambda v: str(v & 0xFFFFFFFF))
# a 64-bit id that sflowtool prints as 16 lowercase hex digits
HEX64 = Kind("Q", None, None, lambda v: f"{v:016x}")


def _tool_str(s: str, limit: int) -> str:
    """sflowtool's getString into a buffer of ``limit + 1`` bytes, printed with %s.

    Truncates on bytes (not characters) like the C code, and stops at an embedded NUL."""
    b = s.encode("utf-8")
    i = b.find(b"\0")
    if i >= 0:
        b = b[:i]
    if len(b) <= limit:
        return tool_string(b.decode("utf-8", "replace"), limit)
    return b[:limit].decode("utf-8", "replace")


def _end_check(off: int, end: int, what: str) -> None:
    if off != end:
        raise DecodeError(off, f"{what}: record length leaves {end - off} bytes undecoded")


def _fixed(name: str, cls: type, rows: tuple, optional_tail: int = 0) -> Fixed:
    return Fixed(name, cls, tuple(F(*r) for r in rows), optional_tail)


# ---------------------------------------------------------------- 0:2 ethernet_counters


class EthernetCounters(Record):
    """Ethernet interface counters (0:2), RFC 2358 dot3StatsTable."""

    dot3_stats_alignment_errors: int
    dot3_stats_fcs_errors: int
    dot3_stats_single_collision_frames: int
    dot3_stats_multiple_collision_frames: int
    dot3_stats_sqe_test_errors: int
    dot3_stats_deferred_transmissions: int
    dot3_stats_late_collisions: int
    dot3_stats_excessive_collisions: int
    dot3_stats_internal_mac_transmit_errors: int
    dot3_stats_carrier_sense_errors: int
    dot3_stats_frame_too_longs: int
    dot3_stats_internal_mac_receive_errors: int
    dot3_stats_symbol_errors: int


ETHERNET_COUNTERS = _fixed("ethernet_counters", EthernetCounters, (
    ("dot3_stats_alignment_errors", U32, "dot3StatsAlignmentErrors"),
    ("dot3_stats_fcs_errors", U32, "dot3StatsFCSErrors"),
    ("dot3_stats_single_collision_frames", U32, "dot3StatsSingleCollisionFrames"),
    ("dot3_stats_multiple_collision_frames", U32, "dot3StatsMultipleCollisionFrames"),
    ("dot3_stats_sqe_test_errors", U32, "dot3StatsSQETestErrors"),
    ("dot3_stats_deferred_transmissions", U32, "dot3StatsDeferredTransmissions"),
    ("dot3_stats_late_collisions", U32, "dot3StatsLateCollisions"),
    ("dot3_stats_excessive_collisions", U32, "dot3StatsExcessiveCollisions"),
    ("dot3_stats_internal_mac_transmit_errors", U32, "dot3StatsInternalMacTransmitErrors"),
    ("dot3_stats_carrier_sense_errors", U32, "dot3StatsCarrierSenseErrors"),
    ("dot3_stats_frame_too_longs", U32, "dot3StatsFrameTooLongs"),
    ("dot3_stats_internal_mac_receive_errors", U32, "dot3StatsInternalMacReceiveErrors"),
    ("dot3_stats_symbol_errors", U32, "dot3StatsSymbolErrors"),
))

# ---------------------------------------------------------------- 0:3 tokenring_counters


class TokenringCounters(Record):
    """Token Ring counters (0:3), RFC 1748 dot5StatsTable."""

    dot5_stats_line_errors: int
    dot5_stats_burst_errors: int
    dot5_stats_ac_errors: int
    dot5_stats_abort_trans_errors: int
    dot5_stats_internal_errors: int
    dot5_stats_lost_frame_errors: int
    dot5_stats_receive_congestions: int
    dot5_stats_frame_copied_errors: int
    dot5_stats_token_errors: int
    dot5_stats_soft_errors: int
    dot5_stats_hard_errors: int
    dot5_stats_signal_loss: int
    dot5_stats_transmit_beacons: int
    dot5_stats_recoverys: int
    dot5_stats_lobe_wires: int
    dot5_stats_removes: int
    dot5_stats_singles: int
    dot5_stats_freq_errors: int


TOKENRING_COUNTERS = _fixed("tokenring_counters", TokenringCounters, (
    ("dot5_stats_line_errors", U32, "dot5StatsLineErrors"),
    ("dot5_stats_burst_errors", U32, "dot5StatsBurstErrors"),
    ("dot5_stats_ac_errors", U32, "dot5StatsACErrors"),
    ("dot5_stats_abort_trans_errors", U32, "dot5StatsAbortTransErrors"),
    ("dot5_stats_internal_errors", U32, "dot5StatsInternalErrors"),
    ("dot5_stats_lost_frame_errors", U32, "dot5StatsLostFrameErrors"),
    ("dot5_stats_receive_congestions", U32, "dot5StatsReceiveCongestions"),
    ("dot5_stats_frame_copied_errors", U32, "dot5StatsFrameCopiedErrors"),
    ("dot5_stats_token_errors", U32, "dot5StatsTokenErrors"),
    ("dot5_stats_soft_errors", U32, "dot5StatsSoftErrors"),
    ("dot5_stats_hard_errors", U32, "dot5StatsHardErrors"),
    ("dot5_stats_signal_loss", U32, "dot5StatsSignalLoss"),
    ("dot5_stats_transmit_beacons", U32, "dot5StatsTransmitBeacons"),
    ("dot5_stats_recoverys", U32, "dot5StatsRecoverys"),
    ("dot5_stats_lobe_wires", U32, "dot5StatsLobeWires"),
    ("dot5_stats_removes", U32, "dot5StatsRemoves"),
    ("dot5_stats_singles", U32, "dot5StatsSingles"),
    ("dot5_stats_freq_errors", U32, "dot5StatsFreqErrors"),
))

# ---------------------------------------------------------------- 0:4 vg_counters


class VgCounters(Record):
    """100BaseVG interface counters (0:4), RFC 2020."""

    dot12_in_high_priority_frames: int
    dot12_in_high_priority_octets: int
    dot12_in_norm_priority_frames: int
    dot12_in_norm_priority_octets: int
    dot12_in_ipm_errors: int
    dot12_in_oversize_frame_errors: int
    dot12_in_data_errors: int
    dot12_in_null_addressed_frames: int
    dot12_out_high_priority_frames: int
    dot12_out_high_priority_octets: int
    dot12_transition_into_trainings: int
    dot12_hc_in_high_priority_octets: int
    dot12_hc_in_norm_priority_octets: int
    dot12_hc_out_high_priority_octets: int


VG_COUNTERS = _fixed("vg_counters", VgCounters, (
    ("dot12_in_high_priority_frames", U32, "dot12InHighPriorityFrames"),
    ("dot12_in_high_priority_octets", U64, "dot12InHighPriorityOctets"),
    ("dot12_in_norm_priority_frames", U32, "dot12InNormPriorityFrames"),
    ("dot12_in_norm_priority_octets", U64, "dot12InNormPriorityOctets"),
    ("dot12_in_ipm_errors", U32, "dot12InIPMErrors"),
    ("dot12_in_oversize_frame_errors", U32, "dot12InOversizeFrameErrors"),
    ("dot12_in_data_errors", U32, "dot12InDataErrors"),
    ("dot12_in_null_addressed_frames", U32, "dot12InNullAddressedFrames"),
    ("dot12_out_high_priority_frames", U32, "dot12OutHighPriorityFrames"),
    ("dot12_out_high_priority_octets", U64, "dot12OutHighPriorityOctets"),
    ("dot12_transition_into_trainings", U32, "dot12TransitionIntoTrainings"),
    ("dot12_hc_in_high_priority_octets", U64, "dot12HCInHighPriorityOctets"),
    ("dot12_hc_in_norm_priority_octets", U64, "dot12HCInNormPriorityOctets"),
    ("dot12_hc_out_high_priority_octets", U64, "dot12HCOutHighPriorityOctets"),
))

# ---------------------------------------------------------------- 0:5 vlan_counters


class VlanCounters(Record):
    """VLAN counters (0:5)."""

    vlan_id: int
    octets: int
    ucast_pkts: int
    multicast_pkts: int
    broadcast_pkts: int
    discards: int


VLAN_COUNTERS = _fixed("vlan_counters", VlanCounters, (
    ("vlan_id", U32, "in_vlan"),
    ("octets", U64, "octets"),
    ("ucast_pkts", U32, "ucastPkts"),
    ("multicast_pkts", U32, "multicastPkts"),
    ("broadcast_pkts", U32, "broadcastPkts"),
    ("discards", U32, "discards"),
))

# ---------------------------------------------------------------- 0:6 ieee80211_counters


class Ieee80211Counters(Record):
    """IEEE 802.11 counters (0:6), sflow_80211.txt (IEEE802dot11-MIB)."""

    dot11_transmitted_fragment_count: int
    dot11_multicast_transmitted_frame_count: int
    dot11_failed_count: int
    dot11_retry_count: int
    dot11_multiple_retry_count: int
    dot11_frame_duplicate_count: int
    dot11_rts_success_count: int
    dot11_rts_failure_count: int
    dot11_ack_failure_count: int
    dot11_received_fragment_count: int
    dot11_multicast_received_frame_count: int
    dot11_fcs_error_count: int
    dot11_transmitted_frame_count: int
    dot11_wep_undecryptable_count: int
    dot11_qos_discarded_fragment_count: int
    dot11_associated_station_count: int
    dot11_qos_cf_polls_received_count: int
    dot11_qos_cf_polls_unused_count: int
    dot11_qos_cf_polls_unusable_count: int
    dot11_qos_cf_polls_lost_count: int


IEEE80211_COUNTERS = _fixed("ieee80211_counters", Ieee80211Counters, (
    ("dot11_transmitted_fragment_count", U32, "dot11TransmittedFragmentCount"),
    ("dot11_multicast_transmitted_frame_count", U32, "dot11MulticastTransmittedFrameCount"),
    ("dot11_failed_count", U32, "dot11FailedCount"),
    ("dot11_retry_count", U32, "dot11RetryCount"),
    ("dot11_multiple_retry_count", U32, "dot11MultipleRetryCount"),
    ("dot11_frame_duplicate_count", U32, "dot11FrameDuplicateCount"),
    ("dot11_rts_success_count", U32, "dot11RTSSuccessCount"),
    ("dot11_rts_failure_count", U32, "dot11RTSFailureCount"),
    ("dot11_ack_failure_count", U32, "dot11ACKFailureCount"),
    ("dot11_received_fragment_count", U32, "dot11ReceivedFragmentCount"),
    ("dot11_multicast_received_frame_count", U32, "dot11MulticastReceivedFrameCount"),
    ("dot11_fcs_error_count", U32, "dot11FCSErrorCount"),
    ("dot11_transmitted_frame_count", U32, "dot11TransmittedFrameCount"),
    ("dot11_wep_undecryptable_count", U32, "dot11WEPUndecryptableCount"),
    ("dot11_qos_discarded_fragment_count", U32, "dot11QoSDiscardedFragmentCount"),
    ("dot11_associated_station_count", U32, "dot11AssociatedStationCount"),
    ("dot11_qos_cf_polls_received_count", U32, "dot11QoSCFPollsReceivedCount"),
    ("dot11_qos_cf_polls_unused_count", U32, "dot11QoSCFPollsUnusedCount"),
    ("dot11_qos_cf_polls_unusable_count", U32, "dot11QoSCFPollsUnusableCount"),
    ("dot11_qos_cf_polls_lost_count", U32, "dot11QoSCFPollsLostCount"),
))

# ---------------------------------------------------------------- 0:7 lag_port_stats


class LagPortStats(Record):
    """LAG/LACP port statistics (0:7), sflow_lag.txt (IEEE8023-LAG-MIB).

    The four port-state bytes are dot3adAggPortState in wire order."""

    actor_system_id: str
    partner_oper_system_id: str
    attached_agg_id: int
    actor_admin_state: int
    actor_oper_state: int
    partner_admin_state: int
    partner_oper_state: int
    lacpdus_rx: int
    marker_pdus_rx: int
    marker_response_pdus_rx: int
    unknown_rx: int
    illegal_rx: int
    lacpdus_tx: int
    marker_pdus_tx: int
    marker_response_pdus_tx: int


LAG_PORT_STATS = _fixed("lag_port_stats", LagPortStats, (
    ("actor_system_id", MAC, "actorSystemID"),
    ("partner_oper_system_id", MAC, "partnerSystemID"),
    ("attached_agg_id", U32, "attachedAggID"),
    ("actor_admin_state", U8, "actorAdminPortState"),
    ("actor_oper_state", U8, "actorOperPortState"),
    ("partner_admin_state", U8, "partnerAdminPortState"),
    ("partner_oper_state", U8, "partnerOperPortState"),
    ("lacpdus_rx", U32, "LACPDUsRx"),
    ("marker_pdus_rx", U32, "markerPDUsRx"),
    ("marker_response_pdus_rx", U32, "markerResponsePDUsRx"),
    ("unknown_rx", U32, "unknownRx"),
    ("illegal_rx", U32, "illegalRx"),
    ("lacpdus_tx", U32, "LACPDUsTx"),
    ("marker_pdus_tx", U32, "markerPDUsTx"),
    ("marker_response_pdus_tx", U32, "markerResponsePDUsTx"),
))

# ---------------------------------------------------------------- 0:10 sfp (optics)


class SfpLane(Record):
    """One lane of an optical module (sflow_optics.txt ``lane``)."""

    index: int  # lane index in the module, starting from 1
    tx_bias_current: int  # microamps
    tx_power: int  # microwatts
    tx_power_min: int
    tx_power_max: int
    tx_wavelength: int  # nanometers
    rx_power: int  # microwatts
    rx_power_min: int
    rx_power_max: int
    rx_wavelength: int  # nanometers


class Sfp(Record):
    """Optical SFP/QSFP module metrics (0:10), sflow_optics.txt."""

    module_id: int
    module_num_lanes: int  # total lanes in the module
    module_supply_voltage: int  # millivolts
    module_temperature: int  # signed, thousandths of a degree Celsius
    lanes: tuple[SfpLane, ...]


_SFP_HEAD = struct.Struct(">IIIiI")
_SFP_LANE = struct.Struct(">10I")
# sflowtool's lane field names, some with a literal "%u" in them
_SFP_LANE_TOOL = ("index", "tx_bias_current_uA", "tx_power_uW.%u", "tx_power_min_uW.%u",
                  "tx_power_max_uW.%u", "tx_wavelength_nM.%u", "rx_power_uW.%u", "rx_power_min_uW.%u",
                  "rx_power_max_uW.%u", "rx_wavelength_nM.%u")


def _decode_sfp(buf: memoryview, off: int, length: int) -> Sfp:
    end = off + length
    need(buf, off, _SFP_HEAD.size, end, "sfp")
    mid, total, volts, temp, n = _SFP_HEAD.unpack_from(buf, off)
    off += _SFP_HEAD.size
    if n * _SFP_LANE.size != end - off:
        raise DecodeError(off - 4, f"sfp: {n} lanes do not fill the {end - off} bytes left")
    lanes = tuple(SfpLane(*_SFP_LANE.unpack_from(buf, off + i * _SFP_LANE.size)) for i in range(n))
    return Sfp(mid, total, volts, temp, lanes)


def _encode_sfp(r: Sfp) -> bytes:
    return _SFP_HEAD.pack(r.module_id, r.module_num_lanes, r.module_supply_voltage, r.module_temperature,
                          len(r.lanes)) + b"".join(_SFP_LANE.pack(*(getattr(ln, a) for a in SfpLane.__struct_fields__))
                                                   for ln in r.lanes)


def _sflowtool_sfp(r: Sfp, out: dict, p: str) -> None:
    out[p + "sfp_module_id"] = str(r.module_id)
    out[p + "sfp_module_total_lanes"] = str(r.module_num_lanes)
    out[p + "sfp_module_supply_voltage"] = str(r.module_supply_voltage)
    out[p + "sfp_module_temperature"] = str(r.module_temperature & 0xFFFFFFFF)  # printed with %u
    out[p + "sfp_module_active_lanes"] = str(len(r.lanes))
    # sflowtool prints each lane value twice: as "<name>" and as "sfp_lane_<name>.<lane>".
    # (With no lanes sflowtool opens the "sfp_lanes" array and never closes it: invalid JSON.)
    lanes = []
    for ll, lane in enumerate(r.lanes):
        ob = {}
        for name, attr in zip(_SFP_LANE_TOOL, SfpLane.__struct_fields__):
            v = str(getattr(lane, attr))
            ob[p + name] = v
            ob[f"{p}sfp_lane_{name}.{ll}"] = v
        lanes.append(ob)
    out[p + "sfp_lanes"] = lanes


SFP = Custom("sfp", Sfp, _decode_sfp, _encode_sfp, _sflowtool_sfp)

# ---------------------------------------------------------------- 0:1001 processor


class Processor(Record):
    """Processor information (0:1001): CPU utilisation in percent (None = unknown) and memory."""

    five_sec_cpu: float | None
    one_min_cpu: float | None
    five_min_cpu: float | None
    total_memory: int  # bytes
    free_memory: int  # bytes


PROCESSOR = _fixed("processor", Processor, (
    ("five_sec_cpu", PERCENT, "5s_cpu"),
    ("one_min_cpu", PERCENT, "1m_cpu"),
    ("five_min_cpu", PERCENT, "5m_cpu"),
    ("total_memory", U64, "total_memory_bytes"),
    ("free_memory", U64, "free_memory_bytes"),
))

# ---------------------------------------------------------------- 0:1002 radio_utilization


class RadioUtilization(Record):
    """802.11 radio utilisation (0:1002), times in milliseconds."""

    elapsed_time: int
    on_channel_time: int
    on_channel_busy_time: int


RADIO_UTILIZATION = _fixed("radio_utilization", RadioUtilization, (
    ("elapsed_time", U32, "radio_elapsed_time"),
    ("on_channel_time", U32, "radio_on_channel_time"),
    ("on_channel_busy_time", U32, "radio_on_channel_busy_time"),
))

# ---------------------------------------------------------------- 0:1004 of_port


class OfPort(Record):
    """OpenFlow port (0:1004), sflow_openflow.txt."""

    datapath_id: int
    port_no: int


OF_PORT = _fixed("of_port", OfPort, (
    ("datapath_id", HEX64, "openflow_datapath_id"),
    ("port_no", U32, "openflow_port"),
))

# ---------------------------------------------------------------- 0:1005 port_name


class PortName(Record):
    """Port name (0:1005), sflow_openflow.txt: ``string name<255>``."""

    name: str


def _decode_port_name(buf: memoryview, off: int, length: int) -> PortName:
    end = off + length
    name, off = read_string(buf, off, end, "port_name")
    _end_check(off, end, "port_name")
    return PortName(name)


def _sflowtool_port_name(r: PortName, out: dict, p: str) -> None:
    if r.name:
        out[p + "ifName"] = _tool_str(r.name, SFL_MAX_PORTNAME_LEN - 1)


PORT_NAME = Custom("port_name", PortName, _decode_port_name, lambda r: enc_string(r.name),
                   _sflowtool_port_name)

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
        raise DecodeError(off - 4, f"host_adapters: {n} adapters cannot fit in {end - off} bytes")
    adaptors = []
    for _ in range(n):
        need(buf, off, 8, end, "host_adapters adapter")
        if_index, nmacs = _TWO_U32.unpack_from(buf, off)
        off += 8
        if nmacs > (end - off) // 8:
            raise DecodeError(off - 4, f"host_adapters: {nmacs} MACs cannot fit in {end - off} bytes")
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
        raise DecodeError(off, f"app_operations: {end - off} bytes after the name, expected {_APP_OPS.size}")
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

# ---------------------------------------------------------------- the table

COUNTER_RECORDS = {
    (0, 1): IF_COUNTERS,
    (0, 2): ETHERNET_COUNTERS,
    (0, 3): TOKENRING_COUNTERS,
    (0, 4): VG_COUNTERS,
    (0, 5): VLAN_COUNTERS,
    (0, 6): IEEE80211_COUNTERS,
    (0, 7): LAG_PORT_STATS,
    (0, 10): SFP,
    (0, 1001): PROCESSOR,
    (0, 1002): RADIO_UTILIZATION,
    (0, 1004): OF_PORT,
    (0, 1005): PORT_NAME,
    (0, 2000): HOST_DESCR,
    (0, 2001): HOST_ADAPTERS,
    (0, 2002): HOST_PARENT,
    (0, 2003): HOST_CPU,
    (0, 2004): HOST_MEMORY,
    (0, 2005): HOST_DISK_IO,
    (0, 2006): HOST_NET_IO,
    (0, 2007): HOST_IP,
    (0, 2008): HOST_ICMP,
    (0, 2009): HOST_TCP,
    (0, 2010): HOST_UDP,
    (0, 2100): VIRT_NODE,
    (0, 2101): VIRT_CPU,
    (0, 2102): VIRT_MEMORY,
    (0, 2103): VIRT_DISK_IO,
    (0, 2104): VIRT_NET_IO,
    (0, 2105): JVM_RUNTIME,
    (0, 2106): JVM_STATISTICS,
    (0, 2200): MEMCACHE_COUNTERS_V1,
    (0, 2201): HTTP_COUNTERS,
    (0, 2202): APP_OPERATIONS,
    (0, 2203): APP_RESOURCES,
    (0, 2204): MEMCACHE_COUNTERS,
    (0, 2205): VDI_COUNTERS,
    (0, 2206): APP_WORKERS,
    (0, 2207): OVS_DP_STATS,
    (5703, 1): NVML_GPU_COUNTERS,
    (4413, 3): BCM_TABLES,
}
