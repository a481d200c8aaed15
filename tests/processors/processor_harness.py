"""Run `sflowpipe process` as a real Faust worker process against the test broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from sflowpipe.broker import free_port
from tests.procs import stop_gracefully
from tests.scrape import scrape
from tests.waiting import until


class ProcessorProcess:
    def __init__(self, bootstrap: str, prefix: str, tmp: Path, definitions: dict, app_id: str,
                 worker_index: int = 0, extra_env: dict | None = None) -> None:
        self.defs = tmp / f"definitions-{app_id}.yaml"
        self.defs.write_text(yaml.safe_dump(definitions))
        self.log = tmp / f"process-{app_id}-{worker_index}.log"
        # a worker listens on the configured ports plus its index: the port found free is the one it
        # binds (base + index), not base (a CI run's worker 1 met its web port, free_port() + 1, taken)
        web_port, metrics_port = free_port() - worker_index, free_port() - worker_index
        self.env = {**os.environ,
                    "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                    "SFLOWPIPE_KAFKA__TOPIC_PREFIX": prefix,
                    "SFLOWPIPE_KAFKA__PARTITIONS": "3",
                    "SFLOWPIPE_PROCESSORS__APP_ID": app_id,
                    "SFLOWPIPE_PROCESSORS__SESSION_TIMEOUT_S": "6",
                    "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp / "faust"),
                    "SFLOWPIPE_PROCESSORS__WEB_PORT": str(web_port),
                    "SFLOWPIPE_PROCESSORS__METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
                    "SFLOWPIPE_ENRICH__OFFICE365_ENABLED": "false",
                    "SFLOWPIPE_ENRICH__CACHE_DIR": str(tmp / "cache"),
                    **(extra_env or {})}
        self.worker_index = worker_index
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sflowpipe.cli", "process", "--definitions", str(self.defs),
             "--worker-index", str(self.worker_index)],
            env=self.env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            text = self.log.read_text(errors="replace")
            return "Ready" in text and "partitions_assigned" not in text[-200:]

        until(ready, timeout, 0.3, message=lambda: f"worker not ready: {self.log.read_text(errors='replace')[-3000:]}")

    def metrics(self) -> dict:
        """The worker's /metrics, scraped: {(sample name, frozenset of labels): value}."""
        port = int(self.env["SFLOWPIPE_PROCESSORS__METRICS_LISTEN"].rpartition(":")[2]) + self.worker_index
        return scrape(f"http://127.0.0.1:{port}/metrics")

    def stop(self, timeout: float = 60) -> int:
        return stop_gracefully(self.proc, timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
