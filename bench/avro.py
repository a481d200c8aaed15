"""Avro layout benchmark: `sflowpipe bench avro`.

The same flow samples (overflowd capture, batches of 500) written and read as
(1) a row array (one record per sample) with fastavro, (2) the columnar batch with fastavro,
(3) the columnar batch with sflowpipe's compiled writer; and the receive-time column as a plain
long vs a timestamp-micros logical type. Prints µs per sample and bytes per sample.
"""

from __future__ import annotations

import copy
import io
import sys
import time
from pathlib import Path

import fastavro

from bench.decode import DEFAULT_CAPTURE
from ingest.batches import AgentBatches, flow_rows
from ingest.pcap import read_udp_payloads
from ingest.sflow.datagram import decode_datagram
from schemas.codec import schema_set
from schemas.writer import compile_writer


def _row_schema(columnar: dict) -> dict:
    fields = []
    for f in columnar["fields"]:
        t = f["type"]
        fields.append({"name": f["name"], "type": t["items"] if isinstance(t, dict) and t.get("type") == "array"
                       and f["name"] not in ("agent_address", "exporter_address") else t})
    batch_fields = [f for f in fields if f["name"] in ("agent_address", "exporter_address")]
    sample = {"type": "record", "name": "FlowSampleRow", "namespace": "bench",
              "fields": [f for f in fields if f["name"] not in ("agent_address", "exporter_address")]}
    return {"type": "record", "name": "FlowSampleRows", "namespace": "bench",
            "fields": batch_fields + [{"name": "samples", "type": {"type": "array", "items": sample}}]}


def _timed(fn, items, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t0)
    return best


def _fastavro_writer(schema):
    def write(d):
        b = io.BytesIO()
        fastavro.schemaless_writer(b, schema, d)
        return b.getvalue()
    return write


def _fastavro_reader(schema):
    return lambda data: fastavro.schemaless_reader(io.BytesIO(data), schema)


def main(args=None) -> int:
    capture = Path(getattr(args, "capture", None) or DEFAULT_CAPTURE)
    payloads = [d.payload for d in read_udp_payloads(str(capture))] * 3
    batches = AgentBatches(500, 1e9)
    out = []
    for i, p in enumerate(payloads):
        out += batches.add(decode_datagram(p), "192.0.2.1", 1_700_000_000_000_000 + i * 1000)
    flow = [b.datum for b in out + batches.drain() if b.kind == "flow"]
    n = sum(len(d["sequence_number"]) for d in flow)

    columnar_raw = schema_set().newest("flow_sample_batch").raw
    columnar = fastavro.parse_schema(copy.deepcopy(columnar_raw))
    rows_schema = fastavro.parse_schema(_row_schema(copy.deepcopy(columnar_raw)))
    rows = [{"agent_address": d["agent_address"], "exporter_address": d["exporter_address"],
             "samples": [{k: v for k, v in r.items() if k not in ("agent_address", "exporter_address")}
                         for r in flow_rows(d)]} for d in flow]
    logical_raw = copy.deepcopy(columnar_raw)
    for f in logical_raw["fields"]:
        if f["name"] == "receive_time_us":
            f["type"] = {"type": "array", "items": {"type": "long", "logicalType": "timestamp-micros"}}
    logical = fastavro.parse_schema(logical_raw)

    cases = [
        ("row array, fastavro", rows_schema, rows, _fastavro_writer(rows_schema)),
        ("columnar, fastavro", columnar, flow, _fastavro_writer(columnar)),
        ("columnar, compiled writer", columnar, flow, compile_writer(columnar)),
        ("columnar + timestamp-micros, fastavro", logical, flow, _fastavro_writer(logical)),
    ]
    print(f"{n} flow samples from {capture.name}, batches of 500 (one agent)")
    print(f"{'layout / codec':40s} {'encode µs/sample':>17s} {'decode µs/sample':>17s} {'bytes/sample':>13s}")
    for name, schema, data, write in cases:
        encoded = [write(d) for d in data]
        te = _timed(write, data)
        td = _timed(_fastavro_reader(schema), encoded, repeat=2)
        size = sum(map(len, encoded))
        print(f"{name:40s} {te / n * 1e6:17.2f} {td / n * 1e6:17.2f} {size / n:13.1f}")
    # the receive-time column alone: integer vs logical-type conversion per value
    times = [t for d in flow for t in d["receive_time_us"]]
    for name, items in (("long", "long"), ("timestamp-micros", {"type": "long", "logicalType": "timestamp-micros"})):
        sch = fastavro.parse_schema({"type": "array", "items": items})
        enc = _fastavro_writer(sch)(times)
        te = _timed(_fastavro_writer(sch), [times])
        td = _timed(_fastavro_reader(sch), [enc])
        print(f"receive time column as {name:17s}: encode {te / len(times) * 1e9:6.0f} ns/value, "
              f"decode {td / len(times) * 1e9:6.0f} ns/value")
    # the compiled writer must write exactly fastavro's bytes
    assert all(compile_writer(columnar)(d) == _fastavro_writer(columnar)(d) for d in flow)
    print("compiled writer output identical to fastavro's: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
