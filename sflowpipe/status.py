"""Status-topic messages built from a component's own metrics registry: the one way to build one.

Every component that runs for long tells the API how it is doing on the status topic (JSON, keyed
by its instance id, ``kind`` saying whose): ingesters (``ingester``, ingest/service.py), processor
workers (``processor``), sinks (``sink``) and ``sflowpipe control`` (``control``). A message carries
the same numbers the component's ``/metrics`` serves (``component_status`` reads them from its
registry, as each kind's ``*_FIELDS`` table names them), so the status page, ``/analyzer/json``
and Prometheus never disagree. The API keeps each instance's last two messages (rates are their
difference) and forgets an instance that went silent (api/state.py); its own numbers (``api``) it
reads from its own registry, with no message on the topic.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Callable, NamedTuple, Union

from sflowpipe.metrics import Metrics

if TYPE_CHECKING:
    from sflowpipe.kafka import KafkaClients

log = logging.getLogger(__name__)

STATUS_EVERY_S = 2.0  # as ingest.status_interval_s's default: the status page refreshes every 2 s
# the status topic keeps a day: the API reads back api.history_s of it at start
STATUS_TOPIC_CONFIG = {"retention.ms": str(24 * 3600 * 1000)}


class Series(NamedTuple):
    """A field read from some of a sample's series: those labelled ``where``, summed; or, with
    ``by``, one number per value of that label (e.g. the ingester's samples by kind)."""

    sample: str
    where: tuple[tuple[str, str], ...] = ()
    by: str | None = None


# message field -> a sample name summed over its series (a histogram: its _count or _sum sample),
# or a Series
Field = Union[str, Series]

PROCESSOR_FIELDS = {
    "samples": "sflowpipe_processors_samples_total",
    "batches": "sflowpipe_processors_batches_total",
    "undecodable": "sflowpipe_processors_undecodable_total",
    "lag": "sflowpipe_processors_lag_messages",
    "rebalances": "sflowpipe_processors_rebalances_total",
    "checkpoints": "sflowpipe_processors_checkpoint_seconds_count",
    "checkpoint_seconds": "sflowpipe_processors_checkpoint_seconds_sum",
    "definitions_rejected": "sflowpipe_processors_definitions_rejected_total",
    "events": "sflowpipe_processors_events_total",
}
SINK_FIELDS = {
    "consumed": "sflowpipe_sink_messages_consumed_total",
    "undecodable": "sflowpipe_sink_undecodable_total",
    "records_written": "sflowpipe_sink_records_written_total",
    "flushes": "sflowpipe_sink_flush_seconds_count",
    "flush_seconds": "sflowpipe_sink_flush_seconds_sum",
    "flush_retries": "sflowpipe_sink_flush_retries_total",
    "dead_letters": "sflowpipe_dead_letters_total",
    "duplicates_skipped": "sflowpipe_sink_duplicates_skipped_total",
    "lag": "sflowpipe_sink_lag_messages",
}
CONTROL_FIELDS: dict[str, Field] = {
    "active": "sflowpipe_control_active",
    "applied": Series("sflowpipe_control_actions_total", (("outcome", "apply"),)),
    "released": Series("sflowpipe_control_actions_total", (("outcome", "release"),)),
    "refused": Series("sflowpipe_control_actions_total", (("outcome", "refused"),)),
    "failed": Series("sflowpipe_control_actions_total", (("outcome", "failed"),)),
    "dead_letters": "sflowpipe_dead_letters_total",
    "group_shared": "sflowpipe_control_group_shared",
}
INGEST_FIELDS: dict[str, Field] = {
    "datagrams": "sflowpipe_ingest_datagrams_received_total",
    "bytes": "sflowpipe_ingest_bytes_received_total",
    "malformed": "sflowpipe_ingest_datagrams_malformed_total",
    "unsupported_version": Series("sflowpipe_ingest_datagrams_malformed_total", (("reason", "unsupported_version"),)),
    "samples": Series("sflowpipe_ingest_samples_total", by="kind"),  # {flow, counters, discards}
    "kernel_drops": "sflowpipe_ingest_kernel_drops",
    "kafka_dropped": "sflowpipe_kafka_messages_dropped_total",
    "spill_pending": "sflowpipe_kafka_spill_pending_messages",
}
# an ingester's per-agent numbers (its message's ``agents``, with ingest/agents.py's session counters)
INGEST_AGENT_FIELDS = {
    "datagrams": "sflowpipe_ingest_agent_datagrams_total",
    "lost": "sflowpipe_ingest_agent_sequence_lost_total",
}
API_FIELDS: dict[str, Field] = {
    "requests": "sflowpipe_api_requests_total",
    "unauthorized": Series("sflowpipe_api_requests_total", (("status", "401"),)),
    "long_polls_open": "sflowpipe_api_long_polls_open",
}


def instance_id(*parts: object) -> str:
    """host:pid:PARTS: unique among the instances one status topic hears from."""
    return ":".join([socket.gethostname(), str(os.getpid()), *map(str, parts)])


def component_status(kind: str, component: str, instance: str, metrics: Metrics,
                     fields: dict[str, Field], **extra: object) -> dict:
    """One status message: ``fields`` read from ``metrics`` (counts as integers, seconds as
    floats), then ``extra``: what a kind carries beside its registry's numbers."""
    out: dict = {"kind": kind, "component": component, "instance": instance, "time": int(time.time() * 1000)}
    series = _series(metrics, {f if isinstance(f, str) else f.sample for f in fields.values()})
    for field, f in fields.items():
        if isinstance(f, str):
            f = Series(f)
        found = series.get(f.sample, {})
        matching = [(labels, v) for labels, v in found.items() if all(dict(labels).get(k) == w for k, w in f.where)]
        if f.by is None:
            out[field] = _number(field, sum(v for _, v in matching))
        else:
            by: dict[str, float] = {}
            for labels, v in matching:
                key = dict(labels).get(f.by, "")
                by[key] = by.get(key, 0) + v
            out[field] = {k: _number(field, v) for k, v in by.items()}
    out.update(extra)
    return out


def per_label(metrics: Metrics, label: str, fields: dict[str, str]) -> dict[str, dict[str, int]]:
    """{value of ``label``: {field: count}}: e.g. an ingester's numbers per agent."""
    series = _series(metrics, set(fields.values()))
    out: dict[str, dict[str, int]] = {}
    for field, sample in fields.items():
        for labels, v in series.get(sample, {}).items():
            out.setdefault(dict(labels).get(label, ""), {})[field] = int(v)
    return out


def _series(metrics: Metrics, samples: set[str]) -> dict[str, dict[tuple, float]]:
    """Every series of ``samples``, in one pass over the registry (a collect runs every collector)."""
    out: dict[str, dict[tuple, float]] = {}
    for family in metrics.snapshot():
        for s in family.samples:
            if s.name in samples:
                out.setdefault(s.name, {})[tuple(s.labels.items())] = s.value
    return out


def _number(field: str, value: float) -> int | float:
    return round(value, 6) if field.endswith("_seconds") else int(value)


class StatusProducer:
    """Publishes a component's status message every ``every`` seconds from its own loop (``tick``),
    best effort: a status that cannot be sent is skipped, never an error for the component."""

    def __init__(self, clients: "KafkaClients", topic: str, build: Callable[[], dict],
                 every: float = STATUS_EVERY_S) -> None:
        self.clients = clients
        self.topic = topic
        self.build = build  # () -> the message (component_status)
        self.every = every
        self.producer = None
        self.next = 0.0

    def start(self) -> "StatusProducer":
        self.producer = self.clients.producer({"linger.ms": 50, "message.timeout.ms": int(self.every * 5 * 1000)})
        return self

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.producer is None or now < self.next:
            return
        self.next = now + self.every
        try:
            message = self.build()
            self.producer.produce(self.topic, key=message["instance"].encode(), value=json.dumps(message).encode())
            self.producer.poll(0)
        except Exception as e:  # BufferError, KafkaException: the next tick sends a fresher one
            log.debug("status not published: %s", e)

    def close(self) -> None:
        if self.producer is not None:
            self.tick(float("inf"))  # the final numbers
            self.producer.flush(2.0)
            self.producer = None
