"""Start-up benchmark: `sflowpipe bench startup` (or `python -m bench.startup`).

Runs `sflowpipe --help`, every `sflowpipe COMMAND --help`, `sflowpipe decode -r` of a small
capture, `sflowpipe --print-config` (the settings model) and every command up to the start of
its work (parsing, settings, logging: `main()` until it calls the command's handler) each in a
fresh interpreter, and prints its median CPU time (user + system, from the child's rusage) minus a
bare `python -c pass`'s: the command's own start-up time, the figure to quote (the budget is 0.3 s),
which a busy machine does not stretch as it stretches the wall time (printed beside it). Then the import time of each
command's own modules (what its handler imports when it runs: Kafka clients, Faust, aiohttp...),
which is its work, not its start-up. Also names the heavy modules each line imported, so a slow
line says why (tests/test_startup.py fails when one shows up where it must not).
"""

from __future__ import annotations

import resource
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


# `main()` of the command line in argv, stopped where it would call the command's handler
TO_WORK = "import sys; from sflowpipe import cli; cli._run = lambda args, settings: 0; sys.exit(cli.main(sys.argv[1:]))"
# arguments a command cannot start without (its handler never runs here)
REQUIRED = {"definitions": ["delete", "flow", "x"], "replay": ["x.pcap", "--to", "kafka"], "tail": ["flows"],
            "sql": ["select 1"], "http-events": ["x"], "unhex": ["--to", "127.0.0.1:9"]}
# the modules each command's handler imports first (sflowpipe/cli.py): its work
WORK_MODULES = {"decode": "ingest.decode", "ingest": "ingest.service", "process": "processors.app",
                "up": "sflowpipe.up", "definitions": "sflowpipe.config_plane", "replay": "ingest.replay",
                "tail": "ingest.tail", "generate": "ingest.generate"}


def services() -> list[list[str]]:
    """Every command that does something (not `bench`), with the arguments it needs to parse."""
    from sflowpipe.cli import SINK_COMMANDS

    names = list(WORK_MODULES) + [c[0] for c in SINK_COMMANDS]
    return [[name] + REQUIRED.get(name, []) for name in names]


def work_module(command: str) -> str:
    from sflowpipe.cli import SINK_COMMANDS

    return WORK_MODULES.get(command) or next(c[2] for c in SINK_COMMANDS if c[0] == command)


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


def imported(argv: list[str], env: dict | None = None, to_work: bool = False) -> tuple[int, set[str]]:
    """(exit code, modules imported, dotted names) of one command line, from ``-X importtime``;
    ``to_work``: up to the start of the command's work."""
    entry = ["-c", TO_WORK] if to_work else ["-m", "sflowpipe.cli"]
    return _importtime([*entry, *argv], env)


def imported_module(module: str) -> tuple[int, set[str]]:
    """(exit code, modules) of importing ``module`` alone."""
    return _importtime(["-c", f"import {module}"])


def _importtime(python_args: list[str], env: dict | None = None) -> tuple[int, set[str]]:
    res = subprocess.run([sys.executable, "-X", "importtime", *python_args], capture_output=True, text=True,
                         env=env, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in res.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return res.returncode, names - {"package"}  # the header line


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def own(cmd: list[str], runs: int) -> tuple[float, float]:
    """(median CPU seconds, median wall seconds) of ``runs`` runs of ``cmd``."""
    cpu, wall = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def work_imports(module: str, runs: int) -> float:
    """Median seconds of importing ``module`` once the settings are loaded, as a command's handler does."""
    code = ("import time; from sflowpipe.settings import load_settings; load_settings(); "
            f"t = time.perf_counter(); import {module}; print(time.perf_counter() - t)")
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(runs))


def main(args=None) -> int:
    runs = getattr(args, "runs", None) or 5
    lines = [["--help"]] + [argv + ["--help"] for argv in subcommands()]
    lines += [["decode", "-r", str(getattr(args, "capture", None) or SMALL_CAPTURE)], ["--print-config"]]
    base_cpu, base_wall = own([sys.executable, "-c", "pass"], runs)
    print(f"python -c pass: {base_cpu * 1000:.0f} ms CPU, {base_wall * 1000:.0f} ms wall (median of {runs}); "
          "each command's own time, that subtracted (CPU, then wall):")
    worst = 0.0

    def line(cpu: float, wall: float | None, text: str, modules: set[str]) -> None:
        heavy = sorted(set(HEAVY) & packages(modules))
        shown = f"{cpu * 1000:6.0f} ms" + (f"  {wall * 1000:6.0f} ms" if wall is not None else "")
        print(f"  {shown}  {text}" + (f"   imports {', '.join(heavy)}" if heavy else ""))

    def timed(cmd: list[str], text: str, modules: set[str]) -> None:
        nonlocal worst
        cpu, wall = own(cmd, runs)
        worst = max(worst, cpu - base_cpu)
        line(cpu - base_cpu, wall - base_wall, text, modules)

    for argv in lines:
        timed(CLI + argv, f"sflowpipe {' '.join(argv)}", imported(argv)[1])
    print("each command up to the start of its work (arguments, settings, logging):")
    for argv in services():
        timed([sys.executable, "-c", TO_WORK, *argv], f"sflowpipe {' '.join(argv)}",
              imported(argv, to_work=True)[1])
    print("then its work imports its own modules (wall time of the import once the settings are loaded):")
    for module in dict.fromkeys(work_module(argv[0]) for argv in services()):
        line(work_imports(module, runs), None, f"import {module}", imported_module(module)[1])
    print(f"slowest start-up: {worst * 1000:.0f} ms of CPU (budget 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
