"""Geo: real MMDB files (written here with mmdb-writer, read back by maxminddb) and geoip2fast's data."""

from __future__ import annotations

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from processors import geo as geo_module
from processors.geo import Geo
from sflowpipe.settings import EnrichSettings


def write_country_mmdb(path) -> str:
    """A GeoLite2-Country-shaped IPv6 database (IPv4 mapped in), DB-IP lite has the same fields."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country",
                        languages=["en"], description="sflowpipe test")
    writer.insert_network(IPSet(["203.0.114.0/24", "2001:db9::/32"]), {
        "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
        "country": {"geoname_id": 3017382, "iso_code": "FR", "names": {"en": "France"}},
        "registered_country": {"geoname_id": 3017382, "iso_code": "FR", "names": {"en": "France"}},
    })
    writer.insert_network(IPSet(["8.8.8.0/24"]), {
        "country": {"geoname_id": 6252001, "iso_code": "US", "names": {"en": "United States"}},
    })
    # GeoLite2 has ranges with only a registered country (anycast, satellite providers)
    writer.insert_network(IPSet(["45.67.0.0/16"]), {
        "registered_country": {"geoname_id": 2921044, "iso_code": "DE", "names": {"en": "Germany"}},
    })
    writer.to_db_file(str(path))
    return str(path)


def write_asn_mmdb(path) -> str:
    """A GeoLite2-ASN-shaped IPv4-only database."""
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-ASN", languages=["en"],
                        description="sflowpipe test", int_type="u32")
    writer.insert_network(IPSet(["8.8.8.0/24"]), {"autonomous_system_number": 15169,
                                                   "autonomous_system_organization": "GOOGLE"})
    writer.insert_network(IPSet(["203.0.114.0/23"]), {"autonomous_system_number": 4200000001,
                                                      "autonomous_system_organization": "Example 32-bit AS"})
    writer.to_db_file(str(path))
    return str(path)


@pytest.fixture
def mmdb_geo(tmp_path):
    settings = EnrichSettings(country_mmdb=write_country_mmdb(tmp_path / "country.mmdb"),
                              asn_mmdb=write_asn_mmdb(tmp_path / "asn.mmdb"), office365_enabled=False)
    geo = Geo(settings)
    geo.start()
    yield geo
    geo.stop()


@pytest.fixture(scope="module")
def offline_geo():
    geo = Geo(EnrichSettings(office365_enabled=False))
    geo.start()
    yield geo
    geo.stop()


def test_the_written_files_are_real_mmdb(tmp_path):
    with maxminddb.open_database(write_country_mmdb(tmp_path / "c.mmdb")) as reader:
        assert reader.metadata().database_type == "GeoLite2-Country"
        assert reader.metadata().ip_version == 6
        assert reader.get("203.0.114.9")["country"]["iso_code"] == "FR"


def test_mmdb_country_ipv4_and_ipv6(mmdb_geo):
    assert mmdb_geo.country("203.0.114.9") == "FR"
    assert mmdb_geo.country("2001:db9:1::5") == "FR"
    assert mmdb_geo.country("8.8.8.8") == "US"
    assert mmdb_geo.country("45.67.1.2") == "DE"  # registered_country only
    assert mmdb_geo.country("9.9.9.9") is None  # not in this database


def test_mmdb_asn_is_the_number_and_the_name_is_kept(mmdb_geo):
    assert mmdb_geo.asn("8.8.8.8") == 15169
    assert mmdb_geo.as_number("8.8.8.8") == 15169
    assert mmdb_geo.as_name("8.8.8.8") == "GOOGLE"
    assert mmdb_geo.asn("203.0.115.250") == 4200000001  # 32-bit AS numbers survive
    assert mmdb_geo.asn("9.9.9.9") is None
    # an IPv6 address asked of an IPv4-only database: no answer, no exception
    assert mmdb_geo.asn("2001:db9::1") is None


def test_mmdb_private_and_garbage_are_none(mmdb_geo):
    for ip in ("10.1.2.3", "192.168.0.1", "fe80::1", "::1", "not an address", "", None, "1.2.3"):
        assert mmdb_geo.record(ip) == (None, None, None), ip


def test_only_one_mmdb_the_other_from_geoip2fast(tmp_path):
    geo = Geo(EnrichSettings(asn_mmdb=write_asn_mmdb(tmp_path / "asn.mmdb"), office365_enabled=False))
    assert geo.asn("8.8.8.8") == 15169
    assert geo.country("8.8.8.8") == "US"  # from geoip2fast
    geo.stop()


def test_offline_country(offline_geo):
    assert offline_geo.country("8.8.8.8") == "US"
    assert offline_geo.country("2001:4860:4860::8888") == "US"
    assert offline_geo.country("193.0.6.139") == "NL"  # RIPE NCC, Amsterdam
    assert offline_geo.country("203.0.113.5") is None  # documentation range
    assert offline_geo.country("10.0.0.1") is None


def test_offline_asn_is_the_as_name(offline_geo):
    assert offline_geo.asn("8.8.8.8") == "GOOGLE"
    assert offline_geo.asn("104.16.132.229") == "CLOUDFLARENET"
    assert offline_geo.asn("2606:4700::1111") == "CLOUDFLARENET"
    assert offline_geo.as_number("8.8.8.8") is None  # geoip2fast has no AS numbers
    for ip in ("10.0.0.1", "172.16.5.4", "100.64.0.1", "::1", "fe80::1", "fd12::1", "224.0.0.251", "junk"):
        assert offline_geo.asn(ip) is None, ip
        assert offline_geo.country(ip) is None, ip


def test_lazy_load_without_start():
    geo = Geo(EnrichSettings(office365_enabled=False))
    assert geo.country("8.8.4.4") == "US"
    geo.stop()


def test_cache_is_bounded(offline_geo, monkeypatch):
    monkeypatch.setattr(geo_module, "CACHE_MAX", 50)
    for i in range(200):
        offline_geo.country(f"8.8.{i}.1")
    assert len(offline_geo._cache) <= 51
    assert offline_geo.country("8.8.8.8") == "US"
    assert offline_geo.country(None) is None  # the None entry survives clearing
