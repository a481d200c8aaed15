"""The shared metrics helper: a registry per component instance, served over real HTTP and read
back with prometheus-client's parser."""

from __future__ import annotations

import pickle
import socket
from contextlib import contextmanager

import pytest
from prometheus_client import CollectorRegistry

from sflowpipe.metrics import Metrics, MetricsServer, Snapshots, split_listen
from tests.scrape import scrape


@contextmanager
def served(registry):
    server = MetricsServer("127.0.0.1:0", registry).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_two_instances_in_one_process_keep_their_own_values():
    a, b = Metrics(), Metrics()
    for m in (a, b):  # the same names in both: no "duplicated timeseries" across instances
        m.describe("sflowpipe_test_things_total", "counter", "things", labels=("kind",))
        m.describe("sflowpipe_test_seconds", "histogram", "time")
    a.inc("sflowpipe_test_things_total", 2, (("kind", "x"),))
    b.inc("sflowpipe_test_things_total", 5, (("kind", "x"),))
    a.observe("sflowpipe_test_seconds", 0.02)
    with served(a) as url_a, served(b) as url_b:
        got_a, got_b = scrape(url_a), scrape(url_b)
    assert got_a.value("sflowpipe_test_things_total", kind="x") == 2 == a.get("sflowpipe_test_things_total",
                                                                              (("kind", "x"),))
    assert got_b.value("sflowpipe_test_things_total", kind="x") == 5
    assert got_a.value("sflowpipe_test_seconds_count") == 1 and got_b.value("sflowpipe_test_seconds_count") == 0
    assert not any(name.endswith("_created") for name in got_a.families())  # the names ingest always had


def test_observed_values_are_read_at_each_scrape():
    m = Metrics()
    box = {"n": 1}
    m.observed("sflowpipe_test_kept_total", "counter", "kept by the component", lambda: box["n"])
    m.observed("sflowpipe_test_lag", "gauge", "per partition", lambda: {("t", 0): 3, ("t", 1): 0}, ("topic", "partition"))
    with served(m) as url:
        assert scrape(url).value("sflowpipe_test_kept_total") == 1
        box["n"] = 7
        got = scrape(url)
    assert got.value("sflowpipe_test_kept_total") == 7
    assert got.value("sflowpipe_test_lag", partition="0") == 3 and got.value("sflowpipe_test_lag", partition="1") == 0


def test_worker_snapshots_are_served_as_one_family_with_a_worker_label():
    workers = Snapshots()
    for w, n in (("0", 3), ("1", 4)):
        m = Metrics()
        m.describe("sflowpipe_test_datagrams_total", "counter", "datagrams")
        m.inc("sflowpipe_test_datagrams_total", n)
        workers.latest[w] = pickle.loads(pickle.dumps(m.snapshot()))  # as it crosses the process boundary
    registry = CollectorRegistry()
    registry.register(workers)
    with served(registry) as url:
        got = scrape(url)
    assert got.value("sflowpipe_test_datagrams_total", worker="0") == 3
    assert got.value("sflowpipe_test_datagrams_total") == 7


def test_listen_addresses_and_a_taken_port_named():
    assert split_listen(":9345", 1) == ("127.0.0.1", 9345)
    assert split_listen("[::1]:0", 1) == ("::1", 0)
    assert split_listen("0.0.0.0", 9345) == ("0.0.0.0", 9345)
    with pytest.raises(ValueError, match="port must be a number"):
        split_listen("127.0.0.1:http", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on TCP \\[127.0.0.1\\]:{port}"):
            MetricsServer(f"127.0.0.1:{port}", Metrics()).start()
