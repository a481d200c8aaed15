"""`sflowpipe up --demo`, the README's first command, for real: one command starts the broker,
ingest, Faust worker, sinks, API and UI; the sFlow-RT elephant-flow script pattern (requests:
PUT a flow and a threshold, long-poll events) sees its event; top flows, counters, ClickHouse
and API-defined forwarding work; headless Chromium shows live data on every page; Ctrl-C
leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sflowpipe.broker import free_port
from tests.up_helpers import ELEPHANT_SOURCES, free_udp_port, read_banner, run_up_demo, sql_rows
from tests.up_helpers import wait_for as _wait

pytestmark = pytest.mark.kafka


def _top_elephants(url: str, headers: dict | None = None) -> list | None:
    """The top 3 pairs once they are the elephants (the first reports after a start can still
    rank a burst of mice among them), else None."""
    top = requests.get(url + "/activeflows/ALL/pair/json?maxFlows=3", headers=headers, timeout=10).json()
    return top if {row["key"].split(",")[0] for row in top} == ELEPHANT_SOURCES else None


def test_plan_starts_the_sinks_the_settings_file_configures(tmp_path):
    """No processes: what `up --config FILE` would start, and the settings every stage reads."""
    import argparse

    import yaml

    from sflowpipe import up as up_module
    from sflowpipe.settings import load_settings

    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "sinks": {"syslog": {"address": "127.0.0.1:5514", "transport": "tcp"},
                  "http": {"loggly": {"type": "loggly", "url": "http://127.0.0.1:1/bulk"}}},
        "processors": {"report_interval_s": 2.0}}))
    parser = argparse.ArgumentParser()
    up_module.add_arguments(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path / "d"), "--sflow-port", "16343", "--http-port", "18008"])
    pipeline = up_module.Pipeline(args, load_settings(str(config)))  # typed, as main() builds them
    settings_file = pipeline._settings_file()
    names = [s.name for s in pipeline._plan(settings_file)]
    assert names[0] == "ingest on UDP 16343" and "syslog sink" in names and "http-events loggly" in names
    assert names[-1].startswith("API and web UI on http://127.0.0.1:18008/")
    s = load_settings(str(settings_file))  # every stage reads this file: it must be valid settings
    assert s.ingest.listen == "[::]:16343" and s.api.listen == "127.0.0.1:18008"
    assert s.sinks.syslog.address == "127.0.0.1:5514" and s.processors.report_interval_s == 2.0
    assert s.sinks.clickhouse.dsn == f"chdb://{tmp_path / 'd' / 'clickhouse'}"
    assert s.processors.definitions_file == str(up_module.DEFAULT_DEFINITIONS)
    assert s.api.sinks == ["sflowpipe-clickhouse", "sflowpipe-prometheus", "sflowpipe-syslog",
                           "sflowpipe-http-loggly"]


def test_stage_file_is_private_and_holds_no_secret(tmp_path, monkeypatch):
    """Issue 12: `up` copied the API token, basic password and HTTP sink tokens into
    DATA_DIR/sflowpipe-up.yaml with mode 0644. Now the file is 0600 and the secrets reach the
    stages through their environment (SFLOWPIPE_<SECTION> JSON), which resolves to the user's values."""
    import argparse

    import yaml

    from sflowpipe import up as up_module
    from sflowpipe.settings import load_settings

    secrets = {"api": {"token": "apitok", "basic_user": "ops", "basic_password": "basicpw"},
               "sinks": {"http": {"Hec": {"type": "splunk", "url": "https://splunk:8088/hec", "token": "hectok"}},
                         "clickhouse": {"dsn": "http://u:chpw@127.0.0.1:1"}},
               "kafka": {"producer": {"sasl.username": "alice", "sasl.password": "saslpw"}}}
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({**secrets, "processors": {"report_interval_s": 2.0}}))
    config.chmod(0o600)
    data = tmp_path / "d"
    data.mkdir()
    (data / "sflowpipe-up.yaml").write_text("# an older copy\n")
    (data / "sflowpipe-up.yaml").chmod(0o644)
    parser = argparse.ArgumentParser()
    up_module.add_arguments(parser)
    pipeline = up_module.Pipeline(parser.parse_args(["--data-dir", str(data)]), load_settings(str(config)))
    stage = pipeline._settings_file()
    assert stage.stat().st_mode & 0o777 == 0o600
    text = stage.read_text()
    for secret in ("apitok", "basicpw", "hectok", "chpw", "saslpw"):
        assert secret not in text, secret
    assert "ops" in text and "alice" in text and "https://splunk:8088/hec" in text  # what is not secret stays
    assert set(pipeline.secret_env) == {"SFLOWPIPE_API", "SFLOWPIPE_SINKS", "SFLOWPIPE_KAFKA"}
    for var, value in pipeline.secret_env.items():  # as each stage's environment has them
        monkeypatch.setenv(var, value)
    s = load_settings(str(stage))
    assert s.api.token.get_secret_value() == "apitok" and s.api.basic_password.get_secret_value() == "basicpw"
    assert s.sinks.http["Hec"].token.get_secret_value() == "hectok" and s.sinks.http["Hec"].type == "splunk"
    assert s.sinks.clickhouse.dsn == "http://u:chpw@127.0.0.1:1" and s.kafka.producer["sasl.password"] == "saslpw"
    assert s.processors.report_interval_s == 2.0 and s.api.listen == "127.0.0.1:8008"


