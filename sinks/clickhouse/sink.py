"""The ClickHouse sink: sflowpipe's topics -> ClickHouse tables, columnar (Arrow) inserts.

One process consumes the enriched flow samples, counter samples, metrics, active flows and
events topics in its own consumer group and writes each flush as one Arrow insert per table.
Retries are idempotent twice over: every insert carries a deduplication token derived from the
topic/partition/offset ranges it holds (a retried flush is dropped by ClickHouse), and after the
rows the last written offset of each partition goes to ``sink_offsets``, so messages re-read
after a crash between the insert and the Kafka commit are skipped. An insert ClickHouse refuses
for its data is split by message and the refused ones dead-lettered (poison.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import chain
from typing import Any, Sequence

import clickhouse_connect
import pyarrow as pa
import pyarrow.compute as pc

from schemas.codec import Codec, CodecError, schema_set
from sflowpipe.clickhouse import resolve_dsn
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import ClickHouseSettings, KafkaSettings, Settings, TopicNames
from sflowpipe.signals import on_stop_signals
from sinks.base import SinkRunner, serve_metrics

from .migrate import migrate
from .poison import PoisonOutbox, first_line, insert_isolating
from sinks.args import clickhouse_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)

FLOW_STEMS = ("enriched_flow_sample_batch", "flow_sample_batch")


def connect(dsn: str):
    """A clickhouse-connect client for a server (http://...) or the embedded engine (chdb://...)."""
    real, _ = resolve_dsn(dsn, create=True)
    return clickhouse_connect.get_client(dsn=real)


# ---------------------------------------------------------------- flow batches as Avro, decoded by ClickHouse

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _zz(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def samples_in(body: bytes) -> int:
    """Flow samples in an Avro flow-sample batch body, read from its first fields without decoding it.
    CodecError when the body is cut short or a length in it is negative (it would read backwards)."""
    try:
        n, pos = _varint(body, 0)          # agent_address
        n2, pos = _varint(body, pos + max(n, 0))  # exporter_address
        pos += n2
        if n < 0 or n2 < 0:
            raise IndexError
        total = 0
        while True:                        # receive_time_us: array blocks
            count, pos = _varint(body, pos)
            if count == 0:
                return total
            if count < 0:
                count = -count
                size, pos = _varint(body, pos)
                if size < 0:
                    raise IndexError
                pos += size
            else:
                for _ in range(count):
                    _, pos = _varint(body, pos)
            total += count
    except IndexError:
        raise CodecError("corrupt flow batch: cut short, or a negative length") from None


def avro_container(schema_json: bytes, bodies: list[bytes]) -> bytes:
    """An Avro object container file (one block, no codec) holding these record bodies."""
    sync = b"sflowpipe-block\x00"
    meta = (_zz(2) + _zz(11) + b"avro.schema" + _zz(len(schema_json)) + schema_json
            + _zz(10) + b"avro.codec" + _zz(4) + b"null" + _zz(0))
    data = b"".join(bodies)
    return b"Obj\x01" + meta + sync + _zz(len(bodies)) + _zz(len(data)) + data + sync


# ---------------------------------------------------------------- decoded messages -> Arrow tables

def _col(batches: list[dict], name: str) -> list:
    return list(chain.from_iterable(b[name] for b in batches))


def _opt(batches: list[dict], name: str, n: int) -> list:
    """A column the batch may not have (plain, not enriched, flow samples; or an older schema
    version's, read as an empty list): nulls."""
    if all(b.get(name) for b in batches):
        return _col(batches, name)
    return list(chain.from_iterable(b.get(name) or [None] * len(b["receive_time_us"]) for b in batches))


def _uint(values: list, typ=pa.uint32()) -> pa.Array:
    a = pa.array(values, pa.int64())
    if a.null_count:
        a = a.fill_null(0)
    return a.cast(typ, safe=False)


def _time(values: list, unit: str = "us") -> pa.Array:
    """Epoch integers as an Arrow timestamp (a plain int64 would be read as seconds)."""
    return pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz="UTC"))


def _str(values: list) -> pa.Array:
    a = pa.array(values, pa.string())
    return a.fill_null("") if a.null_count else a


def _ip(values: list) -> pa.Array:
    a = pa.array(values, pa.string())
    return a.fill_null("::") if a.null_count else a


