"""The generator's DNS-amplification flood and `sflowpipe generate --flood-*`."""

from __future__ import annotations

import pytest

from ingest.generate import Generator
from ingest.sflow import decode_datagram
from ingest.sflow.flow_records import SampledHeader
from ingest.sflow.model import FlowSample
from tests.sflow_data import generated


def flow_headers(payloads):
    for p in payloads:
        for s in decode_datagram(p).samples:
            if type(s) is FlowSample:
                h = next(r for r in s.records if type(r) is SampledHeader)
                yield h, h.decoded


def is_flood(d, target):
    return d.dst_ip == target and d.src_port == 53 and d.ip_protocol == 17


def test_flood_switches_on_and_off_and_leaves_the_normal_mix_alone():
    plain = Generator(agents=2, seed=3)
    gen = Generator(agents=2, seed=3, flood_target="192.0.2.99")
    before = [gen.datagram(now=i / 100) for i in range(200)]
    assert before == [plain.datagram(now=i / 100) for i in range(200)]  # off: the same datagrams
    gen.flooding = True
    during = list(flow_headers(gen.datagram(now=2 + i / 100) for i in range(400)))
    flood = [(h, d) for h, d in during if is_flood(d, "192.0.2.99")]
    assert 0.4 < len(flood) / len(during) < 0.6
    assert all(h.frame_length >= 1400 for h, _ in flood)
    assert len({d.src_ip for _, d in flood}) > 20  # many reflectors
    gen.flooding = False
    after = list(flow_headers(gen.datagram(now=6 + i / 100) for i in range(200)))
    assert not any(is_flood(d, "192.0.2.99") for _, d in after)
    # the normal mix never has DNS *from* port 53
    assert not any(d.src_port == 53 for _, d in flow_headers(before) if d)


@pytest.mark.e2e  # runs the CLI as a process
def test_generate_flood_flags():
    payloads = generated(600, "--rate", "400", "--flood-target", "192.0.2.99", "--flood-after", "0.5",
                         "--flood-duration", "0.5")
    marks = [any(is_flood(d, "192.0.2.99") for _, d in flow_headers([p])) for p in payloads]
    # ~200 normal datagrams, ~200 with the flood, ~200 normal again
    assert not any(marks[:150]) and sum(marks[230:370]) > 100 and not any(marks[450:])
