"""Test helpers around the real broker: fixtures' building blocks and topic readers."""

from __future__ import annotations

import os
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.codec import decode_any

TEST_BROKERS = ("apache", "tansu")


def broker_kind() -> str:
    """The broker the kafka tier starts: $TEST_BROKER, ``apache`` (the default: Apache Kafka, the
    broker production runs, tests/apache_kafka.py) or ``tansu`` (the broker `sflowpipe up` embeds).
    With $KAFKA_BOOTSTRAP_SERVERS set the suite uses that broker, and this names its kind."""
    kind = os.environ.get("TEST_BROKER", "apache").strip().lower()
    if kind not in TEST_BROKERS:
        raise ValueError(f"TEST_BROKER={kind!r}: one of {', '.join(TEST_BROKERS)}")
    return kind


def read_topic(bootstrap: str, topic: str, until, timeout: float = 60.0, idle: float = 3.0, decode=None) -> list:
    """Decoded messages of a topic from the beginning, until ``until(messages)`` or timeout/idle
    (``decode(value)``: for topics that are not Avro, e.g. ``json.loads`` for the status topic)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{os.getpid()}-{time.monotonic_ns()}",
                  "enable.auto.commit": False,
                  # an empty partition read from its beginning must not jump to "latest" on Tansu
                  "auto.offset.reset": "earliest"})
    out: list = []
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.5)
            for m in msgs:
                if m.error() is None:
                    out.append(decode_any(m.value())[1] if decode is None else decode(m.value()))
                    last = time.monotonic()
            if until(out):
                break
            if not msgs and time.monotonic() - last > idle and until is None:
                break
    finally:
        c.close()
    return out


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of ``topic`` the consumer group ``group`` has not committed yet (summed over the
    partitions; a partition the group never committed counts from its beginning). Zero: nothing of
    the topic is still in flight through that group."""
    return sum(lag for lag, _, _ in group_lags(bootstrap, group, topic).values())


def group_lags(bootstrap: str, group: str, topic: str) -> dict[int, tuple[int, int, int]]:
    """partition -> (lag, committed offset, high watermark) of ``group`` on ``topic``: what a
    failure message shows (which partition is stuck, and where)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:  # not subscribed: only reads the group's committed offsets, never joins (or rebalances) it
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        committed = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        out = {}
        for tp in committed:
            low, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            # a Faust worker may commit past the end Tansu reports (its high watermarks can lag its
            # log): nothing left
            out[tp.partition] = (max(0, high - max(tp.offset, low)), tp.offset, high)
        return out
    finally:
        c.close()


def newest_timestamp(bootstrap: str, topic: str) -> float | None:
    """The newest message timestamp (s) on ``topic``, None while it has none (or does not exist)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{os.getpid()}-{time.monotonic_ns()}",
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return None
        newest = None
        for p in md.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, high - 1)])
            m = c.poll(10)
            if m is not None and m.error() is None:
                ts = m.timestamp()[1] / 1000
                newest = ts if newest is None else max(newest, ts)
        return newest
    finally:
        c.close()
