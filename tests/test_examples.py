"""The shipped definitions, docker-compose.yml, Dockerfile and Grafana provisioning stay valid.

There is no Docker engine in the test environment: these tests check the deployment files
against the code instead (commands against the real argument parser, environment variables
against the real settings, dashboard SQL against the real schema in embedded ClickHouse).
"""

import argparse
import json
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from sflowpipe.config_plane import parse
from sflowpipe.flowspec import compile_flow, parse_definition
from sflowpipe.cli import build_parser
from sflowpipe.settings import ClickHouseSettings, Settings, load_settings
from sflowpipe.typed import Model as BaseModel, validate_as

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sflowpipe.json"
MIGRATIONS = ROOT / "sinks" / "clickhouse" / "migrations"
PLUGIN = "grafana-clickhouse-datasource"
EXPECTED_SERVICES = {"kafka", "clickhouse", "ingest", "processors", "clickhouse-sink", "prometheus-exporter",
                     "api", "grafana", "syslog"}
PULLED_IMAGES = {"kafka": "apache/kafka", "clickhouse": "clickhouse/clickhouse-server", "grafana": "grafana/grafana"}


def test_example_definitions_parse_and_compile():
    data = yaml.safe_load((ROOT / "sflowpipe" / "flows.yaml").read_text())
    for name, body in data["flows"].items():
        parse("flow", name, body)
        compile_flow(parse_definition(name, body))
    for name, body in data["thresholds"].items():
        assert parse("threshold", name, body).metric in data["flows"]
    for name, body in data["groups"].items():
        parse("group", name, body)


# ---------------------------------------------------------------- docker-compose.yml

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def sflowpipe_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def env(svc: dict) -> dict:
    e = svc.get("environment", {})
    assert isinstance(e, dict), "environment as a mapping"
    return e


def test_compose_services_and_profiles(compose):
    services = compose["services"]
    assert EXPECTED_SERVICES <= set(services)
    assert services["syslog"].get("profiles") == ["siem"]  # started only with --profile siem
    always = {name for name, svc in services.items() if not svc.get("profiles")}
    assert EXPECTED_SERVICES - {"syslog"} <= always


def test_compose_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        if name in PULLED_IMAGES:
            assert "build" not in svc
            repo, _, tag = image.partition(":")
            assert repo == PULLED_IMAGES[name], image
            assert re.fullmatch(r"\d+\.\d+(\.\d+)*", tag), f"{name}: pin a version, not {tag!r}"
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
    assert int(compose["services"]["clickhouse"]["image"].split(":")[1].split(".")[0]) >= 24
    assert compose["services"]["grafana"]["image"].split(":")[1].startswith("11.")


def test_compose_runs_the_kafka_the_tests_run(compose):
    """The deployment's broker is the Apache Kafka version the suite is tested on (issue 14)."""
    from tests.apache_kafka import VERSION

    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{VERSION}"


def published(svc: dict) -> set[int]:
    """Host ports of `ports:` entries such as "8008:8008", "127.0.0.1:9094:9094", "6343:6343/udp"."""
    return {int(str(p).split("/")[0].split(":")[-2]) for p in svc.get("ports", [])}


def test_compose_ports_and_host_network_ingest(compose):
    s = compose["services"]
    assert 8008 in published(s["api"])
    assert 3000 in published(s["grafana"])
    assert 8123 in published(s["clickhouse"])
    assert 9344 in published(s["prometheus-exporter"])
    ingest = s["ingest"]
    assert ingest["network_mode"] == "host"  # replicas share UDP 6343 with SO_REUSEPORT
    assert "ports" not in ingest             # published ports cannot be shared by replicas
    assert env(ingest)["SFLOWPIPE_INGEST__METRICS_LISTEN"].endswith(":0")  # any free port per replica
    spill = env(ingest)["SFLOWPIPE_INGEST__SPILL_DIR"]
    assert spill in ingest["volumes"], "an anonymous volume per replica, never a shared named one"


