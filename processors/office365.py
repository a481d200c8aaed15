"""Microsoft 365 (Office 365) address ranges as the ``office365`` group set, kept fresh in the background.

Source: Microsoft's "Office 365 IP Address and URL web service" (``office365_url``, default the
worldwide instance ``/endpoints/worldwide``), a JSON list of endpoint sets such as::

    {"id": 1, "serviceArea": "Exchange", "serviceAreaDisplayName": "Exchange Online",
     "urls": ["outlook.office.com", ...], "ips": ["13.107.6.152/31", "2603:1006::/40", ...],
     "tcpPorts": "80,443", "expressRoute": true, "category": "Optimize", "required": true}

Endpoint sets without ``ips`` (URL-only) are skipped. The group set has one group per
``serviceArea`` (``Exchange``, ``SharePoint``, ``Skype``, ``Common``), named as the service
reports them.

A prefix listed in several service areas (Microsoft lists some shared front ends under both
``Common`` and a workload) goes to one group only, since an address has one group per set: the
first of Exchange, SharePoint, Skype, then any other area in name order, then Common last:
``Common`` is the catch-all (Microsoft 365 apps, Entra ID sign-in), so a workload name says more
about the traffic. A more specific prefix of another area still wins by longest match.

Lifecycle: ``start()`` loads the last good copy from ``cache_dir`` straight away (stale ranges beat
none while the service is slow or unreachable), then a thread fetches the service at once and every
``office365_refresh_s``. A response that fails to download, parse or validate is logged and
ignored: the previous ranges stay in force, and the fetch is retried sooner (RETRY_S). Each good
response replaces the group set atomically and is written to disk (temporary file + rename, so a
crash never leaves half a copy).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from pathlib import Path
from typing import Any

from processors.groups import AddressGroups
from processors.lastgood import Refresher, fetch, read_copy, save_copy
from sflowpipe.settings import EnrichSettings

log = logging.getLogger(__name__)

GROUPSET = "office365"
CACHE_FILE = "office365-endpoints.json"
# a failed fetch is retried this often (or at the refresh interval, if shorter) rather than waiting
# a whole refresh interval (a day by default) with possibly no ranges at all
RETRY_S = 300.0
MAX_BYTES = 16 << 20  # the service's answer is about 100 kB
_AREA_ORDER = ("Exchange", "SharePoint", "Skype")


class EndpointsError(ValueError):
    """A web service response that is not a usable list of endpoint sets."""


def _area_rank(area: str) -> tuple[int, str]:
    if area in _AREA_ORDER:
        return _AREA_ORDER.index(area), area
    if area == "Common":
        return len(_AREA_ORDER) + 1, area
    return len(_AREA_ORDER), area


def parse_endpoints(payload: bytes | str) -> dict[str, list[str]]:
    """Group set (service area -> CIDR prefixes) from a web service response; EndpointsError if unusable."""
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EndpointsError(f"not JSON: {exc}") from None
    if not isinstance(data, list):
        # the service answers errors (bad clientrequestid, throttling) with a JSON object
        raise EndpointsError(f"expected a list of endpoint sets, got {type(data).__name__}: {str(data)[:200]}")
    owner: dict[str, str] = {}
    for endpoint_set in data:
        if not isinstance(endpoint_set, dict):
            raise EndpointsError(f"endpoint set is not an object: {str(endpoint_set)[:200]}")
        area = endpoint_set.get("serviceArea")
        ips = endpoint_set.get("ips") or []
        if not isinstance(area, str) or not area or not isinstance(ips, list):
            raise EndpointsError(f"endpoint set {endpoint_set.get('id')!r}: no serviceArea or bad ips")
        for text in ips:
            try:
                prefix = str(ipaddress.ip_network(text, strict=False))
            except (TypeError, ValueError):
                raise EndpointsError(f"endpoint set {endpoint_set.get('id')!r}: bad prefix {text!r}") from None
            current = owner.get(prefix)
            if current is None or _area_rank(area) < _area_rank(current):
                owner[prefix] = area
    if not owner:
        # the real service always lists hundreds of prefixes: an empty answer is a fault, not news
        raise EndpointsError("no IP prefixes in the response")
    groups: dict[str, list[str]] = {}
    for prefix, area in owner.items():
        groups.setdefault(area, []).append(prefix)
    return groups


class Office365Ranges:
    """Owns the ``office365`` group set in ``groups``: its refresh thread and its copy on disk."""

    def __init__(self, settings: EnrichSettings, groups: AddressGroups):
        self._url = settings.office365_url
        self._refresh_s = settings.office365_refresh_s
        self._cache_path = Path(settings.cache_dir) / CACHE_FILE
        self._groups = groups
        self._refresher = Refresher("office365-ranges", self._refresh_step)
        # for metrics and tests: where the ranges in force came from, and when
        self.source: str | None = None  # "service" or "disk"
        self.updated_at: float | None = None
        self.updates = 0
        self.failures = 0

    def start(self) -> None:
        self._load_disk_copy()
        self._refresher.start()

    def stop(self) -> None:
        self._refresher.stop()

    def refresh(self) -> bool:
        """Fetch the service once; True if the ranges were replaced."""
        try:
            payload = fetch(self._url, "application/json", MAX_BYTES)
            groups = parse_endpoints(payload)
            self._groups.set_groupset(GROUPSET, groups)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the previous ranges stay
            self.failures += 1
            log.warning("Microsoft 365 endpoints from %s not updated (keeping the previous ranges): %s",
                        self._url, exc)
            return False
        save_copy(self._cache_path, payload, "Microsoft 365 ranges")  # before counting the update as done
        self._installed("service", groups)
        return True

    def _refresh_step(self) -> float:
        return self._refresh_s if self.refresh() else min(RETRY_S, self._refresh_s)

    def _installed(self, source: str, groups: dict[str, list[str]]) -> None:
        self.source = source
        self.updated_at = time.time()
        self.updates += 1
        log.info("Microsoft 365 ranges from %s: %s", source,
                 ", ".join(f"{area} {len(prefixes)}" for area, prefixes in sorted(groups.items())))

    def _load_disk_copy(self) -> None:
        payload = read_copy(self._cache_path, "Microsoft 365 ranges")
        if payload is None:
            return
        try:
            groups = parse_endpoints(payload)
            self._groups.set_groupset(GROUPSET, groups)
        except ValueError as exc:
            log.warning("Microsoft 365 ranges: ignoring %s: %s", self._cache_path, exc)
            return
        self._installed("disk", groups)
