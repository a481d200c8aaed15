"""Start-up benchmark: `sflowpipe bench startup` (or `python -m bench.startup`).

Runs `sflowpipe --help`, every `sflowpipe COMMAND --help`, `sflowpipe decode -r` of a small
capture and `sflowpipe --print-config` (the settings model) each in a fresh interpreter, and
prints the median wall time minus a bare `python -c pass`: the command's own start-up time,
the figure to quote (the budget is 0.3 s). Also names the heavy modules each one imported, so a
slow line says why (tests/test_startup.py fails when one shows up where it must not).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "sflowpipe.cli"]
SMALL_CAPTURE = Path(__file__).resolve().parents[1].parent / "shared" / "captures" / "akvorado__data-1140.pcap"
# what a command's start-up must not pay for unless it runs that part: Kafka clients, Faust,
# the HTTP server, ClickHouse drivers, Arrow/NumPy/pandas, Avro
HEAVY = ("faust", "mode", "aiohttp", "aiokafka", "pyarrow", "clickhouse_connect", "chdb", "confluent_kafka",
         "fastavro", "numpy", "pandas", "prometheus_client")


def subcommands() -> list[list[str]]:
    """Every command line whose --help the parser serves: each command, each nested action."""
    import argparse

    from sflowpipe.cli import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append(prefix + [name])
                    found += walk(sub, prefix + [name])
        return found

    return walk(build_parser(), [])


def imported(argv: list[str], env: dict | None = None) -> tuple[int, set[str]]:
    """(exit code, modules imported, dotted names) of one command line, from ``-X importtime``."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "sflowpipe.cli", *argv], capture_output=True,
                         text=True, env=env, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in res.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return res.returncode, names - {"package"}  # the header line


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(args=None) -> int:
    runs = getattr(args, "runs", None) or 5
    lines = [["--help"]] + [argv + ["--help"] for argv in subcommands()]
    lines += [["decode", "-r", str(getattr(args, "capture", None) or SMALL_CAPTURE)], ["--print-config"]]
    base = wall([sys.executable, "-c", "pass"], runs)
    print(f"python -c pass: {base * 1000:.0f} ms (median of {runs}); own time of each command, that subtracted:")
    worst = 0.0
    for argv in lines:
        own = wall(CLI + argv, runs) - base
        worst = max(worst, own)
        heavy = sorted(set(HEAVY) & packages(imported(argv)[1]))
        print(f"  {own * 1000:6.0f} ms  sflowpipe {' '.join(argv)}" + (f"   imports {', '.join(heavy)}" if heavy else ""))
    print(f"slowest: {worst * 1000:.0f} ms (budget 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
