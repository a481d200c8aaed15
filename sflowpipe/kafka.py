"""Kafka plumbing shared by every component: the one client factory, topic creation, one-line errors.

``KafkaClients`` is the only place a confluent-kafka client is constructed (tests/test_kafka_clients.py
checks it): the composition root (sflowpipe/cli.py) builds one from ``kafka:`` settings and hands it
to every component, so every producer, consumer, admin client and the Faust app get the same
bootstrap servers, logger, and the user's settings: ``kafka.common`` to every client (TLS, SASL),
``kafka.producer`` to producers, ``kafka.consumer`` to consumers. A Kafka client option goes here.
"""

from __future__ import annotations

import logging
import time

from typing import Any, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sflowpipe.settings import KafkaSettings, Settings, TopicNames

log = logging.getLogger(__name__)

# A command that needs Kafka and cannot reach it says so within this many seconds (issue 12: every
# command fails within 10 s with one line); the ingester is the exception, it spills to disk instead.
CONNECT_TIMEOUT_S = 4.0


class KafkaUnreachable(RuntimeError):
    """The brokers did not answer, or refused the credentials; the message names their address
    (the CLI prints it as one line)."""

    def __init__(self, bootstrap: str, waited: float, cause: object = None, refused: bool = False) -> None:
        detail = f" ({cause})" if cause else ""
        what = "refused the credentials" if refused else "unreachable"
        super().__init__(f"Kafka at {bootstrap} {what} after {waited:.0f}s{detail}")
        self.bootstrap = bootstrap


class ClientErrors:
    """A client's ``error_cb``: keeps why the brokers did not answer, which librdkafka's request
    error hides behind "Broker transport failure" (a refused SASL login, a TLS handshake failure,
    a refused connection). Its texts name the mechanism and the user, never the password."""

    def __init__(self) -> None:
        self.last: KafkaError | None = None
        self.auth: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        if err.code() == KafkaError._AUTHENTICATION:
            self.auth = err
        if err.code() != KafkaError._ALL_BROKERS_DOWN or self.last is None:  # "1/1 brokers are down" says less
            self.last = err

    def unreachable(self, bootstrap: str, waited: float, fallback: object) -> KafkaUnreachable:
        seen = self.auth or self.last
        return KafkaUnreachable(bootstrap, waited, one_line(seen if seen is not None else fallback),
                                refused=self.auth is not None)


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


# a consumer that found the schema registry away (schemas.codec.RegistryUnavailable: unreachable, 5xx, 429)
# reads the message again after this (the registry client has retried a few times itself already)
REGISTRY_RETRY_S = 2.0


def seek_back(consumer: Consumer, messages: list) -> None:
    """Read ``messages`` (consumed, not processed) again: each partition among them is sought back to
    its first one. A consumer that cannot process a message now (the schema registry away) uses it
    instead of skipping the message and committing past it."""
    first: dict[tuple[str, int], int] = {}
    for m in messages:
        if m.error() is None:
            first.setdefault((m.topic(), m.partition()), m.offset())
    try:
        for (t, p), o in first.items():
            consumer.seek(TopicPartition(t, p, o))
    except KafkaException as e:  # revoked meanwhile: whoever gets it starts from the last commit
        log.debug("seek back: %s", one_line(e))


