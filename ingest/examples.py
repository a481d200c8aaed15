"""Writes the schemas' versioned example payloads (schemas/examples/): ``python -m ingest.examples``
writes, for the newest version of every schema that has none yet, ``<name>.v<N>.avro`` and
``<name>.v<N>.json``. The datums are built through the real decode and batching path, which is
ingest's: schemas/ itself imports nothing above the decoder's model."""

from __future__ import annotations

import json
import sys

from ingest.batches import AgentBatches
from ingest.generate import Generator, ipv4_packet
from ingest.sflow import decode_datagram, encode_datagram
from ingest.sflow.flow_records import ExtendedEgressQueue, SampledHeader
from ingest.sflow.model import Datagram, DiscardSample
from schemas.codec import AvroCodec, schema_set
from schemas.examples import DIR, to_jsonable


def example_datums() -> dict[str, dict]:
    """One realistic datum per schema, built through the real decode and batching path."""
    gen = Generator(agents=1, interfaces=2, samples_per_datagram=2, seed=3)
    drop = DiscardSample(9, 0, 3, 1, 0, 3, 0, 0, 258, (
        ExtendedEgressQueue(2), SampledHeader.of(1, 64, 4, ipv4_packet("10.0.0.1", "10.0.0.2", 17, 53, 53, 50))))
    payloads = [gen.datagram(now=0.0), encode_datagram(Datagram(5, "192.0.2.200", 0, 7, 1000, (drop,)))]
    batches = AgentBatches(10_000, 1e9)
    for p in payloads:
        batches.add(decode_datagram(p), "192.0.2.1", 1_763_683_200_000_000)
    by_kind = {b.kind: b.datum for b in batches.drain()}
    return {
        "raw_datagram": {"receive_time_us": 1_763_683_200_000_000, "exporter_address": "192.0.2.1",
                         "exporter_port": 50000, "data": payloads[1]},
        "dead_letter": {"receive_time_us": 1_763_683_200_000_000, "exporter_address": "192.0.2.1",
                        "exporter_port": 50000, "data": b"\x00\x00\x00\x04", "stage": "decode",
                        "error": "unsupported sFlow datagram version 4", "offset": 0},
        "flow_sample_batch": by_kind["flow"],
        "enriched_flow_sample_batch": {**by_kind["flow"], **_enrichment(len(by_kind["flow"]["sequence_number"]))},
        "active_flows": {"flow": "pair", "agent": "192.0.2.200", "timestamp": 1_763_683_200_000, "value": "bytes",
                         "flows": [{"dataSource": "3", "key": "10.1.0.10,192.0.2.10", "value": 1.25e6}]},
        "metrics": {"agent": "192.0.2.200", "timestamp": 1_763_683_200_000,
                    "metrics": [{"dataSource": "3", "name": "ifinoctets", "value": 12345.5}]},
        "event": {"eventID": 1, "thresholdID": "elephant", "agent": "192.0.2.200", "dataSource": "3",
                  "metric": "pair", "value": 2.5e6, "threshold": 1.25e6, "flowKey": "10.1.0.10,192.0.2.10",
                  "timestamp": 1_763_683_200_000},
        "flow_log": {"flow": "pair", "flowKeys": "10.1.0.10,192.0.2.10", "keys": ["10.1.0.10", "192.0.2.10"],
                     "agent": "192.0.2.200", "dataSource": "3", "bytes": 1_500_000, "frames": 1000,
                     "start": 1_763_683_140_000, "end": 1_763_683_190_000, "reason": "end",
                     "timestamp": 1_763_683_200_000},
        "counter_sample_batch": by_kind["counters"],
        "discard_sample_batch": by_kind["discards"],
    }


def _enrichment(n: int) -> dict:
    return {"src_country": [None] * n, "dst_country": ["US"] * n, "src_asn": [None] * n, "dst_asn": [15169] * n,
            "src_as_name": [None] * n, "dst_as_name": ["GOOGLE"] * n, "src_groups": [["site:lab"]] * n,
            "dst_groups": [[]] * n}


def main() -> int:
    DIR.mkdir(exist_ok=True)
    datums = None
    for stem, versions in schema_set().by_stem.items():
        newest = versions[-1]
        target = DIR / f"{stem}.v{newest.version}.avro"
        if target.exists():
            continue
        datums = datums or example_datums()
        msg = AvroCodec(stem).encode(datums[stem])
        target.write_bytes(msg)
        decoded = AvroCodec(stem).decode(msg)
        (DIR / f"{stem}.v{newest.version}.json").write_text(json.dumps(to_jsonable(decoded), indent=1) + "\n")
        print(f"wrote {target.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
