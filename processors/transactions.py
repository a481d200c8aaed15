"""Exactly-once processing (``processors.processing_guarantee: exactly_once``) on Kafka transactions.

A worker's live state is Python (processors/engine.py), checkpointed per agent to the
``agent-state`` table. Exactly-once means: what a partition's samples produced (enriched batches,
active flows, metrics, events, flow logs), the checkpoint of its agents' state and the group's
offsets for it become visible together or not at all. Faust-streaming runs one transactional
producer per assigned partition of the sample topics' topic group (transactional id
``{app id}-{group}-{partition}``) and commits offsets with ``send_offsets_to_transaction`` on that
producer. This module puts everything else in the same transactions:

* every output of an agent goes to the transaction of the partition the agent's samples arrive
  on (faust-streaming 0.15 would choose the transaction by the *destination* partition, and send
  outside any transaction to topics it does not consume: its issue #177);
* before each commit, the agents whose state changed since the last one are checkpointed into the
  same transaction, as records of the ``agent-state`` table's changelog topic (key: agent, value:
  JSON, as Faust writes them at least once), on the partition of their samples. Exactly-once reads
  them back itself (:class:`CheckpointLog`, ``read_committed``), not through a Faust table: Faust
  0.15's table recovery takes a changelog's end from the consumer's last fetch in this mode, which
  is unknown (-1) for a partition just assigned, and so recovers nothing;
* one lock orders it all: a batch's accounting and its outputs, a report round's outputs, and a
  commit never interleave, so a committed checkpoint holds exactly the batches and report rounds
  whose outputs were committed with it;
* partitions with new outputs or state but no new offsets (a report round on an idle partition)
  are committed by :meth:`Transactions.commit_idle`, called after each report round: faust only
  commits partitions with newly acknowledged offsets, and an open transaction would otherwise
  wait for the broker's transaction timeout to abort it.

On a rebalance: the revoking worker commits everything first (outputs, checkpoints, offsets), and
keeps the state of the partitions it keeps; it closes the transactional producers of partitions
it no longer holds (faust-streaming kept one across a move and reused it, fenced, when the
partition came back: every send then failed). A new owner reads the partition's checkpoints once
its producers have fenced the old owner's (aborting its open transaction).

What this gives on a crash: the killed worker's open transactions are aborted (fenced by the next
owner's producer for the same transactional id); the next owner restores each agent from the last
committed checkpoint, and skips every replayed batch that checkpoint already accounted (its
outputs were committed with it); the rest is processed once. A committed checkpoint can be ahead
of the committed offsets, never behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

EXACTLY_ONCE = "exactly_once"


def checkpoint_topic(processors: Any) -> str:
    """The ``agent-state`` table's changelog topic, named as Faust names it (app id, table name)."""
    return f"{processors.app_id}-agent-state-changelog"


class TransactionsUnsupported(RuntimeError):
    """The broker does not do Kafka transactions (Tansu)."""


def require_transactions(clients: Any, topic: str, app_id: str, timeout: float = 15.0) -> None:
    """Refuse exactly-once at start on a broker without working transactions, with the reason,
    rather than a worker that fails on its first commit or, worse, double-counts.

    Tansu 0.6 answers every transaction request (librdkafka's init, begin, abort and commit all
    succeed) but hands aborted records to ``read_committed`` consumers: so the probe is semantic.
    One record is written to ``topic`` (one partition, an hour's retention) in an aborted
    transaction, one in a committed one, and a ``read_committed`` consumer reads them back: it must
    see the committed record only."""
    import os
    import socket

    from confluent_kafka import KafkaException, TopicPartition

    def refused(reason: str) -> TransactionsUnsupported:
        return TransactionsUnsupported(
            f"processors.processing_guarantee: exactly_once needs a broker with Kafka transactions; the one at "
            f"{clients.bootstrap} {reason}. Use at_least_once (the default) on this broker (Tansu has no "
            "transactions)")

    clients.ensure_topics([topic], config={"retention.ms": str(3600 * 1000)})
    producer = clients.producer({"transactional.id": f"{app_id}-probe-{socket.gethostname()}-{os.getpid()}",
                                 "transaction.timeout.ms": 10_000})
    written: list[int] = []

    def delivered(err, msg) -> None:
        if err is None:
            written.append(msg.offset())

    try:
        producer.init_transactions(timeout)
        for value, end in ((b"aborted", producer.abort_transaction), (b"committed", producer.commit_transaction)):
            producer.begin_transaction()
            producer.produce(topic, value, partition=0, on_delivery=delivered)
            producer.flush(timeout)
            end(timeout)
    except KafkaException as e:
        err = e.args[0] if e.args else e
        raise refused(f"refused them ({err.str() if hasattr(err, 'str') else err})") from None
    if len(written) != 2:
        raise refused("did not take the probe's records")
    consumer = clients.consumer(f"{app_id}-probe", {"isolation.level": "read_committed", "enable.auto.commit": False})
    seen: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, written[0])])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and b"committed" not in seen:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                seen.append(m.value())
    finally:
        consumer.close()
    if b"aborted" in seen:
        raise refused("showed a record of an aborted transaction to a read_committed consumer")
    if b"committed" not in seen:
        raise refused(f"did not show a committed transaction's record within {timeout:.0f} s")


