"""Discarded-packet notifications (sFlow 0:5) as the ingesters publish them, for dropped: true tests."""

from __future__ import annotations

from ingest.batches import AgentBatches
from ingest.sflow.encode import encode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import Datagram, DiscardSample
from tests.payload_frames import tcp_frame  # noqa: F401  (re-exported: the frames the tests drop)


def discard_datagram(agent: str, drops: list[tuple[int, int, bytes]], seq: int = 1, uptime: int = 1000) -> Datagram:
    """drops: (input ifIndex, reason code, frame) -> one notification each, sampled on the input port."""
    samples = tuple(
        DiscardSample(seq + i, 0, ifx, 0, 0, ifx, 0, 0, reason, (SampledHeader.of(1, len(frame) + 4, 4, frame),))
        for i, (ifx, reason, frame) in enumerate(drops))
    return Datagram(5, agent, 0, seq, uptime, samples)


def discard_batch(dg: Datagram, exporter: str = "192.0.2.250") -> dict:
    """The discard_sample_batch datum the ingesters publish for a datagram (before Avro)."""
    b = AgentBatches()
    b.add(dg, exporter, 1_700_000_000_000_000, now=0.0)
    [batch] = b.due(now=1e9)
    return batch.datum


def payload(dg: Datagram) -> bytes:
    return encode_datagram(dg)
