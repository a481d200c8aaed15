"""Run `sflowpipe ingest` as a real process, and compute what should come out of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from ingest.sflow import DecodeError, decode_datagram
from ingest.sflow.flow_records import ExtendedSwitch, SampledHeader
from ingest.sflow.model import CounterSample, DiscardSample, FlowSample
from schemas.model_avro import to_datum
from sflowpipe.broker import free_port
from tests.waiting import until


class IngestProcess:
    """`sflowpipe ingest` in a subprocess, configured through the environment."""

    def __init__(self, bootstrap: str, prefix: str, tmp, port: int, workers: int = 1, extra_env=None) -> None:
        self.metrics_port = free_port()
        self.port = port
        self.env = {**os.environ,
                    "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                    "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix,
                    "SFLOWPIPE_KAFKA__PARTITIONS": "3",
                    "SFLOWPIPE_INGEST__LISTEN": f"127.0.0.1:{port}",
                    "SFLOWPIPE_INGEST__WORKERS": str(workers),
                    "SFLOWPIPE_INGEST__SPILL_DIR": str(tmp / f"spill-{port}-{self.metrics_port}"),
                    "SFLOWPIPE_INGEST__METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
                    "SFLOWPIPE_INGEST__BATCH_MAX_MS": "20",
                    **(extra_env or {})}
        self.log = tmp / f"ingest-{self.metrics_port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "ingest"], env=self.env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

        def serving() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                self.metrics()
                return True
            except OSError:
                return False

        until(serving, timeout, message=lambda: f"ingest did not start: {self.log.read_text()}")

    def metrics(self) -> dict[str, float]:
        """Metric totals by name (labels summed) and by name{labels}."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):  # prometheus-client's own parser
            for sample in family.samples:
                name, value = sample.name, float(sample.value)
                labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
                key = f"{name}{{{labels}}}" if labels else name
                out[key] = value
                if not name.endswith(("_bucket", "_sum", "_count")):
                    out[name] = out.get(name, 0) + value if key != name else value
        return out

    def stop(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code


def plain(v, in_union: bool = False):
    """A to_datum() value as sflowpipe's Avro reader returns it: members of record unions as
    (name, dict) tuples, other records as plain dicts."""
    if isinstance(v, dict):
        d = {k: plain(x) for k, x in v.items() if k != "-type"}
        return (v["-type"], d) if in_union else d
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def flow_key(agent, dg, s, header, switch) -> tuple:
    d = header.decoded if header else None
    return ("flow", agent, dg.sub_agent_id, dg.sequence_number, s.sequence_number, s.source_id_type,
            s.source_id_index, s.sampling_rate, s.sample_pool, s.input, s.output,
            header.header if header else None, d.src_ip if d else None, d.dst_ip if d else None,
            d.src_port if d else None, switch.src_vlan if switch else None)


def expected_samples(payloads: list[bytes]) -> tuple[Counter, int]:
    """What the topics must hold for these datagrams: sample keys, and the malformed count."""
    want: Counter = Counter()
    malformed = 0
    for p in payloads:
        try:
            dg = decode_datagram(p)
        except DecodeError:
            malformed += 1
            continue
        for s in dg.samples:
            if type(s) is FlowSample:
                header = next((r for r in s.records if type(r) is SampledHeader), None)
                switch = next((r for r in s.records if type(r) is ExtendedSwitch), None)
                want[flow_key(dg.agent_address, dg, s, header, switch)] += 1
            elif type(s) is CounterSample:
                want[("counters", dg.agent_address, dg.sequence_number, s.sequence_number, s.source_id_index,
                      repr([plain(to_datum(r), True) for r in s.records]))] += 1
            elif type(s) is DiscardSample:
                want[("discard", dg.agent_address, dg.sequence_number, s.sequence_number, s.reason,
                      repr([plain(to_datum(r), True) for r in s.records]))] += 1
    return want, malformed


def got_samples(flow_batches, counter_batches, discard_batches) -> Counter:
    from ingest.batches import flow_rows

    got: Counter = Counter()
    for b in flow_batches:
        for r in flow_rows(b):
            got[("flow", r["agent_address"], r["sub_agent_id"], r["datagram_sequence"], r["sequence_number"],
                 r["source_id_type"], r["source_id_index"], r["sampling_rate"], r["sample_pool"], r["input"],
                 r["output"], r["header"], r["src_ip"], r["dst_ip"], r["src_port"], r["src_vlan"])] += 1
    for b in counter_batches:
        for s in b["samples"]:
            got[("counters", b["agent_address"], s["datagram_sequence"], s["sequence_number"], s["source_id_index"],
                 repr(s["records"]))] += 1
    for b in discard_batches:
        for s in b["samples"]:
            got[("discard", b["agent_address"], s["datagram_sequence"], s["sequence_number"], s["reason"],
                 repr(s["records"]))] += 1
    return got


def sample_count(batches, kind: str) -> int:
    if kind == "flow":
        return sum(len(b["sequence_number"]) for b in batches)
    return sum(len(b["samples"]) for b in batches)