class CheckpointLog:
    """The newest committed checkpoint of each agent, read from the changelog topic's partitions
    (``read_committed``) as they are assigned: from where the last read of a partition ended."""

    def __init__(self, clients: Any, topic: str, group: str) -> None:
        self.clients, self.topic, self.group = clients, topic, group
        self.latest: dict[str, dict] = {}
        self.next_offset: dict[int, int] = {}

    def refresh(self, partitions: Iterable[int], timeout: float = 60.0) -> int:
        """Read each partition from where the last read ended to its end; the records read."""
        import json

        from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

        parts = sorted(set(partitions))
        if not parts:
            return 0
        consumer = self.clients.consumer(self.group, {"isolation.level": "read_committed", "enable.auto.commit": False,
                                                      "enable.partition.eof": True})
        read = 0
        try:
            consumer.assign([TopicPartition(self.topic, p, self.next_offset.get(p, OFFSET_BEGINNING)) for p in parts])
            pending = set(parts)
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                m = consumer.poll(0.5)
                if m is None:
                    continue
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                        self.next_offset[m.partition()] = m.offset()
                    continue
                self.next_offset[m.partition()] = m.offset() + 1
                read += 1
                try:
                    agent = json.loads(m.key())
                    value = json.loads(m.value()) if m.value() is not None else None
                except (TypeError, ValueError):
                    log.warning("%s[%d]@%d: not a checkpoint record; skipped", self.topic, m.partition(), m.offset())
                    continue
                if value is None:
                    self.latest.pop(agent, None)
                else:
                    self.latest[agent] = value
            if pending:
                raise RuntimeError(f"{self.topic}: partitions {sorted(pending)} not read to their end in {timeout:.0f} s")
        finally:
            consumer.close()
        return read

    def get(self, agent: str) -> dict | None:
        return self.latest.get(agent)


