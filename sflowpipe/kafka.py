"""Kafka plumbing shared by every component: client logging, topic creation, one-line errors."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from sflowpipe.settings import KafkaSettings

log = logging.getLogger(__name__)

# A command that needs Kafka and cannot reach it says so within this many seconds (issue 12: every
# command fails within 10 s with one line); the ingester is the exception, it spills to disk instead.
CONNECT_TIMEOUT_S = 4.0


class KafkaUnreachable(RuntimeError):
    """The brokers did not answer; the message names their address (the CLI prints it as one line)."""

    def __init__(self, bootstrap: str, waited: float, cause: object = None) -> None:
        detail = f" ({cause})" if cause else ""
        super().__init__(f"Kafka at {bootstrap} unreachable after {waited:.0f}s{detail}")
        self.bootstrap = bootstrap


class LibrdkafkaLog:
    """librdkafka's own log lines (confluent-kafka's ``logger`` setting) through Python logging:
    at most one line per facility every ``every`` seconds, never above INFO: the components report
    what matters in their own words (error callbacks, KafkaUnreachable), once, with the address."""

    def __init__(self, logger: logging.Logger | None = None, every: float = 10.0) -> None:
        self.logger = logger or logging.getLogger("librdkafka")
        self.every = every
        self.last: dict[str, float] = {}

    def log(self, level: int, msg: str, *args, **kwargs) -> None:
        fac = str(args[0]) if args else msg[:20]  # confluent-kafka calls log(level, "%s [%s] %s", fac, name, text)
        now = time.monotonic()
        if now - self.last.get(fac, -self.every) >= self.every:
            self.last[fac] = now
            self.logger.log(min(level, logging.INFO), msg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.logger, name)


_shared_log = LibrdkafkaLog()


def client_config(conf: dict) -> dict:
    """A librdkafka client configuration with the project's logger: no raw '%3|...' lines on stderr."""
    return {"logger": _shared_log, **conf}


def one_line(err: object) -> str:
    """A Kafka error (KafkaException, KafkaError or text) as one line without librdkafka's framing."""
    if isinstance(err, KafkaException) and err.args:
        err = err.args[0]
    text = err.str() if hasattr(err, "str") else str(err)
    return " ".join(text.split())


def require_broker(kafka: KafkaSettings, timeout: float = CONNECT_TIMEOUT_S,
                   admin: AdminClient | None = None) -> set[str]:
    """The cluster's topic names; KafkaUnreachable when the brokers do not answer within ``timeout``
    (a consumer would otherwise wait silently forever)."""
    admin = admin or AdminClient(client_config({"bootstrap.servers": kafka.bootstrap_servers}))
    start = time.monotonic()
    deadline = start + timeout
    while True:
        try:
            return set(admin.list_topics(timeout=max(0.5, deadline - time.monotonic())).topics)
        except KafkaException as e:
            if time.monotonic() >= deadline:
                raise KafkaUnreachable(kafka.bootstrap_servers, time.monotonic() - start, one_line(e)) from None
            time.sleep(0.5)


def ensure_topics(kafka: KafkaSettings, names: list[str], timeout: float = CONNECT_TIMEOUT_S,
                  config: dict[str, str] | None = None) -> None:
    """Create the topics that are missing, with the configured partitions and replication;
    KafkaUnreachable when the brokers do not answer within ``timeout``."""
    admin = AdminClient(client_config({"bootstrap.servers": kafka.bootstrap_servers}))
    existing = require_broker(kafka, timeout, admin)
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
    start = time.monotonic()
    deadline = start + timeout
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise KafkaUnreachable(bootstrap, time.monotonic() - start) from None
            time.sleep(0.2)
