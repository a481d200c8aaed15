"""Drop and queueing details: egress queue, transit delay, queue depth, function, hw trap, Linux drop reason.

0:1036-0:1042 (sflow_discards.txt) except 0:1037 extended ACL, which sflowtool only tags.
"""

from __future__ import annotations

from ingest.sflow.flow_records._common import _strings, _typed
from ingest.sflow.layout import U32, F, Fixed
from ingest.sflow.model import Record

# ---------------------------------------------------------------- 0:1036-0:1042 queue, delay, drop details


SFL_MAX_FUNCTION_SYMBOL_LEN = 64
SFL_MAX_HW_TRAP_LEN = 64
SFL_MAX_LINUX_REASON_LEN = 64


class ExtendedEgressQueue(Record):
    """extended_egress_queue (0:1036): the egress queue selected for the packet."""

    queue: int


class ExtendedTransitDelay(Record):
    """extended_transit_delay (0:1039): time the packet took through the switch."""

    delay: int  # nanoseconds; 0xFFFFFFFF = that much or more


class ExtendedQueueDepth(Record):
    """extended_queue_depth (0:1040): depth of the egress queue the packet joined."""

    depth: int  # bytes


class ExtendedFunction(Record):
    """extended_function (0:1038): the software function that dropped the packet."""

    symbol: str


class ExtendedHwTrap(Record):
    """extended_hw_trap (0:1041): the devlink hardware trap that caught the packet."""

    group: str
    trap: str


class ExtendedLinuxReason(Record):
    """extended_linux_drop_reason (0:1042): the Linux drop_monitor reason."""

    reason: str


EXTENDED_EGRESS_QUEUE = _typed(
    Fixed("extended_egress_queue", ExtendedEgressQueue, (F("queue", U32, "egress_queue_id"),)), "egress_queue")
EXTENDED_FUNCTION = _strings(ExtendedFunction, "extended_function", ("symbol",), (SFL_MAX_FUNCTION_SYMBOL_LEN,),
                             "function")
EXTENDED_TRANSIT_DELAY = _typed(
    Fixed("extended_transit_delay", ExtendedTransitDelay, (F("delay", U32, "transit_delay_nS"),)), "transit_delay")
EXTENDED_QUEUE_DEPTH = _typed(
    Fixed("extended_queue_depth", ExtendedQueueDepth, (F("depth", U32, "queue_depth_bytes"),)), "queue_depth")
EXTENDED_HW_TRAP = _strings(ExtendedHwTrap, "extended_hw_trap", ("hw_trap_group", "hw_trap_name"),
                            (SFL_MAX_HW_TRAP_LEN, SFL_MAX_HW_TRAP_LEN), "hw_trap")
EXTENDED_LINUX_DROP_REASON = _strings(ExtendedLinuxReason, "extended_linux_drop_reason", ("linux_drop_reason",),
                                      (SFL_MAX_LINUX_REASON_LEN,), "linux_reason")
