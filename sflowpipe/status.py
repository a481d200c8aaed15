"""Status-topic messages built from a component's own metrics registry.

Every component that runs for long tells the API how it is doing on the status topic (JSON, keyed
by its instance id, ``kind`` saying whose): ingesters (``ingester``, ingest/service.py), processor
workers (``processor``) and sinks (``sink``). A message carries the same numbers the component's
``/metrics`` serves (``component_status`` reads them from its registry), so the status page,
``/analyzer/json`` and Prometheus never disagree. The API keeps each instance's last two messages
(rates are their difference) and forgets an instance that went silent (api/state.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Callable

from sflowpipe.metrics import Metrics

if TYPE_CHECKING:
    from sflowpipe.kafka import KafkaClients

log = logging.getLogger(__name__)

STATUS_EVERY_S = 2.0  # as ingest.status_interval_s's default: the status page refreshes every 2 s

# message field -> sample name summed over its series (a histogram: its _count or _sum sample)
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


def instance_id(*parts: object) -> str:
    """host:pid:PARTS: unique among the instances one status topic hears from."""
    return ":".join([socket.gethostname(), str(os.getpid()), *map(str, parts)])


def component_status(kind: str, component: str, instance: str, metrics: Metrics,
                     fields: dict[str, str]) -> dict:
    """One status message: ``fields`` read from ``metrics`` (a sample name summed over its series;
    counts as integers, seconds as floats)."""
    out: dict = {"kind": kind, "component": component, "instance": instance, "time": int(time.time() * 1000)}
    for field, sample in fields.items():
        value = metrics.total(sample)
        out[field] = round(value, 6) if field.endswith("_seconds") else int(value)
    return out


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
