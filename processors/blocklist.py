"""Blocklists: address lists loaded from files or URLs; a flow sample to or from a listed address raises an event.

A blocklist is the common one-entry-per-line format (Spamhaus DROP, FireHOL, abuse.ch, Emerging
Threats...)::

    # comment
    192.0.2.1
    198.51.100.0/24 ; SBL123      <- text after ';' or '#' is a comment
    2001:db8::/32

Blank lines and comments are ignored; an entry is the first word of a line (an address or a CIDR
prefix, IPv4 or IPv6; host bits are masked as in processors/groups.py). A line that is neither is
logged and skipped (``parse_blocklist`` returns it). A download that is mostly junk (an HTML error
page answered with 200, a truncated file) is rejected as a whole: more junk lines than entries.

Each list is one group set (group = the list's name) of an ``AddressGroups`` of its own, so a
sample's addresses are matched with the groups module's per-length prefix tables and its
per-address membership cache, and a refreshed list is swapped in atomically.

Lifecycle (as processors/office365.py): ``start()`` loads the last good copy of each list from
``cache_dir`` synchronously, then a thread fetches every list at once and each again every
``refresh_s`` (a failure: sooner, RETRY_S). A fetch that fails or does not parse keeps the previous
list in force and the previous copy on disk; each good one replaces both (temporary file + rename).

``match_batch`` (called by the engine per flow-sample batch) returns a ``blocklist`` event for each
(list, source, destination) pair of the batch's samples where the source or destination is listed,
at most one per pair per ``rate_limit_s``. Event fields: thresholdID ``"blocklist"``, metric the
list's name, flowKey ``"SRC,DST"``, value the sample's scaled bytes (frame_length x sampling_rate; 1
when the sample has no sampled header), threshold 0.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path

from sflowpipe.names import data_source
from processors.groups import AddressGroups
from processors.lastgood import Refresher, fetch, read_copy, save_copy
from processors.thresholds import Event, EventIds
from sflowpipe.settings import BlocklistDefinition

log = logging.getLogger(__name__)

THRESHOLD_ID = "blocklist"
RETRY_S = 300.0
MAX_BYTES = 64 << 20  # a blocklist larger than this is not a blocklist
_COMMENT = re.compile(r"[#;]")


class BlocklistError(ValueError):
    """A download or file that is not a usable blocklist."""


def parse_blocklist(text: bytes | str) -> tuple[list[str], list[tuple[int, str]]]:
    """(normalised CIDR prefixes, [(line number, junk line)]) of a blocklist; BlocklistError if unusable."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            text = text.decode("latin-1")
    prefixes: list[str] = []
    seen: set[str] = set()
    junk: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = _COMMENT.split(line, 1)[0].strip()
        if not entry:
            continue
        word = entry.split()[0]
        try:
            prefix = str(ipaddress.ip_network(word, strict=False))
        except ValueError:
            junk.append((number, line.strip()[:200]))
            continue
        if prefix not in seen:
            seen.add(prefix)
            prefixes.append(prefix)
    if junk and len(junk) > len(prefixes):
        raise BlocklistError(f"{len(junk)} lines are not addresses or prefixes (first: line {junk[0][0]}: "
                             f"{junk[0][1]!r}), {len(prefixes)} are")
    return prefixes, junk


def _cache_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    return f"blocklist-{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}.txt"


class _List:
    """One blocklist: where it comes from, its copy on disk, and how it fared."""

    def __init__(self, name: str, d: BlocklistDefinition, cache_dir: Path) -> None:
        self.name = name
        self.d = d
        self.cache_path = cache_dir / _cache_name(name)
        self.source: str | None = None  # "fetch" or "disk": where the entries in force came from
        self.entries = 0
        self.updated_at: float | None = None
        self.updates = 0
        self.failures = 0
        self.due = 0.0  # monotonic time of the next fetch