class Transactions:
    """The outputs and checkpoints of one worker in exactly-once mode (see the module's text).

    ``checkpoint(agent)`` gives an agent's checkpoint record as the table's changelog holds it
    (key and value, serialized as the table serializes them);
    ``agents_of(partition)`` the agents owned through that partition. Start with :meth:`install`
    once the app's consumer exists."""

    def __init__(self, app: Any, group_topic: str, changelog_topic: str,
                 checkpoint: Callable[[str], tuple[bytes, bytes]], owner: dict[str, int], metrics: Any) -> None:
        self.app = app
        self.group_topic = group_topic  # a sample topic: its topic group names the transactions
        self.changelog_topic = changelog_topic
        self.checkpoint = checkpoint
        self.owner = owner  # agent -> partition (processors/app.py)
        self.metrics = metrics
        self._lock: asyncio.Lock | None = None
        self.changed: set[str] = set()  # agents whose state changed since their last checkpoint
        self.dirty: set[int] = set()  # partitions with uncommitted outputs or changed agents
        self._installed = False
        metrics.describe("sflowpipe_processors_transactions_total", "counter",
                         "Kafka transactions committed (exactly-once), by what started them: a commit of "
                         "offsets, or a report round on a partition without new offsets", labels=("trigger",))
        metrics.describe("sflowpipe_processors_transaction_outputs_dropped_total", "counter",
                         "outputs not sent because this worker no longer held their partition's transaction "
                         "(a rebalance under way: the next owner produces them from the committed state)")

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def tid(self, partition: int) -> str:
        group = self.app.assignor.group_for_topic(self.group_topic)
        return f"{self.app.conf.id}-{group}-{partition}"

    def touched(self, agent: str) -> None:
        """``agent``'s state changed (call with the lock held)."""
        self.changed.add(agent)
        part = self.owner.get(agent)
        if part is not None:
            self.dirty.add(part)

    async def send(self, topic: str, key: bytes, value: bytes, source_partition: int,
                   partition: int | None = None) -> None:
        """Queue one output in the transaction of ``source_partition`` (call with the lock held)."""
        producer = self.app.producer
        tid = self.tid(source_partition)
        if tid not in producer._transaction_producers:
            self.metrics.inc("sflowpipe_processors_transaction_outputs_dropped_total")
            log.debug("no transaction %s (partition revoked): output to %s not sent", tid, topic)
            return
        try:
            await producer.send(topic, key, value, partition, None, None, transactional_id=tid)
        except Exception as e:  # fenced: the partition moved on while a rebalance was under way
            self.metrics.inc("sflowpipe_processors_transaction_outputs_dropped_total")
            log.warning("exactly-once: output to %s not sent in transaction %s (%s); the partition's next owner "
                        "produces it from the committed state", topic, tid, e)
            return
        self.dirty.add(source_partition)

    async def _checkpoint_partitions(self, partitions: Iterable[int]) -> None:
        parts = set(partitions)
        for agent in [a for a in self.changed if self.owner.get(a) in parts]:
            part = self.owner[agent]
            key, value = self.checkpoint(agent)
            await self.send(self.changelog_topic, key, value, part, partition=part)
            self.changed.discard(agent)

    def install(self) -> None:
        """Wrap the consumer's transaction commit: checkpoints first, all under the lock."""
        if self._installed:
            return
        manager = self.app.consumer.transactions
        commit = manager.commit

        async def commit_with_checkpoints(offsets, start_new_transaction: bool = True) -> bool:
            async with self.lock:
                parts = {tp.partition for tp in offsets if self.app.assignor.group_for_topic(tp.topic)
                         == self.app.assignor.group_for_topic(self.group_topic)}
                await self._checkpoint_partitions(parts)
                done = await commit(offsets, start_new_transaction=start_new_transaction)
                self.dirty -= parts
                self.metrics.inc("sflowpipe_processors_transactions_total", len(parts), (("trigger", "offsets"),))
                return done

        manager.commit = commit_with_checkpoints
        self._installed = True

    async def commit_idle(self) -> None:
        """Commit the partitions with outputs or changed state but no new offsets."""
        if not self.dirty:
            return
        producer = self.app.producer
        async with self.lock:
            parts = set(self.dirty)
            await self._checkpoint_partitions(parts)
            for part in sorted(parts):
                tid = self.tid(part)
                if tid not in producer._transaction_producers:
                    self.dirty.discard(part)
                    continue
                await producer.commit_transaction(tid)
                await producer.begin_transaction(tid)
                self.dirty.discard(part)
                self.metrics.inc("sflowpipe_processors_transactions_total", labels=(("trigger", "report"),))

    def forget(self, agents: Iterable[str], partitions: Iterable[int]) -> None:
        """Revoked: their uncommitted work is aborted with the transaction; the next owner redoes it."""
        self.changed.difference_update(agents)
        self.dirty.difference_update(partitions)

    async def commit_all(self) -> bool:
        """Everything this worker did, committed (a rebalance is starting): True if it was."""
        try:
            await self.app.consumer.commit()  # acknowledged offsets, with their checkpoints (install())
            self.dirty.update(self.owner[a] for a in self.changed if a in self.owner)
            await self.commit_idle()
        except Exception as e:
            log.warning("exactly-once: commit before the rebalance failed (%s); state is restored from the last "
                        "committed checkpoints", e)
            return False
        return not self.dirty and not self.changed

    async def prune(self, partitions: Iterable[int]) -> None:
        """Close the transactional producers of this group's partitions that are no longer assigned."""
        keep = {self.tid(p) for p in partitions}
        prefix = self.tid(0).rpartition("-")[0] + "-"
        producer = self.app.producer
        for tid in [t for t in producer._transaction_producers if t.startswith(prefix) and t not in keep]:
            log.info("exactly-once: closing the transactional producer %s (its partition moved)", tid)
            await producer.stop_transaction(tid)


class NoTransactions:
    """At-least-once: no lock to speak of, nothing to checkpoint at commit."""

    class _Null:
        async def __aenter__(self) -> None:
            return None

        async def __aexit__(self, *exc) -> None:
            return None

    lock = _Null()

    def touched(self, agent: str) -> None:
        pass

    def install(self) -> None:
        pass

    async def commit_idle(self) -> None:
        pass

    def forget(self, agents: Iterable[str], partitions: Iterable[int]) -> None:
        pass

