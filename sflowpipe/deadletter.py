"""The dead-letter topic: one record shape and one writer for every component that dead-letters.

The ingester (datagrams that do not decode), the HTTP event sinks (records an endpoint refused
or that still failed after the retries) and the control service (an apply or release that
failed after its retries) all write ``dead_letter`` records here: the input's bytes, where it
failed (``stage``: ``decode``, ``http:NAME``, ``control:POLICY:apply``), a low-cardinality
``reason`` code (a decode's ``DecodeReason``, ``delivery_failed``, ``action_failed``) and the
error's text. Each component hands in its own producer (``produce``) and codec; the writer counts
what it wrote by stage and reason for the component's ``sflowpipe_dead_letters_total``.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

from sflowpipe.metrics import Metrics

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
