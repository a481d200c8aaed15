"""HTTP authentication for sflowpipe's listeners (the REST API, the Prometheus exporter): bearer
token or basic credentials compared in constant time, and failed logins logged with the client's
address, at most one line per address per interval (with the count of the ones in between)."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import threading
import time
from typing import Callable

from sflowpipe.settings import ListenerAuth

CHALLENGE = 'Bearer realm="sflowpipe", Basic realm="sflowpipe"'


class FailedLogins:
    """Logs refused logins per client address: the first at once, the next ones of the following
    ``interval`` seconds as one line with their count when the interval is over."""

    MAX_ADDRESSES = 10_000  # quiet addresses are forgotten beyond this (a scan from many sources)

    def __init__(self, log: logging.Logger, listener: str, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.listener, self.interval, self.clock = log, listener, interval, clock
        self.lock = threading.Lock()
        self.seen: dict[str, list] = {}  # address -> [time of its last line, failures since, last reason]
        self.timer: threading.Timer | None = None

    def record(self, address: str, reason: str) -> None:
        now = self.clock()
        with self.lock:
            entry = self.seen.get(address)
            if entry is None or now - entry[0] >= self.interval:
                self._line(address, reason, 1 + (entry[1] if entry else 0))
                self.seen[address] = [now, 0, reason]
                if len(self.seen) > self.MAX_ADDRESSES:
                    self._forget(now)
            else:
                entry[1] += 1
                entry[2] = reason
                self._schedule(entry[0] + self.interval - now)

    def flush(self) -> None:
        """Log the counts whose interval is over (the timer calls it; tests may too)."""
        with self.lock:
            self.timer = None
            now = self.clock()
            pending = []
            for address, entry in self.seen.items():
                if entry[1] and now - entry[0] >= self.interval:
                    self._line(address, entry[2], entry[1])
                    entry[0], entry[1] = now, 0
                elif entry[1]:
                    pending.append(entry[0] + self.interval - now)
            if pending:
                self._schedule(min(pending))

    def _line(self, address: str, reason: str, count: int) -> None:
        self.log.warning("%s: failed login from %s: %s (%d from this address in %g s)", self.listener, address,
                         reason, count, self.interval)

    def _schedule(self, delay: float) -> None:
        if self.timer is None:
            self.timer = threading.Timer(max(0.0, delay) + 0.01, self.flush)
            self.timer.daemon = True
            self.timer.start()

    def _forget(self, now: float) -> None:
        for address in [a for a, e in self.seen.items() if not e[1] and now - e[0] >= self.interval]:
            del self.seen[address]


class Authenticator:
    """Checks the ``Authorization`` header of a request against a listener's credentials."""

    def __init__(self, conf: ListenerAuth, log: logging.Logger, listener: str, interval: float = 10.0) -> None:
        self.token = conf.token.get_secret_value().encode() if conf.token is not None else None
        self.user = conf.basic_user.encode() if conf.basic_user else None
        self.password = conf.basic_password.get_secret_value().encode() if conf.basic_password else b""
        self.failures = FailedLogins(log, listener, interval)

    @property
    def required(self) -> bool:
        return self.token is not None or self.user is not None

    def allows(self, header: str | None, address: str | None) -> bool:
        """Whether the request may proceed; a refusal is logged (rate-limited) with ``address``."""
        if not self.required:
            return True
        reason = self._refusal(header or "")
        if reason is None:
            return True
        self.failures.record(address or "unknown address", reason)
        return False

    def _refusal(self, header: str) -> str | None:
        """Why the header does not authenticate, or None if it does."""
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if not header.strip():
            return "no credentials"
        if scheme == "bearer" and self.token is not None:
            if hmac.compare_digest(value.strip().encode(), self.token):
                return None
            return "wrong bearer token"
        if scheme == "basic" and self.user is not None:
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return "malformed basic credentials"
            # both compared, always: the time taken does not tell which one was wrong
            user_ok = hmac.compare_digest(user.encode(), self.user)
            password_ok = hmac.compare_digest(password.encode(), self.password)
            if user_ok and password_ok and sep:
                return None
            return f"wrong basic credentials for user {user[:64]!r}"
        return f"unsupported authorization scheme {scheme[:32]!r}"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def warn_if_open(log: logging.Logger, listener: str, host: str, auth: Authenticator, conf: ListenerAuth) -> None:
    """A line at start when a listener is reachable from the network with no credentials."""
    if not is_loopback(host) and not auth.required:
        log.warning("%s: listening on %s with no authentication: anyone who reaches it can read%s "
                    "(set token or basic_user/basic_password%s)", listener, host,
                    "" if conf.read_only else " and define flows", "" if conf.read_only else ", or read_only")
