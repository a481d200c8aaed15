"""Apache Kafka for the tests: the broker production runs, from Maven Central, started here.

``resolve()`` copies Apache Kafka's jars (deploy/kafka/pom.xml) into a cache folder once per pom
and version, under a file lock so parallel test processes resolve once; ``ApacheKafka`` formats a
KRaft single-node log dir (broker and controller in one process), starts ``kafka.Kafka`` on free
loopback ports and waits for a metadata answer. With ``secure=True`` it also serves a SASL_SSL
listener: a certificate signed by a CA generated here (openssl), SCRAM-SHA-512 users created at
format time, and ``client_settings(user)`` gives a client's librdkafka settings for it (what a
user puts in ``kafka.common``).

Needs ``java`` (17+) and ``mvn`` (scripts/system-deps.sh installs both from the package manager).
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Mapping

from sflowpipe.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
VERSION = "4.1.1"
HEAP = ("-Xms128m", "-Xmx512m")  # a test broker holds little; Kafka's own default is 1 GiB
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
SCRAM = "SCRAM-SHA-512"


def cache_root() -> Path:
    """Where resolved versions go: $APACHE_KAFKA_CACHE, else .cache/apache-kafka in the checkout
    (ignored by git). Not an SFLOWPIPE_ name: the settings refuse unknown SFLOWPIPE_ variables."""
    return Path(os.environ.get("APACHE_KAFKA_CACHE") or ROOT / ".cache" / "apache-kafka")


def _pom_digest(version: str) -> str:
    """What a resolved folder was resolved from: a changed pom (another log4j, say) resolves again."""
    return hashlib.sha256(POM.read_bytes() + version.encode()).hexdigest()


def resolve(version: str = VERSION) -> Path:
    """The folder of Apache Kafka ``version``'s jars (broker, storage tool, a log4j backend),
    copied from Maven Central by ``mvn dependency:copy-dependencies`` the first time."""
    base = cache_root() / version
    libs, marker = base / "libs", base / ".resolved"
    digest = _pom_digest(version)
    if marker.exists() and marker.read_text().strip() == digest:
        return libs
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be resolving: wait for it
        if marker.exists() and marker.read_text().strip() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Apache Kafka for the tests needs Maven (`mvn`): run scripts/system-deps.sh")
        marker.unlink(missing_ok=True)
        staging = base / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        done = subprocess.run([mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                               f"-DoutputDirectory={staging}", f"-Dkafka.version={version}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            raise RuntimeError(f"mvn could not resolve Apache Kafka {version} (exit {done.returncode}):\n"
                               + "\n".join(done.stdout.splitlines()[-30:]))
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(digest + "\n")
    return libs


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 characters), as
    `kafka-storage random-uuid` prints. Never one starting with "-", as Kafka's own Uuid.randomUuid
    avoids: `format -t -xyz...` reads it as an option (one broker in 64 failed to format)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, so no JVM outlives a killed test run."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def make_certificates(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A CA and a server certificate it signs for ``host`` (CN and subjectAltName IP), by openssl:
    (the CA's certificate, for clients' ssl.ca.location; the server's unencrypted PKCS#8 key followed
    by its certificate, Kafka's PEM keystore)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "server.ext"
    ext.write_text(f"subjectAltName = IP:{host}\nbasicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n"
                   "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid, issuer\n")

    def openssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stdout.strip()}")

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "7", "-subj", "/CN=sflowpipe test CA",
            "-addext", "basicConstraints = critical, CA:TRUE", "-addext", "keyUsage = critical, keyCertSign, cRLSign")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={host}")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "7", "-extfile", str(ext))
    keystore = folder / "keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text())
    return ca, keystore


class ApacheKafka:
    """Owns one Apache Kafka broker process (KRaft, broker and controller in one, one node) and
    its work folder: log dir, server.properties, broker.log (and, secured, its certificates)."""

    def __init__(self, workdir: Path, secure: bool = False, users: Mapping[str, str] | None = None,
                 version: str = VERSION, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port  # the PLAINTEXT listener's, if fixed (a client started before the broker)
        self.formatted = False
        self.secure = secure
        # SCRAM users (name -> password) created at format time; only with secure=True
        self.users = dict(users) if users else {"sflowpipe": secrets.token_hex(16)}
        self.version = version
        self.host = host
        self.cluster_id = random_cluster_id()
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen | None = None
        self.java = self.classpath = ""
        self.ca: Path | None = None
        self.keystore: Path | None = None
        self.exit_code: int | None = None  # after stop(): the JVM's (143: ended by our SIGTERM)
        self.killed = False  # after stop(): it did not end within STOP_TIMEOUT_S of SIGTERM

    @property
    def bootstrap(self) -> str:
        """HOST:PORT of the PLAINTEXT listener."""
        return f"{self.host}:{self.ports['PLAINTEXT']}"

    @property
    def secure_bootstrap(self) -> str:
        """HOST:PORT of the SASL_SSL listener (secure=True only)."""
        if not self.secure:
            raise RuntimeError("this Apache Kafka has no SASL_SSL listener (secure=False)")
        return f"{self.host}:{self.ports['SASL_SSL']}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    def client_settings(self, user: str | None = None) -> dict[str, str]:
        """librdkafka settings of a client of the SASL_SSL listener as ``user`` (the first user by
        default): what goes in ``kafka.common``, beside ``bootstrap_servers = secure_bootstrap``."""
        if not self.secure:
            raise RuntimeError("this Apache Kafka has no SASL_SSL listener (secure=False)")
        user = user or next(iter(self.users))
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": SCRAM, "sasl.username": user,
                "sasl.password": self.users[user], "ssl.ca.location": str(self.ca)}

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Resolve, format, start; return once the broker answers a metadata request (on every
        listener); RuntimeError with the broker log's tail if it does not within ``timeout``.
        Started again after stop() or kill(), it keeps its ports and its log dir (the data)."""
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Apache Kafka for the tests needs Java 17+ (`java`): run scripts/system-deps.sh")
        self.classpath = str(resolve(self.version) / "*")
        self.java = java
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.secure:
            self.ca, self.keystore = make_certificates(self.workdir / "tls", self.host)
        self._write_log4j()
        if self.formatted:
            self._restart(timeout)
            return
        last = ""
        for attempt in range(3):  # a free port may be taken between picking it and Kafka binding it
            self.ports = {name: free_port(self.host) for name in self._listener_names()}
            if self.port:
                self.ports["PLAINTEXT"] = self.port
            self._write_properties()
            if attempt == 0:
                self._format()
                self.formatted = True
            try:
                self._run(timeout)
                return
            except _PortTaken as e:
                last = str(e)
        raise RuntimeError(f"Apache Kafka could not bind its ports three times: {last}")

    def _restart(self, timeout: float) -> None:
        """The same ports and log dir again: a port still held (by the connections of the process
        just ended, or by whoever took it meanwhile) is waited for, not moved."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._run(max(1.0, deadline - time.monotonic()))
                return
            except _PortTaken as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Apache Kafka could not bind its ports again: {e}") from None
                time.sleep(0.5)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL if it is still running after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(10)
        self.exit_code = self.proc.returncode
        self.proc = None

    def kill(self) -> None:
        """An abrupt end (SIGKILL), as in a crash: what the broker acknowledged is in its log dir
        (written, not yet synced: the machine does not crash), and start() recovers it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.exit_code = self.proc.returncode
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for path in (self.workdir / "broker.out", self.log_path):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
        return text

    # ------------------------------------------------------------------ the parts

    def _listener_names(self) -> tuple[str, ...]:
        return ("PLAINTEXT", "CONTROLLER", "SASL_SSL") if self.secure else ("PLAINTEXT", "CONTROLLER")

    def _write_log4j(self) -> None:
        (self.workdir / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.file.type = File\nappender.file.name = file\n"
            f"appender.file.fileName = {self.log_path}\n"
            "appender.file.layout.type = PatternLayout\nappender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = info\nrootLogger.appenderRef.file.ref = file\n"
            # Kafka's own log4j2.yaml keeps these quiet too: one line per request or state change
            "logger.request.name = kafka.request.logger\nlogger.request.level = warn\n"
            "logger.state.name = state.change.logger\nlogger.state.level = warn\n")

    def _write_properties(self) -> None:
        h, p = self.host, self.ports
        listeners = {name: f"{name}://{h}:{port}" for name, port in p.items()}
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # a static quorum: the ports live in this file only, so a retry on other ports needs no new format
            "controller.quorum.voters": f"1@{h}:{p['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(listeners.values()),
            "advertised.listeners": ",".join(v for k, v in listeners.items() if k != "CONTROLLER"),
            "listener.security.protocol.map": ",".join(f"{k}:{'PLAINTEXT' if k == 'CONTROLLER' else k}" for k in p),
            "log.dirs": str(self.workdir / "data"),
            # one node: every internal topic with one replica
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            # a group's first member gets its partitions at once (the default waits 3 s for others)
            "group.initial.rebalance.delay.ms": "0",
            # sflowpipe creates its topics (KafkaClients.ensure_topics, Faust); tests also produce to
            # topics nobody created, as clients may on a broker with Kafka's default
            "auto.create.topics.enable": "true",
            "num.partitions": "1",
            # the log cleaner's buffer (compacted topics) is 128 MiB by default: too much for this heap
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        if self.secure:
            name = "listener.name.sasl_ssl"
            props.update({
                "sasl.enabled.mechanisms": SCRAM,
                f"{name}.{SCRAM.lower()}.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                f"{name}.ssl.keystore.type": "PEM",
                f"{name}.ssl.keystore.location": str(self.keystore),
            })
        (self.workdir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _java(self, main: str, *args: str, tool: bool = False) -> list[str]:
        # a tool runs for seconds: the quick compiler alone starts it about twice as fast (the broker
        # keeps the JVM's default, for its throughput under the heavier tests)
        quick = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC") if tool else ()
        return [self.java, *HEAP, *quick, "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                "-cp", self.classpath, main, *args]

    def _format(self) -> None:
        """kafka-storage format: the log dir with this cluster id (and the SCRAM users, secured)."""
        args = ["format", "-t", self.cluster_id, "-c", str(self.workdir / "server.properties")]
        if self.secure:
            for user, password in self.users.items():
                args += ["--add-scram", f"{SCRAM}=[name={user},password={password}]"]
        done = subprocess.run(self._java("kafka.tools.StorageTool", *args, tool=True), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed (exit {done.returncode}): {done.stdout.strip()}")

    def _run(self, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        logs = (self.workdir / "broker.out", self.log_path)
        # this run's output only (a restart appends to the same files)
        since = {path: path.stat().st_size if path.exists() else 0 for path in logs}
        with open(self.workdir / "broker.out", "ab") as out:
            self.proc = subprocess.Popen(self._java("kafka.Kafka", str(self.workdir / "server.properties")),
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         preexec_fn=_die_with_parent)
        plain = {"bootstrap.servers": self.bootstrap}
        # ready: metadata on every listener, then the group coordinator: the first group request
        # creates __consumer_offsets, and until it is loaded a commit fails with NOT_COORDINATOR (a
        # cluster in production has had it for long; Tansu answers groups at once)
        probes = [(plain, lambda admin: admin.list_topics(timeout=2))]
        if self.secure:
            probes.append(({"bootstrap.servers": self.secure_bootstrap, **self.client_settings()},
                           lambda admin: admin.list_topics(timeout=2)))
        probes.append((plain, lambda admin: admin.describe_consumer_groups(["ready"])["ready"].result(5)))
        deadline = time.monotonic() + timeout
        for conf, probe in probes:
            admin = AdminClient({**conf, "log_level": 0})  # refusals are expected until it listens
            while True:
                if self.proc.poll() is not None:
                    self.proc = None
                    tail = self.log_tail()
                    ran = "".join(_read_from(path, since[path]) for path in logs)
                    if "Address already in use" in ran:
                        raise _PortTaken(next(line for line in ran.splitlines() if "Address already in use" in line))
                    raise RuntimeError(f"Apache Kafka exited while starting; its log ends:\n{tail}")
                try:
                    probe(admin)
                    break
                except (KafkaException, TimeoutError) as e:  # TimeoutError: a future's result(5) on a busy machine
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"Apache Kafka did not answer on {conf['bootstrap.servers']} within "
                                           f"{timeout:g} s ({e}); its log ends:\n{self.log_tail()}") from None
                    time.sleep(0.2)


class _PortTaken(RuntimeError):
    pass


def _read_from(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.apache_kafka resolve`: fetch the jars (CI does before the tests);
    `python -m tests.apache_kafka run [--secure] [--dir DIR]`: a broker by hand, until Ctrl-C
    (KAFKA_BOOTSTRAP_SERVERS=<what it prints> points the test suite at it)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tests.apache_kafka", description=main.__doc__)
    parser.add_argument("command", choices=("resolve", "run"))
    parser.add_argument("--secure", action="store_true", help="a SASL_SSL listener too")
    parser.add_argument("--dir", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--version", default=VERSION)
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.command == "resolve":
        print(f"Apache Kafka {args.version}: {resolve(args.version)} ({time.monotonic() - started:.1f} s)")
        return
    broker = ApacheKafka(args.dir or Path(tempfile.mkdtemp(prefix="apache-kafka-")), secure=args.secure,
                         version=args.version)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like by Ctrl-C
    broker.start()
    try:
        print(f"Apache Kafka {args.version} ready in {time.monotonic() - started:.1f} s (log {broker.log_path})")
        print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        if args.secure:
            print(f"SASL_SSL on {broker.secure_bootstrap}: {broker.client_settings()}", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stopping = time.monotonic()
        broker.stop()
        print(f"stopped in {time.monotonic() - stopping:.1f} s (exit {broker.exit_code})")


if __name__ == "__main__":
    main()
