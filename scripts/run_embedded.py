"""`make run`: the pipeline on one machine with embedded defaults, until Ctrl-C.

Starts an in-memory Kafka-compatible broker (Tansu), `sflowpipe ingest` on UDP 6343, a
`sflowpipe process` worker with examples/flows.yaml, and the ClickHouse sink into the embedded
engine (./data/clickhouse); prints where everything is; Ctrl-C stops them all, newest first.
(`sflowpipe up` will replace this with one command and the web UI.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sflowpipe.broker import EmbeddedBroker, free_port  # noqa: E402


def main() -> int:
    port = os.environ.get("SFLOW_PORT", "6343")
    data = Path(os.environ.get("SFLOWPIPE_RUN_DATA", ROOT / "data")).resolve()
    metrics_port = 9343 if _free(9343) else free_port()
    broker = EmbeddedBroker(port=9092 if _free(9092) else free_port(), log_path=str(data / "tansu.log"))
    data.mkdir(exist_ok=True)
    print("starting the embedded broker (Tansu, in-memory: data is gone when it stops) ...", flush=True)
    broker.start()
    env = {**os.environ, "SFLOWPIPE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
           "SFLOWPIPE_INGEST__SPILL_DIR": str(data / "spill"),
           "SFLOWPIPE_PROCESSORS__DATA_DIR": str(data / "processors"),
           "SFLOWPIPE_SINKS__CLICKHOUSE__DSN": f"chdb://{data / 'clickhouse'}",
           "SFLOWPIPE_INGEST__METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
           "SFLOWPIPE_PROCESSORS__WEB_PORT": str(6066 if _free(6066) else free_port())}
    cli = [sys.executable, "-m", "sflowpipe.cli"]
    stages = [
        ("ingest", cli + ["ingest", "--listen", f"[::]:{port}"]),
        ("processors", cli + ["process", "--definitions", str(ROOT / "examples" / "flows.yaml")]),
        ("clickhouse sink", cli + ["clickhouse"]),
    ]
    procs = []
    try:
        for name, cmd in stages:
            print(f"starting {name} ...", flush=True)
            log = open(data / f"{name.replace(' ', '-')}.log", "ab")
            procs.append((name, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(3)
        for name, p in procs:
            if p.poll() is not None:
                print(f"{name} exited ({p.returncode}); see data/{name.replace(' ', '-')}.log", file=sys.stderr)
                return 1
        print(f"""
sflowpipe is running:
  sFlow in          UDP [::]:{port}   (try: sflowpipe generate --to 127.0.0.1:{port})
  Kafka             {broker.bootstrap}   (sflowpipe tail flow-samples --bootstrap-servers {broker.bootstrap})
  ingest metrics    http://127.0.0.1:{metrics_port}/metrics
  ClickHouse        sflowpipe sql "SELECT count() FROM flow_samples" --data-dir {data / 'clickhouse'}
  logs              {data}/*.log
Ctrl-C stops everything.""", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping ...", flush=True)
        for name, p in reversed(procs):  # all at once, newest first: they stop in parallel
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        print("stopped.", flush=True)
    return 0


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