class KafkaClients:
    """Builds every Kafka client of a process from one ``KafkaSettings``.

    A component passes only what its role needs (a group id, acks, offsets policy); the user's
    settings are laid over it, later winning: the component's defaults, ``kafka.common``, then
    ``kafka.producer`` (producers) or ``kafka.consumer`` (consumers). Admin clients get
    ``kafka.common``. Picklable (worker processes build their own clients)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.settings = kafka

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers

    def _conf(self, role: Mapping[str, Any], extra: Mapping[str, str]) -> dict:
        return client_config({"bootstrap.servers": self.settings.bootstrap_servers, **role,
                              **self.settings.common, **extra})

    def producer(self, conf: Mapping[str, Any] | None = None) -> Producer:
        return Producer(self._conf(conf or {}, self.settings.producer))

    def consumer(self, group_id: str, conf: Mapping[str, Any] | None = None) -> Consumer:
        return Consumer(self._conf({"group.id": group_id, **(conf or {})}, self.settings.consumer))

    def admin(self, conf: Mapping[str, Any] | None = None) -> AdminClient:
        return AdminClient(self._conf(conf or {}, {}))

    def faust_settings(self) -> dict[str, Any]:
        """The Faust app's broker settings: the same brokers, and ``kafka.common`` mapped to what
        Faust (aiokafka) has for it (see ``faust_credentials``)."""
        out: dict[str, Any] = {"broker": [f"kafka://{b.strip()}" for b in self.bootstrap.split(",")]}
        credentials = faust_credentials(self.settings.common)
        if credentials is not None:
            out["broker_credentials"] = credentials
        if "client.id" in self.settings.common:
            out["broker_client_id"] = self.settings.common["client.id"]
        return out

    def require_broker(self, timeout: float = CONNECT_TIMEOUT_S, admin: AdminClient | None = None,
                       errors: ClientErrors | None = None) -> set[str]:
        """The cluster's topic names; KafkaUnreachable when the brokers do not answer within
        ``timeout`` (a consumer would otherwise wait silently forever), naming why if the client
        said (``errors``: the ``error_cb`` of a given ``admin``)."""
        errors = errors or ClientErrors()
        admin = admin or self.admin({"error_cb": errors})
        start = time.monotonic()
        deadline = start + timeout
        while True:
            try:
                return set(admin.list_topics(timeout=max(0.5, deadline - time.monotonic())).topics)
            except KafkaException as e:
                admin.poll(0)  # serves the error callbacks: why it failed
                if time.monotonic() >= deadline:
                    raise errors.unreachable(self.bootstrap, time.monotonic() - start, e) from None
                time.sleep(0.5)

    def ensure_topics(self, names: list[str], timeout: float = CONNECT_TIMEOUT_S,
                      config: dict[str, str] | None = None) -> None:
        """Create the topics that are missing, with the configured partitions and replication;
        KafkaUnreachable when the brokers do not answer within ``timeout``."""
        kafka = self.settings
        errors = ClientErrors()
        admin = self.admin({"error_cb": errors})
        existing = self.require_broker(timeout, admin, errors)
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

    def wait_for_broker(self, timeout: float = 30.0) -> None:
        """Block until a metadata request to the broker succeeds."""
        admin = self.admin({"log_level": 0})  # refusals are expected here
        start = time.monotonic()
        deadline = start + timeout
        while True:
            try:
                admin.list_topics(timeout=2)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise KafkaUnreachable(self.bootstrap, time.monotonic() - start) from None
                time.sleep(0.2)


# librdkafka settings in kafka.common that the Faust workers' client (aiokafka) has no use for:
# everything but these prefixes is librdkafka tuning and is left to the librdkafka clients
_SECURITY_PREFIXES = ("security.", "sasl.", "ssl.")
# what faust_credentials maps; any other security setting is refused rather than silently dropped
_FAUST_MAPPED = {"security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
                 "sasl.kerberos.service.name", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
                 "ssl.key.password", "ssl.endpoint.identification.algorithm"}


class UnsupportedSetting(ValueError):
    """A kafka.common setting the Faust workers cannot honour (one line naming it)."""


def faust_credentials(common: Mapping[str, str]):
    """``kafka.common``'s security settings as Faust ``broker_credentials`` (None: plaintext).

    Maps security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), sasl.mechanism(s) (PLAIN,
    SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI), sasl.username, sasl.password, sasl.kerberos.service.name
    and the TLS files ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password,
    ssl.endpoint.identification.algorithm (none: no host name check). Any other security.*, sasl.*
    or ssl.* setting raises UnsupportedSetting: a worker must not connect with less security than
    the user asked for."""
    unsupported = sorted(k for k in common if k.startswith(_SECURITY_PREFIXES) and k not in _FAUST_MAPPED)
    if unsupported:
        raise UnsupportedSetting(f"kafka.common.{unsupported[0]}: not supported by the Faust workers (aiokafka)")
    protocol = common.get("security.protocol", "PLAINTEXT").upper()
    mechanism = (common.get("sasl.mechanism") or common.get("sasl.mechanisms") or "PLAIN").upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise UnsupportedSetting(f"kafka.common.security.protocol: {protocol!r} is not one of PLAINTEXT, SSL, "
                                 f"SASL_PLAINTEXT, SASL_SSL")
    if protocol == "PLAINTEXT":
        return None
    import faust

    context = _ssl_context(common) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if mechanism == "GSSAPI":
        return faust.GSSAPICredentials(kerberos_service_name=common.get("sasl.kerberos.service.name", "kafka"),
                                       ssl_context=context)
    if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise UnsupportedSetting(f"kafka.common.sasl.mechanism: {mechanism} not supported by the Faust workers")
    return faust.SASLCredentials(username=common.get("sasl.username"), password=common.get("sasl.password"),
                                 ssl_context=context, mechanism=mechanism)


def _ssl_context(common: Mapping[str, str]):
    import ssl

    ctx = ssl.create_default_context(cafile=common.get("ssl.ca.location"))
    if common.get("ssl.certificate.location"):
        ctx.load_cert_chain(common["ssl.certificate.location"], common.get("ssl.key.location"),
                            common.get("ssl.key.password"))
    if common.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        ctx.check_hostname = False
    return ctx


# The topic each schema is written to: in registry mode its subject is "<topic>-value" (Confluent's
# TopicNameStrategy), the same for every component that writes it.
SCHEMA_TOPICS = {"raw_datagram": "raw", "dead_letter": "deadletter", "flow_sample_batch": "flow_samples",
                 "counter_sample_batch": "counter_samples", "discard_sample_batch": "discard_samples",
                 "enriched_flow_sample_batch": "enriched_flow_samples", "active_flows": "flows",
                 "metrics": "metrics", "event": "events", "flow_log": "flow_logs"}


def make_codec(kafka: KafkaSettings, topics: TopicNames) -> "Codec":  # noqa: F821
    """The process's one Codec: Confluent framing with ``kafka.schema_registry_url``, else single-object."""
    from schemas.codec import Codec

    subjects = {stem: kafka.topic(getattr(topics, name)) + "-value" for stem, name in SCHEMA_TOPICS.items()}
    return Codec(kafka.schema_registry_url, subjects)


def wiring(settings: Settings) -> tuple[KafkaClients, "Codec"]:  # noqa: F821
    """The Kafka client factory and the codec a process uses, from its settings: what the
    composition root (sflowpipe/cli.py) injects; a component built without them (tests, tools)
    gets the same from here, never its own client configuration or framing."""
    return KafkaClients(settings.kafka), make_codec(settings.kafka, settings.topics)


def require_broker(kafka: KafkaSettings, timeout: float = CONNECT_TIMEOUT_S) -> set[str]:
    """KafkaClients(kafka).require_broker(timeout), for callers without a factory at hand."""
    return KafkaClients(kafka).require_broker(timeout)


def ensure_topics(kafka: KafkaSettings, names: list[str], timeout: float = CONNECT_TIMEOUT_S,
                  config: dict[str, str] | None = None) -> None:
    """KafkaClients(kafka).ensure_topics(...), for callers without a factory at hand."""
    KafkaClients(kafka).ensure_topics(names, timeout, config)


def wait_for_broker(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a metadata request to a (local, plaintext) broker at ``bootstrap`` succeeds."""
    KafkaClients(KafkaSettings(bootstrap_servers=bootstrap)).wait_for_broker(timeout)
