"""Blocklists: parsing, a list served over HTTP, rate-limited events, last good copy, restart from disk."""

from __future__ import annotations

import logging
import time

import pytest

from processors.blocklist import Blocklists, BlocklistError, parse_blocklist
from processors.engine import Engine
from sflowpipe.settings import BlocklistDefinition, ProcessorSettings
from tests.waiting import until
from tests.sinks.http_server import RecordingServer, Reply

LIST = b"""# Example DROP list
; another comment style
192.0.2.66
198.51.100.0/24 ; SBL0001
203.0.113.7/32   # inline comment

2001:db8:bad::/48
10.200.1.2/16
"""

NOW = 1_700_000_000.0


def sample(src, dst, *, frame_length=1000, sampling_rate=100, source_id_index=3):
    return dict(src_ip=src, dst_ip=dst, frame_length=frame_length, sampling_rate=sampling_rate,
                source_id_type=0, source_id_index=source_id_index)


def batch(*samples, agent="192.0.2.200"):
    columns = ("src_ip", "dst_ip", "frame_length", "sampling_rate", "source_id_type", "source_id_index")
    return {"agent_address": agent, **{c: [s[c] for s in samples] for c in columns}}


CLEAN = [sample("10.1.1.1", "8.8.8.8"), sample("10.1.1.2", "1.1.1.1"), sample(None, None)]


@pytest.fixture
def server():
    srv = RecordingServer(default=Reply(200, LIST, {"Content-Type": "text/plain"}))
    with srv:
        yield srv


def lists_for(url, tmp_path, **kw) -> Blocklists:
    return Blocklists({"drop": BlocklistDefinition(source=url, **kw)}, str(tmp_path / "cache"))


# ---------------------------------------------------------------- parsing


def test_parse_comments_cidrs_v4_v6_and_junk(caplog):
    prefixes, junk = parse_blocklist(LIST + b"not-an-address\n300.1.1.1\n")
    assert prefixes == ["192.0.2.66/32", "198.51.100.0/24", "203.0.113.7/32", "2001:db8:bad::/48",
                        "10.200.0.0/16"]  # host bits masked, as in groups
    assert junk == [(9, "not-an-address"), (10, "300.1.1.1")]


def test_parse_duplicates_and_empty():
    assert parse_blocklist("1.2.3.4\n1.2.3.4/32\n") == (["1.2.3.4/32"], [])
    assert parse_blocklist("# nothing listed today\n\n") == ([], [])


@pytest.mark.parametrize("payload", [
    b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>\n",
    b"1.2.3.4\nfoo\nbar\n",
])
def test_parse_rejects_mostly_junk(payload):
    with pytest.raises(BlocklistError):
        parse_blocklist(payload)


def test_settings():
    p = ProcessorSettings.model_validate({"blocklists": {"drop": {"source": "https://example.org/drop.txt"}}})
    d = p.blocklists["drop"]
    assert (d.refresh_s, d.rate_limit_s) == (3600.0, 60.0)
    assert ProcessorSettings().blocklists == {}


# ---------------------------------------------------------------- events


def test_one_matching_sample_one_event_then_rate_limited(server, tmp_path):
    bl = lists_for(server.url + "/drop.txt", tmp_path)
    assert bl.refresh("drop")
    assert server.requests[0].path == "/drop.txt"
    assert bl.match_batch(batch(*CLEAN), NOW) == []

    events = bl.match_batch(batch(*CLEAN, sample("10.1.1.9", "198.51.100.20", source_id_index=7)), NOW)
    assert len(events) == 1
    e = events[0]
    assert (e.thresholdID, e.agent, e.dataSource, e.metric, e.flowKey, e.threshold) == \
        ("blocklist", "192.0.2.200", "7", "drop", "10.1.1.9,198.51.100.20", 0.0)
    assert e.value == 100_000.0  # scaled bytes
    assert e.timestamp == int(NOW * 1000)

    # the same pair again within rate_limit_s: nothing; the reverse direction is another pair
    assert bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW + 30) == []
    back = bl.match_batch(batch(sample("198.51.100.20", "10.1.1.9", frame_length=None)), NOW + 30)
    assert [(x.flowKey, x.value) for x in back] == [("198.51.100.20,10.1.1.9", 1.0)]
    assert back[0].eventID > e.eventID
    # after rate_limit_s: again
    assert len(bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW + 61)) == 1


def test_ipv6_and_both_ends_listed(server, tmp_path):
    bl = lists_for(server.url, tmp_path)
    assert bl.refresh("drop")
    events = bl.match_batch(batch(sample("2001:db8:bad:1::5", "2001:db8::1"), sample("192.0.2.66", "203.0.113.7"),
                                  sample("192.0.2.66", "203.0.113.7")), NOW)
    # one event per pair, even with both ends listed or the pair twice in the batch
    assert [e.flowKey for e in events] == ["2001:db8:bad:1::5,2001:db8::1", "192.0.2.66,203.0.113.7"]


