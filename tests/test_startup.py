"""Start-up (issue 13): building the parser imports argparse-level modules only, and a command
imports what it runs. `sflowpipe --help` used to take 2-3.6 s: the parser imported the ClickHouse
sink, pyarrow and aiohttp; every command reading its settings imported pydantic-settings (asyncio,
importlib.metadata) and `sflowpipe.up`. Each command line runs in a fresh interpreter under
``-X importtime``; `sflowpipe bench startup` prints the times."""

from __future__ import annotations

import subprocess

import pytest

from bench.startup import CLI, HEAVY, SMALL_CAPTURE, imported, packages, services, subcommands

pytestmark = pytest.mark.e2e  # runs the CLI as processes

# the parser's budget: besides the standard library, only sflowpipe's composition modules and
# the argument tables of the services (sinks/args.py, api/args.py)
NOT_FOR_HELP = set(HEAVY) | {"pydantic", "pydantic_core", "pydantic_settings", "yaml", "msgspec", "orjson",
                             "requests", "ingest", "processors", "schemas", "bench"}
PARSER_MODULES = {"sflowpipe", "sflowpipe.cli", "sflowpipe.up_args", "sinks", "sinks.args", "api", "api.args"}
# a command that reads its settings: the settings model (sflowpipe/typed.py records) on top of the
# parser, not pydantic (~0.2 s of CPU: its import and the core schemas of the settings classes), not
# pydantic-settings (asyncio, importlib.metadata's providers), not YAML without a file, not `up`'s
# processes and sockets
NOT_FOR_SETTINGS = set(HEAVY) | {"pydantic", "pydantic_core", "pydantic_settings", "asyncio", "yaml"}
SETTINGS_MODULES = PARSER_MODULES | {"sflowpipe.settings", "sflowpipe.typed"}
# api and prometheus check the start-up definitions before they serve (sflowpipe/cli.py
# _definitions_fault): the config plane, which reads and writes the config topic, is their work
CHECKS_DEFINITIONS = {"api", "prometheus"}

COMMANDS = subcommands()
SERVICES = services()


def test_every_command_is_covered():
    names = {argv[0] for argv in COMMANDS}
    assert {"decode", "ingest", "process", "up", "clickhouse", "sql", "api", "control", "bench"} <= names
    assert ["bench", "startup"] in COMMANDS and ["definitions", "apply"] in COMMANDS


@pytest.mark.parametrize("argv", [["--help"]] + [c + ["--help"] for c in COMMANDS], ids=" ".join)
def test_help_imports_only_the_parser(argv):
    code, modules = imported(argv)
    assert code == 0
    assert not packages(modules) & NOT_FOR_HELP, sorted(packages(modules) & NOT_FOR_HELP)
    ours = {m for m in modules if m.split(".")[0] in ("sflowpipe", "sinks", "api", "ingest", "processors")}
    assert ours <= PARSER_MODULES, sorted(ours - PARSER_MODULES)


def test_print_config_imports_the_settings_model_only(tmp_path):
    """`--print-config` used to import pydantic-settings (asyncio, importlib.metadata...) and
    `sflowpipe.up`, which it does not run."""
    code, modules = imported(["--print-config"])
    assert code == 0
    assert not packages(modules) & NOT_FOR_SETTINGS, sorted(packages(modules) & NOT_FOR_SETTINGS)
    assert {"sflowpipe.typed", "sflowpipe.settings", "sflowpipe.secrets"} <= modules  # it did read the settings
    ours = {m for m in modules if m.split(".")[0] in ("sflowpipe", "sinks", "api", "ingest", "processors")}
    assert ours <= SETTINGS_MODULES | {"sflowpipe.secrets"}, sorted(ours - SETTINGS_MODULES)
    cfg = tmp_path / "s.yaml"
    cfg.write_text("decode: {port: 7000}\n")
    code, modules = imported(["--config", str(cfg), "--print-config"])
    assert code == 0 and "yaml" in packages(modules)  # a file is read with the YAML parser, then only
    assert not packages(modules) & (NOT_FOR_SETTINGS - {"yaml"})


@pytest.mark.parametrize("argv", SERVICES, ids=" ".join)
def test_a_command_imports_only_settings_until_its_work_starts(argv):
    """Every command up to the call of its handler (arguments, settings, logging): what its work
    needs (Kafka clients, Faust, aiohttp...) is imported by the handler, not before."""
    code, modules = imported(argv, to_work=True)
    assert code == 0
    assert "sflowpipe.settings" in modules  # it did read the settings
    ours = {m for m in modules if m.split(".")[0] in ("sflowpipe", "sinks", "api", "ingest", "processors")}
    budget = NOT_FOR_SETTINGS
    if argv[0] in CHECKS_DEFINITIONS:  # the config plane, not its Kafka client, nor YAML without a
        assert "sflowpipe.config_plane" in modules  # definitions file, nor the flow compiler without a
        ours -= {"sflowpipe.config_plane"}  # flow to compile: they cost these two ~0.4 s of CPU
    assert not packages(modules) & budget, sorted(packages(modules) & budget)
    assert ours <= SETTINGS_MODULES, sorted(ours - SETTINGS_MODULES)


def test_decode_of_a_small_capture_imports_what_decoding_needs():
    """The sflowtool drop-in: the decoder and its output, not the settings model, Kafka or Avro."""
    argv = ["decode", "-r", str(SMALL_CAPTURE)]
    code, modules = imported(argv)
    assert code == 0
    assert not packages(modules) & (set(HEAVY) | {"pydantic", "pydantic_settings", "yaml"}), \
        sorted(packages(modules) & (set(HEAVY) | {"pydantic", "pydantic_settings", "yaml"}))
    assert "ingest.sflow.datagram" in modules  # it did decode
    out = subprocess.run(CLI + argv, capture_output=True, text=True, timeout=60).stdout
    assert out.startswith("startDatagram") and "endDatagram" in out


def test_decode_json_of_common_datagrams_imports_no_data_model(captures_dir):
    """`decode -j -r` of flow and counter samples the fast writer prints (ingest/sflow/sflowtool_json.py):
    neither the data model (msgspec) nor the record tables nor orjson, which it loads for a fallback only."""
    argv = ["decode", "-j", "-r", str(captures_dir / "overflowd__sflow.pcap")]
    code, modules = imported(argv)
    assert code == 0
    assert not packages(modules) & {"msgspec", "orjson", "pydantic", *HEAVY}, sorted(packages(modules))
    assert not {"ingest.sflow.model", "ingest.sflow.datagram", "ingest.sflow.sflowtool"} & modules
    assert "ingest.sflow.sflowtool_json" in modules


def test_decode_live_still_reads_its_settings(tmp_path):
    """Without -r, decode listens where the settings say: those are loaded (and checked)."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text("decode:\n  port: 99999\n")
    res = subprocess.run(CLI + ["--config", str(cfg), "decode"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "invalid settings" in res.stderr and "port" in res.stderr


def test_bench_startup_prints_each_command_line():
    res = subprocess.run(CLI + ["bench", "startup", "--runs", "1"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("python -c pass:") and lines[-1].startswith("slowest start-up:")
    assert any(line.endswith("sflowpipe --help") for line in lines)
    assert any(" sflowpipe decode -r " in line for line in lines)
    assert any(line.endswith(" ms  sflowpipe ingest") for line in lines)  # up to its work
    assert len([line for line in lines if " ms  sflowpipe " in line]) == len(COMMANDS) + 3 + len(SERVICES)
    assert any(" ms  import api.service   imports aiohttp" in line for line in lines)  # its work
    assert not any("imports" in line for line in lines if "--help" in line), res.stdout