class Blocklists:
    """Owns the configured blocklists: their refresh thread, their copies on disk and the rate limits."""

    def __init__(self, settings_section: Mapping[str, BlocklistDefinition | dict], cache_dir: str,
                 clock=time.time) -> None:
        self._dir = Path(cache_dir)
        self.lists: dict[str, _List] = {}
        for name, d in (settings_section or {}).items():
            if not isinstance(d, BlocklistDefinition):
                d = BlocklistDefinition.model_validate(d)
            self.lists[name] = _List(name, d, self._dir)
        self.groups = AddressGroups()
        # "name:name" (a membership, as AddressGroups reports it) -> list name
        self._label = {f"{name}:{name}": name for name in self.lists}
        self._last: dict[tuple[str, str, str], float] = {}  # (list, src, dst) -> time of the last event
        self._pruned = 0.0
        self._ids = EventIds()
        self._clock = clock
        self._refresher = Refresher("blocklists", self._refresh_due)
        self.events = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for lst in self.lists.values():
            self._load_disk_copy(lst)
        if self.lists:
            self._refresher.start()

    def stop(self) -> None:
        self._refresher.stop()

    def _refresh_due(self) -> float:
        """Fetch the lists that are due; the seconds until the next one is."""
        for lst in self.lists.values():
            if lst.due <= time.monotonic() and not self._refresher.stopping:
                ok = self.refresh(lst.name)
                lst.due = time.monotonic() + (lst.d.refresh_s if ok else min(RETRY_S, lst.d.refresh_s))
        return min(lst.due for lst in self.lists.values()) - time.monotonic()

    # ------------------------------------------------------------------ loading

    def refresh(self, name: str) -> bool:
        """Fetch list ``name`` once; True if its entries were replaced."""
        lst = self.lists[name]
        try:
            payload = fetch(lst.d.source, "text/plain", MAX_BYTES)
            prefixes, junk = parse_blocklist(payload)
            self._install(lst, prefixes)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the previous list stays
            lst.failures += 1
            log.warning("blocklist %s from %s not updated (keeping the previous list): %s", name, lst.d.source, exc)
            return False
        self._report_junk(lst, junk)
        save_copy(lst.cache_path, payload, f"blocklist {lst.name}")  # before counting the update as done
        self._installed(lst, "fetch", len(prefixes))
        return True

    def _install(self, lst: _List, prefixes: list[str]) -> None:
        self.groups.set_groupset(lst.name, {lst.name: prefixes})

    def _installed(self, lst: _List, source: str, entries: int) -> None:
        lst.source = source
        lst.entries = entries
        lst.updated_at = time.time()
        lst.updates += 1
        log.info("blocklist %s: %d entries from %s", lst.name, entries,
                 lst.d.source if source == "fetch" else lst.cache_path)

    @staticmethod
    def _report_junk(lst: _List, junk: list[tuple[int, str]]) -> None:
        if junk:
            log.warning("blocklist %s: skipped %d lines that are not addresses or prefixes, e.g. line %d: %r",
                        lst.name, len(junk), junk[0][0], junk[0][1])

    def _load_disk_copy(self, lst: _List) -> None:
        payload = read_copy(lst.cache_path, f"blocklist {lst.name}")
        if payload is None:
            return
        try:
            prefixes, _ = parse_blocklist(payload)
            self._install(lst, prefixes)
        except ValueError as exc:
            log.warning("blocklist %s: ignoring %s: %s", lst.name, lst.cache_path, exc)
            return
        self._installed(lst, "disk", len(prefixes))

    # ------------------------------------------------------------------ matching

    def match_batch(self, batch: dict, now: float | None = None) -> list[Event]:
        """``blocklist`` events for the samples of a flow-sample batch whose source or destination is listed."""
        if not self.lists:
            return []
        now = self._clock() if now is None else now
        memberships = self.groups.memberships
        src_ip = batch["src_ip"]
        dst_ip = batch["dst_ip"]
        # whole columns through map(): per sample, usually two cache hits answering ()
        src_hits = list(map(memberships, src_ip))
        dst_hits = list(map(memberships, dst_ip))
        events: list[Event] = []
        last = self._last
        label = self._label
        for i, (s, d) in enumerate(zip(src_hits, dst_hits)):
            if not s and not d:
                continue
            src, dst = src_ip[i], dst_ip[i]
            for membership in dict.fromkeys(s + d):  # a list both ends are on: one event
                name = label.get(membership)
                if name is None:
                    continue
                key = (name, src, dst)
                previous = last.get(key)
                if previous is not None and now - previous < self.lists[name].d.rate_limit_s:
                    continue
                last[key] = now
                events.append(self._event(batch, i, name, src, dst, now))
        self.events += len(events)
        if now - self._pruned >= 60.0:
            self._prune(now)
        return events

    def _event(self, batch: dict, i: int, name: str, src: str, dst: str, now: float) -> Event:
        ds = data_source(batch["source_id_type"][i], batch["source_id_index"][i])
        frame_length = (batch.get("frame_length") or [None] * (i + 1))[i]
        rate = (batch.get("sampling_rate") or [None] * (i + 1))[i]
        value = float(frame_length * (rate or 1)) if frame_length else 1.0
        return Event(self._ids.next(now), THRESHOLD_ID, batch["agent_address"], ds, name, value, 0.0,
                     f"{src},{dst}", int(now * 1000))

    def _prune(self, now: float) -> None:
        self._pruned = now
        limits = {name: lst.d.rate_limit_s for name, lst in self.lists.items()}
        self._last = {k: t for k, t in self._last.items() if now - t < limits.get(k[0], 0.0)}
