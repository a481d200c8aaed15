"""`sflowpipe control`: measurement-based control. Threshold events block a flow (HTTP call to a
controller, BGP route, or a dry run); the measured flows release it once the flow is gone.

One consumer group (``--consumer-group``, default ``sflowpipe-control``) reads the events topic
and the flows topic. An event of a policy's threshold applies a control for its flow key unless
it is already active, the key's address is allow-listed, or the policy's ``max_controls`` is
reached (``control_refused``). The latest active flows of the threshold's flow definition,
merged across agents and data sources by their largest value, say whether the flow is still
over the threshold; a control is released once it has been held ``min_hold_s`` and the flow has
been below the threshold (or absent from the top flows) for ``release_below_s``.

Durability: every control's state is written, acknowledged, to the compacted ``controls`` topic
(key ``policy|flowkey``, JSON value; a tombstone after release) before the consumed offsets are
committed. On start the whole topic is read back first, so a restarted service neither applies a
control twice nor forgets to release one. Run one instance: the state is global, a second
member of the group would see only some agents' partitions (both log an error when it happens).

Every apply, release, refusal and failure is published on the events topic (thresholdID the
policy, metric ``control_apply``/``control_release``/``control_refused``/``control_failed``) and
logged; the service ignores events whose metric starts with ``control_``. Its numbers (applied,
released, refused, failed, active) go to the status topic every 2 s (kind ``control``,
sflowpipe/status.py) for the API's status page and /analyzer/json. A failed action (after
its retry budget) also goes to the dead-letter topic (stage ``control:POLICY:apply|release``); a
failed apply is tried again every ``apply_retry_s`` while the flow stays over the threshold (not
across a restart: a new event is needed then), a failed release every 30 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from sflowpipe.readmodels.activeflows import ActiveFlows
from schemas.codec import Codec, CodecError, RegistryUnavailable
from sflowpipe.kafka import REGISTRY_RETRY_S, KafkaClients, seek_back, wiring
from sflowpipe.deadletter import DeadLetterWriter, dead_letter
from sflowpipe.metrics import Metrics, MetricsServer
from sflowpipe.settings import ControlPolicy, KafkaSettings, Settings, TopicNames
from sflowpipe.signals import on_stop_signals
from sflowpipe.status import (CONTROL_FIELDS, STATUS_TOPIC_CONFIG, StatusProducer, component_status,
                              instance_id)
from sinks.control.actions import Action, make_action
from sinks.control.state import APPLIED, RELEASED, Control, ControlState, key_of
from sinks.args import control_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)

TICK_S = 0.5  # how often the flows' values are compared with the active controls
STALE_FLOWS_S = 10.0  # active-flows messages older than this are ignored (their agent stopped reporting)
RELEASE_RETRY_S = 30.0  # a release that failed is tried again after this


def read_compacted(clients: KafkaClients, topic: str, quiet_s: float = 2.0, timeout: float = 300.0
                   ) -> dict[str, dict[str, Any] | None]:
    """The latest value per key of a compacted topic, read from its beginning until no message
    came for ``quiet_s``. Raises rather than return a partial state after ``timeout``: starting
    from one could apply a control twice.

    The quiet period is for Tansu (`sflowpipe up`), whose high watermarks can lag its log (1 for
    40 messages: tests/api/test_status_kafka.py); on Apache Kafka, whose end offsets are exact,
    reading up to them would do, and the quiet period only costs ``quiet_s`` at each start."""
    c = clients.consumer("sflowpipe-control-restore", {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out: dict[str, dict[str, Any] | None] = {}
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                md = c.list_topics(topic, timeout=5).topics.get(topic)
                if md is not None and md.error is None and md.partitions:
                    break
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"controls topic {topic} not found")
            time.sleep(0.5)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            if time.monotonic() > deadline:
                raise RuntimeError(f"controls topic {topic}: still reading after {timeout:.0f}s")
            for m in c.consume(500, 0.2):
                if m.error() is not None:
                    continue
                last = time.monotonic()
                key = (m.key() or b"").decode("utf-8", "replace")
                try:
                    out[key] = json.loads(m.value()) if m.value() else None
                except ValueError:
                    log.error("controls topic: skipping unreadable value of %r", key)
    finally:
        c.close()
    return out


class ControlService:
    """Owns the consumer, the producer, the state machine and the policies' actions."""

    def __init__(self, policies: dict[str, ControlPolicy], kafka: KafkaSettings, t: TopicNames,
                 clients: KafkaClients, codec: Codec, group: str = "sflowpipe-control",
                 actions: dict[str, Action] | None = None, clock: Callable[[], float] = time.time,
                 restore_quiet_s: float = 2.0) -> None:
        """``policies``: sinks.controls; ``kafka`` names the topics with ``t`` and bounds the producer's
        in-flight window (message_timeout_s)."""
        self.clients, self.codec = clients, codec
        self.kafka = kafka
        self.policies = policies
        k = kafka
        self.events_topic = k.topic(t.events)
        self.flows_topic = k.topic(t.flows)
        self.controls_topic = k.topic(t.controls)
        self.deadletter_topic = k.topic(t.deadletter)
        self.status_topic = k.topic(t.status)
        self.group = group
        self.clock = clock
        self.restore_quiet_s = restore_quiet_s
        self.state = ControlState(self.policies, clock)
        self.actions = actions if actions is not None else {
            name: make_action(p, name) for name, p in self.policies.items()}
        self.flows = ActiveFlows()
        self.stopping = threading.Event()
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.offsets: dict[tuple[str, int], int] = {}
        self.last_id = 0
        self.counts = {"apply": 0, "release": 0, "refused": 0, "failed": 0}
        self.assigned = 0  # partitions of the last assignment
        self.partial = False  # another instance shares the consumer group (see _assigned)
        self.metrics = Metrics()
        # the producer exists once started: looked up at each write
        self.dead_letters = DeadLetterWriter(self.deadletter_topic, self.codec,
                                             lambda t, key, value, headers: self.producer.produce(
                                                 t, value, key, headers=headers))
        self.dead_letters.export(self.metrics)
        self.metrics.observed("sflowpipe_control_actions_total", "counter", "controls applied, released, refused "
                              "(max_controls, allow list) and failed (after the action's retries: dead-lettered)",
                              lambda: {(k,): v for k, v in self.counts.items()}, ("outcome",))
        self.metrics.observed("sflowpipe_control_active", "gauge", "controls applied now",
                              lambda: len(self.active()))
        self.metrics.observed("sflowpipe_control_group_shared", "gauge", "1 when another instance is in the "
                              "consumer group (each sees only some agents: run one)", lambda: int(self.partial))
        # the status page's and /analyzer's control numbers: this registry's, on the status topic
        self.instance = instance_id(group)
        self.status = StatusProducer(clients, self.status_topic, self.status_message)

    def status_message(self) -> dict:
        return component_status("control", self.group, self.instance, self.metrics, CONTROL_FIELDS)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create the topics, restore the controls from the compacted topic, then subscribe."""
        k = self.kafka
        self.clients.ensure_topics([self.events_topic, self.flows_topic, self.deadletter_topic])
        self.clients.ensure_topics([self.controls_topic], config={"cleanup.policy": "compact"})
        self.clients.ensure_topics([self.status_topic], config=STATUS_TOPIC_CONFIG)
        self.codec.prepare(["event", "dead_letter"])
        self.producer = self.clients.producer({
            "acks": "all", "enable.idempotence": True,
            # no disk spill behind this producer: not the ingester's short window, wait it out
            "linger.ms": 5, "message.timeout.ms": int(max(k.message_timeout_s, 300.0) * 1000)})
        for action in self.actions.values():
            action.start()
        restored = self.state.restore(read_compacted(self.clients, self.controls_topic, self.restore_quiet_s))
        for c in restored:
            log.info("control %s: %s restored (applied %.0fs ago)", c.policy, c.key, self.clock() - c.applied_at)
        self.consumer = self.clients.consumer(self.group, {"enable.auto.commit": False, "auto.offset.reset": "earliest",
                                                           "session.timeout.ms": 10_000,
                                                           "max.partition.fetch.bytes": 8 << 20})
        self.consumer.subscribe([self.events_topic, self.flows_topic], on_assign=self._assigned)
        self.status.start()

    def stop(self) -> None:
        self.stopping.set()

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A second instance in the group would take some of the partitions: each would then see
        only its agents' events and flows, release controls whose flow it cannot see and miss
        others' events. Said loudly (and in ``partial``) rather than silently."""
        try:
            md = consumer.list_topics(timeout=5).topics
            total = sum(len(md[t].partitions) for t in (self.events_topic, self.flows_topic) if t in md)
        except KafkaException as e:
            log.warning("control: cannot check the assignment: %s", e)
            return
        self.assigned = len(partitions)
        self.partial = len(partitions) < total
        if self.partial:
            log.error("control: this instance has %d of the %d partitions of %s and %s: another member is in "
                      "consumer group %s. Run one control instance: its state is global", len(partitions), total,
                      self.events_topic, self.flows_topic, self.group)
        else:
            log.info("control: assigned all %d partitions", len(partitions))

    def run(self) -> None:
        """Consume until stop(); between polls compare the flows with the active controls."""
        next_tick = 0.0
        try:
            while not self.stopping.is_set():
                batch = self.consumer.consume(500, 0.2)
                for i, m in enumerate(batch):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("control: %s", m.error())
                        continue
                    try:
                        self._message(m)
                    except RegistryUnavailable as e:  # not committed past: read again once it answers
                        seek_back(self.consumer, batch[i:])
                        log.warning("control: %s; reading again in %.0f s", e, REGISTRY_RETRY_S)
                        self.stopping.wait(REGISTRY_RETRY_S)
                        break
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    self.tick()
                self._commit()
                self.status.tick()
        finally:
            self._commit()
            self.consumer.close()
            for action in self.actions.values():
                action.stop()
            self.producer.flush(10)
            self.status.close()  # the final numbers

    # ------------------------------------------------------------------ input

    def _message(self, m) -> None:
        """Decode and act on one message; raises RegistryUnavailable (its offset not taken) when the
        schema registry does not answer: the message may well be sound."""
        try:
            stem, datum = self.codec.decode(m.value() or b"")
        except RegistryUnavailable:
            raise
        except CodecError as e:
            log.error("control: skipping undecodable message on %s: %s", m.topic(), e)
            stem, datum = "", None
        self.offsets[(m.topic(), m.partition())] = m.offset() + 1
        if stem == "active_flows":
            self.flows.update(datum)
        elif stem == "event":
            self.on_event(datum)

    def on_event(self, event: dict[str, Any]) -> None:
        if str(event.get("metric", "")).startswith("control_"):
            return  # our own
        names = self.state.policies_for(event.get("thresholdID", ""))
        if not names:
            return
        age = self.clock() - event.get("timestamp", 0) / 1000
        for name in names:
            if age > self.policies[name].max_event_age_s:
                log.debug("control %s: ignoring an event %.0fs old", name, age)
                continue
            self.decide(name, event)

    def decide(self, name: str, event: dict[str, Any]) -> None:
        d = self.state.on_event(name, event)
        if d.verdict == "refuse":
            self.counts["refused"] += 1
            log.warning("control %s: refused for %s: %s", name, event.get("flowKey"), d.reason)
            self.publish("control_refused", name, event)
        elif d.verdict == "apply":
            self.apply(d.control, event)

    def values(self, flow: str) -> dict[str, float]:
        """The flow's current values by key: the latest top flows of every agent (stale ones
        left out), merged by their largest value; a key not among them is 0."""
        since = int((self.clock() - STALE_FLOWS_S) * 1000)
        return {r["key"]: float(r["value"]) for r in self.flows.merged(flow, max_flows=1 << 30, since_ms=since)}

    def tick(self) -> None:
        cache: dict[str, dict[str, float]] = {}

        def value_of(flow: str, key: str) -> float:
            if flow not in cache:
                cache[flow] = self.values(flow)
            return cache[flow].get(key, 0.0)

        self.state.observe(value_of)
        for c in self.state.due():
            self.release(c)
        for policy, event in self.state.apply_retries(value_of):
            self.decide(policy, event)

    # ------------------------------------------------------------------ actions

    def apply(self, c: Control, event: dict[str, Any]) -> None:
        try:
            self.actions[c.policy].apply(c.record())
        except Exception as e:  # the action's own errors, after its retry budget
            self.state.apply_failed(c, event)
            self.failed(c, "apply", e, event)
            return
        self.state.applied(c)
        self.write_state(c)
        self.counts["apply"] += 1
        log.warning("control %s: applied for %s (value %.0f over %.0f, agent %s)", c.policy, c.key,
                    event.get("value", 0.0), event.get("threshold", 0.0), event.get("agent", ""))
        self.publish("control_apply", c.policy, event)

    def release(self, c: Control) -> None:
        action = self.actions.get(c.policy)  # None: the policy was removed, the control only forgotten
        try:
            if action is not None:
                action.release(c.record())
        except Exception as e:
            self.state.release_failed(c, RELEASE_RETRY_S)
            self.failed(c, "release", e, c.fields)
            return
        self.state.released(c)
        self.write_state(c)
        self.counts["release"] += 1
        log.warning("control %s: released %s after %.0fs", c.policy, c.key, self.clock() - c.applied_at)
        self.publish("control_release", c.policy, c.fields)

    def failed(self, c: Control, what: str, error: Exception, event: dict[str, Any]) -> None:
        self.counts["failed"] += 1
        log.error("control %s: %s of %s failed: %s", c.policy, what, c.key, error)
        self.dead_letters.write(dead_letter(f"control:{c.policy}:{what}", "action_failed", str(error),
                                            json.dumps(c.record()).encode(), receive_time_us=int(self.clock() * 1e6)),
                                key_of(c.policy, c.key).encode(), self.controls_topic)
        self.publish("control_failed", c.policy, {**event, "flowKey": c.key})

    # ------------------------------------------------------------------ output

    def write_state(self, c: Control) -> None:
        """The control's state on the compacted topic, acknowledged before going on: a released
        control is written as such, then tombstoned (compaction keeps only the tombstone)."""
        key = key_of(c.policy, c.key).encode()
        self.producer.produce(self.controls_topic, json.dumps(c.record()).encode(), key)
        if c.state == RELEASED:
            self.producer.produce(self.controls_topic, None, key)
        self._flush("controls")

    def publish(self, metric: str, policy: str, source: dict[str, Any]) -> None:
        now = self.clock()
        self.last_id = max(self.last_id + 1, int(now * 1e6))
        key = source.get("flowKey", source.get("key"))
        ev = {"eventID": self.last_id, "thresholdID": policy, "agent": str(source.get("agent", "")),
              "dataSource": str(source.get("dataSource", "")), "metric": metric,
              "value": float(source.get("value", 0.0)), "threshold": float(source.get("threshold", 0.0)),
              "flowKey": key, "timestamp": int(now * 1000)}
        self.producer.produce(self.events_topic, self.codec.encode("event", ev), ev["agent"].encode())
        self.producer.poll(0)

    def _flush(self, what: str) -> None:
        while self.producer.flush(10):
            log.error("control: %s not acknowledged by Kafka yet, waiting", what)
            if self.stopping.is_set():
                return

    def _commit(self) -> None:
        if not self.offsets:
            return
        self._flush("events")  # what this batch caused is on Kafka before its offsets are committed
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in self.offsets.items()],
                                 asynchronous=False)
            self.offsets.clear()
        except KafkaException as e:  # e.g. during a rebalance: the offsets are committed next time
            log.warning("control: commit failed: %s", e)

    def active(self) -> list[dict]:
        return [c.record() for c in self.state.active.values() if c.state == APPLIED]


