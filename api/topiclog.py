"""The latest records of a topic the API serves as a long-poll list (events, logged flows), with ids
every API instance agrees on.

A record's id is its place on its topic: ``offset * PARTITION_SLOTS + partition``; every instance
reads the same messages, so it gives them the same ids, and a client may ask any instance behind
a load balancer for the records after the last id it saw. "After" follows the order this instance
read them in (partitions are read independently, so a record with a smaller id can arrive later
than one with a larger id; comparing ids would skip it); for an id this instance has not read
(older than what it keeps, or not yet read), it falls back to the larger ids. A record seen again
(the same message re-read, or the same content published again by a worker that took over, which
lands in the same partition since records are keyed by agent) keeps its first id and is listed once.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Hashable

PARTITION_SLOTS = 1024  # partitions an id can tell apart


def position_id(partition: int, offset: int) -> int:
    """A record's id from its topic position, the same in every API instance."""
    if not 0 <= partition < PARTITION_SLOTS:
        raise ValueError(f"partition {partition} >= {PARTITION_SLOTS}: ids would collide")
    return offset * PARTITION_SLOTS + partition


class TopicLog:
    """Owns the last ``size`` records of one topic, in the order read; not thread-safe (the caller
    holds its lock)."""

    def __init__(self, id_field: str, size: int) -> None:
        self.id_field = id_field
        self.size = size
        self.records: deque[tuple[int, dict]] = deque(maxlen=size)  # (read sequence, record)
        self.index: dict[int, int] = {}  # id -> read sequence
        self.seen: dict[Hashable, None] = {}  # contents, oldest first
        self.read = 0  # records kept so far (not counting repeats)

    def add(self, record: dict, partition: int, offset: int, content: Hashable) -> dict | None:
        """Keep ``record`` with its id set; None when it was seen already."""
        ident = position_id(partition, offset)
        if ident in self.index or content in self.seen:
            return None
        if len(self.seen) > 4 * self.size:
            self.seen = dict.fromkeys(list(self.seen)[-2 * self.size:])
        self.seen[content] = None
        self.read += 1
        if len(self.records) == self.size:
            self.index.pop(self.records[0][1][self.id_field], None)
        record[self.id_field] = ident
        self.records.append((self.read, record))
        self.index[ident] = self.read
        return record

    def after(self, after: int, limit: int, keep: Callable[[dict], bool] = lambda r: True) -> list[dict]:
        """Up to ``limit`` records after id ``after`` that ``keep`` accepts, newest first."""
        seq = self.index.get(after)
        out = []
        for read, r in reversed(self.records):
            if seq is not None and read <= seq:
                break
            if (seq is None and r[self.id_field] <= after) or not keep(r):
                continue
            out.append(dict(r))  # callers serialize it; the kept record stays as read
            if len(out) >= limit:
                break
        return out
