"""Decoder benchmark: `sflowpipe bench decode [--sflowtool PATH]` (or `python -m bench.decode`).

For every capture in ../shared/captures that sflowtool decodes (or the ``--capture`` ones) and a
"router mix" built with the project's own encoder (flow samples of 4 records: sampled header,
extended switch, router and gateway), writes a temporary pcap of the capture's datagrams
repeated until sflowtool takes ``--min-seconds`` of CPU on it, then runs the two command lines

    sflowpipe decode -j -r FILE        sflowtool -j -r FILE

as whole processes (start-up included), alternating, ``--rounds`` times each, and prints per
input the samples, each side's median CPU time (user + system, from the children's rusage) and
wall time, and the throughput ratio sflowpipe/sflowtool (the issue-16 target is >= 1.5x). Each
input is first decoded once by both at its original size and the outputs compared byte for byte
("same bytes"). In-process figures from the same run: bytes -> data model flow samples/s, and
that as a ratio to sflowtool's CPU per sample; bytes -> -j lines samples/s (the CLI's loop
without start-up). Without sflowtool (not found) the sflowtool columns and ratios are left out.

Columns: CPU and wall are medians per run; sflowtool/s and sflowpipe/s are samples per CPU second of
the whole process; x CPU and x wall are sflowpipe's throughput over sflowtool's (their time over
ours); model flow/s is bytes -> data model in process (CPU time, best of 3), model x that (all
samples) over sflowtool's samples per CPU second; -j in-proc/s is the CLI's loop over the datagrams
in process (no start-up).

The machine is shared: only ratios measured in one run, alternating, hold.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT.parent / "shared" / "captures"
# the capture the other benchmarks (avro, ingest, process) repeat: a real switch's mix
DEFAULT_CAPTURE = CAPTURES / "overflowd__sflow.pcap"
ROUTER_MIX = "router-mix (encoder: header+switch+router+gateway)"


class Input(NamedTuple):
    name: str
    payloads: list[bytes]  # the capture's UDP payloads, in order


# ---------------------------------------------------------------- inputs


def router_mix(datagrams: int = 50, per_datagram: int = 7, seed: int = 16) -> list[bytes]:
    """Datagrams of flow samples with the 4 records a router exports (oxyflow-style)."""
    from ingest.generate import ipv4_packet
    from ingest.sflow.encode import encode_datagram
    from ingest.sflow.flow_records import AS_SEQUENCE, ExtendedGateway, ExtendedRouter, ExtendedSwitch, SampledHeader
    from ingest.sflow.model import Datagram, FlowSample

    rng = random.Random(seed)
    out = []
    seq = 0
    for n in range(datagrams):
        samples = []
        for _ in range(per_datagram):
            seq += 1
            proto = rng.choice((6, 6, 17))
            size = rng.randrange(64, 1500)
            src = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            dst = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            hdr = ipv4_packet(src, dst, proto, rng.randrange(1024, 65535), rng.choice((80, 443, 53)), size)
            path = tuple(rng.randrange(1, 65000) for _ in range(rng.randrange(1, 5)))
            records = (
                SampledHeader.of(1, size + 18, 4, hdr),
                ExtendedSwitch(rng.randrange(1, 4095), 0, rng.randrange(1, 4095), 0),
                ExtendedRouter(f"192.0.2.{rng.randrange(1, 255)}", rng.randrange(8, 33), rng.randrange(8, 33)),
                ExtendedGateway(f"192.0.2.{rng.randrange(1, 255)}", 64500, rng.randrange(1, 65000),
                                rng.randrange(1, 65000), ((AS_SEQUENCE, path),),
                                tuple(rng.randrange(1 << 32) for _ in range(rng.randrange(0, 3))), 100),
            )
            samples.append(FlowSample(False, seq, 0, 3, 1000, seq * 1000, 0, 0, rng.randrange(1, 48), 0,
                                      rng.randrange(1, 48), records))
        out.append(encode_datagram(Datagram(5, "192.0.2.1", 0, n + 1, 1_000_000 + n, tuple(samples))))
    return out


def inputs(selected: list[str]) -> list[Input]:
    from ingest.pcap import read_udp_payloads

    found = []
    paths = [Path(s) for s in selected if Path(s).is_file()]
    patterns = [s for s in selected if not Path(s).is_file()]
    if not paths:
        paths = sorted(CAPTURES.glob("*.pcap")) if CAPTURES.is_dir() else []
        if patterns:
            paths = [p for p in paths if any(s in p.name for s in patterns)]
    for p in paths:
        payloads = [d.payload for d in read_udp_payloads(str(p))]
        if payloads:
            found.append(Input(p.name, payloads))
    if not selected or any(s in ROUTER_MIX for s in patterns):
        found.append(Input(ROUTER_MIX, router_mix()))
    return found


def write_pcap(path: str, payloads: list[bytes], repeat: int = 1) -> None:
    """A pcap of the payloads (repeated) in Ethernet/IPv4/UDP frames, as sflowtool reads them."""
    frames = []
    for i, p in enumerate(payloads):
        udp = struct.pack(">HHHH", 50000, 6343, 8 + len(p), 0) + p
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + udp
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
        frames.append(struct.pack("<IIII", 1_300_000_000 + i, i, len(frame), len(frame)) + frame)
    body = b"".join(frames)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for _ in range(repeat):
            f.write(body)


# ---------------------------------------------------------------- running the two command lines


def sflowpipe_argv(path: str) -> list[str]:
    return [sys.executable, "-m", "sflowpipe.cli", "decode", "-j", "-r", path]


_PYCACHE: list[str] = []  # the children's bytecode cache (a temporary directory), set by main()


def _env() -> dict[str, str]:
    """The children's environment: this checkout first on the path, and bytecode cached as an
    installed package has it (a session that sets PYTHONDONTWRITEBYTECODE would otherwise make
    every sflowpipe run compile its modules again: ~35 ms of start-up that no installation pays)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if _PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE[0]
    return env


