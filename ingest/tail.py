"""`sflowpipe tail TOPIC`: print the records of sflowpipe's topics as JSON lines.

One line per sample (batches unrolled; ``--max`` counts samples) or one per message
(``--batches``), like kcat for our Avro topics. Reads partitions directly (no consumer group).
"""

from __future__ import annotations

import sys
import time
from typing import Iterator

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

from ingest.batches import flow_rows
from schemas.codec import Codec, CodecError
from sflowpipe.kafka import KafkaClients, wiring
from sflowpipe.settings import Settings


def _default(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    raise TypeError


def dumps(d) -> bytes:
    return orjson.dumps(d, default=_default, option=orjson.OPT_NON_STR_KEYS)


def unroll(stem: str, datum: dict) -> Iterator[dict]:
    """A message as per-sample records (batch fields repeated in each)."""
    if stem == "flow_sample_batch":
        yield from flow_rows(datum)
    elif stem in ("counter_sample_batch", "discard_sample_batch"):
        head = {"agent_address": datum["agent_address"], "exporter_address": datum["exporter_address"]}
        for s in datum["samples"]:
            yield {**head, **s}
    else:
        yield datum


def resolve_topic(name: str, settings: Settings) -> str:
    short = set(settings.topics.model_dump().values())
    return settings.kafka.topic(name) if name in short else name


def messages(clients: KafkaClients, topic: str, from_beginning: bool, idle_timeout: float | None,
             group: str | None = None) -> Iterator[tuple[int, int, bytes, bytes | None]]:
    """(partition, offset, value, key) of a topic's messages; stops after idle_timeout seconds of silence."""
    clients.require_broker()
    c = clients.consumer(group or "sflowpipe-tail", {"enable.auto.commit": False,
                                                     "auto.offset.reset": "earliest" if from_beginning else "latest"})
    try:
        md = c.list_topics(topic, timeout=10)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            raise KafkaException(f"topic {topic} not found")
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING if from_beginning else OFFSET_END)
                  for p in sorted(tmd.partitions)])
        last = time.monotonic()
        while True:
            batch = c.consume(500, 0.5)
            if not batch:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            last = time.monotonic()
            for m in batch:
                if m.error():
                    continue
                yield m.partition(), m.offset(), m.value(), m.key()
    finally:
        c.close()


def run(args, settings: Settings, clients: KafkaClients | None = None, codec: Codec | None = None) -> int:
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    topic = resolve_topic(args.topic, settings)
    out = sys.stdout.buffer
    n = 0
    try:
        for _, _, value, _ in messages(clients, topic, args.from_beginning, args.timeout):
            try:
                stem, datum = codec.decode(value)
            except CodecError as e:
                sys.stderr.write(f"skipping undecodable message: {e}\n")
                continue
            if args.batches:
                out.write(dumps(datum) + b"\n")
                n += 1
            else:
                for rec in unroll(stem, datum):
                    out.write(dumps(rec) + b"\n")
                    n += 1
                    if args.max and n >= args.max:
                        break
            out.flush()
            if args.max and n >= args.max:
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        return 0
    return 0
