"""Address groups: named group sets of CIDR prefixes, the longest matching prefix naming an address's group.

sFlow-RT's ``setGroups`` / ``group:ipsource:NAME`` rebuilt. A group set maps group names to prefixes;
an address belongs to at most one group of a set (the one holding its longest matching prefix) and
to one group in each of several sets.

Lookups run per sample on hot paths, so a set is stored as one dict of network numbers per prefix
length, probed from the longest length down (at most 33 / 129 dict probes, usually a handful since
only the lengths in use are probed), and results are cached per address.

Updates arrive live (config topic, Microsoft 365 refresh thread): a set is rebuilt aside and
swapped in with one reference assignment, so a reader sees either the old or the new set, never a
half-built one, and without a lock on the read path.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Mapping

# Bound of each result cache: cleared when full (cheaper than LRU bookkeeping on every hit; the hot
# addresses come straight back).
CACHE_MAX = 200_000

_MISS = object()
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_inet_pton = socket.inet_pton
_from_bytes = int.from_bytes


def address_number(ip: str) -> tuple[int, int] | None:
    """(4 or 6, the address as an int) of an IPv4/IPv6 address in text, None if it is not one."""
    try:
        if ":" in ip:
            return 6, _from_bytes(_inet_pton(_AF_INET6, ip), "big")
        return 4, _from_bytes(_inet_pton(_AF_INET, ip), "big")
    except (OSError, TypeError, ValueError):
        return None


class GroupSet:
    """One compiled group set: per-length prefix tables for each family, and its own result cache."""

    __slots__ = ("name", "groups", "v4", "v6", "cache")

    def __init__(self, name: str, groups: Mapping[str, Iterable[str]]):
        self.name = name
        tables: dict[tuple[int, int], dict[int, str]] = {}
        owner: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, str] = {}
        bad: list[str] = []
        kept: dict[str, list[str]] = {}
        for group, prefixes in groups.items():
            if isinstance(prefixes, str):
                raise ValueError(f"group set {name!r}, group {group!r}: expected a list of CIDR prefixes, "
                                 f"got the string {prefixes!r}")
            kept[group] = []
            for text in prefixes:
                try:
                    # strict=False: "10.1.2.3/8" means 10.0.0.0/8, as in router configurations
                    net = ipaddress.ip_network(str(text).strip(), strict=False)
                except ValueError:
                    bad.append(str(text))
                    continue
                previous = owner.get(net)
                if previous is not None and previous != group:
                    # one prefix in two groups would make the answer depend on dict order
                    raise ValueError(f"group set {name!r}: prefix {net} is in groups {previous!r} and {group!r}")
                owner[net] = group
                kept[group].append(str(net))
                family = net.version
                tables.setdefault((family, net.prefixlen), {})[
                    int(net.network_address) >> (net.max_prefixlen - net.prefixlen)] = group
        if bad:
            raise ValueError(f"group set {name!r}: invalid CIDR prefixes: {', '.join(map(repr, bad))}")
        self.groups = kept
        # (shift, table) from the longest prefix down: the first hit is the longest match
        self.v4 = tuple((32 - length, table) for (family, length), table
                        in sorted(tables.items(), key=lambda kv: -kv[0][1]) if family == 4)
        self.v6 = tuple((128 - length, table) for (family, length), table
                        in sorted(tables.items(), key=lambda kv: -kv[0][1]) if family == 6)
        self.cache: dict[str, str | None] = {}

    def match(self, family: int, number: int) -> str | None:
        """The group of the longest prefix holding address ``number`` (as from address_number), uncached."""
        for shift, table in (self.v4 if family == 4 else self.v6):
            found = table.get(number >> shift)
            if found is not None:
                return found
        return None

    def lookup(self, ip: str) -> str | None:
        """The group of ``ip``, cached."""
        cache = self.cache
        found = cache.get(ip, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        parsed = address_number(ip)
        found = None if parsed is None else self.match(*parsed)
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[ip] = found
        return found


class _State:
    """The group sets in force and the all-sets membership cache computed from exactly those sets."""

    __slots__ = ("sets", "memberships")

    def __init__(self, sets: dict[str, GroupSet]):
        self.sets = sets
        self.memberships: dict[str | None, tuple[str, ...]] = {None: ()}


class AddressGroups:
    """Owns the named group sets of CIDR prefixes and answers which group an address is in."""

    def __init__(self, groupsets: Mapping[str, Mapping[str, Iterable[str]]] | None = None):
        self._write_lock = threading.Lock()
        self._state = _State({name: GroupSet(name, groups) for name, groups in (groupsets or {}).items()})

    def group(self, groupset: str, ip: str | None) -> str | None:
        """The group of ``groupset`` holding the longest prefix matching ``ip``; None if none, or no such set."""
        compiled = self._state.sets.get(groupset)
        if compiled is None or ip is None:
            return None
        return compiled.lookup(ip)

    def memberships(self, ip: str | None) -> tuple[str, ...]:
        """``"groupset:group"`` for every group set that has a group for ``ip``, in group set name order."""
        state = self._state  # one snapshot: the cache written below belongs to the sets read below
        cache = state.memberships
        found = cache.get(ip)
        if found is not None:
            return found
        found = tuple(f"{name}:{group}" for name, compiled in sorted(state.sets.items())
                      if (group := compiled.lookup(ip)) is not None)  # type: ignore[arg-type]
        if len(cache) >= CACHE_MAX:
            cache.clear()
            cache[None] = ()
        cache[ip] = found
        return found

    def set_groupset(self, name: str, groups: Mapping[str, Iterable[str]]) -> None:
        """Replace (or add) group set ``name`` atomically; ValueError naming the bad prefixes, nothing changed."""
        compiled = GroupSet(name, groups)  # built (and validated) before anything is touched
        with self._write_lock:
            self._state = _State({**self._state.sets, name: compiled})

    def remove_groupset(self, name: str) -> None:
        """Drop group set ``name`` (no error if absent)."""
        with self._write_lock:
            if name in self._state.sets:
                self._state = _State({k: v for k, v in self._state.sets.items() if k != name})

    def groupsets(self) -> dict[str, dict[str, list[str]]]:
        """The group sets in force: name -> group -> normalised CIDR prefixes (a copy)."""
        return {name: {group: list(prefixes) for group, prefixes in compiled.groups.items()}
                for name, compiled in self._state.sets.items()}
