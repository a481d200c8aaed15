"""Scan detection from ICMP destination-unreachable messages.

A scanner probing addresses or ports that do not answer draws ICMP destination-unreachable
messages (ICMPv4 type 3, ICMPv6 type 1) back to itself: the unreachable's destination is the
scanner, the packet it quotes names the probed target. ``ScanDetector`` counts, per scanner, the
distinct targets (quoted destination address, protocol and destination port: a horizontal scan
over addresses and a vertical scan over the ports of one host both count) in fixed intervals of
``interval_s`` seconds (aligned on the epoch), and raises one ``scan`` event per scanner per
interval when the count reaches ``threshold``.

Sampled flows see a fraction of the unreachables: the threshold is in sampled targets.
"""

from __future__ import annotations

import time

from sflowpipe.names import data_source
from processors.thresholds import Event, EventIds
from sflowpipe.settings import ScanSettings

THRESHOLD_ID = "scan"
METRIC = "icmpunreachable"


class ScanDetector:
    """Distinct unreachable targets per scanner per interval -> ``scan`` events."""

    def __init__(self, settings: ScanSettings, clock=time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._ids = EventIds()
        self._window: int | None = None  # index of the current interval
        self._targets: dict[str, set] = {}  # scanner -> distinct targets seen this interval (up to threshold)
        self._fired: set[str] = set()  # scanners that raised their event this interval
        self.events = 0

    def match_batch(self, batch: dict, now: float | None = None) -> list[Event]:
        """``scan`` events for the scanners of a flow-sample batch that reach the threshold."""
        now = self._clock() if now is None else now
        window = int(now // self.settings.interval_s)
        if window != self._window:
            self._window = window
            self._targets = {}
            self._fired = set()
        n = len(batch.get("sampling_rate") or ())
        types = batch.get("icmp_type")
        q_dst = batch.get("icmp_quoted_dst_ip")
        if not types or not q_dst or len(q_dst) != n or len(types) != n:  # no ICMP, or an older schema
            return []
        protos = batch["ip_protocol"]
        threshold = self.settings.threshold
        targets = self._targets
        fired = self._fired
        events: list[Event] = []
        q_proto = batch["icmp_quoted_protocol"]
        q_port = batch["icmp_quoted_dst_port"]
        dst_ip = batch["dst_ip"]
        for i, t in enumerate(types):
            if t is None or q_dst[i] is None:
                continue
            p = protos[i]
            if not ((p == 1 and t == 3) or (p == 58 and t == 1)):
                continue
            scanner = dst_ip[i]
            if scanner is None or scanner in fired:
                continue
            seen = targets.get(scanner)
            if seen is None:
                seen = targets[scanner] = set()
            seen.add((q_dst[i], q_proto[i], q_port[i]))
            if len(seen) >= threshold:
                fired.add(scanner)
                events.append(self._event(batch, i, scanner, len(seen), now))
                del targets[scanner]  # fired: nothing more to count this interval
        self.events += len(events)
        return events

    def _event(self, batch: dict, i: int, scanner: str, count: int, now: float) -> Event:
        ds = data_source(batch["source_id_type"][i], batch["source_id_index"][i])
        return Event(self._ids.next(now), THRESHOLD_ID, batch["agent_address"], ds, METRIC, float(count),
                     float(self.settings.threshold), scanner, int(now * 1000))
