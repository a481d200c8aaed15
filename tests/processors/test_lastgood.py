"""Fetching a refreshed list and keeping its last good copy on disk (blocklists, Microsoft 365)."""

from __future__ import annotations

import logging
import os

import pytest

from processors.lastgood import TooLarge, fetch, read_copy, save_copy
from tests.sinks.http_server import RecordingServer, Reply


def test_fetch_a_file_a_file_url_and_http(tmp_path):
    f = tmp_path / "list.txt"
    f.write_bytes(b"192.0.2.0/24\n")
    assert fetch(str(f), "text/plain", 100) == b"192.0.2.0/24\n"
    assert fetch("file://" + str(f), "text/plain", 100) == b"192.0.2.0/24\n"
    with RecordingServer(Reply(200, b"198.51.100.7\n")) as srv:
        assert fetch(srv.url + "/drop.txt", "text/plain", 100) == b"198.51.100.7\n"
        assert srv.requests[0].headers["accept"] == "text/plain"


def test_a_source_over_the_limit_is_refused(tmp_path):
    f = tmp_path / "huge.txt"
    f.write_bytes(b"x" * 101)
    with pytest.raises(TooLarge, match="larger than 100 bytes"):
        fetch(str(f), "text/plain", 100)
    f.write_bytes(b"x" * 100)
    assert len(fetch(str(f), "text/plain", 100)) == 100


def test_copy_round_trip_and_failures_are_logged_not_raised(tmp_path, caplog):
    path = tmp_path / "cache" / "list.txt"
    assert read_copy(path, "test list") is None  # none yet: quietly
    save_copy(path, b"one", "test list")
    save_copy(path, b"two", "test list")  # replaced atomically: no temporary files left
    assert read_copy(path, "test list") == b"two"
    assert os.listdir(path.parent) == ["list.txt"]
    blocked = tmp_path / "a-file"  # not a permission (root writes anywhere): a path under a file
    blocked.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        save_copy(blocked / "list.txt", b"x", "test list")  # its parent is a file
        assert read_copy(blocked, "test list") == b""  # a file is read
        assert read_copy(tmp_path, "test list") is None  # a directory is not: logged
    assert "test list: cannot save" in caplog.text and "test list: cannot read" in caplog.text
