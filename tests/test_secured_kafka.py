"""Secured Kafka end to end (issue 14): every component reaches Apache Kafka through its SASL_SSL
listener only (SCRAM-SHA-512 over TLS, the CA made by tests/apache_kafka.py), with the settings
given as a user gives them: a settings file holding the security settings but the secrets, and the
secrets (the SCRAM password, the client key's passphrase) in ``SFLOWPIPE_KAFKA__COMMON``.

sFlow datagrams built by the project's own encoder (a DNS-amplification flood among normal
traffic) go over UDP into `ingest`; the Faust worker computes the flow and fires the threshold;
the ClickHouse sink writes the samples, the HTTP event sink posts the event, `control` applies a
block; the API serves the flow and the status page (its lag probe over SASL_SSL too); `tail` reads
a topic; `up --bootstrap-servers` runs the whole pipeline on the same broker. Neither secret
appears in any output: logs, `--print-config` (``***``), the files `up` writes, nor what the
clients print when the broker refuses a wrong password."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from ingest.generate import Generator
from sflowpipe.broker import free_port
from sflowpipe.up import SqlPortOpen
from tests.procs import stop_gracefully
from tests.sinks.http_server import RecordingServer
from tests.up_helpers import free_udp_port, read_banner, sql_rows
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
TARGET = "192.0.2.99"  # the flood's victim
KEY = f"{TARGET},53"
DEFINITIONS = {
    "flows": {"reflection": {"keys": "ipdestination,udpsourceport", "value": "frames",
                             "filter": "udpsourceport=53", "t": 1}},
    "thresholds": {"udp_reflection": {"metric": "reflection", "value": 10000, "byFlow": True, "timeout": 2}},
}
KEY_PASSPHRASE = "key-" + os.urandom(8).hex()  # the client key's passphrase (ssl.key.password)


def client_key(folder: Path) -> tuple[Path, Path]:
    """A client certificate and its key, encrypted with KEY_PASSPHRASE: every client must load it
    (the broker asks for none, but librdkafka and aiokafka open the key at start, so a client that
    did not get ssl.key.password fails)."""
    key, cert = folder / "client.key", folder / "client.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert),
                    "-days", "7", "-subj", "/CN=sflowpipe-client", "-passout", f"pass:{KEY_PASSPHRASE}"],
                   check=True, capture_output=True)
    return cert, key


def secured(broker, folder: Path) -> tuple[dict, dict[str, str]]:
    """``kafka`` settings for the SASL_SSL listener without the secrets (the settings file's), and
    the environment carrying the secrets."""
    common = broker.client_settings()
    password = common.pop("sasl.password")
    cert, key = client_key(folder)
    common.update({"ssl.certificate.location": str(cert), "ssl.key.location": str(key)})
    kafka = {"bootstrap_servers": broker.secure_bootstrap, "partitions": 3, "common": common}
    env = {"SFLOWPIPE_KAFKA__COMMON": json.dumps({"sasl.password": password, "ssl.key.password": KEY_PASSPHRASE})}
    return kafka, env


class Component:
    """One `sflowpipe` command as its own process, its stdout and stderr in ``NAME.log``."""

    def __init__(self, name: str, args: list[str], env: dict, folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", *args], env=env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited ({self.proc.returncode}):\n{self.text()[-3000:]}"
        return True

    def serving(self, port: int) -> None:
        """Wait until it accepts connections on ``port`` (its readiness interface)."""

        def open_() -> bool:
            self.alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        until(open_, 120, message=lambda: f"{self.name} does not serve :{port}:\n{self.text()[-3000:]}")

    def stop(self) -> int:
        return stop_gracefully(self.proc, 60)


def remote_ports(pid: int) -> set[int]:
    """The remote TCP ports of a process's connected sockets (its fds matched in /proc/PID/net)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def flow_samples_in_clickhouse(data: Path) -> int:
    """Rows of flow_samples in the embedded ClickHouse under ``data`` (through `sflowpipe sql`)."""
    rows = sql_rows(data, "SELECT count() FROM flow_samples")
    return int(rows[0][0]) if rows else 0


def secret_free(texts: dict[str, str], secrets: list[str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret in {where}"


@pytest.fixture(scope="module")
def secure_setup(apache_kafka_secure, tmp_path_factory):
    """The secured broker, its clients' ``kafka`` settings without the secrets, the environment
    with them (``SFLOWPIPE_KAFKA__COMMON``), and the secrets to look for."""
    folder = tmp_path_factory.mktemp("secured")
    kafka, secret_env = secured(apache_kafka_secure, folder)
    secrets = [json.loads(secret_env["SFLOWPIPE_KAFKA__COMMON"])["sasl.password"], KEY_PASSPHRASE]
    return {"broker": apache_kafka_secure, "folder": folder, "kafka": kafka, "env": {**os.environ, **secret_env},
            "secrets": secrets}


def test_every_component_over_sasl_ssl_and_no_secret_shown(secure_setup, topic_prefix):
    """ingest, process, the ClickHouse, syslog and HTTP event sinks, control, api and tail, each its
    own process, on the SASL_SSL listener only; the flood goes through all of them."""
    folder, env, secrets = secure_setup["folder"], secure_setup["env"], secure_setup["secrets"]
    run_dir = folder / "pipeline"
    run_dir.mkdir()
    udp_port, api_port, web_port = free_udp_port(), free_port(), free_port()
    ingest_metrics = free_port()
    ch_dir = run_dir / "clickhouse"
    (run_dir / "definitions.yaml").write_text(yaml.safe_dump(DEFINITIONS))
    group = topic_prefix  # every consumer group of this run starts with it
    with RecordingServer() as controller, RecordingServer() as webhook:
        settings = {
            "kafka": {**secure_setup["kafka"], "topic_prefix": topic_prefix},
            "ingest": {"listen": f"127.0.0.1:{udp_port}", "metrics_listen": f"127.0.0.1:{ingest_metrics}",
                       "spill_dir": str(run_dir / "spill"), "batch_max_ms": 20},
            "processors": {"app_id": group + "processors", "session_timeout_s": 6, "data_dir": str(run_dir / "faust"),
                           "web_port": web_port, "metrics_listen": "127.0.0.1:0",
                           "definitions_file": str(run_dir / "definitions.yaml")},
            "enrich": {"office365_enabled": False, "cache_dir": str(run_dir / "cache")},
            "sinks": {
                "clickhouse": {"dsn": f"chdb://{ch_dir}", "consumer_group": group + "clickhouse", "batch_seconds": 1,
                               "metrics_listen": "127.0.0.1:0"},
                "syslog": {"file": str(run_dir / "syslog.txt"), "format": "cef", "consumer_group": group + "syslog",
                           "metrics_listen": "127.0.0.1:0"},
                "http": {"hook": {"type": "webhook", "url": webhook.url + "/events", "batch_seconds": 0.5,
                                  "consumer_group": group + "hook"}},
                "controls": {"dns": {"threshold": "udp_reflection", "min_hold_s": 600, "allow": ["10.0.0.0/8"],
                                     "action": {"type": "http", "backoff_s": 0.2,
                                                "apply": {"method": "POST", "url": controller.url + "/block",
                                                          "body": '{"key": "$key"}'},
                                                "release": {"method": "DELETE",
                                                            "url": controller.url + "/block/${k0}"}}}},
                "control_metrics_listen": "127.0.0.1:0"},
            "api": {"listen": f"127.0.0.1:{api_port}", "metrics_listen": "127.0.0.1:0",
                    "sinks": [group + "clickhouse"]},
        }
        config = run_dir / "settings.yaml"
        config.write_text(yaml.safe_dump(settings))
        cli = ["--config", str(config)]

        # --print-config: the settings resolved from the file and the environment, secrets masked
        shown = subprocess.run([sys.executable, "-m", "sflowpipe.cli", *cli, "--print-config"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        common = json.loads(shown.stdout)["kafka"]["common"]
        assert common["sasl.password"] == "***" and common["ssl.key.password"] == "***"
        assert common["security.protocol"] == "SASL_SSL" and common["sasl.username"] == "sflowpipe"
        secret_free({"--print-config": shown.stdout + shown.stderr}, secrets)

        started: list[Component] = []

        def start(name: str, *args: str) -> Component:
            started.append(Component(name, [*cli, *args], env, run_dir))
            return started[-1]

        try:
            # the readers first: each has joined its group before the first message comes
            clickhouse = start("clickhouse", "clickhouse")
            start("http-events", "http-events", "hook")
            syslog = start("syslog", "syslog")
            start("control", "control", "--consumer-group", group + "control")
            api = start("api", "api")
            worker = start("process", "process")
            ingest = start("ingest", "ingest")
            until(lambda: clickhouse.alive() and SqlPortOpen(ch_dir).ready(clickhouse.proc, 0), 120,
                  message=lambda: clickhouse.text()[-3000:])
            api.serving(api_port)
            worker.serving(web_port)
            ingest.serving(ingest_metrics)

            # a flood to TARGET among normal traffic, over UDP, until the control applied its block and
            # the webhook got the event
            gen = Generator(agents=2, flood_target=TARGET, seed=7)
            gen.flooding = True
            sent = 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

                def flooded() -> bool:
                    nonlocal sent
                    for proc in started:
                        proc.alive()
                    for _ in range(40):  # 200 datagrams/s, paced by the wait's interval
                        sock.sendto(gen.datagram(), ("127.0.0.1", udp_port))
                        sent += 1
                    return bool(controller.delivered("POST")) and bool(webhook.delivered("POST"))

                until(flooded, 240, interval=0.2, message=lambda: "\n".join(
                    f"--- {p.name}\n{p.text()[-1500:]}" for p in started))

            # control: the block of the flood's key
            assert json.loads(controller.delivered("POST")[0].body)["key"] == KEY
            # the HTTP event sink: the threshold's event
            events = [e for r in webhook.delivered("POST") for e in json.loads(r.body)]
            assert any(e.get("thresholdID") == "udp_reflection" and e.get("flowKey") == KEY for e in events), events
            # the syslog sink (to a file): the same event as a CEF line
            until(lambda: syslog.alive() and (run_dir / "syslog.txt").exists()
                  and TARGET in (run_dir / "syslog.txt").read_text(), 60, message=syslog.text)
            # ClickHouse: the flow samples
            assert until(lambda: flow_samples_in_clickhouse(run_dir), 120) > 0
            # the API: the flow, and the status page (ingester seen, the sink's lag probed, the control)
            base = f"http://127.0.0.1:{api_port}"
            flows = until(lambda: requests.get(f"{base}/activeflows/ALL/reflection/json", timeout=10).json(), 60)
            assert flows[0]["key"] == KEY, flows

            def status() -> dict | None:
                s = requests.get(f"{base}/sflowpipe/status/json", timeout=10).json()
                ready = (s["ingesters"] and s["sinks"].get(group + "clickhouse") is not None and s["controls"]
                         and s["processors"])
                return s if ready else None

            page = until(status, 90, interval=1)
            assert page["totals"]["datagrams"] > 0
            # each component talks to the broker on the SASL_SSL listener, none on its PLAINTEXT one
            broker = secure_setup["broker"]
            for proc in started:
                used = remote_ports(proc.proc.pid)
                assert broker.ports["SASL_SSL"] in used and broker.ports["PLAINTEXT"] not in used, (proc.name, used)

            # tail: a topic's records
            tail = subprocess.run([sys.executable, "-m", "sflowpipe.cli", *cli, "tail", "flow-samples",
                                   "--from-beginning", "--max", "5", "--timeout", "60"], env=env,
                                  capture_output=True, text=True, timeout=120)
            assert tail.returncode == 0, tail.stderr
            lines = [json.loads(line) for line in tail.stdout.splitlines()]
            assert len(lines) == 5 and all(line["agent_address"] in ("192.0.2.200", "192.0.2.201") for line in lines), tail.stdout[:2000]
            secret_free({"tail": tail.stdout + tail.stderr}, secrets)
        finally:
            codes = {p.name: p.stop() for p in reversed(started)}
    assert codes == {p.name: 0 for p in started}, {p.name: p.text()[-2000:] for p in started}
    secret_free({p.name: p.text() for p in started}, secrets)
    secret_free({"settings file": config.read_text()}, secrets)


def test_up_runs_on_the_secured_broker_and_writes_no_secret(secure_setup, topic_prefix, tmp_path):
    """`up --bootstrap-servers` runs every stage on the user's Kafka (here SASL_SSL) instead of
    Tansu; the secrets reach the stages through their environment, never a file `up` writes."""
    env, secrets = secure_setup["env"], secure_setup["secrets"]
    data = tmp_path / "up"
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {**secure_setup["kafka"], "topic_prefix": topic_prefix},
        "processors": {"app_id": topic_prefix + "processors", "session_timeout_s": 6},
        "enrich": {"office365_enabled": False},
        "sinks": {"clickhouse": {"consumer_group": topic_prefix + "clickhouse", "batch_seconds": 1},
                  "prometheus": {"consumer_group": topic_prefix + "prometheus"}}}))
    sflow_port, http_port = free_udp_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "--config", str(config), "up", "--demo",
                             "--bootstrap-servers", secure_setup["broker"].secure_bootstrap,
                             "--sflow-port", str(sflow_port), "--http-port", str(http_port), "--data-dir", str(data)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        banner = read_banner(proc)
        assert "sflowpipe is up" in banner, banner
        assert f"Kafka at {secure_setup['broker'].secure_bootstrap}" in banner and "Tansu" not in banner, banner
        url = f"http://127.0.0.1:{http_port}"
        top = until(lambda: requests.get(f"{url}/activeflows/ALL/pair/json?maxFlows=3", timeout=10).json(), 120,
                    interval=1)
        assert top and all(row["value"] > 0 for row in top), top

        def sinks_written() -> dict | None:  # each sink's own numbers, from its status messages
            rows = requests.get(f"{url}/sflowpipe/status/json", timeout=10).json()["sink_instances"]
            written = {r["component"]: r["records_written"] for r in rows}
            return written if all(written.get(topic_prefix + s, 0) > 0 for s in ("clickhouse", "prometheus")) else None

        assert until(sinks_written, 120, interval=1)
        assert until(lambda: flow_samples_in_clickhouse(data), 120, interval=1) > 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out = banner + proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert "stopped the broker" not in out  # the user's broker is left running
    written = {str(p): p.read_bytes().decode(errors="replace") for p in data.rglob("*") if p.is_file()}
    assert str(data / "sflowpipe-up.yaml") in written and str(data / "logs" / "ingest.log") in written
    secret_free({"up's output": out, **written}, secrets)


def wrong_password(secure_setup) -> tuple[str, dict]:
    wrong = "wrong-" + os.urandom(8).hex()
    return wrong, {**secure_setup["env"], "SFLOWPIPE_KAFKA__COMMON": json.dumps({"sasl.password": wrong,
                                                                                "ssl.key.password": KEY_PASSPHRASE})}


def test_a_refused_password_is_one_line_and_never_echoed(secure_setup, topic_prefix, tmp_path):
    """The broker refuses a wrong SCRAM password: `tail` and `process` (whose librdkafka check
    comes before Faust connects) stop with one line saying the credentials were refused, as the
    broker said it, without the password tried."""
    wrong, env = wrong_password(secure_setup)
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {**secure_setup["kafka"], "topic_prefix": topic_prefix},
        "processors": {"app_id": topic_prefix + "processors", "data_dir": str(tmp_path / "faust"),
                       "web_port": free_port(), "metrics_listen": "127.0.0.1:0"},
        "enrich": {"office365_enabled": False, "cache_dir": str(tmp_path / "cache")}}))
    bootstrap = secure_setup["broker"].secure_bootstrap
    for command in (["tail", "flow-samples"], ["process"]):
        res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "--config", str(config), *command], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and res.stdout == "", (command, res.stdout, res.stderr)
        # the failure contract of tests/test_cli_failures.py: one line, after start-up INFO lines if any
        problems = [line for line in res.stderr.splitlines() if " INFO " not in line]
        assert len(problems) == 1 and "Traceback" not in res.stderr, res.stderr
        line = problems[0]
        assert line.startswith(f"sflowpipe {command[0]}: Kafka at {bootstrap} refused the credentials"), line
        assert "SASL authentication error" in line and "SCRAM-SHA-512" in line, line
        secret_free({" ".join(command): res.stderr}, [wrong, KEY_PASSPHRASE])