def test_secured_kafka_settings_need_an_external_broker(tmp_path):
    """Tansu is plaintext: a kafka.common asking for SASL_SSL without --bootstrap-servers is one
    line at start, before anything is started or written."""
    import argparse

    from sflowpipe import up as up_module
    from sflowpipe.settings import load_settings

    config = tmp_path / "settings.yaml"
    config.write_text("kafka: {common: {security.protocol: SASL_SSL, sasl.mechanism: SCRAM-SHA-512}}\n")
    parser = argparse.ArgumentParser()
    up_module.add_arguments(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path / "d"), "--sflow-port", str(free_udp_port()),
                              "--http-port", str(free_port())])
    pipeline = up_module.Pipeline(args, load_settings(str(config)))
    with pytest.raises(RuntimeError, match="kafka.common.security.protocol is SASL_SSL but the embedded broker "
                                           r"\(Tansu\) is plaintext: point `up` at your Kafka with --bootstrap-servers"):
        pipeline.start()
    assert pipeline.broker is None and not pipeline.stages and not (tmp_path / "d").exists()


def test_an_external_broker_that_does_not_answer_starts_nothing(tmp_path):
    """`up --bootstrap-servers` checks the user's Kafka before any stage: one line, exit 1, within
    the commands' few seconds, and no stage started."""
    data = tmp_path / "d"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "up", "--bootstrap-servers", "127.0.0.1:1",
                          "--sflow-port", str(free_udp_port()), "--http-port", str(free_port()),
                          "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert time.monotonic() - t0 < 30, "it should fail as fast as any command"
    lines = res.stdout.splitlines()
    assert lines[0].startswith("[1/") and "Kafka at 127.0.0.1:1" in lines[0], res.stdout
    assert any(line.startswith("sflowpipe up: Kafka at 127.0.0.1:1 unreachable after") for line in lines), res.stdout
    assert not any(line.startswith("[2/") for line in lines), res.stdout
    assert not list((data / "logs").iterdir())


def test_an_external_broker_setting_the_faust_workers_cannot_honour_is_refused_first(tmp_path):
    """A kafka.common security setting aiokafka has no equivalent for would stop the processors
    stage after the others started: `up` refuses it first, naming it."""
    import argparse

    from sflowpipe import up as up_module
    from sflowpipe.settings import load_settings

    config = tmp_path / "settings.yaml"
    config.write_text("kafka: {common: {security.protocol: SSL, ssl.keystore.location: /etc/kafka/client.p12}}\n")
    parser = argparse.ArgumentParser()
    up_module.add_arguments(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path / "d"), "--bootstrap-servers", "127.0.0.1:1",
                              "--sflow-port", str(free_udp_port()), "--http-port", str(free_port())])
    pipeline = up_module.Pipeline(args, load_settings(str(config), **{"kafka.bootstrap_servers": "127.0.0.1:1"}))
    with pytest.raises(RuntimeError, match="kafka.common.ssl.keystore.location: not supported by the Faust workers"):
        pipeline.start()
    assert pipeline.broker is None and not pipeline.stages


