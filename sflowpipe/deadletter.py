"""The dead-letter topic: one record shape and one writer for every component that dead-letters.

The ingester (datagrams that do not decode), the HTTP event sinks (records an endpoint refused
or that still failed after the retries), the ClickHouse sink (a message ClickHouse refuses for its
data) and the control service (an apply or release that failed after its retries) all write
``dead_letter`` records here: the input's bytes, where it
failed (``stage``: ``decode``, ``http:NAME``, ``control:POLICY:apply``), a low-cardinality
``reason`` code (a decode's ``DecodeReason``, ``delivery_failed``, ``action_failed``) and the
error's text. Each component hands in its own producer (``produce``) and codec; the writer counts
what it wrote by stage and reason for the component's ``sflowpipe_dead_letters_total``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Protocol

from sflowpipe.metrics import Metrics

if TYPE_CHECKING:
    from sflowpipe.kafka import KafkaClients

# (topic, key, value, headers) -> None; raises when the component's producer refuses it
Produce = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], None]

ERROR_CHARS = 1000  # of an error's text kept in the record


class Encoder(Protocol):  # schemas.codec.Codec
    def encode(self, stem: str, datum: dict) -> bytes: ...


def dead_letter(stage: str, reason: str, error: str, data: bytes, *, receive_time_us: int | None = None,
                exporter_address: str = "", exporter_port: int = 0, offset: int | None = None) -> dict:
    """One dead_letter datum (schemas/dead_letter.v2.avsc)."""
    return {"receive_time_us": time.time_ns() // 1000 if receive_time_us is None else receive_time_us,
            "exporter_address": exporter_address, "exporter_port": exporter_port, "data": data,
            "stage": stage, "error": error[:ERROR_CHARS], "offset": offset, "reason": reason}


class DeadLetterWriter:
    """Encodes dead letters and hands them to the component's producer; counts them."""

    def __init__(self, topic: str, codec: Encoder, produce: Produce) -> None:
        self.topic = topic
        self.codec = codec
        self.produce = produce
        self.counts: dict[tuple[str, str], int] = {}  # (stage, reason) -> written

    def write(self, record: dict, key: bytes | None = None, source_topic: str | None = None) -> None:
        """Send and count (a producer whose messages are acknowledged later, or not lost: ingest's spill)."""
        self.send(record, key, source_topic)
        self.count(record["stage"], record.get("reason") or "")

    def send(self, record: dict, key: bytes | None = None, source_topic: str | None = None) -> None:
        """Hand the record to the producer only: ``count`` it once the broker took it (a component
        that retries a refused write would otherwise count every attempt)."""
        headers = [("source_topic", source_topic.encode())] if source_topic else []
        self.produce(self.topic, key, self.codec.encode("dead_letter", record), headers)

    def count(self, stage: str, reason: str, n: int = 1) -> None:
        self.counts[(stage, reason)] = self.counts.get((stage, reason), 0) + n

    def export(self, metrics: Metrics) -> None:
        """Count on ``metrics`` as ``sflowpipe_dead_letters_total{stage, reason}``."""
        metrics.observed("sflowpipe_dead_letters_total", "counter",
                         "records written to the dead-letter topic, by stage and reason code",
                         lambda: dict(self.counts), ("stage", "reason"))


class DeadLetterUndelivered(RuntimeError):
    """The broker did not take every dead letter of a write: the caller's flush fails (and is retried)."""


class AcknowledgedDeadLetters:
    """Dead letters a sink writes before it commits past their messages (the HTTP event sinks, the
    ClickHouse sink): sent on the sink's own producer, waited for, and counted only once the broker
    took all of them; otherwise DeadLetterUndelivered, nothing counted, and the sink's retried flush
    writes them again."""

    def __init__(self, clients: "KafkaClients", codec: Encoder, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self.producer = clients.producer({"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                                          "compression.type": clients.settings.compression,
                                          "message.timeout.ms": int(timeout_s * 1000)})
        self.writer = DeadLetterWriter(topic, codec, self._produce)
        self._failures: list[str] = []  # delivery errors of the current write

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: list) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._delivered)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.1)

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self._failures.append(str(err))

    def write(self, letters: list[tuple[dict, bytes | None, str | None]]) -> None:
        """Write (record, key, source topic) each, wait for the broker, then count them."""
        self._failures = failures = []
        for record, key, source_topic in letters:
            self.writer.send(record, key, source_topic)
        left = self.producer.flush(self.timeout_s)
        if left or failures:
            raise DeadLetterUndelivered(f"dead-letter topic {self.topic} did not take {left + len(failures)} of "
                                        f"{len(letters)} messages: {failures[:1] or 'timed out'}")
        for record, _, _ in letters:
            self.writer.count(record["stage"], record.get("reason") or "")

    def export(self, metrics: Metrics) -> None:
        self.writer.export(metrics)

    def close(self) -> None:
        self.producer.flush(self.timeout_s)
