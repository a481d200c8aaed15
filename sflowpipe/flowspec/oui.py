"""MAC vendor lookups (the ``oui:`` key function) from the IEEE OUI registry netaddr ships.

The registry is a file inside the netaddr package (nothing is fetched at run time). netaddr reads
one registration per lookup from disk, so results are memoised per OUI (a MAC's first 24 bits).
"""

from __future__ import annotations

from sflowpipe.flowspec.context import CACHE_LIMIT

_NAMES: dict[str, str | None] = {}


def oui_of(mac: str) -> str | None:
    """The OUI of a MAC in sFlow-RT's form (12 hex digits): its first 6 digits, ``000C29``."""
    if len(mac) != 12:
        return None
    return mac[:6]


def vendor(oui: str) -> str | None:
    """The organisation registered for an OUI (``000C29`` -> ``VMware, Inc.``), None if unregistered."""
    name = _NAMES.get(oui, False)
    if name is not False:
        return name  # type: ignore[return-value]
    try:
        from netaddr import OUI, NotRegisteredError

        try:
            name = OUI(int(oui, 16)).registration(0).org.strip() or None
        except NotRegisteredError:
            name = None
    except (ValueError, IndexError):
        name = None
    if len(_NAMES) > CACHE_LIMIT:
        _NAMES.clear()
    _NAMES[oui] = name
    return name