@pytest.mark.parametrize("argv", [["--config", "{f}", "--print-config", "up"],
                                  ["--print-config", "up", "--config", "{f}"]])
def test_up_takes_config_before_or_after_the_command(tmp_path, argv):
    """`sflowpipe up --config FILE` (the README's spelling) used to be refused; the global
    `sflowpipe --config FILE up` still works. Both resolve the file's settings."""
    config = tmp_path / "settings.yaml"
    config.write_text("kafka: {partitions: 3}\nprocessors: {report_interval_s: 2.5}\n")
    res = subprocess.run([sys.executable, "-m", "sflowpipe.cli"] + [a.format(f=config) for a in argv],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    resolved = json.loads(res.stdout)
    assert resolved["kafka"]["partitions"] == 3 and resolved["processors"]["report_interval_s"] == 2.5


def test_stages_are_awaited_on_their_ports_not_their_logs(tmp_path):
    """Each stage's readiness is a port it serves, taken from its typed settings: ingest's
    metrics, Faust's web port, the embedded ClickHouse's SQL port, the exporter, the API; the
    stages serving none get the CLI's /health endpoint; feeders are awaited alive."""
    import argparse

    from sflowpipe import up as up_module
    from sflowpipe.settings import Settings, load_settings

    config = tmp_path / "settings.yaml"
    config.write_text("sinks: {syslog: {address: '127.0.0.1:5514'}}\n")
    parser = argparse.ArgumentParser()
    up_module.add_arguments(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path / "d"), "--http-port", "18008", "--demo"])
    pipeline = up_module.Pipeline(args, load_settings(str(config)))
    stages = {s.slug or s.name.split()[0].lower(): s for s in pipeline._plan(pipeline._settings_file())}
    s = pipeline.settings
    assert all(isinstance(st.settings, Settings) for name, st in stages.items() if name != "demo")
    assert stages["ingest"].probe == up_module.PortOpen("127.0.0.1", int(s.ingest.metrics_listen.rsplit(":", 1)[1]))
    assert stages["processors"].probe == up_module.PortOpen("127.0.0.1", s.processors.web_port)
    assert stages["clickhouse"].probe == up_module.SqlPortOpen(tmp_path / "d" / "clickhouse")
    assert stages["prometheus"].probe.port == int(s.sinks.prometheus.listen.rsplit(":", 1)[1])
    assert stages["api"].probe == up_module.PortOpen("127.0.0.1", 18008)
    for name in ("forwarder", "syslog"):
        cmd = stages[name].cmd
        assert cmd[cmd.index("--health-port") + 1] == str(stages[name].probe.port)
    assert isinstance(stages["demo"].probe, up_module.Settled)
    # the consumer-group defaults are the Settings model's, not copies
    assert s.api.sinks == [Settings().sinks.clickhouse.consumer_group, Settings().sinks.prometheus.consumer_group,
                           Settings().sinks.syslog.consumer_group]


def test_health_endpoint_answers_while_the_command_runs(tmp_path):
    """The hidden `--health-port` a stage without a port of its own gets from `up`."""
    from sflowpipe.broker import free_port
    from sflowpipe.up import PortOpen

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "--health-port", str(port),
                             "decode", "-p", str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: PortOpen("127.0.0.1", port).ready(proc, 0), 30)
        r = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert r.status_code == 200 and r.text == "ok\n"
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(30)
    assert not PortOpen("127.0.0.1", port).ready(proc, 0)