# --- the command -------------------------------------------------------------------------------


def run(settings: Settings, args: argparse.Namespace, clients: KafkaClients | None = None,
        codec: Codec | None = None) -> int:
    if not settings.sinks.controls:
        sys.stderr.write("sflowpipe control: no policies under sinks.controls\n")
        return 2
    try:
        if clients is None or codec is None:
            clients, codec = wiring(settings)
        service = ControlService(settings.sinks.controls, settings.kafka, settings.topics, clients, codec,
                                 args.consumer_group)
    except (ValueError, ImportError) as e:
        sys.stderr.write(f"sflowpipe control: {e}\n")
        return 2
    on_stop_signals(service.stop)
    service.start()
    metrics = MetricsServer(settings.sinks.control_metrics_listen, service.metrics, 9350).start()
    log.info("control: metrics %s", metrics.url)
    log.info("control: policies %s; topics %s, %s; state on %s; consumer group %s",
             ", ".join(f"{n} ({p.threshold} -> {p.action.type})" for n, p in service.policies.items()),
             service.events_topic, service.flows_topic, service.controls_topic, service.group)
    try:
        service.run()
    finally:
        metrics.stop()
    log.info("control: stopped: %(apply)d applied, %(release)d released, %(refused)d refused, "
             "%(failed)d failed", service.counts)
    log.info("control: %d controls stay applied (restored on the next start)", len(service.active()))
    return 0
