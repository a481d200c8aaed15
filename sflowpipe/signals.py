"""How a long-running command stops: SIGTERM (a supervisor, `docker stop`) and SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal
import threading
from typing import Callable


def on_stop_signals(stop: Callable[[], object]) -> None:
    """SIGTERM and SIGINT call ``stop`` (which asks the command to shut down gracefully). Only the
    main thread can set handlers: a command run in another thread (a test's) sets none."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop())
