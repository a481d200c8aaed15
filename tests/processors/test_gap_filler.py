"""GapFiller: the committed offset of the processors' group, and the values of skipped offsets,
read from the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from processors.app import GapFiller
from sflowpipe.kafka import KafkaClients, ensure_topics
from sflowpipe.settings import load_settings

pytestmark = pytest.mark.kafka


def test_committed_offset_and_reading_a_gap(kafka_bootstrap, topic_prefix):
    settings = load_settings(**{"kafka.bootstrap_servers": kafka_bootstrap, "kafka.topic_prefix": topic_prefix,
                                "kafka.partitions": 2, "processors.app_id": topic_prefix + "app"})
    topic = settings.kafka.topic("flow-samples")
    ensure_topics(settings.kafka, [topic])
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        p.produce(topic, f"m{i}".encode(), partition=1)
    assert p.flush(30) == 0
    gaps = GapFiller(settings.processors, topic, KafkaClients(settings.kafka))
    try:
        assert gaps.committed(1) is None  # the group never committed
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": settings.processors.app_id})
        c.commit(offsets=[TopicPartition(topic, 1, 3)], asynchronous=False)
        c.close()
        assert gaps.committed(1) == 3
        assert gaps.read(1, 3, 7) == [(3, b"m3"), (4, b"m4"), (5, b"m5"), (6, b"m6")]
        assert gaps.read(1, 8, 10) == [(8, b"m8"), (9, b"m9")]
    finally:
        gaps.close()
