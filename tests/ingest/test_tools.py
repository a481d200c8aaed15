"""replay --to kafka, tail and generate, through the real CLI and the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ingest.generate import Generator
from ingest.sflow import decode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import CounterSample, FlowSample
from tests.sflow_data import generated

pytestmark = pytest.mark.kafka
CLI = [sys.executable, "-m", "sflowpipe.cli"]


def cli(*args, env, timeout=120):
    res = subprocess.run([*CLI, *args], env=env, capture_output=True, timeout=timeout)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


@pytest.fixture
def env(kafka_bootstrap, topic_prefix, tmp_path):
    return {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SFLOWPIPE_KAFKA__TOPIC_PREFIX": topic_prefix, "SFLOWPIPE_INGEST__SPILL_DIR": str(tmp_path / "spill")}


def test_replay_to_kafka_then_tail(env, tmp_path, captures_dir):
    capture = captures_dir / "overflowd__sflow.pcap"
    out = cli("replay", str(capture), "--to", "kafka", "--speed", "0", env=env)
    assert "replayed 1000 datagrams" in out
    lines = cli("tail", "flow-samples", "--from-beginning", "--max", "5855", "--timeout", "10", env=env).splitlines()
    rows = [json.loads(x) for x in lines]
    assert len(rows) == 5855  # one line per sample, batches unrolled
    r = rows[0]
    assert r["agent_address"] and r["sampling_rate"] > 0 and isinstance(r["header"], str)
    assert {"src_ip", "dst_ip", "src_port", "receive_time_us", "datagram_sequence"} <= set(r)
    batches = cli("tail", "flow-samples", "--from-beginning", "--batches", "--max", "2", "--timeout", "10",
                  env=env).splitlines()
    assert len(batches) == 2 and isinstance(json.loads(batches[0])["sequence_number"], list)
    counters = cli("tail", "counter-samples", "--from-beginning", "--max", "3", "--timeout", "10", env=env)
    assert len(counters.splitlines()) == 3 and "records" in json.loads(counters.splitlines()[0])


def test_generate_sends_flows_elephants_and_counters():
    dgs = [decode_datagram(p) for p in generated(200, "--rate", "1000", "--counter-interval", "0.05")]
    flows = [s for d in dgs for s in d.samples if type(s) is FlowSample]
    counters = [s for d in dgs for s in d.samples if type(s) is CounterSample]
    assert flows and counters
    # elephants: a few flows carry most bytes, > 10 Mbit/s once scaled by the sampling rate
    by_flow: dict = {}
    for s in flows:
        h = next(r for r in s.records if type(r) is SampledHeader).decoded
        key = (h.src_ip, h.dst_ip, h.src_port, h.dst_port)
        by_flow[key] = by_flow.get(key, 0) + s.records[0].frame_length * s.sampling_rate
    top = sorted(by_flow.values(), reverse=True)
    assert sum(top[:3]) > 0.5 * sum(top)


def test_generator_rate_of_elephants_exceeds_10mbps():
    gen = Generator(agents=1, samples_per_datagram=6)
    seconds, rate = 10.0, 100  # 100 datagrams/s for 10 s
    bits = {}
    for i in range(int(seconds * rate)):
        for s in decode_datagram(gen.datagram(now=i / rate)).samples:
            if type(s) is FlowSample:
                h = s.records[0].decoded
                bits[h.src_ip] = bits.get(h.src_ip, 0) + s.records[0].frame_length * s.sampling_rate * 8
    assert max(bits.values()) / seconds > 10e6


def test_replay_loops_keep_the_recorded_pace():
    """`replay --loop N` (what `sflowpipe up --replay` uses): every loop lasts as long as the
    capture, at least a second, instead of the later loops being sent as fast as possible."""
    import socket
    import time

    from ingest.pcap import UdpDatagram
    from ingest.replay import send_udp

    items = [UdpDatagram(1000, i * 100_000, "10.0.0.1", 6343, "10.0.0.2", 6343, b"x%d" % i) for i in range(3)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        t0 = time.monotonic()
        assert send_udp(items, f"127.0.0.1:{rx.getsockname()[1]}", speed=1.0, loops=3) == 9
        elapsed = time.monotonic() - t0
        rx.settimeout(1)
        got = [rx.recv(100) for _ in range(9)]
    assert 2.1 <= elapsed < 4.0, elapsed  # 3 loops of 1 s: the last one's datagrams at 2.0-2.2 s
    assert got == [b"x0", b"x1", b"x2"] * 3


def test_generator_numbers_samples_per_data_source():
    """sFlow v5: sequence numbers and the sample pool run per data source, so a collector counting
    lost samples (sFlow-RT's sFlowFlowLostSamples, the API's /agents/json) sees none in the demo."""
    gen = Generator(agents=2, interfaces=4, samples_per_datagram=5, counter_interval=0.5)
    last: dict[tuple, tuple[int, int]] = {}
    flows = counters = 0
    for i in range(400):
        d = decode_datagram(gen.datagram(now=1000.0 + i * 0.01))
        for s in d.samples:
            kind = type(s).__name__
            key = (d.agent_address, kind, s.source_id_type, s.source_id_index)
            pool = getattr(s, "sample_pool", 0)
            if key in last:
                assert s.sequence_number == last[key][0] + 1, key
                if kind == "FlowSample":
                    assert pool == last[key][1] + s.sampling_rate
            last[key] = (s.sequence_number, pool)
            flows += kind == "FlowSample"
            counters += kind == "CounterSample"
    assert flows == 2000 and counters > 0
