"""A worker takes over another's agents: the state checkpointed to the Faust table is restored,
so the flows it reports continue from where the first worker left them."""

from __future__ import annotations

import math
import time

import pytest

from ingest.pcap import read_udp_payloads
from ingest.replay import publish_kafka
from tests.kafka_helpers import group_lag, read_topic
from tests.processors.processor_harness import ProcessorProcess
from tests.processors.test_app_integration import brute_force_pairs, ingest_settings
from tests.waiting import until

pytestmark = pytest.mark.kafka


def test_second_worker_restores_checkpointed_state(kafka_bootstrap, topic_prefix, tmp_path, captures_dir):
    defs = {"flows": {"pair": {"keys": "ipsource,ipdestination", "value": "bytes", "t": 600, "n": 5}}}
    env = {"SFLOWPIPE_PROCESSORS__CHECKPOINT_INTERVAL_S": "1"}
    app_id = f"{topic_prefix}app"
    settings = ingest_settings(kafka_bootstrap, topic_prefix, tmp_path)
    datagrams = read_udp_payloads(str(captures_dir / "overflowd__sflow.pcap"))
    want = brute_force_pairs([d.payload for d in datagrams])
    (agent, ds), totals = max(want.items(), key=lambda kv: max(kv[1].values()))
    top_key, top_total = max(totals.items(), key=lambda kv: kv[1])

    first = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id, extra_env=env)
    first.start()
    try:
        t0 = time.time()
        publish_kafka(datagrams, settings, speed=0)
        # the worker has every batch of the capture (it commits after processing), then the
        # checkpoint interval passes: the next batch checkpoints the full state. That pause is the
        # timer itself, not a guess at how long processing takes.
        until(lambda: group_lag(kafka_bootstrap, app_id, topic_prefix + "flow-samples") == 0, timeout=60)
        time.sleep(1.2)
        publish_kafka(datagrams[:1], settings, speed=0)
        read_topic(kafka_bootstrap, topic_prefix + "flows",
                   lambda m: any(x["timestamp"] / 1000 > t0 + 4 for x in m), timeout=30)
    finally:
        assert first.stop() == 0
    second = ProcessorProcess(kafka_bootstrap, topic_prefix, tmp_path, defs, app_id, worker_index=1, extra_env=env)
    second.start()  # returns once it has its partitions: the batch below waits in the topic until read
    try:
        t1 = time.time()
        publish_kafka(datagrams[1:2], settings, speed=0)  # the agent's next batch reaches the new owner
        msgs = read_topic(kafka_bootstrap, topic_prefix + "flows",
                          lambda m: any(x["timestamp"] / 1000 > t1 + 2 and x["agent"] == agent for x in m),
                          timeout=60)
    finally:
        second.stop()
    assert "restored state of agent" in second.log.read_text()
    last = [m for m in msgs if m["timestamp"] / 1000 > t1 and m["agent"] == agent]
    assert last, "the new owner reported nothing"
    values = {e["key"]: e["value"] for e in last[-1]["flows"] if e["dataSource"] == ds}
    # the whole capture's contribution survived the takeover (not just the one new datagram), decayed
    # with t = 600 s since it was published (a minute or more on a loaded machine: that is not a loss)
    decay = math.exp(-(last[-1]["timestamp"] / 1000 - t0) / 600)
    assert values.get(top_key, 0) == pytest.approx(top_total / 600 * decay, rel=0.1)
