"""Country and autonomous system of an IP address (IPv4 or IPv6 text).

Sources, per item:

- ``country_mmdb`` set: that MaxMind-format database (GeoLite2-Country, DB-IP IP-to-Country Lite)
  read with ``maxminddb``: ``record["country"]["iso_code"]``, else the registered country (GeoLite2
  has ranges with only ``registered_country``, e.g. some anycast and satellite providers).
- ``asn_mmdb`` set: that database (GeoLite2-ASN, DB-IP IP-to-ASN Lite):
  ``autonomous_system_number`` and ``autonomous_system_organization``.
- otherwise the offline dataset shipped in the ``geoip2fast`` package (MaxMind GeoLite2 country and
  AS data, IPv4 and IPv6, in ``geoip2fast-asn-ipv6.dat.gz``; no download, no licence key). It has
  AS *names* but no AS *numbers*, hence:

``asn(ip)`` returns the AS number (int) when an ASN MMDB is configured, else the AS organisation
name (str, e.g. ``"CLOUDFLARENET"``). ``as_number(ip)`` and ``as_name(ip)`` give each one explicitly
(``as_number`` is None without an ASN MMDB).

Addresses in the special-purpose ranges (NOT_GLOBAL: private, loopback, link-local, documentation,
CGNAT, benchmarking, multicast, reserved; from the IANA special-purpose address registries), and
text that is not an address, get None everywhere: geoip2fast would answer ``"--"`` and
``"IANA.ORG"`` for them, an MMDB nothing. (The list is ours rather than ``ipaddress``'s
``is_global``, which costs ~6 µs a call against ~0.4 µs here.)

Results are cached per address (called per sample): one dict, cleared when it reaches CACHE_MAX.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import maxminddb

from processors.groups import GroupSet, address_number
from sflowpipe.settings import EnrichSettings

log = logging.getLogger(__name__)

CACHE_MAX = 200_000
GEOIP2FAST_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"

# Not globally reachable, or not unicast: no country or AS to give.
NOT_GLOBAL = GroupSet("not-global", {"special": [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/127", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
]})

# (country, AS number, AS name)
GeoRecord = tuple[str | None, int | None, str | None]
_NOTHING: GeoRecord = (None, None, None)


def _mmdb_get(reader: Any, ip: str) -> dict | None:
    try:
        record = reader.get(ip)
    except (ValueError, TypeError):
        # ValueError is also what an IPv4-only database says about an IPv6 address
        return None
    return record if isinstance(record, dict) else None


def _iso_code(record: dict | None) -> str | None:
    if not record:
        return None
    for key in ("country", "registered_country"):
        code = (record.get(key) or {}).get("iso_code")
        if code:
            return code
    return None


class Geo:
    """Owns the country / AS databases (MMDB readers or geoip2fast data) and the per-address cache."""

    def __init__(self, settings: EnrichSettings):
        self._settings = settings
        self._load_lock = threading.Lock()
        self._loaded = False
        self._country_reader: Any = None
        self._asn_reader: Any = None
        self._fast: Any = None
        self._cache: dict[str | None, GeoRecord] = {None: _NOTHING}

    # lifecycle: start() loads eagerly (so the first batch does not pay ~0.2 s); lookups before
    # start() load lazily, once.
    def start(self) -> None:
        self._load()

    def stop(self) -> None:
        with self._load_lock:
            for reader in (self._country_reader, self._asn_reader):
                if reader is not None:
                    reader.close()
            self._country_reader = self._asn_reader = self._fast = None
            self._loaded = False
            self._cache = {None: _NOTHING}

    def _load(self) -> None:
        with self._load_lock:
            if self._loaded:
                return
            s = self._settings
            if s.country_mmdb:
                self._country_reader = maxminddb.open_database(s.country_mmdb)
                log.info("country database %s (%s)", s.country_mmdb, self._country_reader.metadata().database_type)
            if s.asn_mmdb:
                self._asn_reader = maxminddb.open_database(s.asn_mmdb)
                log.info("ASN database %s (%s)", s.asn_mmdb, self._asn_reader.metadata().database_type)
            if not (s.country_mmdb and s.asn_mmdb):
                from geoip2fast import GeoIP2Fast  # imported here: only when it is used

                self._fast = GeoIP2Fast(geoip2fast_data_file=GEOIP2FAST_DATA_FILE)
                log.info("geoip2fast offline data %s for %s", GEOIP2FAST_DATA_FILE,
                         " and ".join(w for w, mmdb in (("country", s.country_mmdb), ("AS names", s.asn_mmdb))
                                      if not mmdb))
            self._loaded = True

    def record(self, ip: str | None) -> GeoRecord:
        """(country ISO code, AS number, AS name) of ``ip``, each None when unknown."""
        found = self._cache.get(ip)
        if found is not None:
            return found
        found = self._lookup(ip)  # type: ignore[arg-type]
        cache = self._cache
        if len(cache) >= CACHE_MAX:
            cache.clear()
            cache[None] = _NOTHING
        cache[ip] = found
        return found

    def country(self, ip: str | None) -> str | None:
        """ISO 3166 alpha-2 country code of ``ip``, None if unknown or not a public address."""
        return self.record(ip)[0]

    def as_number(self, ip: str | None) -> int | None:
        """AS number of ``ip``: only known with an ASN MMDB configured."""
        return self.record(ip)[1]

    def as_name(self, ip: str | None) -> str | None:
        """AS organisation name of ``ip`` (ASN MMDB, else geoip2fast)."""
        return self.record(ip)[2]

    def asn(self, ip: str | None) -> int | str | None:
        """AS number with an ASN MMDB configured, else the AS organisation name (see module docstring)."""
        _, number, name = self.record(ip)
        return number if self._settings.asn_mmdb else name

    def _lookup(self, ip: str) -> GeoRecord:
        parsed = address_number(ip)
        if parsed is None or NOT_GLOBAL.match(*parsed) is not None:
            return _NOTHING
        if not self._loaded:
            self._load()
        country = number = name = None
        if self._country_reader is not None:
            country = _iso_code(_mmdb_get(self._country_reader, ip))
        if self._asn_reader is not None:
            record = _mmdb_get(self._asn_reader, ip)
            if record:
                number = record.get("autonomous_system_number")
                name = record.get("autonomous_system_organization")
        if self._fast is not None:
            result = self._fast.lookup(ip)
            if self._country_reader is None:
                code = result.country_code
                country = code if code and code != "--" else None
            if self._asn_reader is None:
                name = result.asn_name or None
        return country, number, name
