"""The ingest pipeline against the code before issue 16's speed work (bench/baseline.py's revision):
for the same datagrams, the same messages byte for byte (raw envelopes, sample batches, dead
letters), the same counts and the same agent counters. Each tree's pipeline runs in its own
interpreter over one input file: real captures, generated traffic and their cuts and bit flips."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap

import pytest

from bench.baseline import DEFAULT_BASELINE, ROOT, BaselineError, baseline_tree
from ingest.generate import Generator
from ingest.pcap import read_udp_payloads
from ingest.sflow import encode_datagram
from tests.conftest import capture_files
from tests.ingest.sflow.test_datagram import sample_datagram

pytestmark = pytest.mark.e2e  # runs each tree's pipeline as a process

# what one tree's IngestPipeline publishes and counts for the datagrams in argv[1], pickled to argv[2]
RUN = textwrap.dedent("""
    import pickle, sys
    from ingest.pipeline import IngestPipeline
    from schemas.codec import Codec
    from sflowpipe.metrics import Metrics
    from sflowpipe.settings import load_settings

    class Recording:
        def __init__(self):
            self.messages = []
        def publish(self, topic, key, value):
            self.messages.append((topic, key, value))
        def service(self):
            pass

    payloads = pickle.load(open(sys.argv[1], "rb"))
    out = {}
    for max_samples in (500, 7):
        s = load_settings()
        s.ingest.batch_max_samples = max_samples
        pub, m = Recording(), Metrics()
        p = IngestPipeline(s.ingest, s.kafka, s.topics, pub, m, Codec())
        for i, data in enumerate(payloads):
            p.handle(data, f"192.0.2.{i % 3}", 6343 + i % 2, 1_700_000_000_000_000 + i)
        p.drain()
        counts = sorted(line for line in m.text().splitlines() if "decode_seconds" not in line)
        agents = {a: {k: v for k, v in c.items() if k not in ("firstSeen", "lastSeen")}
                  for a, c in p.agents.snapshot().items()}
        out[max_samples] = (pub.messages, counts, agents)
    pickle.dump(out, open(sys.argv[2], "wb"))
""")


def _inputs() -> list[bytes]:
    payloads = [d.payload for path in capture_files() for d in read_udp_payloads(str(path))]
    g = Generator(agents=3, seed=7, counter_interval=0.5, flood_target="198.51.100.7")
    payloads += [g.datagram(1_700_000_000 + i / 100) for i in range(500)]
    rng = random.Random(3)
    seeds = [encode_datagram(sample_datagram()), encode_datagram(sample_datagram("2001:db8::1"))]
    seeds += payloads[:50:7] + payloads[-500::50]
    for seed in seeds:
        payloads += [seed[:i] for i in range(len(seed))]
        for _ in range(100):
            b = bytearray(seed)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            payloads.append(bytes(b))
    return payloads


def _run(tree, inputs, out) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", RUN, str(inputs), str(out)], cwd=tree, env=env, check=True, timeout=600)
    return pickle.loads(out.read_bytes())


def test_same_messages_and_counts_as_the_baseline(tmp_path):
    inputs = tmp_path / "inputs.pickle"
    inputs.write_bytes(pickle.dumps(_inputs()))
    try:
        with baseline_tree(DEFAULT_BASELINE) as tree:
            before = _run(tree, inputs, tmp_path / "before.pickle")
    except BaselineError as e:
        pytest.skip(f"no baseline tree: {e}")
    now = _run(ROOT, inputs, tmp_path / "now.pickle")
    for max_samples in before:
        messages, counts, agents = now[max_samples]
        assert len(messages) == len(before[max_samples][0])
        assert messages == before[max_samples][0]
        assert counts == before[max_samples][1]
        assert agents == before[max_samples][2]
    topics = {t for t, _, _ in now[500][0]}
    assert {"sflow.raw", "sflow.flow-samples", "sflow.counter-samples", "sflow.deadletter"} <= topics
