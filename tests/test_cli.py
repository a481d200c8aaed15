"""The `sflowpipe` command line: subcommands, settings, decode over a real UDP socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from ingest.sflow import encode_datagram
from tests.ingest.sflow.test_datagram import sample_datagram

CLI = [sys.executable, "-m", "sflowpipe.cli"]


def run(*args, env=None, input=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, input=input, timeout=60)


def test_help_lists_subcommands():
    res = run("--help")
    assert res.returncode == 0
    assert "decode" in res.stdout and "bench" in res.stdout


def test_print_config_resolves_env_and_file(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("decode:\n  port: 7000\nlog_level: DEBUG\n")
    env = {**os.environ, "SFLOWPIPE_DECODE__PORT": "7001"}
    res = run("--config", str(cfg), "--print-config", env=env)
    conf = json.loads(res.stdout)
    assert conf["decode"]["port"] == 7001 and conf["log_level"] == "DEBUG"


def test_invalid_settings_are_a_clear_error(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("decode:\n  port: 99999\n")
    res = run("--config", str(cfg), "--print-config")
    assert res.returncode == 2 and "port" in res.stderr


def test_decode_live_udp_json_and_typed():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for style, check in ((["-j"], lambda o: o["agent"] == "192.0.2.10" and o["datagramSourceIP"] == "127.0.0.1"),
                         (["--format", "json"], lambda o: o["datagram"]["agent_address"] == "192.0.2.10")):
        proc = subprocess.Popen([*CLI, "decode", "-p", str(port), *style], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                deadline = time.monotonic() + 20
                os.set_blocking(proc.stdout.fileno(), False)
                while time.monotonic() < deadline and not line:
                    tx.sendto(encode_datagram(sample_datagram()), ("127.0.0.1", port))
                    time.sleep(0.2)
                    line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.poll() is not None else "no output"
            assert check(json.loads(line))
        finally:
            proc.terminate()
            proc.wait(10)


def test_decode_from_stdin_and_bad_capture(tmp_path):
    res = run("decode", "-j", "-r", "-", input="not a capture")
    assert res.returncode == 2 and "not a pcap" in res.stderr


def test_definitions_apply_refuses_a_bad_file_and_publishes_nothing(tmp_path):
    """The CLI path runs the same compiler as the REST API: one line per fault, exit 2, and nothing
    published (the unreachable broker is never contacted: it would time out, not exit at once)."""
    f = tmp_path / "defs.yaml"
    f.write_text("flows:\n  good: {keys: ipsource}\n  bad: {keys: 'ipsource,dnsqnamex'}\n"
                 "  worse: {keys: ipsource, filter: 'ipprotocol=6&&'}\n")
    started = time.monotonic()
    res = run("definitions", "apply", str(f), env={**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert res.returncode == 2 and time.monotonic() - started < 30
    assert "flow bad: key: unknown flow key 'dnsqnamex'" in res.stderr and "(at 9 of keys)" in res.stderr
    assert "flow worse: filter: unexpected token '&' at 13" in res.stderr and "nothing published" in res.stderr


def test_definitions_apply_checks_new_fields_and_the_topology(tmp_path):
    """sFlow-RT's dropped / aggMode / keyless flows pass; a bad topology and a key sFlow does not
    carry are refused with their fault named, and nothing is published."""
    f = tmp_path / "defs.yaml"
    f.write_text("flows:\n  drops: {keys: reason, value: frames, dropped: true}\n"
                 "  total: {value: bytes, aggMode: edge}\n"
                 "  members: {keys: 'map:macsource:ixp_member'}\n"
                 "topology:\n  links: {l1: {node1: a, port1: p}}\n")
    res = run("definitions", "apply", str(f), env={**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert res.returncode == 2, res.stderr
    assert "flow members: key: 'map' needs data sFlow does not carry" in res.stderr
    assert "topology: link 'l1': node2 must be a non-empty string" in res.stderr
    assert "drops" not in res.stderr and "total" not in res.stderr and "nothing published" in res.stderr


def test_a_worker_refuses_a_bad_definitions_file_at_once(tmp_path):
    """The YAML path: `process --definitions` (and the API, the exporter) check the file with the
    workers' compiler before connecting: one line naming the fault and its place, exit 2, no traceback."""
    f = tmp_path / "defs.yaml"
    f.write_text("flows:\n  bad: {keys: 'ipsource,nosuchkey'}\n")
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "SFLOWPIPE_PROCESSORS__DEFINITIONS_FILE": str(f)}
    for cmd in (("process", "--definitions", str(f)), ("api",), ("prometheus",)):
        started = time.monotonic()
        res = run(*cmd, env=env)
        assert res.returncode == 2 and time.monotonic() - started < 20, (cmd, res.stderr[-500:])
        assert "flow bad: key: unknown flow key 'nosuchkey' (at 9 of keys)" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    res = run("process", "--definitions", str(tmp_path / "missing.yaml"), env=env)
    assert res.returncode == 2 and "missing.yaml" in res.stderr and "Traceback" not in res.stderr


def test_definitions_apply_refuses_more_than_the_cap_and_nan(tmp_path):
    """limits.max_flows holds for a definitions file too, and a YAML .nan threshold is refused."""
    f = tmp_path / "defs.yaml"
    f.write_text("flows:\n  a: {keys: ipsource}\n  b: {keys: ipdestination}\n  c: {keys: ipprotocol}\n"
                 "thresholds:\n  t: {metric: a, value: .nan}\n")
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "SFLOWPIPE_LIMITS__MAX_FLOWS": "2"}
    res = run("definitions", "apply", str(f), env=env)
    assert res.returncode == 2, res.stderr
    assert "flow definitions are limited to 2 (limits.max_flows)" in res.stderr
    assert "threshold t: value: Input should be a finite number" in res.stderr and "nothing published" in res.stderr


def test_non_finite_settings_are_refused_naming_the_setting(tmp_path):
    cfg = tmp_path / "s.yaml"
    for text, where in (("ingest:\n  batch_max_ms: .inf\n", "batch_max_ms"),
                        ("processors:\n  report_interval_s: .inf\n", "report_interval_s"),
                        ("sinks:\n  controls:\n    c: {threshold: x, min_hold_s: .nan}\n", "min_hold_s"),
                        ("limits:\n  definition_budget_s: .nan\n", "definition_budget_s")):
        cfg.write_text(text)
        res = run("--config", str(cfg), "--print-config")
        assert res.returncode == 2 and where in res.stderr, (text, res.stderr)
    res = run("--print-config", env={**os.environ, "SFLOWPIPE_API__HISTORY_S": "Infinity"})
    assert res.returncode == 2 and "history_s" in res.stderr