def test_banner_shows_progress_and_where_everything_listens(up):
    b = up["banner"]
    assert "[1/8] Kafka-compatible broker (Tansu, in-memory" in b and "[8/8] demo traffic" in b
    assert b.count("ready") >= 8
    assert up["url"] in b and f"UDP port {up['sflow_port']}" in b and str(up["data"]) in b


def test_elephant_flow_script_sees_its_event(up):
    """The sFlow-RT elephant-flow script, as its users write it (data=json.dumps, no headers)."""
    rt = up["url"]
    flow = {"keys": "ipsource,ipdestination", "value": "bytes"}
    r = requests.put(rt + "/flow/script_pair/json", data=json.dumps(flow), timeout=10)
    assert r.status_code in (200, 204), r.text
    threshold = {"metric": "script_pair", "value": 10_000_000 / 8, "byFlow": True, "timeout": 1}
    r = requests.put(rt + "/threshold/script_elephant/json", data=json.dumps(threshold), timeout=10)
    assert r.status_code in (200, 204), r.text
    eventurl = rt + "/events/json?thresholdID=script_elephant&maxEvents=10&timeout=60"
    event_id = -1
    keys: list[str] = []
    deadline = time.monotonic() + 90
    while not keys and time.monotonic() < deadline:
        r = requests.get(eventurl + "&eventID=" + str(event_id), timeout=70)
        assert r.status_code == 200
        events = r.json()
        if len(events) == 0:
            continue
        event_id = events[0]["eventID"]
        events.reverse()
        keys += [e["flowKey"] for e in events]
    assert keys, "no elephant event within 90 s"
    assert {k.split(",")[0] for k in keys} <= ELEPHANT_SOURCES, keys
    # the threshold went to the config topic: the worker's events carry its name
    assert all(e["thresholdID"] == "script_elephant" and e["value"] > 1_250_000 for e in events)


def test_top_flows_agents_and_counters_are_live(up):
    rt = up["url"]
    # the steady state: the elephants on top, past the smoothing ramp from 0 after a start
    top = _wait(lambda: (t := _top_elephants(rt)) and all(row["value"] > 1_250_000 for row in t) and t, 60)
    assert top and {row["key"].split(",")[0] for row in top} == ELEPHANT_SOURCES, top
    assert all(row["value"] > 1_250_000 for row in top)
    agents = requests.get(rt + "/agents/json", timeout=10).json()
    assert set(agents) == {"192.0.2.200", "192.0.2.201"}
    # each agent's first rate needs two counter samples, and the agents' partitions are read
    # independently: one agent's 8 interfaces can show up a poll before the other's
    def metric_n():
        n = requests.get(rt + "/metric/ALL/ifinoctets/json", timeout=10).json()[0].get("metricN")
        return n if n == 16 else None
    assert _wait(metric_n, 60) == 16  # 2 agents x 8 interfaces
    prom = requests.get(rt + "/prometheus/metrics/ALL/ifinoctets/txt", timeout=10).text
    assert prom.count("ifinoctets{") == 16
    status = requests.get(rt + "/sflowpipe/status/json", timeout=10).json()
    assert status["totals"]["datagrams_per_s"] > 50 and status["totals"]["malformed"] == 0
    assert "openapi" in requests.get(rt + "/api-docs", timeout=10).json()


def test_top_flows_dns_shortcuts_see_the_demo_queries(up):
    """InMon's top-flows "Requested domains" and "Request types" shortcuts, as it defines them (PUT a
    flow keyed by dnsqname / dnsqtypename valued in requests, then poll its active flows)."""
    from ingest.generate import DNS_NAMES

    rt = up["url"]
    for name, keys in (("tf_domains", "dnsqname"), ("tf_types", "dnsqtypename")):
        body = {"keys": keys, "value": "requests", "filter": None, "t": 2, "n": 10, "fs": "_SEP_"}
        r = requests.put(rt + f"/flow/{name}/json", data=json.dumps(body), timeout=10)
        assert r.status_code in (200, 204), r.text

    def seen(name):
        rows = requests.get(rt + f"/activeflows/ALL/{name}/json?maxFlows=20&minValue=0.01", timeout=10).json()
        return {row["key"] for row in rows} or None

    domains = _wait(lambda: seen("tf_domains"), 60)
    assert domains and domains <= {n + "." for n in DNS_NAMES}, domains
    assert _wait(lambda: seen("tf_types"), 60) == {"A"}  # the demo's queries (no flood unless switched on)
    for name in ("tf_domains", "tf_types"):
        assert requests.delete(rt + f"/flow/{name}/json", timeout=10).status_code in (200, 204)


