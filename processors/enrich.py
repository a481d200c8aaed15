"""Flow sample enrichment: country, autonomous system and address groups of source and destination.

``Enricher`` is what the flow-key language (``country:ipsource``, ``asn:ipdestination``,
``group:ipsource:GROUPSET``) and the enrich processor call. ``enrich_batch`` adds these columns to
a decoded ``FlowSampleBatch`` (one list entry per sample, like the batch's own columns):

===============================  ==================  ===============================================
column                           type                value
===============================  ==================  ===============================================
``src_country``/``dst_country``  ``string | null``   ISO 3166 alpha-2 code
``src_asn``/``dst_asn``          ``int | null``      AS number; only with ``asn_mmdb`` (the offline
                                                     geoip2fast data has no AS numbers)
``src_as_name``/``dst_as_name``  ``string | null``   AS organisation (ASN MMDB, else geoip2fast)
``src_groups``/``dst_groups``    ``array<string>``   ``"groupset:group"`` for each group set that
                                                     has a group for the address (longest prefix)
===============================  ==================  ===============================================

The AS number and name are two columns rather than one "number or name" string so each column
keeps one meaning and one Avro type (a ClickHouse ``Nullable(UInt32)`` can be compared, summed by,
joined with other AS data), and the name is there whichever source is configured.
"""

from __future__ import annotations

from typing import Any

from processors.geo import Geo
from processors.groups import AddressGroups
from processors.office365 import GROUPSET as OFFICE365_GROUPSET
from processors.office365 import Office365Ranges
from sflowpipe.settings import EnrichSettings

ENRICHED_COLUMNS = ("src_country", "dst_country", "src_asn", "dst_asn",
                    "src_as_name", "dst_as_name", "src_groups", "dst_groups")


class Enricher:
    """Owns the country/AS databases, the address groups and the Microsoft 365 range refresher."""

    def __init__(self, settings: EnrichSettings):
        if settings.office365_enabled and OFFICE365_GROUPSET in settings.groups:
            raise ValueError(f"group set {OFFICE365_GROUPSET!r} is filled from the Microsoft 365 web service "
                             f"(enrich.office365_enabled); name the configured set differently or disable it")
        self.settings = settings
        self.geo = Geo(settings)
        self.groups = AddressGroups(settings.groups)
        self.office365 = Office365Ranges(settings, self.groups) if settings.office365_enabled else None

    def start(self) -> None:
        self.geo.start()
        if self.office365 is not None:
            self.office365.start()

    def stop(self) -> None:
        if self.office365 is not None:
            self.office365.stop()
        self.geo.stop()

    def country(self, ip: str | None) -> str | None:
        return self.geo.country(ip)

    def asn(self, ip: str | None) -> int | str | None:
        return self.geo.asn(ip)

    def group(self, groupset: str, ip: str | None) -> str | None:
        return self.groups.group(groupset, ip)

    def enrich_batch(self, batch: dict[str, Any]) -> dict[str, list]:
        """The ENRICHED_COLUMNS of a decoded flow sample batch (src_ip / dst_ip None where not IP)."""
        record = self.geo.record
        memberships = self.groups.memberships
        src_ip = batch["src_ip"]
        dst_ip = batch["dst_ip"]
        # each distinct address looked up once (a batch repeats a few hosts many times), then whole
        # columns through map() over those answers
        found = {ip: (record(ip), memberships(ip)) for ip in {*src_ip, *dst_ip}}
        country = {ip: r[0][0] for ip, r in found.items()}.__getitem__
        asn = {ip: r[0][1] for ip, r in found.items()}.__getitem__
        as_name = {ip: r[0][2] for ip, r in found.items()}.__getitem__
        groups = {ip: r[1] for ip, r in found.items()}.__getitem__
        return {
            "src_country": list(map(country, src_ip)),
            "dst_country": list(map(country, dst_ip)),
            "src_asn": list(map(asn, src_ip)),
            "dst_asn": list(map(asn, dst_ip)),
            "src_as_name": list(map(as_name, src_ip)),
            "dst_as_name": list(map(as_name, dst_ip)),
            # fresh lists: the cached tuples are shared between samples and must not be mutated
            "src_groups": list(map(list, map(groups, src_ip))),
            "dst_groups": list(map(list, map(groups, dst_ip))),
        }