@pytest.mark.asyncio
async def test_aiokafka_refusal_does_not_echo_the_password(secure_setup, caplog):
    """What the Faust workers' client (aiokafka) logs and raises when the broker refuses the
    password it was given through kafka.common (faust_settings: the worker's own mapping)."""
    from aiokafka import AIOKafkaProducer
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from sflowpipe.kafka import KafkaClients
    from sflowpipe.settings import KafkaSettings

    wrong = "wrong-" + os.urandom(8).hex()
    kafka = secure_setup["kafka"]
    common = {**kafka["common"], "sasl.password": wrong, "ssl.key.password": KEY_PASSPHRASE}
    faust = KafkaClients(KafkaSettings(bootstrap_servers=kafka["bootstrap_servers"], common=common)).faust_settings()
    caplog.set_level(logging.DEBUG)
    producer = AIOKafkaProducer(bootstrap_servers=kafka["bootstrap_servers"], request_timeout_ms=10_000,
                                **credentials_to_aiokafka_auth(faust["broker_credentials"]))
    with pytest.raises(Exception) as refused:
        await producer.start()
    await producer.stop()
    shown = f"{refused.value!r} {refused.value} {caplog.text}"
    assert "uthentication" in shown, shown
    secret_free({"aiokafka": shown}, [wrong, KEY_PASSPHRASE])