def flow_table(batches: list[dict]) -> pa.Table:
    """Columnar flow-sample batches -> one Arrow table of flow_samples rows (no per-row objects)."""
    n = sum(len(b["receive_time_us"]) for b in batches)
    agents = list(chain.from_iterable([b["agent_address"]] * len(b["receive_time_us"]) for b in batches))
    exporters = list(chain.from_iterable([b["exporter_address"]] * len(b["receive_time_us"]) for b in batches))
    frame_length = _uint(_col(batches, "frame_length"), pa.uint64())
    sampling_rate = _uint(_col(batches, "sampling_rate"), pa.uint64())
    src_vlan = _col(batches, "src_vlan")
    vlan = [tags[0]["vlan"] if tags else (sv or 0) for tags, sv in zip(_col(batches, "vlans"), src_vlan)]
    groups_type = pa.list_(pa.string())
    cols = {
        "time": _time(_col(batches, "receive_time_us")),
        "agent": pa.array(agents, pa.string()),
        "exporter": pa.array(exporters, pa.string()),
        "sub_agent_id": _uint(_col(batches, "sub_agent_id")),
        "source_id_type": _uint(_col(batches, "source_id_type"), pa.uint8()),
        "source_id_index": _uint(_col(batches, "source_id_index")),
        "sequence_number": _uint(_col(batches, "sequence_number")),
        "sampling_rate": sampling_rate.cast(pa.uint32()),
        "sample_pool": _uint(_col(batches, "sample_pool")),
        "drops": _uint(_col(batches, "drops")),
        "in_if": _uint(_col(batches, "input")),
        "out_if": _uint(_col(batches, "output")),
        "frame_length": frame_length.cast(pa.uint32()),
        "bytes": pc.multiply(frame_length, sampling_rate),
        "header_protocol": _uint(_col(batches, "header_protocol"), pa.uint16()),
        "src_mac": _str(_col(batches, "src_mac")),
        "dst_mac": _str(_col(batches, "dst_mac")),
        "vlan": _uint(vlan, pa.uint16()),
        "src_vlan": _uint(src_vlan, pa.uint16()),
        "dst_vlan": _uint(_col(batches, "dst_vlan"), pa.uint16()),
        "eth_type": _uint(_col(batches, "eth_type"), pa.uint16()),
        "ip_version": _uint(_col(batches, "ip_version"), pa.uint8()),
        "src_ip": _ip(_col(batches, "src_ip")),
        "dst_ip": _ip(_col(batches, "dst_ip")),
        "protocol": _uint(_col(batches, "ip_protocol"), pa.uint8()),
        "tos": _uint(_col(batches, "tos"), pa.uint8()),
        "ttl": _uint(_col(batches, "ttl"), pa.uint8()),
        "src_port": _uint(_col(batches, "src_port"), pa.uint16()),
        "dst_port": _uint(_col(batches, "dst_port"), pa.uint16()),
        "tcp_flags": _uint(_col(batches, "tcp_flags"), pa.uint16()),
        "icmp_type": _uint(_col(batches, "icmp_type"), pa.uint8()),
        "icmp_code": _uint(_col(batches, "icmp_code"), pa.uint8()),
        "icmp_quoted_protocol": _uint(_opt(batches, "icmp_quoted_protocol", n), pa.uint8()),
        "icmp_quoted_dst_ip": _ip(_opt(batches, "icmp_quoted_dst_ip", n)),
        "icmp_quoted_dst_port": _uint(_opt(batches, "icmp_quoted_dst_port", n), pa.uint16()),
        "vni": _uint(_col(batches, "vni")),
        "next_hop": _ip(_col(batches, "next_hop")),
        "src_mask_len": _uint(_col(batches, "src_mask_len"), pa.uint8()),
        "dst_mask_len": _uint(_col(batches, "dst_mask_len"), pa.uint8()),
        "src_country": _str(_opt(batches, "src_country", n)),
        "dst_country": _str(_opt(batches, "dst_country", n)),
        "src_asn": _uint(_opt(batches, "src_asn", n)),
        "dst_asn": _uint(_opt(batches, "dst_asn", n)),
        "src_as_name": _str(_opt(batches, "src_as_name", n)),
        "dst_as_name": _str(_opt(batches, "dst_as_name", n)),
        "src_groups": pa.array([g or [] for g in _opt(batches, "src_groups", n)], groups_type),
        "dst_groups": pa.array([g or [] for g in _opt(batches, "dst_groups", n)], groups_type),
    }
    return pa.table(cols)