def run_timed(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one command line, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=str(ROOT),
                   check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def run_output(argv: list[str]) -> tuple[bytes, bytes]:
    res = subprocess.run(argv, capture_output=True, env=_env(), cwd=str(ROOT), check=False)
    return res.stdout, res.stderr


# ---------------------------------------------------------------- in process


def count_samples(payloads: list[bytes]) -> tuple[int, int]:
    """(samples, flow samples) of the datagrams that decode."""
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.errors import DecodeError
    from ingest.sflow.model import FlowSample

    samples = flows = 0
    for p in payloads:
        try:
            dg = decode_datagram(p)
        except DecodeError:
            continue
        samples += len(dg.samples)
        flows += sum(type(s) is FlowSample for s in dg.samples)
    return samples, flows


def time_model(payloads: list[bytes]) -> float:
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.errors import DecodeError

    t0 = time.process_time()
    for d in payloads:
        try:
            decode_datagram(d)
        except DecodeError:
            pass
    return time.process_time() - t0


def time_json(payloads: list[bytes], period: int) -> float:
    """The CLI's loop (ingest/decode.py run, -j) over the datagrams, without start-up; their capture
    times repeat every ``period`` datagrams, as in the pcap the command lines read."""
    from ingest import decode
    from ingest.sflow.sflowtool import Meta

    source = [(p, Meta("-", len(p), 0, 0, 1_300_000_000 + i % period, i % period)) for i, p in enumerate(payloads)]
    sink = io.BytesIO()
    t0 = time.process_time()
    decode.run(source, "json", sink, flush_each=False)
    return time.process_time() - t0


def _best(fn, payloads: list[bytes], runs: int = 3) -> float:
    return min(fn(payloads) for _ in range(runs))


# ---------------------------------------------------------------- the table


def _fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:,.0f}k"


def _fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        args = build_parser().parse_args()
    tool = None
    if not args.no_sflowtool:
        tool = shutil.which(args.sflowtool) or (args.sflowtool if os.access(args.sflowtool, os.X_OK) else None)
        if tool is None:
            print(f"sflowtool not found ({args.sflowtool}): sflowpipe figures only, no ratios", file=sys.stderr)
    ins = inputs(args.capture or [])
    if not ins:
        print(f"no capture found (looked in {CAPTURES})", file=sys.stderr)
        return 2
    cols = ["input", "dgrams", "samples", "same bytes", "sflowtool CPU", "sflowpipe CPU", "sflowtool/s", "sflowpipe/s",
            "x CPU", "sflowtool wall", "sflowpipe wall", "x wall", "model flow/s", "model x", "-j in-proc/s"]
    if tool is None:
        cols = [c for c in cols
                if "sflowtool" not in c and not c.startswith("x ") and c not in ("model x", "same bytes")]
    print(f"sflowpipe decode -j -r F{' vs sflowtool -j -r F' if tool else ''}: whole processes, {args.rounds} rounds"
          f"{' alternating' if tool else ''}, "
          f"medians; inputs repeated to >= {args.min_seconds} s of {'sflowtool' if tool else 'sflowpipe'} CPU; "
          f"bytecode cached as installed",
          flush=True)
    rows = []
    ratios = []
    with tempfile.TemporaryDirectory(prefix="sflowpipe-bench-decode-") as tmp:
        _PYCACHE[:] = [os.path.join(tmp, "pycache")]
        for inp in ins:
            row = measure(inp, tool, args, tmp)
            if row is None:
                continue
            rows.append(row)
            if row.get("x CPU") is not None:
                ratios.append((inp.name, row["x CPU"]))
            print("  " + "  ".join(f"{c}={_cell(c, row.get(c))}" for c in cols), flush=True)
    print()
    _table(cols, rows)
    if ratios:
        worst = min(ratios, key=lambda r: r[1])
        print(f"\nthroughput sflowpipe/sflowtool (CPU): geometric mean "
              f"{math.exp(statistics.fmean(math.log(r) for _, r in ratios)):.2f}x, lowest {worst[1]:.2f}x "
              f"({worst[0]}); target >= 1.5x")
    return 0


