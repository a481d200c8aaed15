"""A router's flow samples for the decoder benchmark: `python -m bench.router_mix OUT.pcap [CAPTURE]`.

Switches send a sampled header and extended_switch per flow sample (overflowd's capture); routers
add extended_router and extended_gateway (BGP next hop, AS path, communities), which cost more to
decode. This rewrites a capture's flow samples into that four-record mix with the project's own
encoder (same datagrams, samples, headers and switch records; a router and a gateway record
added to each flow sample) and writes the datagrams as a pcap that `sflowpipe bench decode
--capture OUT.pcap` and `sflowtool -r` read.
"""

from __future__ import annotations

import sys

from bench.decode import DEFAULT_CAPTURE, _write_pcap
from ingest.pcap import read_udp_payloads
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.encode import encode_datagram
from ingest.sflow.flow_records import AS_SEQUENCE, ExtendedGateway, ExtendedRouter, ExtendedSwitch, SampledHeader
from ingest.sflow.model import Datagram, FlowSample


def router_sample(s: FlowSample, k: int) -> FlowSample:
    """The flow sample with its sampled header and switch record, then a router and a gateway record."""
    header = [r for r in s.records if isinstance(r, SampledHeader)]
    switch = [r for r in s.records if isinstance(r, ExtendedSwitch)] or [ExtendedSwitch(1, 0, 1, 0)]
    k %= 5
    records = (*header, switch[0], ExtendedRouter(f"10.0.{k}.1", 24, 16 + k),
               ExtendedGateway(f"10.0.{k}.254", 65001, 64500 + k, 64600 + k,
                               ((AS_SEQUENCE, (64600 + k, 3356, 1299, 15169 + k)),),
                               (65001 << 16 | 100, 65001 << 16 | k), 100))
    fields = [getattr(s, f) for f in s.__struct_fields__]
    return FlowSample(*fields[:-1], records)


def router_mix(payloads: list[bytes]) -> list[bytes]:
    out = []
    for i, p in enumerate(payloads):
        d = decode_datagram(p)
        samples = tuple(router_sample(s, i * 7 + j) if isinstance(s, FlowSample) else s
                        for j, s in enumerate(d.samples))
        out.append(encode_datagram(Datagram(d.version, d.agent_address, d.sub_agent_id, d.sequence_number,
                                            d.uptime, samples)))
    return out


def main(out: str, capture: str | None = None) -> int:
    payloads = [d.payload for d in read_udp_payloads(str(capture or DEFAULT_CAPTURE))]
    _write_pcap(out, router_mix(payloads))
    print(f"{out}: {len(payloads)} datagrams")
    return 0


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], *sys.argv[2:3]))
