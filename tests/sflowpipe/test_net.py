"""HOST:PORT, the one parser every listener and target uses."""

from __future__ import annotations

import pytest

from sflowpipe.net import parse_hostport


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1:6343", ("10.0.0.1", 6343)),
    ("collector.example:514", ("collector.example", 514)),
    ("[2001:db8::1]:6343", ("2001:db8::1", 6343)),
    ("[::]:6343", ("::", 6343)),
    ("127.0.0.1:0", ("127.0.0.1", 0)),  # any free port
])
def test_host_and_port(text, expected):
    assert parse_hostport(text) == expected
    assert parse_hostport(text, 9, "0.0.0.0") == expected  # defaults do not override what is written


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1", ("10.0.0.1", 6343)),  # the ingest listener's and replay's default port
    (":7000", ("0.0.0.0", 7000)),
    ("", ("0.0.0.0", 6343)),
    ("2001:db8::1", ("2001:db8::1", 6343)),  # a bare IPv6 address is a host without a port
    ("[2001:db8::1]", ("2001:db8::1", 6343)),
])
def test_defaults_fill_what_is_left_out(text, expected):
    assert parse_hostport(text, 6343, "0.0.0.0") == expected


def test_an_http_listener_without_a_host_is_the_loopback_address():
    assert parse_hostport(":8008", default_host="127.0.0.1") == ("127.0.0.1", 8008)


@pytest.mark.parametrize("text,kwargs,names", [
    ("127.0.0.1:99999", {"what": "listen address"}, "bad listen address '127.0.0.1:99999': the port must be"),
    ("127.0.0.1:x", {"default_port": 6343}, "bad address '127.0.0.1:x': the port must be"),
    ("127.0.0.1:٣", {}, "the port must be"),  # a digit, but not an ASCII one
    ("127.0.0.1", {}, "expected HOST:PORT"),  # no port and no default
    (":6343", {"what": "target"}, "bad target ':6343': expected HOST:PORT (a host is required)"),
    ("2001:db8::1:80", {}, "write an IPv6 address with a port as [IPv6]:PORT"),  # port 80, or part of the address?
    ("[2001:db8::1:80", {}, "expected [IPv6]:PORT"),
    ("[2001:db8::1]80", {}, "expected [IPv6]:PORT"),
])
def test_refusals_name_the_address(text, kwargs, names):
    with pytest.raises(ValueError, match=None) as e:
        parse_hostport(text, **kwargs)
    assert names in str(e.value)
