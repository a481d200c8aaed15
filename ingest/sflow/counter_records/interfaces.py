"""Interface and device counter blocks: 0:1-0:10 and 0:1001-0:1005.

Generic interface, Ethernet, Token Ring, 100BaseVG, VLAN, 802.11, LAG port and optical module
counters; processor, radio utilisation, OpenFlow port and port name.
"""

from __future__ import annotations

import struct

from ingest.sflow.counter_records._common import HEX64, U8, _end_check, _fixed, _tool_str
from ingest.sflow.errors import DecodeError, DecodeReason
from ingest.sflow.layout import MAC, PERCENT, U32, U64, Custom, F, Fixed, enc_string, need, read_string
from ingest.sflow.model import Record

# sflowtool's string buffer sizes (src/sflow.h); getString keeps at most size - 1 bytes
SFL_MAX_PORTNAME_LEN = 255

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
        raise DecodeError(off - 4, f"sfp: {n} lanes do not fill the {end - off} bytes left", DecodeReason.BAD_LENGTH)
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
