"""Kafka plumbing shared by every component: client settings and topic creation."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from sflowpipe.settings import KafkaSettings

log = logging.getLogger(__name__)


def ensure_topics(kafka: KafkaSettings, names: list[str], timeout: float = 30.0,
                  config: dict[str, str] | None = None) -> None:
    """Create the topics that are missing, with the configured partitions and replication."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics)
            break
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {kafka.bootstrap_servers} unreachable: {e}") from None
            time.sleep(0.5)
    missing = [n for n in names if n not in existing]
    if not missing:
        return
    new = [NewTopic(n, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor,
                    config=config or {}) for n in missing]
    for name, fut in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            fut.result()
            log.info("created topic %s (%d partitions)", name, kafka.partitions)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e) and "already exists" not in str(e).lower():
                raise


def wait_for_broker(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a metadata request to the broker succeeds."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # refusals are expected here
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} did not answer within {timeout:.0f}s") from None
            time.sleep(0.2)
