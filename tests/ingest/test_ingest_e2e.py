"""End to end on the real broker: captures and generated traffic over real UDP into
`sflowpipe ingest`; the topics hold exactly the decoded samples, malformed ones dead-lettered."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from ingest.generate import Generator
from ingest.pcap import read_udp_payloads
from ingest.replay import send_udp
from ingest.pcap import UdpDatagram
from ingest.sflow.errors import DecodeReason
from sflowpipe.broker import free_port
from tests.conftest import capture_files
from tests.ingest.ingest_harness import IngestProcess, expected_samples, got_samples, sample_count
from tests.kafka_helpers import read_topic
from tests.schema_registry import registry_url  # noqa: F401 (fixture)
from tests.waiting import until

pytestmark = pytest.mark.kafka


def generated(n: int, seed: int = 7) -> list[bytes]:
    gen = Generator(agents=3, interfaces=4, counter_interval=0.5, seed=seed)
    return [gen.datagram(now=i * 0.05) for i in range(n)]


def as_udp(payloads: list[bytes]) -> list[UdpDatagram]:
    return [UdpDatagram(0, 0, "", 0, "", 0, p) for p in payloads]


def consume_all(bootstrap, prefix, n_flow, n_counters, n_discards, n_dead, timeout=90):
    flows = read_topic(bootstrap, prefix + "flow-samples", lambda m: sample_count(m, "flow") >= n_flow,
                       timeout=timeout) if n_flow else []
    counters = read_topic(bootstrap, prefix + "counter-samples",
                          lambda m: sample_count(m, "counters") >= n_counters, timeout=timeout) if n_counters else []
    discards = read_topic(bootstrap, prefix + "discard-samples",
                          lambda m: sample_count(m, "discards") >= n_discards, timeout=timeout) if n_discards else []
    dead = read_topic(bootstrap, prefix + "deadletter", lambda m: len(m) >= n_dead, timeout=timeout) if n_dead else []
    return flows, counters, discards, dead


def test_captures_and_generated_traffic_end_to_end(kafka_bootstrap, topic_prefix, tmp_path):
    payloads = []
    for path in capture_files():
        payloads.extend(d.payload for d in read_udp_payloads(str(path)))
    payloads.extend(generated(300))
    want, malformed = expected_samples(payloads)
    n = {k: sum(c for key, c in want.items() if key[0] == k) for k in ("flow", "counters", "discard")}

    ing = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, free_port())
    ing.start()
    try:
        send_udp(as_udp(payloads), f"127.0.0.1:{ing.port}", rate=3000)
        flows, counters, discards, dead = consume_all(kafka_bootstrap, topic_prefix, n["flow"], n["counters"],
                                                      n["discard"], malformed)
        metrics = ing.metrics()
        # the status page's and /analyzer's numbers: the ingester's status messages, built from the
        # same registry it serves
        def final(st):
            return st.get("datagrams") == len(payloads) and \
                sum(st.get("samples", {}).values()) == metrics["sflowpipe_ingest_samples_total"]

        statuses = read_topic(kafka_bootstrap, topic_prefix + "status", lambda m: any(map(final, m)),
                              decode=json.loads)
    finally:
        assert ing.stop() == 0, ing.log.read_text()

    got = got_samples(flows, counters, discards)
    assert got == want  # sample for sample: no loss, no extra
    assert len(dead) == malformed
    assert all(d["stage"] == "decode" and d["error"] and d["data"] for d in dead)
    # each dead letter names its DecodeReason; the malformed metric counts the same reasons
    reasons = Counter(d["reason"] for d in dead)
    assert set(reasons) <= {r.value for r in DecodeReason}
    for reason, count in reasons.items():
        assert metrics[f'sflowpipe_ingest_datagrams_malformed_total{{reason="{reason}"}}'] == count
        assert metrics[f'sflowpipe_dead_letters_total{{reason="{reason}",stage="decode"}}'] == count
    assert metrics["sflowpipe_ingest_samples_total"] == sum(want.values())
    assert metrics["sflowpipe_ingest_decode_seconds_count"] == len(payloads) - malformed
    status = next(filter(final, statuses))
    assert status["malformed"] == metrics["sflowpipe_ingest_datagrams_malformed_total"]
    assert status["bytes"] == metrics["sflowpipe_ingest_bytes_received_total"]
    assert status["unsupported_version"] == metrics.get(
        'sflowpipe_ingest_datagrams_malformed_total{reason="unsupported_version"}', 0)
    assert sum(status["samples"].values()) == metrics["sflowpipe_ingest_samples_total"]
    assert metrics["sflowpipe_ingest_datagrams_received_total"] == len(payloads)
    assert metrics["sflowpipe_ingest_datagrams_malformed_total"] == malformed
    raw = read_topic(kafka_bootstrap, topic_prefix + "raw", lambda m: len(m) >= len(payloads))
    assert sorted(r["data"] for r in raw) == sorted(payloads)
    # datagrams are all accounted for: every raw message delivered
    assert metrics[f'sflowpipe_kafka_messages_delivered_total{{topic="{topic_prefix}raw"}}'] == len(payloads)


def test_two_ingesters_share_one_port(kafka_bootstrap, topic_prefix, tmp_path):
    port = free_port()
    a = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, port)
    b = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, port)
    a.start()
    b.start()
    payloads = generated(400, seed=11)
    want, _ = expected_samples(payloads)
    try:
        # many source ports, so the kernel spreads datagrams over both sockets
        for i in range(0, len(payloads), 20):
            send_udp(as_udp(payloads[i : i + 20]), f"127.0.0.1:{port}", rate=4000)
        n_flow = sum(c for k, c in want.items() if k[0] == "flow")
        n_cnt = sum(c for k, c in want.items() if k[0] == "counters")
        flows, counters, _, _ = consume_all(kafka_bootstrap, topic_prefix, n_flow, n_cnt, 0, 0)
        ma, mb = a.metrics(), b.metrics()
    finally:
        assert a.stop() == 0 and b.stop() == 0
    assert got_samples(flows, counters, []) == want
    ra, rb = ma["sflowpipe_ingest_datagrams_received_total"], mb["sflowpipe_ingest_datagrams_received_total"]
    assert ra + rb == len(payloads) and ra > 0 and rb > 0, (ra, rb)


def test_workers_option_runs_processes_sharing_the_port(kafka_bootstrap, topic_prefix, tmp_path):
    ing = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, free_port(), workers=2)
    ing.start()
    payloads = generated(200, seed=5)
    want, _ = expected_samples(payloads)
    try:
        for i in range(0, len(payloads), 10):
            send_udp(as_udp(payloads[i : i + 10]), f"127.0.0.1:{ing.port}", rate=4000)
        n_flow = sum(c for k, c in want.items() if k[0] == "flow")
        flows, _, _, _ = consume_all(kafka_bootstrap, topic_prefix, n_flow, 0, 0, 0)
        try:  # every datagram counted (the flow samples were all consumed: this is only the counter catching up)
            until(lambda: ing.metrics().get("sflowpipe_ingest_datagrams_received_total", 0) == len(payloads),
                  timeout=30, interval=0.5)
        except AssertionError:
            pass  # the assertions below name the counts
        m = ing.metrics()
    finally:
        assert ing.stop() == 0, ing.log.read_text()
    assert sample_count(flows, "flow") == n_flow
    assert m["sflowpipe_ingest_datagrams_received_total"] == len(payloads)
    workers = {k.split('worker="')[1].split('"')[0] for k in m if 'worker="' in k}
    assert workers == {"0", "1"}


def test_schema_registry_mode_uses_confluent_wire_format(kafka_bootstrap, topic_prefix, tmp_path, registry_url):
    import os
    import subprocess
    import sys

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    ing = IngestProcess(kafka_bootstrap, topic_prefix, tmp_path, free_port(),
                        extra_env={"SFLOWPIPE_KAFKA__SCHEMA_REGISTRY_URL": registry_url})
    ing.start()
    payloads = generated(40, seed=21)
    try:
        send_udp(as_udp(payloads), f"127.0.0.1:{ing.port}", rate=2000)
        topic = topic_prefix + "flow-samples"
        # the ingester creates its topics once Kafka answers, in the background: its first delivery to
        # this one says the topic is there with all its partitions (listed earlier, it had none)
        delivered = f'sflowpipe_kafka_messages_delivered_total{{topic="{topic}"}}'
        until(lambda: ing.metrics().get(delivered, 0) > 0, 60, message=lambda: str(ing.metrics()))
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "registry-test"})
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        deser = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
        n, deadline = 0, time.monotonic() + 60
        want = sum(c for k, c in expected_samples(payloads)[0].items() if k[0] == "flow")
        while n < want and time.monotonic() < deadline:
            for m in c.consume(100, 0.5):
                assert m.value()[0] == 0  # Confluent framing: magic 0 + schema id
                batch = deser(m.value(), SerializationContext(topic, MessageField.VALUE))
                n += len(batch["sequence_number"])
        c.close()
        assert n == want
        env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
               "SFLOWPIPE_KAFKA__TOPIC_PREFIX": topic_prefix, "SFLOWPIPE_KAFKA__SCHEMA_REGISTRY_URL": registry_url}
        out = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "tail", "flow-samples", "--from-beginning",
                              "--max", "3", "--timeout", "10"], env=env, capture_output=True, timeout=60)
        assert len(out.stdout.splitlines()) == 3, out.stderr
    finally:
        assert ing.stop() == 0
