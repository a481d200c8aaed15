"""`sflowpipe up`: the whole pipeline on one machine, one command, until Ctrl-C.

Starts, in order, each as its own process with its log under ``DATA_DIR/logs``:
an in-memory Kafka-compatible broker (Tansu), ingest on UDP ``--sflow-port``, the Faust
worker(s) with the default (or configured) definitions, the ClickHouse sink into the embedded
engine under ``DATA_DIR/clickhouse``, the Prometheus exporter, the forwarder for targets defined
through the API, the syslog / HTTP event sinks the settings file configures, and the REST
API + web UI on ``--http-port``. ``--demo`` adds `sflowpipe generate` traffic (with elephant
flows), ``--replay FILE`` a capture on a loop. Each stage is started once the previous is
ready; Ctrl-C (or SIGTERM) stops them all, newest first, and waits for every one to exit.
Internal ports (Kafka, metrics, Faust, Prometheus) are picked free, so two instances with
different ``--sflow-port``, ``--http-port`` and ``--data-dir`` run side by side.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sflowpipe.broker import EmbeddedBroker, free_port
from sflowpipe.secrets import split as split_secrets
from sflowpipe.settings import ENV_PREFIX

DEFAULT_DEFINITIONS = Path(__file__).with_name("flows.yaml")


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/sflowpipe (usually ~/.local/share/sflowpipe)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sflowpipe"


def add_arguments(p) -> None:
    p.add_argument("--sflow-port", type=int, default=6343, help="UDP port for sFlow (default 6343)")
    p.add_argument("--http-port", type=int, default=8008, help="REST API and web UI port (default 8008, "
                                                              "sFlow-RT's)")
    p.add_argument("--data-dir", default=None, help=f"where ClickHouse data, spill and logs go "
                                                    f"(default {default_data_dir()})")
    p.add_argument("--listen-address", default="127.0.0.1",
                   help="address for the API/UI (default 127.0.0.1; 0.0.0.0 exposes it: set api.token)")
    p.add_argument("--workers", type=int, default=1, help="Faust worker processes (default 1)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="feed generated sFlow (with >10 Mbit/s elephant flows)")
    src.add_argument("--replay", metavar="FILE.pcap", help="feed a capture, looped, at its recorded pace")
    p.add_argument("--demo-rate", type=float, default=100.0, help="--demo datagrams per second (default 100)")


@dataclass
class Stage:
    name: str
    cmd: list[str]
    ready: str | None  # a line the process logs once it is ready (None: alive after a moment)
    slug: str = ""  # its log file's name (default: the first word of the name)
    log: Path = Path()
    proc: subprocess.Popen | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


class Pipeline:
    """Owns the broker and the stage processes."""

    def __init__(self, args, config_file: str | None, out=sys.stdout) -> None:
        self.args = args
        self.config_file = config_file
        self.out = out
        self.data = Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()
        self.logs = self.data / "logs"
        self.broker: EmbeddedBroker | None = None
        self.stages: list[Stage] = []
        self.ports: dict[str, int] = {}
        self.secret_env: dict[str, str] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        a = self.args
        for option, port, kind in (("--sflow-port", a.sflow_port, socket.SOCK_DGRAM),
                                   ("--http-port", a.http_port, socket.SOCK_STREAM)):
            if not _free(port, kind):
                raise RuntimeError(f"port {port} is in use (another sflowpipe or collector?): choose another "
                                   f"with {option}")
        self.logs.mkdir(parents=True, exist_ok=True)
        settings_file = self._settings_file()
        steps = self._plan(settings_file)
        total = len(steps) + 1
        t0 = time.monotonic()
        self.say(f"[1/{total}] Kafka-compatible broker (Tansu, in-memory: topics are gone when it stops; "
                 f"ClickHouse keeps the history) ...")
        self.broker = EmbeddedBroker(port=9092 if _free(9092) else None, log_path=str(self.logs / "tansu.log"))
        self.broker.start()
        self.say(f"      ready on {self.broker.bootstrap} ({time.monotonic() - t0:.1f} s)")
        env = {**os.environ, **self.secret_env, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
               "PYTHONUNBUFFERED": "1"}
        for i, stage in enumerate(steps, 2):
            t1 = time.monotonic()
            self.say(f"[{i}/{total}] {stage.name} ...")
            stage.slug = stage.slug or stage.name.split()[0].lower()
            stage.log = self.logs / (stage.slug + ".log")
            logf = open(stage.log, "ab")
            stage.proc = subprocess.Popen(stage.cmd, env={**env, **stage.extra_env}, stdout=logf,
                                          stderr=subprocess.STDOUT, start_new_session=True)
            logf.close()
            self.stages.append(stage)
            self._wait_ready(stage, timeout=120)
            self.say(f"      ready ({time.monotonic() - t1:.1f} s)")

    def _settings_file(self) -> Path:
        """The settings every stage reads: the user's file (if any) with the embedded-mode paths."""
        user = yaml.safe_load(Path(self.config_file).read_text()) if self.config_file else {}
        user = user or {}
        self.user_settings = user
        p = self.ports
        p["metrics"] = free_port()
        p["faust"] = free_port()
        p["prometheus"] = free_port()
        settings = dict(user)

        def section(*path):
            d = settings
            for k in path:
                d = d.setdefault(k, {})
            return d

        section("ingest").update(listen=f"[::]:{self.args.sflow_port}", metrics_listen=f"127.0.0.1:{p['metrics']}",
                                 spill_dir=str(self.data / "spill"))
        proc = section("processors")
        proc.update(data_dir=str(self.data / "processors"), web_port=p["faust"])
        if not proc.get("definitions_file"):
            proc["definitions_file"] = str(DEFAULT_DEFINITIONS)
        section("enrich").setdefault("cache_dir", str(self.data / "cache"))
        section("sinks", "clickhouse").setdefault("dsn", f"chdb://{self.data / 'clickhouse'}")
        section("sinks", "prometheus")["listen"] = f"127.0.0.1:{p['prometheus']}"
        # the other stages' own /metrics: any free loopback port (each logs where), so that two
        # instances never collide on the fixed defaults
        for path, key in ((("processors",), "metrics_listen"), (("sinks", "clickhouse"), "metrics_listen"),
                          (("sinks", "prometheus"), "metrics_listen"), (("sinks", "forward"), "metrics_listen"),
                          (("sinks",), "control_metrics_listen"),
                          (("api",), "metrics_listen")):
            section(*path).setdefault(key, "127.0.0.1:0")
        if (settings.get("sinks") or {}).get("syslog"):  # a section only when the user configured the sink
            section("sinks", "syslog").setdefault("metrics_listen", "127.0.0.1:0")
        api = section("api")
        api["listen"] = f"{self.args.listen_address}:{self.args.http_port}"
        if "sinks" not in api:  # the status page's consumer lag: the sinks this run starts
            sinks = user.get("sinks") or {}
            groups = ["sflowpipe-clickhouse", "sflowpipe-prometheus"]
            if sinks.get("syslog"):
                groups.append((sinks["syslog"] or {}).get("consumer_group", "sflowpipe-syslog"))
            for name, conf in (sinks.get("http") or {}).items():
                groups.append((conf or {}).get("consumer_group") or f"sflowpipe-http-{name}")
            api["sinks"] = groups
        # secrets (tokens, passwords, DSNs with a password) reach the stages through their
        # environment, never the disk: the file holds the rest, readable by its owner only
        settings, self.secret_env = secret_environment(settings, os.environ)
        path = self.data / "sflowpipe-up.yaml"
        self.data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older copy may have been created with other permissions
        with os.fdopen(fd, "w") as f:
            f.write("# written by `sflowpipe up` from the defaults and --config; read by every stage "
                    "(secrets: in their environment)\n" + yaml.safe_dump(settings, sort_keys=False))
        return path

    def _plan(self, settings_file: Path) -> list[Stage]:
        cli = [sys.executable, "-m", "sflowpipe.cli", "--config", str(settings_file)]
        a = self.args
        stages = [
            Stage(f"ingest on UDP {a.sflow_port}", cli + ["ingest"], "ingest ready"),
            Stage(f"processors ({a.workers} Faust worker{'s' if a.workers > 1 else ''})",
                  cli + ["process", "--workers", str(a.workers)], "Ready"),
            Stage(f"clickhouse sink (embedded engine in {self.data / 'clickhouse'})", cli + ["clickhouse"],
                  "clickhouse: writing"),
            Stage("prometheus exporter", cli + ["prometheus"], "prometheus exporter on"),
            Stage("forwarder (targets from PUT /forwarding/{name}/json)", cli + ["forward", "--from-config"],
                  "forward: following"),
        ]
        sinks = (self.user_settings.get("sinks") or {})
        if sinks.get("syslog"):
            stages.append(Stage("syslog sink", cli + ["syslog"], None))
        for name in (sinks.get("http") or {}):
            stages.append(Stage(f"http-events {name}", cli + ["http-events", name], None, slug=f"http-events-{name}"))
        stages.append(Stage(f"API and web UI on http://{self._ui_host()}:{a.http_port}/", cli + ["api"], "api: REST API"))
        if a.demo:
            stages.append(Stage("demo traffic (sflowpipe generate)",
                                [sys.executable, "-m", "sflowpipe.cli", "generate", "--to",
                                 f"127.0.0.1:{a.sflow_port}", "--rate", str(a.demo_rate),
                                 # 1-in-100: the 3 elephants are ~90 Mbit/s each, the mice well under
                                 # the 10 Mbit/s elephant threshold
                                 "--sampling-rate", "100"], None))
        elif a.replay:
            stages.append(Stage(f"replay of {a.replay}",
                                [sys.executable, "-m", "sflowpipe.cli", "replay", str(Path(a.replay).resolve()),
                                 "--to", f"127.0.0.1:{a.sflow_port}", "--loop", "1000000"], None))
        return stages

    def _ui_host(self) -> str:
        return "127.0.0.1" if self.args.listen_address in ("0.0.0.0", "::", "") else self.args.listen_address

    def _wait_ready(self, stage: Stage, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        settle = time.monotonic() + 1.0
        while True:
            code = stage.proc.poll()
            if code is not None:
                raise RuntimeError(f"{stage.name} exited ({code}); its log, {stage.log}, ends with:\n"
                                   + _tail(stage.log))
            if stage.ready is None:
                if time.monotonic() >= settle:
                    return
            elif stage.ready in stage.log.read_text(errors="replace"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{stage.name} not ready after {timeout:.0f} s; see {stage.log}")
            time.sleep(0.2)

    def banner(self) -> str:
        a, p = self.args, self.ports
        feed = (" (demo traffic flowing)" if a.demo else f" (replaying {a.replay})" if a.replay else
                f"  (point your agents here, or: sflowpipe generate --to 127.0.0.1:{a.sflow_port})")
        return f"""
sflowpipe is up:
  web UI and REST API   http://{self._ui_host()}:{a.http_port}/    (sFlow-RT paths, e.g. /activeflows/ALL/pair/json)
  sFlow in              UDP port {a.sflow_port}{feed}
  Kafka                 {self.broker.bootstrap}    (sflowpipe tail flow-samples --bootstrap-servers {self.broker.bootstrap})
  ClickHouse            sflowpipe sql "SELECT count() FROM flow_samples" --data-dir {self.data / 'clickhouse'}
  Prometheus            http://127.0.0.1:{p['prometheus']}/metrics   ingest metrics http://127.0.0.1:{p['metrics']}/metrics
  data and logs         {self.data}
Ctrl-C stops everything."""

    # ---------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop every stage (newest first, in parallel), then the broker; nothing is left running."""
        self.say("stopping ...")
        for stage in reversed(self.stages):
            if stage.proc and stage.proc.poll() is None:
                _signal_group(stage.proc, signal.SIGTERM)
        for stage in reversed(self.stages):
            if not stage.proc:
                continue
            try:
                stage.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.say(f"  {stage.name} did not stop in 30 s: killed")
                _signal_group(stage.proc, signal.SIGKILL)
                stage.proc.wait(10)
            _signal_group(stage.proc, signal.SIGKILL)  # leftovers of its process group, if any
        if self.broker:
            self.broker.stop()
        self.say("stopped; nothing left running.")

    def failed(self) -> Stage | None:
        return next((s for s in self.stages if s.proc and s.proc.poll() is not None
                     and not s.name.startswith("replay")), None)


def secret_environment(settings: dict, environ) -> tuple[dict, dict[str, str]]:
    """The settings without their secrets, and the ``SFLOWPIPE_<SECTION>`` variables (JSON, merged
    into the file's section by pydantic-settings) that carry them; a section's variable the user
    already set keeps its own values over the file's, as it would without `up`."""
    public, secrets = split_secrets(settings)
    env = {}
    for section, values in secrets.items():
        var = ENV_PREFIX + section.upper()
        try:
            own = json.loads(environ[var]) if var in environ else {}
        except ValueError:
            own = {}
        if isinstance(values, dict) and isinstance(own, dict):
            values = _merged(values, own)
        env[var] = json.dumps(values) if isinstance(values, (dict, list)) else str(values)
    return public, env


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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


def run(args, config_file: str | None) -> int:
    stop_requested = []

    def on_signal(signum, frame):
        stop_requested.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    pipeline = Pipeline(args, config_file)
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
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not abandon the shutdown
        pipeline.stop()
    return code
