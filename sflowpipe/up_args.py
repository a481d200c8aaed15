"""`sflowpipe up`'s arguments: the parser reads them here, without importing `sflowpipe.up`
(processes, sockets, signals), which only `up` itself runs. Standard library only."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/sflowpipe (usually ~/.local/share/sflowpipe)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sflowpipe"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # also accepted after `up`, where the README writes it (SUPPRESS: absent, it does not hide
    # the global `sflowpipe --config FILE up`)
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="YAML settings file (the syslog and HTTP event sinks it configures are started too)")
    p.add_argument("--sflow-port", type=int, default=6343, help="UDP port for sFlow (default 6343)")
    p.add_argument("--http-port", type=int, default=8008, help="REST API and web UI port (default 8008, "
                                                              "sFlow-RT's)")
    p.add_argument("--data-dir", default=None, help=f"where ClickHouse data, spill and logs go "
                                                    f"(default {default_data_dir()})")
    p.add_argument("--listen-address", default="127.0.0.1",
                   help="address for the API/UI (default 127.0.0.1; 0.0.0.0 exposes it: set api.token)")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                   help="use this Kafka instead of the embedded Tansu broker (TLS/SASL settings: kafka.common)")
    p.add_argument("--workers", type=int, default=1, help="Faust worker processes (default 1)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="feed generated sFlow (with >10 Mbit/s elephant flows)")
    src.add_argument("--replay", metavar="FILE.pcap", help="feed a capture, looped, at its recorded pace")
    p.add_argument("--demo-rate", type=float, default=100.0, help="--demo datagrams per second (default 100)")
