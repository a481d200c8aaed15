"""Payload keys through a real Faust worker on the real broker: a flow keyed by dnsqname over sampled
DNS packets and one valued in requests over HTTP transaction records become active flows whose
values are the samples' requests scaled by the sampling rate."""

from __future__ import annotations

import math
import time

import pytest

from ingest.pcap import UdpDatagram
from ingest.replay import publish_kafka
from tests.kafka_helpers import read_topic
from tests.payload_frames import datagram, dns_frame, header_sample, http, record_sample, socket4, tcp_frame
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_integration import ingest_settings, latest_active

pytestmark = pytest.mark.kafka

AGENT = "192.0.2.210"
T = 600  # smoothing constant: the reported value is the total / T, decayed from when it arrived


def traffic(now: float) -> tuple[list[UdpDatagram], dict, dict]:
    """Datagrams of DNS queries and responses, HTTP requests and plain TCP, and the expected totals of
    requests per DNS name and per URL (samples x sampling rate)."""
    samples, names, urls = [], {}, {}
    seq = 0

    def add(s, bucket=None, key=None, weight=0):
        nonlocal seq
        samples.append(s)
        if bucket is not None:
            bucket[key] = bucket.get(key, 0) + weight

    for i in range(30):
        seq += 1
        add(header_sample(dns_frame("10.0.0.9", "10.0.0.53", i, "www.example.com"), seq), names, "www.example.com.",
            100)
    for i in range(10):
        seq += 1
        add(header_sample(dns_frame("10.0.0.8", "10.0.0.53", i, "api.example.org", 28, response=True), seq), names,
            "api.example.org.", 100)
    for i in range(20):
        seq += 1
        add(record_sample((http(uri="/index.html"), socket4()), seq), urls, "/index.html", 10)
    for i in range(5):
        seq += 1
        add(record_sample((http(method=4, uri="/login", status=302), socket4()), seq), urls, "/login", 10)
    for i in range(40):  # no DNS, no transaction: counted in neither flow
        seq += 1
        add(header_sample(tcp_frame("10.0.0.1", "10.0.0.80"), seq))
    out = []
    for n, start in enumerate(range(0, len(samples), 8)):
        ts = now + n * 0.01
        out.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), AGENT, 6343, "", 0,
                               datagram(samples[start:start + 8], AGENT, n + 1)))
    return out, names, urls


def test_dnsqname_and_requests_flows_through_the_worker(kafka_bootstrap, topic_prefix, tmp_path):
    defs = {"flows": {"dnsnames": {"keys": "dnsqname", "value": "requests", "t": T},
                      "urls": {"keys": "httpurl,httpmethod", "value": "requests", "t": T},
                      "pair": {"keys": "ipsource,ipdestination", "value": "frames", "t": T}}}
    worker = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id=f"{topic_prefix}app")
    worker.start()
    try:
        t0 = time.time()
        datagrams, names, urls = traffic(t0)
        publish_kafka(datagrams, ingest_settings(kafka_bootstrap, topic_prefix, tmp_path), speed=0)

        def complete(msgs):  # a report of each flow from after the backlog was worked through
            return {m["flow"] for m in msgs if m["timestamp"] / 1000 > t0 + 3} >= {"dnsnames", "urls", "pair"}

        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows", complete, timeout=90)
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]
    for flow, want in (("dnsnames", names), ("urls", {f"{u},{'GET' if u == '/index.html' else 'POST'}": v
                                                       for u, v in urls.items()})):
        m = latest_active(msgs, flow)[AGENT]
        assert m["value"] == "requests"
        got = {e["key"]: e["value"] for e in m["flows"]}
        decay = math.exp(-(m["timestamp"] / 1000 - t0) / T)
        assert set(got) == set(want), (flow, got)
        for k, total in want.items():
            assert got[k] == pytest.approx(total / T * decay, rel=0.05), (flow, k)
    # the plain flow still sees every packet sample (the whole batch is decoded, nothing lost)
    pair = {e["key"]: e["value"] for e in latest_active(msgs, "pair")[AGENT]["flows"]}
    assert "10.0.0.1,10.0.0.80" in pair and "10.0.0.9,10.0.0.53" in pair