def counter_table(batches: list[dict]) -> pa.Table:
    """Counter-sample batches -> one row per numeric counter value (record type, field name)."""
    time_, agent, sub, st, si, seq, record, name, value = ([] for _ in range(9))
    for b in batches:
        for s in b["samples"]:
            for rtype, fields in s["records"]:
                rname = rtype.rpartition(".")[2]
                for k, v in fields.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        time_.append(s["receive_time_us"]); agent.append(b["agent_address"])
                        sub.append(s["sub_agent_id"]); st.append(s["source_id_type"])
                        si.append(s["source_id_index"]); seq.append(s["sequence_number"])
                        record.append(rname); name.append(k); value.append(float(v))
    return pa.table({"time": _time(time_), "agent": pa.array(agent, pa.string()),
                     "sub_agent_id": _uint(sub), "source_id_type": _uint(st, pa.uint8()),
                     "source_id_index": _uint(si), "sequence_number": _uint(seq),
                     "record": pa.array(record, pa.string()), "name": pa.array(name, pa.string()),
                     "value": pa.array(value, pa.float64())})


def metrics_table(datums: list[dict]) -> pa.Table:
    time_, agent, ds, name, value = ([] for _ in range(5))
    for d in datums:
        for m in d["metrics"]:
            time_.append(d["timestamp"]); agent.append(d["agent"])
            ds.append(m["dataSource"]); name.append(m["name"]); value.append(m["value"])
    return pa.table({"time": _time(time_, "ms"), "agent": pa.array(agent, pa.string()),
                     "data_source": pa.array(ds, pa.string()), "name": pa.array(name, pa.string()),
                     "value": pa.array(value, pa.float64())})


def active_flows_table(datums: list[dict]) -> pa.Table:
    time_, flow, agent, kind, ds, key, value = ([] for _ in range(7))
    for d in datums:
        for f in d["flows"]:
            time_.append(d["timestamp"]); flow.append(d["flow"]); agent.append(d["agent"])
            kind.append(d["value"]); ds.append(f["dataSource"]); key.append(f["key"]); value.append(f["value"])
    return pa.table({"time": _time(time_, "ms"), "flow": pa.array(flow, pa.string()),
                     "agent": pa.array(agent, pa.string()), "value_kind": pa.array(kind, pa.string()),
                     "data_source": pa.array(ds, pa.string()), "key": pa.array(key, pa.string()),
                     "value": pa.array(value, pa.float64())})


def events_table(datums: list[dict]) -> pa.Table:
    def c(name):
        return [d[name] for d in datums]
    return pa.table({"time": _time(c("timestamp"), "ms"), "event_id": pa.array(c("eventID"), pa.int64()),
                     "threshold_id": pa.array(c("thresholdID"), pa.string()),
                     "agent": pa.array(c("agent"), pa.string()), "data_source": pa.array(c("dataSource"), pa.string()),
                     "metric": pa.array(c("metric"), pa.string()), "value": pa.array(c("value"), pa.float64()),
                     "threshold": pa.array(c("threshold"), pa.float64()),
                     "flow_key": _str([d.get("flowKey") for d in datums])})


# stem -> (table, builder, rows in one datum)
TABLES = {
    "enriched_flow_sample_batch": ("flow_samples", flow_table, lambda d: len(d["receive_time_us"])),
    "flow_sample_batch": ("flow_samples", flow_table, lambda d: len(d["receive_time_us"])),
    "counter_sample_batch": ("counters", counter_table, lambda d: len(d["samples"])),
    "metrics": ("metrics", metrics_table, lambda d: len(d["metrics"])),
    "active_flows": ("active_flows", active_flows_table, lambda d: len(d["flows"])),
    "event": ("events", events_table, lambda d: 1),
}