def _cell(col: str, v) -> str:
    if v is None:
        return "-"
    if col.startswith("x ") or col == "model x":
        return _fmt_x(v)
    if col.endswith("CPU") or col.endswith("wall"):
        return f"{v * 1000:.0f} ms"
    if col.endswith("/s"):
        return _fmt_rate(v)
    return str(v)


def _table(cols: list[str], rows: list[dict]) -> None:
    cells = [[_cell(c, r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))


def measure(inp: Input, tool: str | None, args: argparse.Namespace, tmp: str) -> dict | None:
    base = os.path.join(tmp, "base.pcap")
    write_pcap(base, inp.payloads)
    row: dict = {"input": inp.name}
    if tool is not None:
        theirs, err = run_output([tool, "-j", "-r", base])
        if b"caught exception" in err:  # sflowtool gave up on a datagram: not an input it decodes
            return None
        ours, _ = run_output(sflowpipe_argv(base))
        row["same bytes"] = "yes" if ours == theirs else "NO"
    # calibrate: repeat the datagrams until the reference side takes min_seconds of CPU
    probe_repeat = max(1, 2000 // len(inp.payloads))
    probe = os.path.join(tmp, "probe.pcap")
    write_pcap(probe, inp.payloads, probe_repeat)
    argv_ref = [tool, "-j", "-r", probe] if tool else sflowpipe_argv(probe)
    t_probe = max(run_timed(argv_ref)[0], 1e-3)
    repeat = max(probe_repeat, math.ceil(probe_repeat * args.min_seconds / t_probe))
    path = os.path.join(tmp, "input.pcap")
    write_pcap(path, inp.payloads, repeat)
    samples, flows = count_samples(inp.payloads)
    row["dgrams"] = len(inp.payloads) * repeat
    row["samples"] = samples * repeat
    ours_t, theirs_t = [], []
    for _ in range(args.rounds):
        ours_t.append(run_timed(sflowpipe_argv(path)))
        if tool:
            theirs_t.append(run_timed([tool, "-j", "-r", path]))
    row["sflowpipe CPU"] = statistics.median(t[0] for t in ours_t)
    row["sflowpipe wall"] = statistics.median(t[1] for t in ours_t)
    row["sflowpipe/s"] = row["samples"] / row["sflowpipe CPU"]
    # in process, on up to ~20k samples' worth of datagrams
    n = max(1, min(len(inp.payloads) * repeat, len(inp.payloads) * max(1, 20_000 // max(samples, 1))))
    data = [inp.payloads[i % len(inp.payloads)] for i in range(n)]
    reps = n / len(inp.payloads)
    t_model = _best(time_model, data)
    row["model flow/s"] = flows * reps / t_model if flows else None
    row["-j in-proc/s"] = samples * reps / _best(lambda d: time_json(d, len(inp.payloads)), data, 2)
    if tool:
        row["sflowtool CPU"] = statistics.median(t[0] for t in theirs_t)
        row["sflowtool wall"] = statistics.median(t[1] for t in theirs_t)
        row["sflowtool/s"] = row["samples"] / row["sflowtool CPU"]
        row["x CPU"] = row["sflowtool CPU"] / row["sflowpipe CPU"]
        row["x wall"] = row["sflowtool wall"] / row["sflowpipe wall"]
        if samples:
            tool_rate = row["samples"] / row["sflowtool CPU"]
            row["model x"] = (samples * reps / t_model) / tool_rate
    return row


def build_parser() -> argparse.ArgumentParser:
    """The `bench decode` arguments, as sflowpipe/cli.py declares them (it must not import this module)."""
    from sflowpipe.cli import build_parser as cli_parser

    return _subparser(cli_parser(), ["bench", "decode"])


def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


if __name__ == "__main__":
    sys.exit(main())
