"""`sflowpipe up`: the whole pipeline on one machine, one command, until Ctrl-C.

Starts, in order, each as its own process with its log under ``DATA_DIR/logs``:
an in-memory Kafka-compatible broker (Tansu), ingest on UDP ``--sflow-port``, the Faust
worker(s) with the default (or configured) definitions, the ClickHouse sink into the embedded
engine under ``DATA_DIR/clickhouse``, the Prometheus exporter, the forwarder for targets defined
through the API, the syslog / HTTP event sinks the settings configure, and the REST API + web
UI on ``--http-port``. ``--demo`` adds `sflowpipe generate` traffic (with elephant flows),
``--replay FILE`` a capture on a loop. ``--bootstrap-servers HOST:PORT`` uses that Kafka instead
of Tansu (with ``kafka.common``'s TLS and SASL settings, checked before any stage starts); a
secured ``kafka.common`` without it is refused, Tansu being plaintext.

Every stage runs with one typed ``Settings`` (the user's, with the embedded paths and the ports
`up` picked) and is started once the previous one answers on its port (`Probe`). Every child,
the broker too, is the leader of its own process group: a terminal's Ctrl-C (SIGINT to `up`'s
whole foreground group) reaches `up` alone, which stops the stages newest first and the broker
last, so nothing loses its broker while it shuts down.
Internal ports (Kafka, metrics, Faust, Prometheus) are picked free, so two instances with
different ``--sflow-port``, ``--http-port`` and ``--data-dir`` run side by side.

The parser reads the arguments from `sflowpipe/up_args.py`: only `up` imports this module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sflowpipe.broker import free_port
from sflowpipe.up_args import add_arguments, default_data_dir  # noqa: F401  (add_arguments: re-export)

if TYPE_CHECKING:
    from sflowpipe.broker import EmbeddedBroker
    from sflowpipe.settings import Settings

DEFAULT_DEFINITIONS = Path(__file__).with_name("flows.yaml")
STOP_TIMEOUT_S = 8.0  # a stage still running after SIGTERM and this long is killed


# ------------------------------------------------------------------ readiness

@dataclass(frozen=True)
class PortOpen:
    """Ready once a TCP connection to the port the stage serves succeeds."""

    host: str
    port: int

    def ready(self, proc: subprocess.Popen, waited: float) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


@dataclass(frozen=True)
class SqlPortOpen:
    """The embedded ClickHouse sink: ready once it has migrated and serves `sflowpipe sql`, i.e.
    its ``.sflowpipe-sql.json`` names this process and that port answers (a file left by an
    earlier run names another pid)."""

    data_dir: Path

    def ready(self, proc: subprocess.Popen, waited: float) -> bool:
        try:
            info = json.loads((self.data_dir / ".sflowpipe-sql.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("pid") == proc.pid and PortOpen("127.0.0.1", int(info.get("port", 0))).ready(proc, waited)


@dataclass(frozen=True)
class Settled:
    """A feeder (generate, replay) serves nothing: ready once alive for a moment."""

    seconds: float = 1.0

    def ready(self, proc: subprocess.Popen, waited: float) -> bool:
        return waited >= self.seconds


Probe = PortOpen | SqlPortOpen | Settled


@dataclass
class Stage:
    name: str
    cmd: list[str]
    probe: Probe
    settings: Settings | None = None  # what the stage runs with (None: a feeder, no settings file)
    wave: int = 1  # stop order (lowest first): 0 feeders, 1 readers of the topics, 2 processors, 3 ingest
    slug: str = ""  # its log file's name (default: the first word of the name)
    log: Path = Path()
    proc: subprocess.Popen | None = None


# ------------------------------------------------------------------ the pipeline

class Pipeline:
    """Owns the broker and the stage processes."""

    def __init__(self, args, settings: Settings, out=sys.stdout) -> None:
        self.args = args
        self.user_settings = settings
        self.out = out
        self.data = Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()
        self.logs = self.data / "logs"
        self.broker: EmbeddedBroker | None = None
        self.stages: list[Stage] = []
        self.ports: dict[str, int] = {}
        self._drawn: set[int] = set()  # every port _free_port() handed out
        self.secret_env: dict[str, str] = {}
        self.settings: Settings | None = None
        # --bootstrap-servers: the user's Kafka (kafka.common's TLS/SASL settings reach every stage);
        # else the embedded Tansu, started here
        self.external = bool(getattr(args, "bootstrap_servers", None))
        self.bootstrap = settings.kafka.bootstrap_servers if self.external else ""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        from sflowpipe.broker import EmbeddedBroker

        a = self.args
        for option, port, kind in (("--sflow-port", a.sflow_port, socket.SOCK_DGRAM),
                                   ("--http-port", a.http_port, socket.SOCK_STREAM)):
            if not _free(port, kind):
                raise RuntimeError(f"port {port} is in use (another sflowpipe or collector?): choose another "
                                   f"with {option}")
        if not self.external:
            _refuse_secured_embedded(self.user_settings.kafka.common)
            if self.user_settings.processors.processing_guarantee == "exactly_once":
                raise RuntimeError("processors.processing_guarantee: exactly_once needs Kafka transactions, which "
                                   "the embedded broker (Tansu) does not have: run with --bootstrap-servers on "
                                   "Apache Kafka, or keep at_least_once")
        self.logs.mkdir(parents=True, exist_ok=True)
        settings_file = self._settings_file()
        steps = self._plan(settings_file)
        total = len(steps) + 1
        t0 = time.monotonic()
        if self.external:
            self.say(f"[1/{total}] Kafka at {self.bootstrap} (--bootstrap-servers; kafka.common for TLS and SASL) ...")
            self._check_external()
        else:
            self.say(f"[1/{total}] Kafka-compatible broker (Tansu, in-memory: topics are gone when it stops; "
                     f"ClickHouse keeps the history) ...")
            self.broker = EmbeddedBroker(port=9092 if _free(9092) else self._free_port(), log_path=str(self.logs / "tansu.log"),
                                         own_group=True)
            self.broker.start()
            self.bootstrap = self.broker.bootstrap
        self.say(f"      ready on {self.bootstrap} ({time.monotonic() - t0:.1f} s)")
        env = {**os.environ, **self.secret_env, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
               "PYTHONUNBUFFERED": "1"}
        for i, stage in enumerate(steps, 2):
            t1 = time.monotonic()
            self.say(f"[{i}/{total}] {stage.name} ...")
            stage.slug = stage.slug or stage.name.split()[0].lower()
            stage.log = self.logs / (stage.slug + ".log")
            logf = open(stage.log, "ab")
            # its own process group: a terminal's Ctrl-C reaches `up` only, which stops the
            # stages in order (the broker last) instead of every process at once
            stage.proc = subprocess.Popen(stage.cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                          start_new_session=True)
            logf.close()
            self.stages.append(stage)
            self._wait_ready(stage, timeout=120)
            self.say(f"      ready ({time.monotonic() - t1:.1f} s)")

    def _free_port(self) -> int:
        """A free loopback port for a stage's own endpoint, never one the user chose (--http-port,
        --sflow-port) nor one drawn before: those are free now but bound only later, and a stage
        that took one first left the API's port answered by another server (seen in a test run:
        every request to the API met a /health endpoint's 501)."""
        taken = {self.args.http_port, self.args.sflow_port, *self.ports.values(), *self._drawn}
        while (port := free_port()) in taken:
            pass
        self._drawn.add(port)
        return port

    def _check_external(self) -> None:
        """The user's Kafka answers with the settings every stage will use (credentials included):
        else one line now, rather than every stage failing on its own."""
        from sflowpipe.kafka import KafkaClients, KafkaUnreachable, UnsupportedSetting, faust_credentials, one_line

        try:
            faust_credentials(self.settings.kafka.common)  # what the Faust workers would refuse, refused now
        except UnsupportedSetting as e:
            raise RuntimeError(str(e)) from None
        except Exception as e:  # the TLS files: unreadable, not a certificate or key, a wrong key passphrase
            raise RuntimeError(f"kafka.common (the Faust workers' TLS settings): {' '.join(str(e).split())}") from None
        try:
            KafkaClients(self.settings.kafka).require_broker()  # as every command waits: a few seconds
        except KafkaUnreachable as e:
            raise RuntimeError(str(e)) from None
        except Exception as e:  # a client the settings cannot build (a missing CA file, a bad setting)
            raise RuntimeError(f"Kafka at {self.bootstrap}: {one_line(e)}") from None

    def _stage_settings(self) -> Settings:
        """The user's settings with what `up` decides: listen addresses, the ports it picked, the
        data directory's paths (where the user set none), the definitions file and the sinks
        whose lag the status page shows. Defaults stay the Settings model's own."""
        s = self.user_settings
        p = self.ports
        p["metrics"] = self._free_port()
        p["faust"] = self._free_port()
        p["prometheus"] = self._free_port()

        def updated(model, **values):
            return model.model_copy(update=values)

        def any_metrics_port(model):
            return model if "metrics_listen" in model.model_fields_set else updated(model, metrics_listen="127.0.0.1:0")

        processors = updated(s.processors, data_dir=str(self.data / "processors"), web_port=p["faust"])
        if not processors.definitions_file:
            processors = updated(processors, definitions_file=str(DEFAULT_DEFINITIONS))
        enrich = s.enrich if "cache_dir" in s.enrich.model_fields_set else updated(
            s.enrich, cache_dir=str(self.data / "cache"))
        clickhouse = s.sinks.clickhouse if "dsn" in s.sinks.clickhouse.model_fields_set else updated(
            s.sinks.clickhouse, dsn=f"chdb://{self.data / 'clickhouse'}")
        # the other stages' own /metrics: any free loopback port (each logs where) unless the user
        # chose one, so that two instances never collide on the fixed defaults
        clickhouse = any_metrics_port(clickhouse)
        processors = any_metrics_port(processors)
        sinks = updated(s.sinks, clickhouse=clickhouse, forward=any_metrics_port(s.sinks.forward),
                        prometheus=any_metrics_port(updated(s.sinks.prometheus,
                                                            listen=f"127.0.0.1:{p['prometheus']}")))
        if "control_metrics_listen" not in s.sinks.model_fields_set:
            sinks = updated(sinks, control_metrics_listen="127.0.0.1:0")
        if "syslog" in s.sinks.model_fields_set:  # a syslog stage only when the user configured the sink
            sinks = updated(sinks, syslog=any_metrics_port(sinks.syslog))
        api = any_metrics_port(updated(s.api, listen=f"{self.args.listen_address}:{self.args.http_port}"))
        if "sinks" not in s.api.model_fields_set:  # the status page's consumer lag: the sinks this run starts
            api = updated(api, sinks=[g for g, _ in self._sink_groups(sinks)])
        return s.model_copy(update={
            "ingest": updated(s.ingest, listen=f"[::]:{self.args.sflow_port}",
                              metrics_listen=f"127.0.0.1:{p['metrics']}", spill_dir=str(self.data / "spill")),
            "processors": processors, "enrich": enrich, "sinks": sinks, "api": api})

    @staticmethod
    def _sink_groups(sinks) -> list[tuple[str, str]]:
        """(consumer group, stage) of each sink this run starts: ClickHouse, Prometheus, and the
        syslog and HTTP event sinks the settings configure."""
        groups = [(sinks.clickhouse.consumer_group, "clickhouse"), (sinks.prometheus.consumer_group, "prometheus")]
        if "syslog" in sinks.model_fields_set:
            groups.append((sinks.syslog.consumer_group, "syslog"))
        for name, conf in sinks.http.items():
            groups.append((conf.group(name), f"http-events-{name}"))
        return groups

    def _settings_file(self) -> Path:
        """Write the settings every stage reads; secrets (tokens, passwords, DSNs with a
        password) reach the stages through their environment, never the disk: the file holds
        the rest, readable by its owner only."""
        import yaml

        self.settings = self._stage_settings()
        settings, self.secret_env = secret_environment(_plain(self.settings.model_dump(exclude_unset=True)),
                                                       os.environ)
        path = self.data / "sflowpipe-up.yaml"
        self.data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older copy may have been created with other permissions
        with os.fdopen(fd, "w") as f:
            f.write("# written by `sflowpipe up` from its settings (--config, environment) and the ports it "
                    "picked; read by every stage (secrets: in their environment)\n"
                    + yaml.safe_dump(settings, sort_keys=False))
        return path

    def _plan(self, settings_file: Path) -> list[Stage]:
        s = self.settings
        assert s is not None, "_settings_file() first"
        cli = [sys.executable, "-m", "sflowpipe.cli", "--config", str(settings_file)]
        a = self.args

        def health() -> tuple[list[str], PortOpen]:
            """A stage serving no port of its own: the CLI's /health endpoint on a free one."""
            port = self._free_port()
            return cli + ["--health-port", str(port)], PortOpen("127.0.0.1", port)

        ch_dir = _embedded_dir(s.sinks.clickhouse.dsn)
        ch_cli, ch_probe = (cli, SqlPortOpen(ch_dir)) if ch_dir else health()
        fwd_cli, fwd_probe = health()
        stages = [
            Stage(f"ingest on UDP {a.sflow_port}", cli + ["ingest"], PortOpen("127.0.0.1", self.ports["metrics"]), s,
                  wave=3),
            Stage(f"processors ({a.workers} Faust worker{'s' if a.workers > 1 else ''})",
                  cli + ["process", "--workers", str(a.workers)], PortOpen("127.0.0.1", self.ports["faust"]), s,
                  wave=2),
            Stage(f"clickhouse sink (embedded engine in {ch_dir})" if ch_dir else "clickhouse sink",
                  ch_cli + ["clickhouse"], ch_probe, s),
            Stage("prometheus exporter", cli + ["prometheus"], PortOpen("127.0.0.1", self.ports["prometheus"]), s),
            Stage("forwarder (targets from PUT /forwarding/{name}/json)", fwd_cli + ["forward", "--from-config"],
                  fwd_probe, s),
        ]
        for group, stage in self._sink_groups(s.sinks)[2:]:
            stage_cli, probe = health()
            if stage == "syslog":
                stages.append(Stage("syslog sink", stage_cli + ["syslog"], probe, s))
            else:
                name = stage.removeprefix("http-events-")
                stages.append(Stage(f"http-events {name}", stage_cli + ["http-events", name], probe, s, slug=stage))
        stages.append(Stage(f"API and web UI on http://{self._ui_host()}:{a.http_port}/", cli + ["api"],
                            PortOpen(self._ui_host(), a.http_port), s))
        if a.demo:
            stages.append(Stage("demo traffic (sflowpipe generate)",
                                [sys.executable, "-m", "sflowpipe.cli", "generate", "--to",
                                 f"127.0.0.1:{a.sflow_port}", "--rate", str(a.demo_rate),
                                 # 1-in-100: the 3 elephants are ~90 Mbit/s each, the mice well under
                                 # the 10 Mbit/s elephant threshold
                                 "--sampling-rate", "100"], Settled(), wave=0))
        elif a.replay:
            stages.append(Stage(f"replay of {a.replay}",
                                [sys.executable, "-m", "sflowpipe.cli", "replay", str(Path(a.replay).resolve()),
                                 "--to", f"127.0.0.1:{a.sflow_port}", "--loop", "1000000"], Settled(), wave=0))
        return stages

    def _ui_host(self) -> str:
        return "127.0.0.1" if self.args.listen_address in ("0.0.0.0", "::", "") else self.args.listen_address

    def _wait_ready(self, stage: Stage, timeout: float) -> None:
        start = time.monotonic()
        while True:
            code = stage.proc.poll()
            if code is not None:
                raise RuntimeError(f"{stage.name} exited ({code}); its log, {stage.log}, ends with:\n"
                                   + _tail(stage.log))
            waited = time.monotonic() - start
            if stage.probe.ready(stage.proc, waited):
                return
            if waited > timeout:
                raise RuntimeError(f"{stage.name} not ready after {timeout:.0f} s; see {stage.log}")
            time.sleep(0.1)

    def banner(self) -> str:
        a, p = self.args, self.ports
        config = getattr(a, "config", None)  # the user's file: the external broker's credentials are in it
        tail = (f"sflowpipe {'--config ' + str(config) + ' ' if config else ''}tail flow-samples" if self.external
                else f"sflowpipe tail flow-samples --bootstrap-servers {self.bootstrap}")
        feed = (" (demo traffic flowing)" if a.demo else f" (replaying {a.replay})" if a.replay else
                f"  (point your agents here, or: sflowpipe generate --to 127.0.0.1:{a.sflow_port})")
        return f"""
sflowpipe is up:
  web UI and REST API   http://{self._ui_host()}:{a.http_port}/    (sFlow-RT paths, e.g. /activeflows/ALL/pair/json)
  sFlow in              UDP port {a.sflow_port}{feed}
  Kafka                 {self.bootstrap}    ({tail})
  ClickHouse            sflowpipe sql "SELECT count() FROM flow_samples" --data-dir {self.data / 'clickhouse'}
  Prometheus            http://127.0.0.1:{p['prometheus']}/metrics   ingest metrics http://127.0.0.1:{p['metrics']}/metrics
  data and logs         {self.data}
Ctrl-C stops everything."""

    # ---------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop every stage, newest first, then the broker, so that every stage still has its
        broker while it commits and closes. The stages are stopped in waves (`Stage.wave`): the
        feeder, then the readers of the topics together (API and sinks: none feeds another),
        then the processors, then ingest; a wave is signalled newest first and awaited whole."""
        self.say("stopping ...")
        started = [s for s in reversed(self.stages) if s.proc]
        for wave in sorted({s.wave for s in started}):
            t0 = time.monotonic()
            stages = [s for s in started if s.wave == wave]
            for stage in stages:
                if stage.proc.poll() is None:
                    # the stage's own process, as a supervisor or `docker stop` signals it: a
                    # command with worker processes (ingest, process --workers N) stops them itself
                    stage.proc.terminate()
            for stage in stages:
                try:
                    stage.proc.wait(max(0.1, STOP_TIMEOUT_S - (time.monotonic() - t0)))
                except subprocess.TimeoutExpired:
                    self.say(f"  {stage.name} did not stop in {STOP_TIMEOUT_S:.0f} s: killed")
                    _signal_group(stage.proc, signal.SIGKILL)
                    stage.proc.wait(10)
                _signal_group(stage.proc, signal.SIGKILL)  # leftovers of its process group, if any
                self.say(f"  stopped {stage.name} ({time.monotonic() - t0:.1f} s)")
        if self.broker:
            self.broker.stop()
            self.say("  stopped the broker")
        self.say("stopped; nothing left running.")

    def failed(self) -> Stage | None:
        return next((s for s in self.stages if s.proc and s.proc.poll() is not None
                     and not s.name.startswith("replay")), None)


def _refuse_secured_embedded(common: dict[str, str]) -> None:
    """The embedded Tansu serves plaintext only: TLS or SASL settings in kafka.common mean the
    user's own Kafka, which `up` must be pointed at (it would not start otherwise, every stage
    failing its handshake with Tansu)."""
    protocol = common.get("security.protocol", "PLAINTEXT").upper()
    if protocol != "PLAINTEXT":
        raise RuntimeError(f"kafka.common.security.protocol is {protocol} but the embedded broker (Tansu) is "
                           f"plaintext: point `up` at your Kafka with --bootstrap-servers HOST:PORT")


def _embedded_dir(dsn: str) -> Path | None:
    """The data directory of an embedded (chdb://) ClickHouse DSN, None for a server."""
    if not dsn.startswith("chdb:"):
        return None
    rest = dsn.removeprefix("chdb://").removeprefix("chdb:").split("?", 1)[0]
    return None if rest in ("", "memory", ":memory:") else Path(rest).resolve()


def _plain(data):
    """A settings dump as YAML/JSON can hold it: secrets revealed (split out just after), paths
    and tuples as strings and lists."""
    from sflowpipe.typed import SecretStr

    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    if isinstance(data, SecretStr):
        return data.get_secret_value()
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    return str(data)


def secret_environment(settings: dict, environ) -> tuple[dict, dict[str, str]]:
    """The settings without their secrets, and the ``SFLOWPIPE_<SECTION>`` variables (JSON, merged
    into the file's section by `load_settings`) that carry them; a section's variable the user
    already set keeps its own values over the file's, as it would without `up`."""
    from sflowpipe.secrets import split as split_secrets
    from sflowpipe.settings import ENV_PREFIX, merged

    public, secrets = split_secrets(settings)
    env = {}
    for section, values in secrets.items():
        var = ENV_PREFIX + section.upper()
        try:
            own = json.loads(environ[var]) if var in environ else {}
        except ValueError:
            own = {}
        if isinstance(values, dict) and isinstance(own, dict):
            values = merged(values, own)
        env[var] = json.dumps(values) if isinstance(values, (dict, list)) else str(values)
    return public, env


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::")):
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError as e:
                if family == socket.AF_INET6 and e.errno == 97:  # no IPv6 here
                    continue
                return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(args, settings: Settings) -> int:
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # SIGHUP too: the stages are in their own groups, so a closed terminal reaches `up` alone,
    # which must not die and leave them running
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    pipeline = Pipeline(args, settings)
    code = 0
    try:
        pipeline.start()
        pipeline.say(pipeline.banner())
        while True:
            time.sleep(1.0)
            bad = pipeline.failed()
            if bad:
                pipeline.say(f"{bad.name} exited ({bad.proc.returncode}); see {bad.log}:\n{_tail(bad.log)}")
                code = 1
                break
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        pipeline.say(f"sflowpipe up: {e}")
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not abandon the shutdown
        pipeline.stop()
    return code