class RecentDigests:
    """The digests of the last ``size`` messages: a message seen again is a redelivery.

    The processors run at-least-once: after a worker leaves, the one taking over its partitions
    re-processes the samples since the last commit and publishes byte-identical enriched batches
    again (every batch carries its receive times, so two distinct batches never have equal
    bytes). Recognising them here keeps ClickHouse at exactly one row per sample sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: deque[bytes] = deque()
        self.seen: set[bytes] = set()

    def check_and_add(self, raw: bytes) -> bool:
        """True if ``raw`` was seen (a duplicate); otherwise remember it."""
        d = hashlib.blake2b(raw, digest_size=16).digest()
        if d in self.seen:
            return True
        self.seen.add(d)
        self.order.append(d)
        if len(self.order) > self.size:
            self.seen.discard(self.order.popleft())
        return False


FLOW_TARGET = "flow_sample_batches:"  # + the writer version's prefix (hex): one container per version


@dataclass(slots=True)
class Buffered:
    """One message waiting for the next flush: where it came from and what goes in."""

    target: str  # the insert it goes in: FLOW_TARGET + prefix, or the table of its decoded datum
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes  # the message as read, for the dead-letter topic
    rows: int
    prefix: bytes = b""  # flow batches: the writer's prefix and the Avro body
    body: bytes = b""
    stem: str = ""  # others: decoded
    datum: Any = None
    rejected: bool = False  # refused by ClickHouse and dead-lettered


class ClickHouseSink:
    """Buffers messages and writes them as one idempotent insert per table (flow batches as Avro,
    the others as Arrow); a message ClickHouse refuses is isolated and dead-lettered (poison.py)."""

    def __init__(self, client, settings: ClickHouseSettings, group: str, lock: threading.Lock | None = None,
                 codec: Codec | None = None, dead_letters: PoisonOutbox | None = None) -> None:
        """Without ``dead_letters`` an insert refused for its data is raised (retried) as any other."""
        self.client = client
        self.settings = settings
        self.db = settings.database
        self.group = group
        self.lock = lock or threading.Lock()
        self.messages: list[Buffered] = []  # in the order read: the unit a refused insert is split by
        self.rows = 0
        self.ranges: dict[tuple[str, int], list[int]] = {}
        self.written: dict[tuple[str, int], int] = {}  # last offset in ClickHouse, from sink_offsets
        self.position: tuple[str, int, int] | None = None
        self.skipped = 0
        self.duplicates = 0
        self.recent = RecentDigests(settings.dedup_window)
        self.inserted_rows = 0
        self.codec = codec or Codec()
        # flow batches, by their writer version's single-object prefix -> its schema (JSON) for the container
        self.flow_schemas = {v.prefix: json.dumps(v.raw).encode() for stem in FLOW_STEMS
                             for v in schema_set().by_stem.get(stem, [])}
        self.dead_letters = dead_letters
        self.rejected = 0  # messages ClickHouse refused, dead-lettered
        self.timings = {"build": 0.0, "insert": 0.0}

    def load_written_offsets(self) -> None:
        with self.lock:
            rows = self.client.query(
                f"SELECT topic, partition, max(offset) FROM {self.db}.sink_offsets "
                "WHERE consumer_group = {g:String} GROUP BY topic, partition", parameters={"g": self.group}).result_rows
        self.written = {(t, p): o for t, p, o in rows}

    def at(self, topic: str, partition: int, offset: int) -> None:
        """The Kafka position of the next add() (set by the runner)."""
        self.position = (topic, partition, offset)

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        """A message: raw only (the runner does not decode: flow batches stay Avro) or decoded.
        CodecError when it cannot be decoded (the runner skips and counts it)."""
        flow_schema = False
        if raw or datum is None:
            writer, start = self.codec.writer_of(raw or b"")  # either framing: the body is the same Avro
            flow_schema = writer.stem in FLOW_STEMS
        if not flow_schema and datum is None:
            stem, datum = self.codec.decode(raw)
        if not flow_schema and stem not in TABLES:
            log.warning("clickhouse: no table for %s messages on %s", stem, topic)
            return 0
        t, p, o = self.position if self.position is not None else (topic, -1, len(self.messages))
        if self.position is not None:
            if o <= self.written.get((t, p), -1):
                self.skipped += 1  # already in ClickHouse: written before a crash, not committed
                return 0
            r = self.ranges.get((t, p))
            if r is None:
                self.ranges[(t, p)] = [o, o]
            else:
                r[1] = o
        if (flow_schema or stem == "event") and self.recent.check_and_add(raw):
            self.duplicates += 1  # a processor's redelivery (at-least-once): already written
            return 0
        if flow_schema:
            body = raw[start:]
            n = samples_in(body)
            message = Buffered(FLOW_TARGET + writer.prefix.hex(), t, p, o, key, raw, n, writer.prefix, body)
        else:
            table, _, count = TABLES[stem]
            n = count(datum)
            message = Buffered(table, t, p, o, key, raw, n, stem=stem, datum=datum)
        self.messages.append(message)
        self.rows += n
        return n

    def pending(self) -> int:
        return self.rows

    def token(self, table: str) -> str:
        spans = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))
        return hashlib.sha256(f"{self.group}|{table}|{spans}".encode()).hexdigest()

    def part_token(self, target: str, part: Sequence[Buffered]) -> str:
        """A part of a refused insert's: from its own messages' positions, so a retried flush that
        splits the same messages the same way inserts each part with the token it had."""
        spans: dict[tuple[str, int], list[int]] = {}
        for m in part:
            spans.setdefault((m.topic, m.partition), [m.offset, m.offset])[1] = m.offset
        text = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(spans.items()))
        return hashlib.sha256(f"{self.group}|{target}|part|{text}".encode()).hexdigest()

    def build(self, messages: Sequence[Buffered]) -> pa.Table:
        """One Arrow table of decoded messages of one table (stems that share a table concatenated)."""
        by_stem: dict[str, list] = {}
        for m in messages:
            by_stem.setdefault(m.stem, []).append(m.datum)
        parts = [TABLES[stem][1](datums) for stem, datums in by_stem.items()]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")

    def write(self, target: str, messages: Sequence[Buffered], token: str) -> None:
        """One insert: flow batches as an Avro container into flow_sample_batches, others as Arrow."""
        t0 = time.perf_counter()
        if target.startswith(FLOW_TARGET):
            prefix = messages[0].prefix
            blob = avro_container(self.flow_schemas[prefix], [m.body for m in messages])
            t1 = time.perf_counter()
            with self.lock:
                self.client.raw_insert(
                    f"{self.db}.flow_sample_batches", insert_block=blob, fmt="Avro",
                    settings={"insert_deduplication_token": token,
                              "deduplicate_blocks_in_dependent_materialized_views": 1,
                              "input_format_avro_allow_missing_fields": 1})
        else:
            data = self.build(messages)
            t1 = time.perf_counter()
            if data.num_rows:
                with self.lock:
                    self.client.insert_arrow(f"{self.db}.{target}", data,
                                             settings={"insert_deduplication_token": token,
                                                       "deduplicate_blocks_in_dependent_materialized_views": 1})
        self.timings["build"] += t1 - t0
        self.timings["insert"] += time.perf_counter() - t1

    def reject(self, target: str, m: Buffered, error: BaseException) -> None:
        """A message ClickHouse refused on its own: to the dead-letter topic (once), then written past."""
        if self.dead_letters is None:
            raise error
        if m.rejected:  # dead-lettered by an earlier attempt of this flush
            return
        table = "flow_sample_batches" if target.startswith(FLOW_TARGET) else target
        self.dead_letters.write(f"clickhouse:{table}", error, m.raw, m.key, m.topic)
        m.rejected = True
        self.rejected += 1
        log.error("clickhouse: %s:%d@%d refused by ClickHouse, written to the dead-letter topic %s: %s",
                  m.topic, m.partition, m.offset, self.dead_letters.topic, first_line(error))

    def flush(self) -> int:
        """Insert everything buffered; returns the rows of the messages dead-lettered instead."""
        if not self.messages:
            return 0
        by_target: dict[str, list[Buffered]] = {}
        for m in self.messages:
            by_target.setdefault(m.target, []).append(m)
        for target, messages in by_target.items():
            # the whole batch in one insert, with the token it always had; split only when refused
            insert_isolating(messages, lambda part, whole, target=target: self.write(
                target, part, self.token(target) if whole else self.part_token(target, part)),
                lambda m, error, target=target: self.reject(target, m, error))
        if self.ranges:
            with self.lock:
                self.client.insert(f"{self.db}.sink_offsets",
                                   [[self.group, t, p, b] for (t, p), (a, b) in self.ranges.items()],
                                   column_names=["consumer_group", "topic", "partition", "offset"])
        for (t, p), (a, b) in self.ranges.items():
            self.written[(t, p)] = b
        refused = sum(m.rows for m in self.messages if m.rejected)
        self.inserted_rows += self.rows - refused
        self.messages.clear()
        self.ranges.clear()
        self.rows = 0
        return refused


class ClickHouseRunner(SinkRunner):
    """SinkRunner that tells the sink each message's position and reloads written offsets on assignment."""

    def start(self) -> None:
        self.clients.require_broker()  # unreachable at start: one line and exit, not a silent wait
        self.consumer = self.clients.consumer(self.group, self.conf)
        self.consumer.subscribe(self.topics, on_assign=lambda consumer, partitions: self.sink.load_written_offsets(),
                                on_revoke=self.on_revoke)

    def _add(self, m) -> None:
        self.sink.at(m.topic(), m.partition(), m.offset())
        super()._add(m)


