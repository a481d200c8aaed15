"""sFlow datagrams for tests: what `sflowpipe generate` sends to a real UDP socket, and the
decodable datagrams of a payload list (the malformed ones skipped)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator

from ingest.sflow import DecodeError, decode_datagram
from ingest.sflow.model import Datagram


def generated(count: int, *options: str) -> list[bytes]:
    """The ``count`` datagrams ``sflowpipe generate --count COUNT OPTIONS`` sends to a local socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        port = rx.getsockname()[1]
        subprocess.run([sys.executable, "-m", "sflowpipe.cli", "generate", "--to", f"127.0.0.1:{port}",
                        "--count", str(count), *options], check=True, timeout=60)
        return [rx.recvfrom(65535)[0] for _ in range(count)]


def decodable(payloads: Iterable[bytes]) -> Iterator[Datagram]:
    for p in payloads:
        try:
            yield decode_datagram(p)
        except DecodeError:
            continue