def test_several_lists_name_themselves(server, tmp_path):
    other = tmp_path / "local.txt"
    other.write_text("8.8.8.0/24\n198.51.100.20\n")
    bl = Blocklists({"drop": {"source": server.url}, "local": {"source": str(other), "rate_limit_s": 0}},
                    str(tmp_path / "cache"))
    assert bl.refresh("drop") and bl.refresh("local")
    events = bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20"), sample("10.0.0.1", "8.8.8.8")), NOW)
    assert sorted((e.metric, e.flowKey) for e in events) == [
        ("drop", "10.1.1.9,198.51.100.20"), ("local", "10.0.0.1,8.8.8.8"), ("local", "10.1.1.9,198.51.100.20")]
    assert len(bl.match_batch(batch(sample("10.0.0.1", "8.8.8.8")), NOW)) == 1  # rate_limit_s 0


# ---------------------------------------------------------------- last good copy


def test_failed_fetches_keep_the_last_good_copy(server, tmp_path, caplog):
    bl = lists_for(server.url, tmp_path, rate_limit_s=0)
    assert bl.refresh("drop")
    cache = bl.lists["drop"].cache_path
    saved = cache.read_bytes()
    assert saved == LIST
    for reply in (Reply(500, b"Internal Server Error"), Reply(503, b""),
                  Reply(200, b"<html><body>maintenance</body></html>")):
        server.default = reply
        assert not bl.refresh("drop")
        assert len(bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW)) == 1  # still matches
        assert cache.read_bytes() == saved
    url = server.url
    server.httpd.shutdown()
    server.httpd.server_close()  # unreachable: connection refused
    bl.lists["drop"].d = BlocklistDefinition(source=url, rate_limit_s=0)
    assert not bl.refresh("drop")
    assert len(bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW)) == 1
    assert bl.lists["drop"].failures == 4
    assert "keeping the previous list" in caplog.text


def test_restart_from_the_disk_copy_with_the_server_down(tmp_path):
    with RecordingServer(default=Reply(200, LIST)) as srv:
        srv.httpd.RequestHandlerClass.do_GET = srv.httpd.RequestHandlerClass.do_POST
        url = srv.url + "/drop.txt"
        first = lists_for(url, tmp_path)
        assert first.refresh("drop")
    # the server is gone; a new process starts with only the disk copy
    restarted = lists_for(url, tmp_path)
    restarted.start()
    try:
        assert restarted.lists["drop"].source == "disk"  # loaded synchronously by start()
        assert len(restarted.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW)) == 1
        until(lambda: restarted.lists["drop"].failures >= 1)
        assert restarted.lists["drop"].source == "disk"
        assert len(restarted.match_batch(batch(sample("10.1.1.8", "2001:db8:bad::1")), NOW)) == 1
    finally:
        restarted.stop()


def test_file_source_refreshed_and_bad_file_ignored(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("192.0.2.0/24\n")
    bl = Blocklists({"f": {"source": str(path), "refresh_s": 0.05, "rate_limit_s": 0}}, str(tmp_path / "cache"))
    bl.start()
    try:
        until(lambda: bl.lists["f"].updates >= 1)
        assert len(bl.match_batch(batch(sample("192.0.2.5", "10.0.0.1")), NOW)) == 1
        path.write_text("198.51.100.0/24\n")
        until(lambda: bl.match_batch(batch(sample("198.51.100.5", "10.0.0.1")), NOW) != [])
        assert bl.match_batch(batch(sample("192.0.2.5", "10.0.0.1")), NOW) == []
        failures = bl.lists["f"].failures
        path.write_text("garbage\nmore garbage\n")
        until(lambda: bl.lists["f"].failures > failures)
        assert len(bl.match_batch(batch(sample("198.51.100.5", "10.0.0.1")), NOW)) == 1  # previous list
    finally:
        bl.stop()


def test_junk_lines_are_reported_and_skipped(tmp_path, caplog):
    path = tmp_path / "list.txt"
    path.write_text("192.0.2.1\n192.0.2.2\nbogus entry\n")
    bl = Blocklists({"f": {"source": str(path)}}, str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        assert bl.refresh("f")
    assert "skipped 1 lines" in caplog.text and "bogus entry" in caplog.text
    assert bl.lists["f"].entries == 2


def test_no_source_and_no_disk_copy_is_not_fatal(tmp_path):
    bl = lists_for("http://127.0.0.1:9/none", tmp_path)
    bl.start()
    try:
        until(lambda: bl.lists["drop"].failures >= 1)
        assert bl.match_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW) == []
    finally:
        started = time.monotonic()
        bl.stop()
        assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------- engine hook


class _NoEnrich:
    def enrich_batch(self, batch):
        return {}


def test_engine_reports_blocklist_events_with_threshold_events(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("198.51.100.0/24\n")
    bl = Blocklists({"local": {"source": str(path)}}, str(tmp_path / "cache"))
    assert bl.refresh("local")
    engine = Engine(_NoEnrich(), clock=lambda: NOW, blocklists=bl)
    engine.on_flow_batch(batch(*CLEAN, sample("10.1.1.9", "198.51.100.20")), NOW)
    engine.on_flow_batch(batch(sample("10.1.1.9", "198.51.100.20")), NOW + 1)
    _, _, events = engine.report(NOW + 1)
    assert [(e.thresholdID, e.metric, e.flowKey) for e in events] == [("blocklist", "local", "10.1.1.9,198.51.100.20")]
    assert engine.report(NOW + 2)[2] == []
    assert Engine(_NoEnrich()).report(NOW)[2] == []  # no blocklists: as before
