"""``processors.processing_guarantee: exactly_once`` (processors/transactions.py).

On Apache Kafka: two workers share the sample topics, one is killed (SIGKILL) mid-run, the other
takes its partitions over; what the pipeline produced, read as a consumer reads it
(``read_committed``), equals the ground truth of what was sent: every flow sample once in the
enriched topic, the flow-log byte totals of every flow exactly the bytes sent, each threshold
event once. On Tansu (no transactions) the setting is refused at start, with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import pytest

from ingest.generate import Generator
from ingest.pcap import UdpDatagram
from ingest.replay import publish_kafka
from ingest.sflow.model import FlowSample
from sflowpipe.broker import EmbeddedBroker, free_port
from tests.kafka_helpers import read_topic
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_integration import brute_force_pairs, ingest_settings
from tests.waiting import until

pytestmark = pytest.mark.kafka

THRESHOLD = 200_000  # bytes/s of one flow (ipsource, ipdestination) on one data source
DEFS = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes", "t": 2, "log": True,
                           "activeTimeout": 4}},
        # timeout: no re-arm within the test, so each flow over the threshold raises exactly one event
        "thresholds": {"elephant": {"metric": "pair", "value": THRESHOLD, "byFlow": True, "timeout": 600}}}
TRAFFIC_S = 30
RATE = 25  # datagrams/s
KILL_AT_S = 12
EOS_ENV = {"SFLOWPIPE_PROCESSORS__PROCESSING_GUARANTEE": "exactly_once",
           "SFLOWPIPE_PROCESSORS__CHECKPOINT_INTERVAL_S": "1"}


def traffic(start: float) -> list[UdpDatagram]:
    # agents 192.0.2.200-206: on every one of the 3 partitions (the ingesters key by agent), so both
    # workers have agents of their own
    gen = Generator(agents=7, interfaces=3, sampling_rate=100, counter_interval=1.0, seed=11)
    out = []
    for i in range(TRAFFIC_S * RATE):
        ts = start + i / RATE
        out.append(UdpDatagram(int(ts), int((ts % 1) * 1e6), "192.0.2.200", 6343, "", 0, gen.datagram(now=ts)))
    return out


def test_exactly_once_killed_worker_double_counts_nothing(apache_kafka, topic_prefix, tmp_path):
    bootstrap = apache_kafka.bootstrap
    app_id = f"{topic_prefix}app"
    workers = [ProcessorProcess(bootstrap, topic_prefix, tmp_path, DEFS, app_id=app_id, worker_index=i,
                                extra_env=EOS_ENV) for i in (0, 1)]
    try:
        for w in workers:
            w.start()
    except BaseException:  # one did not start: stop the other, or it outlives the test (seen once in CI)
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.kill()
        raise
    survivor, victim = workers
    t0 = time.time()
    datagrams = traffic(t0)
    truth = brute_force_pairs(d.payload for d in datagrams)
    flow_samples = sum(1 for dg in _decoded(datagrams) for s in dg.samples if type(s) is FlowSample)
    feeder = threading.Thread(target=publish_kafka, args=(datagrams, ingest_settings(bootstrap, topic_prefix,
                                                                                     tmp_path / "ingest")),
                              kwargs={"speed": 1, "keep_timestamps": True})
    try:
        feeder.start()
        time.sleep(max(0.0, t0 + KILL_AT_S - time.time()))

        def victim_committed() -> bool:  # the victim has work of its own in committed transactions
            m = victim.metrics()
            return sum(v for (name, _), v in m.items() if name == "sflowpipe_processors_transactions_total") > 0

        until(victim_committed, 30, 0.5, message="the victim committed no transaction")
        victim_samples = sum(v for (name, labels), v in victim.metrics().items()
                             if name == "sflowpipe_processors_samples_total" and ("kind", "flow") in labels)
        assert victim_samples > 0
        victim.kill()
        feeder.join(TRAFFIC_S + 60)
        sent_pair_bytes = {(agent, ds, key): b for (agent, ds), flows in truth.items() for key, b in flows.items()}

        def logged(msgs) -> bool:
            return _totals(msgs) == sent_pair_bytes

        # the flows end 10 s (max(2 t, 10)) after their last sample; the survivor took over after the
        # victim's session expired and caught up
        logs = read_topic(bootstrap, topic_prefix + "flow-logs", logged, timeout=120)
        enriched = read_topic(bootstrap, topic_prefix + "enriched-flow-samples",
                              lambda m: sum(len(b["receive_time_us"]) for b in m) >= flow_samples, timeout=30)
        events = read_topic(bootstrap, topic_prefix + "events", lambda m: False, timeout=5, idle=3)
        survivor_log = survivor.log.read_text(errors="replace")
    finally:
        assert survivor.stop() == 0, survivor.log.read_text(errors="replace")[-3000:]
        if victim.proc.poll() is None:
            victim.kill()

    assert "restored state of agent" in survivor_log  # it took the victim's agents over
    # every flow sample once in the enriched topic: none lost with the victim, none twice
    assert sum(len(b["receive_time_us"]) for b in enriched) == flow_samples
    # flow-log totals: exactly the bytes sent, per flow (an interval logged twice would exceed them)
    totals = _totals(logs)
    assert totals == sent_pair_bytes, {k: (totals.get(k), v) for k, v in sent_pair_bytes.items() if totals.get(k) != v}
    # events: the ground truth is the flows over the threshold: the traffic's elephants run at 1.8-2.4x
    # it the whole time, every other flow under a fifth of it (no flow in between to be unsure of)
    rates = {k: b / TRAFFIC_S for k, b in sent_pair_bytes.items()}
    over = {k for k, r in rates.items() if r > 1.5 * THRESHOLD}
    assert len(over) > 10 and all(r < THRESHOLD / 5 for k, r in rates.items() if k not in over)
    raised = Counter((e["agent"], e["dataSource"], e["flowKey"]) for e in events if e["thresholdID"] == "elephant")
    assert max(raised.values()) == 1, ("events repeated", raised.most_common(3))
    assert set(raised) == over, ("events lost", over - set(raised), "or extra", set(raised) - over)
    print(f"exactly-once: {flow_samples} flow samples, {len(sent_pair_bytes)} flows, {len(raised)} events, "
          f"victim had processed {victim_samples:.0f} samples")


def _decoded(datagrams):
    from tests.sflow_data import decodable

    return decodable(d.payload for d in datagrams)


def _totals(msgs) -> dict:
    out: dict = defaultdict(float)
    for r in msgs:
        if r["flow"] == "pair":
            out[(r["agent"], r["dataSource"], r["flowKeys"])] += r["bytes"]
    return dict(out)


def test_exactly_once_refused_without_transactions(tmp_path):
    """Tansu has no transactions: `sflowpipe process` with exactly_once says so and exits at once."""
    broker = EmbeddedBroker(port=free_port(), log_path=str(tmp_path / "tansu.log"))
    broker.start()
    try:
        env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
               "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp_path / "faust"),
               "SFLOWPIPE_ENRICH__CACHE_DIR": str(tmp_path / "cache"), **EOS_ENV}
        res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "process"], env=env, capture_output=True,
                             text=True, timeout=90)
    finally:
        broker.stop()
    assert res.returncode == 1, res.stderr[-3000:]
    assert "exactly_once needs a broker with Kafka transactions" in res.stderr, res.stderr[-3000:]
    assert "aborted transaction" in res.stderr and "at_least_once" in res.stderr and "Traceback" not in res.stderr
