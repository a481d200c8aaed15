"""A list fetched from a URL or a file, its last good copy kept on disk, and the thread that
refreshes it: what the address groups refreshed from outside (Microsoft 365 ranges, blocklists)
share. A failed fetch, or a copy
that does not parse, keeps what is in force; the copy on disk lets a restart without network
start from the last good list."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0  # a fetch in flight holds its refresh thread up to this long


class TooLarge(ValueError):
    """The source is larger than the list it claims to be can be."""


def fetch(source: str, accept: str, max_bytes: int) -> bytes:
    """The bytes of an ``http(s)://`` URL, or of a file (a path or ``file://`` URL)."""
    if re.match(r"(?i)^https?://", source):
        request = urllib.request.Request(source, headers={"User-Agent": "sflowpipe", "Accept": accept})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            payload = response.read(max_bytes + 1)
    else:
        path = source[len("file://"):] if source.startswith("file://") else source
        with open(path, "rb") as f:
            payload = f.read(max_bytes + 1)
    if len(payload) > max_bytes:
        raise TooLarge(f"larger than {max_bytes} bytes")
    return payload


def read_copy(path: Path, what: str) -> bytes | None:
    """The copy on disk, or None (none yet, or unreadable: logged)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: cannot read %s: %s", what, path, exc)
        return None


def save_copy(path: Path, payload: bytes, what: str) -> None:
    """Replace the copy on disk atomically; a failure is logged (the list in memory is good, only
    the next restart without network loses it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("%s: cannot save %s: %s", what, path, exc)


class Refresher:
    """A daemon thread calling ``step()`` until stopped; ``step`` refreshes what is due and
    returns the seconds until it should be called again."""

    def __init__(self, name: str, step: Callable[[], float]) -> None:
        self.name = name
        self._step = step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # a fetch in flight may hold the thread up to TIMEOUT_S; it is a daemon, so do not wait longer
            self._thread.join(timeout=TIMEOUT_S + 1)
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(max(0.0, self._step()))
