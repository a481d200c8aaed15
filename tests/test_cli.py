"""The `sflowpipe` command line: subcommands, settings, decode over a real UDP socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ingest.sflow import encode_datagram
from tests.ingest.sflow.test_datagram import sample_datagram
from tests.waiting import until

pytestmark = pytest.mark.e2e  # runs the CLI as a process

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
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                os.set_blocking(proc.stdout.fileno(), False)

                def decoded() -> str:  # sent again until one is decoded (the first may beat the bind)
                    tx.sendto(encode_datagram(sample_datagram()), ("127.0.0.1", port))
                    return proc.stdout.readline()

                line = until(decoded, timeout=30,
                             message=lambda: proc.stderr.read() if proc.poll() is not None else "no output")
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


# ---------------------------------------------------------------- strict settings (issue 12)

def _one_line_refusal(res) -> str:
    """A settings refusal: exit 2, one line on stderr, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout[-500:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    return res.stderr


def test_a_typo_in_a_section_is_refused_naming_the_key_and_the_closest_one(tmp_path):
    """`api: {tokne: ..., readonly: true}` used to start a writable API with no credentials."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text("api: {tokne: s3cret, readonly: true}\n")
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    for args in (("--print-config",), ("api",), ("prometheus",)):  # refused before anything listens
        err = _one_line_refusal(run("--config", str(cfg), *args, env=env))
        assert "api.tokne: unknown setting (did you mean api.token?)" in err, err
        assert "api.readonly: unknown setting (did you mean api.read_only?)" in err, err
        assert "s3cret" not in err
    # at any depth: in a name -> definition dict, a list item, a misplaced top-level key
    cfg.write_text("processors:\n  flows:\n    f: {keys: ipsource, fliter: 'ipprotocol=6'}\n"
                   "sinks:\n  http:\n    hec: {type: splunk, url: 'http://h', tokn: x}\n"
                   "  controls:\n    c: {threshold: t, action: {type: http, apply: {url: 'http://c', methd: PUT}}}\n"
                   "read_only: true\n")
    err = _one_line_refusal(run("--config", str(cfg), "--print-config"))
    assert "processors.flows.f.fliter: unknown setting (did you mean processors.flows.f.filter?)" in err
    assert "sinks.http.hec.tokn: unknown setting (did you mean sinks.http.hec.token?)" in err
    assert "sinks.controls.c.action.apply.methd: unknown setting (did you mean " \
           "sinks.controls.c.action.apply.method?)" in err
    assert "read_only: unknown setting (did you mean api.read_only?)" in err


def test_unknown_environment_variables_are_refused_with_the_closest_one(tmp_path):
    env = {**os.environ, "SFLOWPIPE_API__TOKNE": "x", "SFLOWPIPE_API_READ_ONLY": "true",
           "SFLOWPIPE_SINKS__HTTP": json.dumps({"hec": {"type": "splunk", "url": "http://h", "tokne": "x"}}),
           "SFLOWPIPE_DECODE__PORT__X": "1"}
    err = _one_line_refusal(run("--print-config", env=env))
    assert "SFLOWPIPE_API__TOKNE: api.tokne is not a setting (did you mean SFLOWPIPE_API__TOKEN?)" in err
    assert "SFLOWPIPE_API_READ_ONLY: api_read_only is not a setting (did you mean SFLOWPIPE_API__READ_ONLY?)" in err
    assert "SFLOWPIPE_SINKS__HTTP: sinks.http.hec.tokne: unknown setting (did you mean sinks.http.hec.token?)" in err
    assert "SFLOWPIPE_DECODE__PORT__X: decode.port.x is not a setting" in err
    # the variables that are settings still work, in any case, JSON values included
    env = {**os.environ, "sflowpipe_api__read_only": "true",
           "SFLOWPIPE_SINKS__HTTP": json.dumps({"Hec": {"type": "splunk", "url": "http://h"}})}
    res = run("--print-config", env=env)
    assert res.returncode == 0, res.stderr
    conf = json.loads(res.stdout)
    assert conf["api"]["read_only"] is True and conf["sinks"]["http"]["Hec"]["type"] == "splunk"


@pytest.mark.parametrize("section, yaml_text, fault", [
    ("api", "api: {basic_user: ops}", "api: basic_user is set without basic_password"),
    ("api", "api: {basic_user: ops, basic_password: ''}", "api: basic_user is set without basic_password"),
    ("api", "api: {basic_password: pw}", "api: basic_password is set without basic_user"),
    ("api", "api: {token: ''}", "api: token is empty"),
    ("api", "api: {token: '   '}", "api: token is empty"),
    ("api", "api: {basic_user: '', basic_password: pw}", "api: basic_user is empty"),
    ("prometheus", "sinks: {prometheus: {basic_user: ops}}",
     "sinks.prometheus: basic_user is set without basic_password"),
    ("prometheus", "sinks: {prometheus: {token: ''}}", "sinks.prometheus: token is empty"),
])
def test_incomplete_credentials_are_refused_at_start(tmp_path, section, yaml_text, fault):
    """`basic_user` without `basic_password` accepted an empty password, writes included: now the
    listener does not start (exit 2 at once: it would otherwise serve until the timeout)."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml_text + "\n")
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    command = "api" if section == "api" else "prometheus"
    err = _one_line_refusal(run("--config", str(cfg), command, "--listen", "127.0.0.1:0", env=env))
    assert fault in err, err
    # the same through the environment (an unset shell variable gives an empty value)
    if yaml_text == "api: {token: ''}":
        err = _one_line_refusal(run("api", env={**env, "SFLOWPIPE_API__TOKEN": ""}))
        assert fault in err


def test_print_config_masks_every_secret(tmp_path):
    secrets = ["chpass", "saslpass", "KEYPEM", "keypass", "oauthsecret", "apitoken", "basicpass", "hectoken",
               "regpass", "regkey", "promtoken", "ctlbearer", "bgpmd5"]
    cfg = tmp_path / "s.yaml"
    cfg.write_text("""
kafka:
  schema_registry_url: "https://reg:regpass@registry:8081/?api_key=regkey&tenant=t1"
  producer: {sasl.username: alice, sasl.password: saslpass, ssl.key.pem: KEYPEM, ssl.key.password: keypass}
  consumer: {sasl.oauthbearer.client.secret: oauthsecret, session.timeout.ms: "6000"}
sinks:
  clickhouse: {dsn: "http://sflowpipe:chpass@clickhouse:8123"}
  http:
    hec: {type: splunk, url: "https://splunk:8088/services/collector", token: hectoken}
  prometheus: {token: promtoken}
  controls:
    block:
      threshold: t
      action:
        type: http
        md5_password: bgpmd5
        apply: {url: "http://ctl/apply", headers: {Authorization: "Bearer ctlbearer", X-Trace: "on"}}
api: {token: apitoken, basic_user: ops, basic_password: basicpass}
""")
    res = run("--config", str(cfg), "--print-config")
    assert res.returncode == 0, res.stderr
    for s in secrets:
        assert s not in res.stdout, s
    conf = json.loads(res.stdout)
    assert conf["sinks"]["clickhouse"]["dsn"] == "http://sflowpipe:***@clickhouse:8123"
    assert conf["kafka"]["schema_registry_url"] == "https://reg:***@registry:8081/?api_key=***&tenant=t1"
    assert conf["kafka"]["producer"] == {"sasl.username": "alice", "sasl.password": "***", "ssl.key.pem": "***",
                                         "ssl.key.password": "***"}
    assert conf["kafka"]["consumer"] == {"sasl.oauthbearer.client.secret": "***", "session.timeout.ms": "6000"}
    assert conf["sinks"]["http"]["hec"]["token"] == "***" and conf["sinks"]["prometheus"]["token"] == "***"
    assert conf["api"]["token"] == "***" and conf["api"]["basic_password"] == "***" and conf["api"]["basic_user"] == "ops"
    action = conf["sinks"]["controls"]["block"]["action"]
    assert action["apply"]["headers"] == {"Authorization": "***", "X-Trace": "on"} and action["md5_password"] == "***"
    # nothing secret is not shown as if it were
    assert conf["sinks"]["prometheus"]["basic_password"] is None and conf["api"]["listen"] == "127.0.0.1:8008"


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