def test_sflow_rt_clients_read_flow_metrics_agent_counters_and_analyzer(up):
    """What published sFlow-RT clients read: a DDoS script's event -> /metric/{agent}/{ds}.{flow}/json
    -> topKeys[0].key; sflow-test's per-agent counters; the Prometheus example's analyzer scrape;
    the prometheus.php /table client."""
    from prometheus_client.parser import text_string_to_metric_families

    rt = up["url"]

    def top():
        [m] = requests.get(rt + "/metric/ALL/pair/json", timeout=10).json()
        keys = m.get("topKeys") or []
        return m if keys and keys[0]["key"].split(",")[0] in ELEPHANT_SOURCES else None
    m = _wait(top, 60)
    assert m, "no elephant on top of /metric/ALL/pair/json"
    [one] = requests.get(f"{rt}/metric/{m['agent']}/{m['dataSource']}.pair/json", timeout=10).json()
    assert one["metricN"] == 1 and one["dataSource"] == m["dataSource"]
    assert one["topKeys"][0]["value"] == one["metricValue"] > 0
    assert one["topKeys"][0]["key"].split(",")[0] in ELEPHANT_SOURCES
    assert [k["value"] for k in one["topKeys"]] == sorted((k["value"] for k in one["topKeys"]), reverse=True)
    def counted():  # the ingester's status arrives every 2 s
        agents = requests.get(rt + "/agents/json", timeout=10).json()
        return agents if all(a["sFlowCounterSamples"] > 0 for a in agents.values()) else None
    agents = _wait(counted, 30)
    assert agents and set(agents) == {"192.0.2.200", "192.0.2.201"}
    for a in agents.values():
        assert a["sFlowDatagramsReceived"] > 0 and a["sFlowFlowSamples"] > 0 and a["sFlowCounterSamples"] > 0
        assert a["sFlowDatagramsDuplicates"] == 0 and a["sFlowFlowDuplicateSamples"] == 0
        assert a["sFlowFlowDatasources"] > 0 and a["sFlowCounterDatasources"] == 8
    analyzer = requests.get(rt + "/analyzer/json", timeout=10).json()
    assert analyzer["sFlowAgents"] == 2 and analyzer["sFlowDatagramsReceived"] > 0
    assert analyzer["sFlowFlowSamples"] > 0 and analyzer["sFlowParseErrors"] == 0
    # sflowpipe's own fields beside sFlow-RT's: the processor workers' and sinks' registries, via
    # their status messages (sflowpipe/status.py), once each has processed and flushed
    def pipeline_numbers():
        a = requests.get(rt + "/analyzer/json", timeout=10).json()
        return a if a["processorSamples"] > 0 and a["sinkRecordsWritten"] > 0 and a["sinkInstances"] >= 2 else None
    analyzer = _wait(pipeline_numbers, 60)
    assert analyzer, requests.get(rt + "/analyzer/json", timeout=10).json()
    assert analyzer["processorWorkers"] == 1 and analyzer["processorBatches"] > 0
    assert analyzer["processorDefinitionsRejected"] == 0 and analyzer["sinkDeadLetters"] == 0
    assert analyzer["apiRequests"] > 0 and analyzer["controlInstances"] == 0  # the API's own; no control
    status = requests.get(rt + "/sflowpipe/status/json", timeout=10).json()
    [worker] = status["processors"]
    assert worker["alive"] and worker["samples"] > 0 and worker["component"] == "sflowpipe-processors", worker
    sinks = {s["component"]: s for s in status["sink_instances"]}
    assert {"sflowpipe-clickhouse", "sflowpipe-prometheus"} <= set(sinks), sinks
    assert sinks["sflowpipe-prometheus"]["records_written"] > 0 and sinks["sflowpipe-prometheus"]["flushes"] > 0
    text = requests.get(rt + "/prometheus/analyzer/txt", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["sflow_analyzer_datagrams_received"].samples[0].value > 0
    assert families["sflow_analyzer_processor_samples"].samples[0].value > 0
    assert families["sflow_analyzer_sink_records_written"].samples[0].value > 0
    # interface rates need two counter samples each
    def table():
        rows = requests.get(rt + "/table/ALL/sort:ifinoctets:-3/json", timeout=10).json()
        return rows if len(rows) == 3 else None
    rows = _wait(table, 60)
    assert rows, "no interface rates in /table"
    values = [row[0]["metricValue"] for row in rows]
    assert values == sorted(values, reverse=True)


def test_clickhouse_fills_from_the_pipeline(up):
    def count():
        rows = sql_rows(up["data"], "SELECT count(), uniqExact(agent) FROM flow_samples")
        if not rows:
            return None
        n, agents = (int(x) for x in rows[-1])
        return (n, agents) if n > 0 and agents == 2 else None

    got = _wait(count, 60, 1.0)
    assert got and got[0] > 0 and got[1] == 2


def test_forwarding_defined_through_the_api(up):
    rt = up["url"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(1.0)
        port = rx.getsockname()[1]
        assert requests.put(rt + "/forwarding/collector2/json", json={"address": "127.0.0.1", "port": port},
                            timeout=10).status_code == 204
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 20 and time.monotonic() < deadline:
            try:
                got.append(rx.recv(65535))
            except socket.timeout:
                pass
        assert len(got) >= 20 and all(d[:4] == b"\x00\x00\x00\x05" for d in got)  # sFlow v5 datagrams
        assert requests.delete(rt + "/forwarding/collector2/json", timeout=10).status_code == 204
        # drain what comes until the forwarder has stopped (the demo's traffic is continuous: a 1 s
        # gap is the deletion applied), then nothing more arrives
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                rx.recv(65535)
            except socket.timeout:
                break
        with pytest.raises(socket.timeout):
            rx.settimeout(3.0)
            rx.recv(65535)


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def test_web_ui_pages_show_live_data_in_a_real_browser(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = Path(os.environ.get("SFLOWPIPE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    from selenium.common.exceptions import StaleElementReferenceException

    driver = _browser()
    try:
        # the pages redraw their tables every second or two: a row found may be gone when read, so
        # a wait reads again rather than failing (a CI run met one in the flows page's top table)
        wait = WebDriverWait(driver, 60, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))

        def rows(selector):
            return driver.find_elements(By.CSS_SELECTOR, selector)

        # status: ingesters with a datagram rate, both agents, the rate chart drawn by uPlot
        driver.get(up["url"] + "/")
        wait.until(lambda d: d.current_url.endswith("/ui/index.html"))
        wait.until(lambda d: len(rows("#agents tbody tr")) == 2 and len(rows("#ingesters tbody tr")) == 1)
        wait.until(lambda d: float(rows("#ingesters tbody tr td")[2].text.rstrip("k") or 0) > 0)
        assert rows("#rates .uplot canvas"), "no chart drawn"
        assert "192.0.2.200" in driver.find_element(By.ID, "agents").text
        # the processor worker's and the sinks' own numbers, from their status messages (read in
        # one script: the page redraws its tables every 2 s, an element found earlier goes stale)
        def cells(table):
            return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))"
                                         ".map(r => Array.from(r.cells).map(c => c.textContent))", table)
        wait.until(lambda d: (p := cells("#processors")) and len(p) == 1 and int(p[0][2]) > 0 and p[0][-1] == "up")
        wait.until(lambda d: {"sflowpipe-clickhouse", "sflowpipe-prometheus"} <= {r[0] for r in cells("#sink-instances")})
        assert all(r[-1] == "up" and r[1] for r in cells("#sink-instances"))
        # this API's own numbers (its registry): one row, the page's own requests counted
        wait.until(lambda d: (a := cells("#api")) and len(a) == 1 and int(a[0][2]) > 0)
        assert cells("#controls") == []  # the demo runs no `sflowpipe control`
        assert driver.find_element(By.ID, "error").text == ""
        driver.save_screenshot(str(shots / "status.png"))
        driver.execute_script("document.getElementById('processors').scrollIntoView()")
        driver.save_screenshot(str(shots / "status-components.png"))

        # flow browser: type keys and value, see the top-N table and the trend chart fill
        driver.get(up["url"] + "/ui/flows.html")
        keys = driver.find_element(By.ID, "keys")
        keys.clear()
        keys.send_keys("ipsource,ipdestination,tcpdestinationport")
        Select(driver.find_element(By.ID, "value")).select_by_value("bps")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: len(rows("#top tbody tr")) >= 3)
        wait.until(lambda d: any(",443" in r.text for r in rows("#top tbody tr")[:3]))
        top_sources = {r.find_elements(By.TAG_NAME, "td")[1].text.split(",")[0] for r in rows("#top tbody tr")[:3]}
        assert top_sources == ELEPHANT_SOURCES
        wait.until(lambda d: rows("#trend .uplot canvas"))
        assert "bit/s" in rows("#top tbody tr")[0].text
        defined = requests.get(up["url"] + "/flow/json", timeout=10).json()
        assert any(d["keys"] == "ipsource,ipdestination,tcpdestinationport" for d in defined.values())
        driver.save_screenshot(str(shots / "flows.png"))
        # a flow the workers cannot compute: refused, its message next to the keys typed
        keys = driver.find_element(By.ID, "keys")
        keys.clear()
        keys.send_keys("ipsource,nosuchkey")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: "nosuchkey" in d.find_element(By.ID, "keys-error").text)
        assert driver.find_element(By.ID, "keys").get_attribute("aria-invalid") == "true"
        shown = driver.find_element(By.ID, "keys-error").text.splitlines()
        assert "ipsource,nosuchkey" in shown and shown[-1].strip() == "^"

        # events: the long-poll fills the table with elephant events
        driver.get(up["url"] + "/ui/events.html")
        wait.until(lambda d: len(rows("#events tbody tr")) > 0)
        assert "elephant" in driver.find_element(By.ID, "events").text
        driver.save_screenshot(str(shots / "events.png"))

        # counters: pick an agent and an interface, see the table and the chart
        driver.get(up["url"] + "/ui/counters.html")
        wait.until(lambda d: len(Select(driver.find_element(By.ID, "agent")).options) == 2)
        wait.until(lambda d: len(rows("#interfaces tbody tr")) == 8)
        wait.until(lambda d: len(Select(driver.find_element(By.ID, "ds")).options) == 8)
        wait.until(lambda d: rows("#traffic .uplot canvas"))
        assert "bit/s" in driver.find_element(By.ID, "interfaces").text
        driver.save_screenshot(str(shots / "counters.png"))
        # the browser logs the refused PUT above as a failed resource load: expected; nothing else is
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
                and not ("/flow/browse_" in e.get("message", "") and "status of 400" in e.get("message", ""))]
        assert not logs, logs
    finally:
        driver.quit()
    for name in ("status", "status-components", "flows", "events", "counters"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def _write_pcap(path: Path, payloads: list[bytes], interval: float = 0.01) -> None:
    """A classic pcap of Ethernet/IPv4/UDP frames carrying the payloads (agent -> collector)."""
    import struct

    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, p in enumerate(payloads):
        udp = struct.pack(">HHHH", 50000, 6343, 8 + len(p), 0) + p
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton("192.0.2.200"), socket.inet_aton("192.0.2.1")) + udp
        frame = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00" + ip
        t = 1_700_000_000 + i * interval
        out.append(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def test_a_second_instance_side_by_side_replaying_a_capture(up, tmp_path):
    """`up --replay FILE --config FILE` (the option after `up`, as the README writes it) shows
    data with no devices, and runs beside the first instance (its
    own ports and data directory; internal ports are picked free). Its settings file holds an
    API token: the API asks for it, and the stage file `up` writes holds no copy (issue 12)."""
    import yaml

    from ingest.generate import Generator

    gen = Generator(agents=1, sampling_rate=100, seed=7)
    capture = tmp_path / "one-agent.pcap"
    _write_pcap(capture, [gen.datagram(now=i * 0.01) for i in range(300)])
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"api": {"token": "second-s3cret"}}))
    auth = {"Authorization": "Bearer second-s3cret"}
    sflow_port, http_port = free_udp_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "up", "--config", str(config), "--replay",
                             str(capture), "--sflow-port", str(sflow_port), "--http-port", str(http_port),
                             "--data-dir", str(tmp_path / "second")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = read_banner(proc)
        assert "sflowpipe is up" in banner, banner
        stage = tmp_path / "second" / "sflowpipe-up.yaml"
        assert stage.stat().st_mode & 0o777 == 0o600 and "second-s3cret" not in stage.read_text()
        url = f"http://127.0.0.1:{http_port}"
        assert requests.get(url + "/agents/json", timeout=10).status_code == 401
        agents = _wait(lambda: requests.get(url + "/agents/json", headers=auth, timeout=10).json(), 60)
        assert set(agents) == {"192.0.2.200"}
        top = _wait(lambda: _top_elephants(url, auth), 60)
        assert top and {row["key"].split(",")[0] for row in top} == ELEPHANT_SOURCES, top
        ingesters = requests.get(url + "/sflowpipe/status/json", headers=auth, timeout=10).json()["ingesters"]
        assert [i["listen"] for i in ingesters] == [f"[::]:{sflow_port}"]
        # the first instance is unaffected
        assert set(requests.get(up["url"] + "/agents/json", timeout=10).json()) == {"192.0.2.200", "192.0.2.201"}
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped; nothing left running." in out