def topics_of(kafka: KafkaSettings, t: TopicNames) -> list[str]:
    """The topics the ClickHouse sink writes, prefixed."""
    return [kafka.topic(n) for n in (t.enriched_flow_samples, t.counter_samples, t.metrics, t.flows, t.events)]


def effective_settings(settings: Settings, args) -> ClickHouseSettings:
    ch = settings.sinks.clickhouse
    dsn = getattr(args, "dsn", None) or (f"chdb://{os.path.abspath(args.data_dir)}" if getattr(args, "data_dir", None) else None)
    return ch.model_copy(update={"dsn": dsn}) if dsn else ch


class ClickHouseService:
    """Owns the client, the migrations, the sink, its consumer and (embedded) the local SQL port."""

    def __init__(self, ch: ClickHouseSettings, topics: list[str], status_topic: str, clients: KafkaClients,
                 codec: Codec, serve_sql: bool = True, deadletter_topic: str | None = None) -> None:
        """``topics``: what it writes (``topics_of``), ``status_topic`` where its numbers go,
        ``deadletter_topic`` where messages ClickHouse refuses go (default: the default name); prefixed."""
        self.clients, self.codec = clients, codec
        self.topics, self.status_topic = topics, status_topic
        self.deadletter_topic = deadletter_topic or clients.settings.topic(TopicNames().deadletter)
        self.ch = ch
        self.serve_sql = serve_sql
        self.client = None
        self.sql_server = None
        self.runner: ClickHouseRunner | None = None

    def start(self) -> None:
        from .sql import SqlServer

        _, data_dir = resolve_dsn(self.ch.dsn)
        self.client = connect(self.ch.dsn)
        migrate(self.client, self.ch)
        lock = threading.Lock()
        self.codec.prepare(["dead_letter"])  # a registry fault: said at start
        dead_letters = PoisonOutbox(self.clients, self.codec, self.deadletter_topic)
        sink = ClickHouseSink(self.client, self.ch, self.ch.consumer_group, lock, self.codec, dead_letters)
        sink.load_written_offsets()
        # the sink decodes what it needs itself: flow batches go to ClickHouse still Avro-encoded
        self.runner = ClickHouseRunner(sink, self.topics, self.ch.consumer_group, self.ch.batch_rows,
                                       self.ch.batch_seconds, decode=False, clients=self.clients, codec=self.codec,
                                       status_topic=self.status_topic)
        if data_dir and self.serve_sql:
            self.sql_server = SqlServer(self.client, lock, data_dir, self.ch.database)
            self.sql_server.start()
        m = self.runner.metrics
        m.observed("sflowpipe_sink_rows_written_total", "counter", "rows inserted into ClickHouse",
                   lambda: sink.inserted_rows)
        m.observed("sflowpipe_sink_duplicates_skipped_total", "counter", "messages not written again, by why: "
                   "redelivered (a processor's at-least-once redelivery, seen in the dedup window), committed "
                   "(already in ClickHouse before a crash)",
                   lambda: {("redelivered",): sink.duplicates, ("committed",): sink.skipped}, ("why",))
        dead_letters.writer.export(m)
        self.runner.start()
        self.clients.ensure_topics([self.deadletter_topic])

    def stop(self) -> None:
        if self.runner:
            self.runner.stop()

    def close(self) -> None:
        if self.sql_server:
            self.sql_server.stop()
        if self.client:
            self.client.close()


def run(settings: Settings, args, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    ch = effective_settings(settings, args)
    if getattr(args, "migrate_only", False):
        client = connect(ch.dsn)
        print("applied:", migrate(client, ch) or "nothing (up to date)")
        return 0
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    service = ClickHouseService(ch, topics_of(settings.kafka, settings.topics), settings.kafka.topic(settings.topics.status),
                                clients, codec, serve_sql=not getattr(args, "no_sql_server", False),
                                deadletter_topic=settings.kafka.topic(settings.topics.deadletter))
    on_stop_signals(service.stop)
    service.start()
    metrics = serve_metrics(ch.metrics_listen, service.runner.metrics, "clickhouse")
    log.info("clickhouse: writing %s to %s (database %s)", ", ".join(service.runner.topics), ch.dsn, ch.database)
    try:
        service.runner.run()
    finally:
        service.close()
        metrics.stop()
    return 0
