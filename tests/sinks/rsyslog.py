"""A real rsyslogd on loopback for the sink tests: UDP, TCP and TLS (gtls) inputs, JSON lines out.

Each received message becomes one JSON object in ``out``: the parsed header fields, the raw
message and ``sd`` (rsyslog's own parse of the structured data, by mmpstrucdata).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.waiting import until

CONF = """
# LEEF is tab-delimited: keep tabs (rsyslog turns them into "#011" by default)
global(workDirectory="{dir}" maxMessageSize="64k" parser.escapeControlCharacterTab="off"
       defaultNetstreamDriverCAFile="{cert}" defaultNetstreamDriverCertFile="{cert}"
       defaultNetstreamDriverKeyFile="{key}")
module(load="imudp")
module(load="imtcp" maxSessions="100")
module(load="mmpstrucdata")
template(name="json" type="string" string="%$!%\\n")
template(name="ts" type="string" string="%timereported:::date-rfc3339%")
ruleset(name="capture") {{
  action(type="mmpstrucdata" sd_name.lowercase="off")
  set $!input = $inputname;
  set $!facility = $syslogfacility;
  set $!severity = $syslogseverity;
  set $!timestamp = exec_template("ts");
  set $!hostname = $hostname;
  set $!app = $app-name;
  set $!procid = $procid;
  set $!msgid = $msgid;
  set $!tag = $syslogtag;
  set $!sdraw = $structured-data;
  set $!msg = $msg;
  set $!raw = $rawmsg;
  action(type="omfile" file="{out}" template="json" flushOnTXEnd="on" asyncWriting="off")
}}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="capture" name="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="capture" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="capture" name="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost (it is its own CA)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Rsyslog:
    """Owns one rsyslogd process (start/stop/restart) and reads what it wrote."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.out = directory / "received.jsonl"
        self.cert, self.key = self_signed(directory)
        self.udp, self.tcp, self.tls = free_port(socket.SOCK_DGRAM), free_port(), free_port()
        self.conf = directory / "rsyslog.conf"
        self.conf.write_text(CONF.format(dir=directory, cert=self.cert, key=self.key, out=self.out,
                                         udp=self.udp, tcp=self.tcp, tls=self.tls))
        self.pidfile = directory / "rsyslogd.pid"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        check = subprocess.run([binary, "-N1", "-f", str(self.conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr + check.stdout
        self.log = open(self.dir / "rsyslogd.log", "ab")
        self.proc = subprocess.Popen([binary, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def listening(port: int) -> bool:
            assert self.proc.poll() is None, (self.dir / "rsyslogd.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        for port in (self.tcp, self.tls):
            until(lambda: listening(port), timeout=15, interval=0.05, message="rsyslogd did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def records(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        """The records once there are ``count``; what there is after ``timeout`` (for the caller to name;
        30 s: a loaded CI machine once had rsyslogd write a first record later than 15 s)."""
        try:
            until(lambda: len(self.records()) >= count, timeout, 0.05)
        except AssertionError:
            pass
        return self.records()


@pytest.fixture
def rsyslog(tmp_path):
    if shutil.which("rsyslogd") is None and not Path("/usr/sbin/rsyslogd").exists():
        pytest.fail("rsyslogd is not installed (apt-get install -y rsyslog rsyslog-gnutls)")
    r = Rsyslog(tmp_path)
    r.start()
    yield r
    r.stop()
