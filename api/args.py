"""The command-line arguments of `sflowpipe api` (argparse only: `--help` imports no aiohttp)."""

from __future__ import annotations

import argparse


def api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (setting api.listen, default "
                        "127.0.0.1:8008; 0.0.0.0:8008 exposes it: set api.token)")
    parser.add_argument("--read-only", action="store_true", help="refuse writes (setting api.read_only)")
