"""AddressGroups: longest prefix match, IPv4 and IPv6, atomic live replacement."""

from __future__ import annotations

import ipaddress
import random
import threading

import pytest

from processors import groups as groups_module
from processors.groups import AddressGroups, address_number

SITES = {
    "lan": ["10.0.0.0/8", "fd00::/8"],
    "dmz": ["10.1.0.0/16", "fd00:1::/32"],
    "servers": ["10.1.1.0/24", "10.1.2.3"],  # a bare address is a /32
    "internet": ["0.0.0.0/0", "::/0"],
}


@pytest.fixture
def groups():
    return AddressGroups({"site": SITES, "dns": {"google": ["8.8.8.8/32", "2001:4860:4860::8888/128"]}})


def test_address_number():
    assert address_number("10.0.0.1") == (4, 0x0A000001)
    assert address_number("::1") == (6, 1)
    for bad in ("10.0.0", "10.0.0.256", "x", "", "1::2::3", None):
        assert address_number(bad) is None


def test_longest_prefix_wins(groups):
    assert groups.group("site", "10.9.9.9") == "lan"
    assert groups.group("site", "10.1.9.9") == "dmz"
    assert groups.group("site", "10.1.1.200") == "servers"
    assert groups.group("site", "10.1.2.3") == "servers"
    assert groups.group("site", "10.1.2.4") == "dmz"
    assert groups.group("site", "192.0.2.1") == "internet"


def test_ipv6_separately(groups):
    assert groups.group("site", "fd00::1") == "lan"
    assert groups.group("site", "fd00:1:ffff::1") == "dmz"
    assert groups.group("site", "2001:db8::1") == "internet"
    assert groups.group("dns", "2001:4860:4860::8888") == "google"
    assert groups.group("dns", "2001:4860:4860::8844") is None
    # an IPv4 /32 does not match the IPv6 address with the same low bits
    assert groups.group("dns", "::808:808") is None


def test_unknown_set_and_non_addresses(groups):
    assert groups.group("nope", "10.0.0.1") is None
    assert groups.group("site", None) is None
    assert groups.group("site", "garbage") is None


def test_memberships_across_sets(groups):
    assert groups.memberships("8.8.8.8") == ("dns:google", "site:internet")
    assert groups.memberships("10.1.1.1") == ("site:servers",)
    assert groups.memberships(None) == ()
    assert groups.memberships("bad") == ()


def test_invalid_cidrs_raise_naming_them(groups):
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'.*'banana'"):
        groups.set_groupset("site", {"a": ["10.0.0.0/33", "192.0.2.0/24"], "b": ["banana"]})
    # nothing changed
    assert groups.group("site", "10.9.9.9") == "lan"
    with pytest.raises(ValueError, match="list of CIDR"):
        AddressGroups({"x": {"a": "10.0.0.0/8"}})


def test_same_prefix_in_two_groups_is_an_error():
    with pytest.raises(ValueError, match="10.0.0.0/8 is in groups 'a' and 'b'"):
        AddressGroups({"x": {"a": ["10.0.0.0/8"], "b": ["10.0.0.0/8"]}})


def test_host_bits_are_masked():
    g = AddressGroups({"x": {"a": ["10.1.2.3/8"]}})
    assert g.groupsets() == {"x": {"a": ["10.0.0.0/8"]}}
    assert g.group("x", "10.200.0.1") == "a"


def test_set_groupset_replaces_and_invalidates_caches(groups):
    assert groups.group("site", "10.1.1.1") == "servers"
    assert groups.memberships("10.1.1.1") == ("site:servers",)
    groups.set_groupset("site", {"campus": ["10.0.0.0/8"]})
    assert groups.group("site", "10.1.1.1") == "campus"
    assert groups.memberships("10.1.1.1") == ("site:campus",)
    groups.set_groupset("extra", {"x": ["10.1.0.0/16"]})
    assert groups.memberships("10.1.1.1") == ("extra:x", "site:campus")
    assert sorted(groups.groupsets()) == ["dns", "extra", "site"]
    groups.remove_groupset("extra")
    groups.remove_groupset("never-there")
    assert groups.memberships("10.1.1.1") == ("site:campus",)


def test_matches_a_brute_force_reference():
    rng = random.Random(7)
    nets = {}
    for i in range(300):
        length = rng.choice([8, 12, 16, 20, 24, 28, 32])
        net = ipaddress.ip_network((rng.getrandbits(32), length), strict=False)
        nets.setdefault(net, f"g{i}")
    spec: dict[str, list[str]] = {}
    for net, name in nets.items():
        spec.setdefault(name, []).append(str(net))
    g = AddressGroups({"r": spec})
    for _ in range(3000):
        parent = rng.choice(list(nets))
        addr = ipaddress.ip_address(int(parent.network_address) + rng.randrange(parent.num_addresses))
        best = max((n for n in nets if addr in n), key=lambda n: n.prefixlen)
        assert g.group("r", str(addr)) == nets[best]


def test_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(groups_module, "CACHE_MAX", 10)
    g = AddressGroups({"x": {"a": ["10.0.0.0/8"]}})
    for i in range(100):
        assert g.group("x", f"10.0.0.{i}") == "a"
        assert g.memberships(f"10.0.1.{i}") == ("x:a",)
    assert len(g._state.sets["x"].cache) <= 10
    assert len(g._state.memberships) <= 11
    assert g.memberships(None) == ()


def test_readers_never_see_a_half_built_set():
    g = AddressGroups({"x": {"old": ["10.0.0.0/8"]}})
    stop = threading.Event()
    seen = set()

    def reader():
        while not stop.is_set():
            seen.add(g.group("x", "10.1.1.1"))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(200):
        g.set_groupset("x", {"new" if i % 2 else "old": ["10.0.0.0/8"], "other": [f"192.0.{i}.0/24"]})
    stop.set()
    thread.join()
    assert seen <= {"old", "new"}