@pytest.fixture
def own_up(tmp_path):
    """An `up --demo` of this test's own: it stops it (the shared ``up`` serves other modules)."""
    yield from run_up_demo(tmp_path / "up")


def test_terminal_ctrl_c_stops_every_stage_newest_first_the_broker_last(own_up):
    """A terminal's Ctrl-C is SIGINT to the whole foreground process group (`up` runs as a job,
    its own group): it used to reach the broker first, so the Faust worker was killed after 30 s
    and the sinks ended in tracebacks (~45 s). Now every stage stops, newest first, then the
    broker, within 10 s, and no stage logs a traceback while stopping."""
    up = own_up
    proc = up["proc"]
    assert os.getpgid(proc.pid) == proc.pid  # a job's group, as a shell makes it
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 8  # broker + 7 stages (ingest, processors, clickhouse, prometheus, forward, api, demo)
    started = [line.split("] ", 1)[1].removesuffix(" ...") for line in up["banner"].splitlines()
               if line.startswith("[") and line.endswith(" ...")][1:]  # [1/8] is the broker
    logs = sorted((up["data"] / "logs").glob("*.log"))
    sizes = {log: log.stat().st_size for log in logs}
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 0 and "stopped; nothing left running." in out, out
    assert took < 10, f"stopping took {took:.1f} s:\n{out}"
    stopped = [line.strip().removeprefix("stopped ").rsplit(" (", 1)[0] for line in out.splitlines()
               if line.startswith("  stopped ")]
    assert stopped == started[::-1] + ["the broker"], out
    assert "killed" not in out, out
    for log in logs:  # what each stage wrote while stopping
        with open(log, "rb") as f:
            f.seek(sizes[log])
            tail = f.read().decode(errors="replace")
        assert "Traceback" not in tail, f"{log.name}:\n{tail[-3000:]}"
    left = subprocess.run(["pgrep", "-g", ",".join(children)], capture_output=True, text=True).stdout
    alive = [c for c in children if Path(f"/proc/{c}").exists()]
    assert not alive and not left.strip(), f"processes left running: {alive} {left}"