# service -> the setting of its own /metrics listener (README "Metrics")
METRICS_LISTEN = {"ingest": "SFLOWPIPE_INGEST__METRICS_LISTEN", "processors": "SFLOWPIPE_PROCESSORS__METRICS_LISTEN",
                  "clickhouse-sink": "SFLOWPIPE_SINKS__CLICKHOUSE__METRICS_LISTEN",
                  "prometheus-exporter": "SFLOWPIPE_SINKS__PROMETHEUS__METRICS_LISTEN",
                  "syslog": "SFLOWPIPE_SINKS__SYSLOG__METRICS_LISTEN", "api": "SFLOWPIPE_API__METRICS_LISTEN",
                  "control": "SFLOWPIPE_SINKS__CONTROL_METRICS_LISTEN"}


def test_compose_metrics_listeners_are_reachable_from_prometheus(compose):
    """sflowpipe's default /metrics address is loopback: in a container, unreachable by any
    Prometheus. Every long-running service listens on all its container's addresses."""
    services = sflowpipe_services(compose)
    assert set(services) - {"clickhouse-migrate"} == set(METRICS_LISTEN)  # a new service names its listener
    for name, var in METRICS_LISTEN.items():
        assert env(services[name])[var].startswith("0.0.0.0:"), name


def test_compose_kafka_listeners_match_the_clients(compose):
    s = compose["services"]
    kafka = env(s["kafka"])
    advertised = {entry.split("://")[1] for entry in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    names = {entry.split("://")[0] for entry in kafka["KAFKA_LISTENERS"].split(",")}
    assert names <= {entry.split(":")[0] for entry in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    for name, svc in sflowpipe_services(compose).items():
        bootstrap = env(svc)["SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS"]
        assert bootstrap in advertised, f"{name}: {bootstrap} is not an advertised listener"
        assert env(svc)["SFLOWPIPE_KAFKA__PARTITIONS"] == str(kafka["KAFKA_NUM_PARTITIONS"]), name
    host_port = int(env(s["ingest"])["SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    assert host_port in published(s["kafka"])  # the host-network ingesters reach it on the host


def test_compose_commands_are_real_subcommands(compose):
    parser = build_parser()
    services = sflowpipe_services(compose)
    assert set(services) >= {"ingest", "processors", "clickhouse-sink", "prometheus-exporter", "syslog", "api"}
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, svc in services.items():
        args = parser.parse_args(svc["command"])  # exits (SystemExit) on an unknown subcommand/option
        assert args.command, name
        # argparse also takes unambiguous prefixes (--no-sql for --no-sql-server): spell them out
        options = {o for a in subcommands[args.command]._actions for o in a.option_strings}
        for word in svc["command"][1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{name}: {word}"
    assert parser.parse_args(services["processors"]["command"]).definitions == "/etc/sflowpipe/flows.yaml"


def setting_path(var: str) -> list[str]:
    assert var.startswith("SFLOWPIPE_"), var
    return var.removeprefix("SFLOWPIPE_").lower().split("__")


def resolve_field(path: list[str]):
    """The field a settings path names (Settings.sinks.clickhouse.dsn), or an assertion."""
    model: type[BaseModel] = Settings
    field = None
    for i, part in enumerate(path):
        assert model is not None, f"{'.'.join(path[:i])} has no sub-settings"
        assert part in model.model_fields, f"no setting {'.'.join(path[:i + 1])}"
        field = model.model_fields[part]
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    assert model is None, f"{'.'.join(path)} is a section, not a setting"
    return field


@pytest.mark.parametrize("service", ["ingest", "processors", "clickhouse-migrate", "clickhouse-sink",
                                     "prometheus-exporter", "syslog", "api"])
def test_compose_environment_is_real_settings(compose, monkeypatch, service):
    svc = compose["services"][service]
    variables = {k: v for k, v in env(svc).items() if k.startswith("SFLOWPIPE_")}
    assert variables and variables == env(svc), "sflowpipe is configured through SFLOWPIPE_* only"
    for var, value in variables.items():
        assert isinstance(value, str), f"{var}: quote it (YAML would make it {type(value).__name__})"
        monkeypatch.setenv(var, value)
    settings = load_settings()  # reads SFLOWPIPE_* with the __ delimiter, as the container's command will
    for var, value in variables.items():
        path = setting_path(var)
        field = resolve_field(path)  # nested models ignore unknown keys: check the name itself
        got = settings
        for part in path:
            got = getattr(got, part)
        assert got == validate_as(field.annotation, value), var


def test_compose_clickhouse_credentials_agree(compose):
    s = compose["services"]
    ch = env(s["clickhouse"])
    from sinks.clickhouse.sink import resolve_dsn

    for name in ("clickhouse-migrate", "clickhouse-sink"):
        dsn = env(s[name])["SFLOWPIPE_SINKS__CLICKHOUSE__DSN"]
        assert resolve_dsn(dsn) == (dsn, None)  # a server, not the embedded engine
        url = urlsplit(dsn)
        assert (url.scheme, url.hostname, url.port) == ("http", "clickhouse", 8123)
        assert (url.username, url.password) == (ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"])
        assert env(s[name])["SFLOWPIPE_SINKS__CLICKHOUSE__DATABASE"] == ch["CLICKHOUSE_DB"]
    assert s["clickhouse"]["ulimits"]["nofile"]
    assert any(str(v).endswith(":/var/lib/clickhouse") for v in s["clickhouse"]["volumes"])
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())["datasources"][0]
    assert (ds["jsonData"]["host"], ds["jsonData"]["port"], ds["jsonData"]["protocol"]) == ("clickhouse", 8123, "http")
    assert ds["jsonData"]["username"] == ch["CLICKHOUSE_USER"]
    assert ds["secureJsonData"]["password"] == ch["CLICKHOUSE_PASSWORD"]
    assert ds["jsonData"]["defaultDatabase"] == ch["CLICKHOUSE_DB"]


def test_compose_bind_mounts_exist_and_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    binds = set()
    for name, svc in compose["services"].items():
        for spec in svc.get("volumes", []):
            source, sep, _ = str(spec).partition(":")
            if not sep:  # an anonymous volume
                assert source.startswith("/"), f"{name}: {spec}"
            elif source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
                binds.add(source)
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert {"./sflowpipe/flows.yaml", "./deploy/grafana/provisioning", "./deploy/grafana/dashboards"} <= binds


def test_compose_depends_on_real_services(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps:
            assert dep in services, f"{name} depends on unknown {dep}"
            if isinstance(deps, dict) and deps[dep].get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health, which has no check"


# ---------------------------------------------------------------- Dockerfile

def dockerfile_copies() -> tuple[list[str], list[str]]:
    """Sources of the Dockerfile's COPY lines: (from the build context, from the ui stage)."""
    context, staged = [], []
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # join continued lines
    for line in text.splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        flags = [w for w in words[1:] if w.startswith("--")]
        sources = [w for w in words[1:] if not w.startswith("--")][:-1]
        (staged if "--from=ui" in flags else context).extend(sources)
    return context, staged


def test_dockerfile_copies_the_packages_and_the_ui_bundle():
    context, staged = dockerfile_copies()
    for src in context:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= set(context), f"not copied: {packages - set(context)}"
    assert {"pyproject.toml", "README.md", "ui/package.json", "ui/package-lock.json"} <= set(context)
    # the same front-end files scripts/build-ui.sh bundles into api/static/vendor
    script = (ROOT / "scripts" / "build-ui.sh").read_text()
    bundled = [m for line in script.splitlines() if line.startswith("cp ")
               for m in re.findall(r"ui/node_modules/(\S+)", line)]
    assert bundled
    assert sorted(Path(s).relative_to("/ui/node_modules").as_posix() for s in staged) == sorted(bundled)
    assert "uPlot.LICENSE" in (ROOT / "Dockerfile").read_text()


# ---------------------------------------------------------------- Grafana

def dashboard_panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_grafana_provisioning_parses():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert (source["type"], source["uid"], source["name"]) == (PLUGIN, "clickhouse", "ClickHouse")
    dash = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sflowpipe.yaml").read_text())
    assert dash["apiVersion"] == 1
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert PLUGIN in env(grafana)["GF_INSTALL_PLUGINS"].split(",")
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]


def test_dashboard_panels_and_datasource():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] == 39
    panels = dashboard_panels()
    titles = " | ".join(p["title"] for p in panels)
    for words in ("Top flows", "interface", "Events"):
        assert words in titles
    for p in panels:
        assert p["datasource"] == {"type": PLUGIN, "uid": "clickhouse"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "clickhouse", p["title"]
            assert t["editorType"] == "sql" and t["rawSql"].strip(), p["title"]
            # queries saved without pluginVersion >= 4 are migrated as the old plugin's queries
            assert int(t["pluginVersion"].split(".")[0]) >= 4
            assert t["format"] == (0 if p["type"] == "timeseries" else 1), p["title"]


def created_relations() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))
    return set(re.findall(r"CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS \{database\}\.(\w+)", text))


def test_dashboard_tables_exist_in_the_migrations():
    relations = created_relations()
    assert {"flows_1m", "metrics", "events"} <= relations
    for p in dashboard_panels():
        for t in p["targets"]:
            used = set(re.findall(r"sflow\.(\w+)", t["rawSql"]))
            assert used and used <= relations, f"{p['title']}: {used - relations}"


def expand_macros(sql: str, interval_s: int = 60) -> str:
    """The ClickHouse plugin's macros the dashboard uses, expanded as the plugin does (last hour)."""
    now = "toUnixTimestamp(now())"
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 rf"\1 >= toDateTime({now} - 3600) AND \1 <= toDateTime({now})", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", rf"toStartOfInterval(toDateTime(\1), INTERVAL {interval_s} second)", sql)
    sql = sql.replace("$__interval_s", str(interval_s))
    assert "$" not in sql, f"a macro the test does not know: {sql}"
    return sql


@pytest.fixture
def clickhouse(tmp_path):
    """Embedded ClickHouse (chDB) with the sink's migrations applied (one owner per directory)."""
    from sinks.clickhouse.migrate import migrate
    from sinks.clickhouse.sink import connect

    dsn = f"chdb://{tmp_path}/ch"
    client = connect(dsn)
    migrate(client, ClickHouseSettings(dsn=dsn, database="sflow"))
    yield client
    client.close()


def test_dashboard_queries_run_on_the_schema(clickhouse):
    # one flow sample (the views fill flows_1m), two interface counters, one event, a minute ago
    ago = "now64(3) - INTERVAL 1 MINUTE"
    agent = "toIPv6('192.0.2.1')"
    clickhouse.command(
        "INSERT INTO sflow.flow_samples (time, agent, exporter, in_if, out_if, sampling_rate, frame_length, bytes, "
        f"src_ip, dst_ip, protocol) VALUES ({ago}, {agent}, {agent}, 3, 7, 1000, 1500, 1500000, "
        "toIPv6('10.0.0.1'), toIPv6('10.0.0.2'), 6)")
    clickhouse.command(
        "INSERT INTO sflow.metrics (time, agent, data_source, name, value) VALUES "
        f"({ago}, {agent}, '3', 'ifinoctets', 125000), ({ago}, {agent}, '3', 'ifoutoctets', 250000)")
    clickhouse.command(
        "INSERT INTO sflow.events (time, event_id, threshold_id, agent, data_source, metric, value, threshold, "
        f"flow_key) VALUES ({ago}, 1, 'elephant', {agent}, '3', 'tcp', 2e6, 1e6, '10.0.0.1,10.0.0.2')")
    for p in dashboard_panels():
        for t in p["targets"]:
            for interval_s in (15, 60, 300):
                result = clickhouse.query(expand_macros(t["rawSql"], interval_s))
                assert result.result_rows, f"{p['title']} (interval {interval_s}s): no rows"
            if p["type"] == "timeseries":  # time first, then a label, then the value
                assert result.column_names == ("t", "interface", "bps"), p["title"]
                assert result.result_rows[0][2] > 0
    top = clickhouse.query(expand_macros(next(t["rawSql"] for p in dashboard_panels() if "Top flows" in p["title"]
                                              for t in p["targets"])))
    assert top.result_rows[0][:2] == ("10.0.0.1", "10.0.0.2")  # IPv4 shown without ::ffff:


def test_example_control_policies_are_valid_settings(compose):
    from sflowpipe.settings import load_settings

    svc = compose["services"]["control"]
    assert svc.get("profiles") == ["control"]
    s = load_settings(str(ROOT / "deploy" / "controls.yaml"))
    thresholds = yaml.safe_load((ROOT / "sflowpipe" / "flows.yaml").read_text())["thresholds"]
    assert s.sinks.controls and all(p.threshold in thresholds for p in s.sinks.controls.values())
