"""Broker outage: the broker is killed mid-stream and restarted; every datagram sent before,
during and after ends up in Kafka, and the ingester's counters add up. On both brokers: Apache
Kafka (killed and started again on its log dir) and Tansu (durable S3 storage on a local moto
server, the storage a Tansu in production would use; its in-memory storage loses all on a kill)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sflowpipe.broker import EmbeddedBroker, free_port
from tests.apache_kafka import ApacheKafka
from tests.ingest.ingest_harness import IngestProcess, expected_samples, got_samples
from tests.ingest.test_ingest_e2e import as_udp, consume_all, generated
from ingest.replay import send_udp
from tests.kafka_helpers import read_topic
from tests.waiting import until

pytestmark = pytest.mark.kafka

S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_ALLOW_HTTP": "true"}


@pytest.fixture
def s3_endpoint(tmp_path):
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=open(tmp_path / "moto.log", "wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")

    def bucket() -> bool:
        try:
            s3.create_bucket(Bucket="tansu")
            return True
        except Exception:
            if proc.poll() is not None:  # moto exited: no use waiting
                raise
            return False

    until(bucket, timeout=30, interval=0.3)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["apache", "tansu"])
def restartable_broker(request, tmp_path):
    """``make(port=None)``: a broker not started yet, that start() starts again after kill() (a crash)
    with what it had acknowledged: Apache Kafka on its log dir, Tansu on S3 (moto). Stopped at the end."""
    made = []

    def make(port: int | None = None):
        if request.param == "apache":
            broker = ApacheKafka(tmp_path / "apache-kafka", port=port)
        else:
            env = {**S3_ENV, "AWS_ENDPOINT": request.getfixturevalue("s3_endpoint")}
            broker = EmbeddedBroker(port=port or free_port(), storage="s3://tansu/", env=env,
                                    log_path=str(tmp_path / "tansu.log"))
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


def test_broker_outage_loses_nothing(restartable_broker, tmp_path):
    broker = restartable_broker()
    broker.start()
    prefix = "outage."
    ing = IngestProcess(broker.bootstrap, prefix, tmp_path, free_port(), extra_env={
        "SFLOWPIPE_KAFKA__MESSAGE_TIMEOUT_S": "4",
        "SFLOWPIPE_KAFKA__MEMORY_QUEUE_MB": "1",
    })
    ing.start()
    before, during, after = generated(150, seed=1), generated(300, seed=2), generated(150, seed=3)
    try:
        send_udp(as_udp(before), f"127.0.0.1:{ing.port}", rate=1000)

        def delivered() -> bool:  # the broker has all of `before` when it goes down
            m = ing.metrics()
            return (m.get("sflowpipe_ingest_datagrams_received_total") == len(before)
                    and m["sflowpipe_kafka_producer_queue_messages"] == 0
                    and 0 < m.get("sflowpipe_kafka_messages_submitted_total", 0)
                    == m.get("sflowpipe_kafka_messages_delivered_total", 0))

        until(delivered, timeout=60, message=lambda: str(ing.metrics()))
        broker.kill()
        send_udp(as_udp(during), f"127.0.0.1:{ing.port}", rate=1000)
        # past message_timeout_s (4 s), what the producer held goes back to disk
        until(lambda: ing.metrics()["sflowpipe_kafka_spill_pending_messages"] > 0, timeout=60,
              message=lambda: str(ing.metrics()))
        assert ing.metrics().get("sflowpipe_kafka_messages_dropped_total", 0) == 0
        broker.start()
        send_udp(as_udp(after), f"127.0.0.1:{ing.port}", rate=1000)

        payloads = before + during + after
        want, _ = expected_samples(payloads)
        n_flow = sum(c for k, c in want.items() if k[0] == "flow")
        n_cnt = sum(c for k, c in want.items() if k[0] == "counters")
        flows, counters, _, _ = consume_all(broker.bootstrap, prefix, n_flow, n_cnt, 0, 0, timeout=120)
        raw = read_topic(broker.bootstrap, prefix + "raw", lambda x: len({r["data"] for r in x}) >= len(set(payloads)),
                         timeout=60)
        try:
            until(lambda: (m := ing.metrics())["sflowpipe_kafka_spill_pending_messages"] == 0
                  and m["sflowpipe_kafka_producer_queue_messages"] == 0, timeout=30, interval=0.5)
        except AssertionError:
            pass  # the accounting below names what is left
        m = ing.metrics()
    finally:
        code = ing.stop()
        broker.stop()
    assert code == 0, ing.log.read_text()
    got = got_samples(flows, counters, [])
    missing = want - got
    assert not missing, f"{sum(missing.values())} samples lost"  # at-least-once: redelivery may duplicate
    assert {r["data"] for r in raw} == set(payloads)
    # accounting: received = delivered + pending on disk + in flight + dropped (all zero at the end)
    raw_topic = f'{{topic="{prefix}raw"}}'
    assert m["sflowpipe_ingest_datagrams_received_total"] == len(payloads)
    assert m[f"sflowpipe_kafka_messages_delivered_total{raw_topic}"] >= len(payloads)
    assert m["sflowpipe_kafka_spill_pending_messages"] == 0
    assert m.get("sflowpipe_kafka_messages_dropped_total", 0) == 0
    assert m["sflowpipe_kafka_messages_spilled_total"] > 0
