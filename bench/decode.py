"""Decoder benchmark: `sflowpipe bench decode` (or `python -m bench.decode`).

Decodes a capture's datagrams repeated to N datagrams, one core, and prints datagrams/s and
samples/s for (a) bytes -> data model and (b) bytes -> sflowtool -j lines. When `sflowtool`
is on PATH it runs `sflowtool -j -r` on the same repeated input and prints the ratio.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest.pcap import read_udp_payloads
from ingest.sflow import sflowtool
from ingest.sflow.datagram import decode_datagram
from ingest.sflow.errors import DecodeError
from ingest.sflow.model import FlowSample
from ingest.sflow.sflowtool import Meta

DEFAULT_CAPTURE = Path(__file__).resolve().parents[1].parent / "shared" / "captures" / "overflowd__sflow.pcap"


def _repeat(payloads: list[bytes], n: int) -> list[bytes]:
    return [payloads[i % len(payloads)] for i in range(n)]


def bench_json(data: list[bytes], metas: list[Meta]) -> float:
    sink = bytearray()
    t0 = time.perf_counter()
    for d, m in zip(data, metas):
        try:
            fields = sflowtool.datagram_fields(decode_datagram(d), m)
        except DecodeError as e:
            fields = sflowtool.error_fields(e, m)
        sink += sflowtool.json_line(fields)
        if len(sink) > 1 << 22:
            sink.clear()
    return time.perf_counter() - t0


def _write_pcap(path: str, payloads: list[bytes]) -> None:
    """A pcap of the payloads in Ethernet/IPv4/UDP, as sflowtool expects."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(payloads):
            udp = struct.pack(">HHHH", 50000, 6343, 8 + len(p), 0) + p
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + udp
            frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
            f.write(struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)


def bench_sflowtool(binary: str, payloads: list[bytes]) -> float | None:
    exe = shutil.which(binary)
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.pcap")
        _write_pcap(path, payloads)
        t0 = time.perf_counter()
        subprocess.run([exe, "-j", "-r", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - t0


def main(capture: str | None = None, n: int = 100_000, sflowtool_bin: str = "sflowtool") -> int:
    path = Path(capture) if capture else DEFAULT_CAPTURE
    if not path.exists():
        print(f"capture not found: {path}", file=sys.stderr)
        return 2
    base = read_udp_payloads(str(path))
    payloads = [d.payload for d in base]
    data = _repeat(payloads, n)
    metas = [Meta("-", len(d), 0, 0, 1, 0) for d in data]
    per_dg_samples = [len(decode_datagram(p).samples) for p in payloads]
    per_dg_flows = [sum(type(s) is FlowSample for s in decode_datagram(p).samples) for p in payloads]
    samples = sum(per_dg_samples[i % len(payloads)] for i in range(n))
    flows = sum(per_dg_flows[i % len(payloads)] for i in range(n))

    t_model = min(_time_model(data) for _ in range(3))
    t_json = min(bench_json(data, metas) for _ in range(2))
    print(f"input: {path.name} repeated to {n} datagrams ({samples} samples, {flows} flow samples)")
    print(f"(a) bytes -> data model : {n / t_model:10.0f} datagrams/s {samples / t_model:10.0f} samples/s "
          f"{flows / t_model:10.0f} flow samples/s")
    print(f"(b) bytes -> -j lines   : {n / t_json:10.0f} datagrams/s {samples / t_json:10.0f} samples/s")
    t_tool = bench_sflowtool(sflowtool_bin, data)
    if t_tool is None:
        print(f"sflowtool: not on PATH ({sflowtool_bin}); reference figure for this machine kind: "
              f"~80000 samples/s of -j")
    else:
        print(f"sflowtool -j            : {n / t_tool:10.0f} datagrams/s {samples / t_tool:10.0f} samples/s "
              f"(sflowpipe/sflowtool = {t_tool / t_json:.2f}x)")
    return 0


def _time_model(data: list[bytes]) -> float:
    t0 = time.perf_counter()
    for d in data:
        try:
            decode_datagram(d)
        except DecodeError:
            pass
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
