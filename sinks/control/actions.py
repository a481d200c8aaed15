"""What applying and releasing a control does: an HTTP request to a controller, a BGP route
(sinks/control/bgp.py), or only a log line.

Every action has the same small interface: ``start()``, ``stop()``, ``apply(control)`` and
``release(control)``, where ``control`` is the control's record (``fields`` holds the template
values). ``apply``/``release`` return when the destination took the change and raise
``ActionFailed`` (or any error) when it did not, after their own retry budget: the service then
writes a dead letter and a ``control_failed`` event, and the control's state is left unchanged.
"""

from __future__ import annotations

import http.client
import logging
import random
import ssl
import string
import time
import urllib.parse
from typing import Any, Callable, Protocol

import orjson

from sflowpipe.settings import ControlPolicy, HttpRequestTemplate

log = logging.getLogger(__name__)

ERROR_BODY_CHARS = 300


class ActionFailed(RuntimeError):
    """The destination did not take the change (after the retry budget, if it was worth retrying)."""


class Action(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def apply(self, control: dict) -> None: ...

    def release(self, control: dict) -> None: ...


class DryRunAction:
    """Logs what would be done: for trying a policy on live traffic before it blocks anything."""

    def __init__(self, policy: ControlPolicy, name: str = "") -> None:
        self.name = name
        self.applied: list[dict] = []
        self.released: list[dict] = []

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def apply(self, control: dict) -> None:
        self.applied.append(control)
        log.info("control %s: dry run: would apply %s", control["policy"], control["key"])

    def release(self, control: dict) -> None:
        self.released.append(control)
        log.info("control %s: dry run: would release %s", control["policy"], control["key"])


def render(template: HttpRequestTemplate, fields: dict[str, Any]) -> tuple[str, str, bytes]:
    """(method, url, body) of a request template; unknown ``$names`` raise KeyError."""
    quoted = {k: urllib.parse.quote(str(v), safe=",:") for k, v in fields.items()}
    url = string.Template(template.url).substitute(quoted)
    if template.body is None:
        body = orjson.dumps(fields)
    else:
        body = string.Template(template.body).substitute({k: str(v) for k, v in fields.items()}).encode()
    return template.method.upper(), url, body


class HttpAction:
    """One templated request to apply and one to release, each retried with exponential backoff
    and jitter on connection errors, timeouts, 429 and 5xx; any other 4xx is final at once."""

    def __init__(self, policy: ControlPolicy, name: str = "",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        a = policy.action
        if a.apply is None or a.release is None:
            raise ValueError(f"controls.{name}: an http action needs apply and release requests")
        self.name = name
        self.cfg = a
        self.sleep = sleep
        self.attempts = 0
        sample = {"policy": name, "key": "192.0.2.1,53", "agent": "", "dataSource": "", "metric": "", "value": 0.0,
                  "threshold": 0.0, **{f"k{i}": "0" for i in range(16)}}
        for which, t in (("apply", a.apply), ("release", a.release)):
            try:
                _, url, _ = render(t, sample)
            except (KeyError, ValueError) as e:
                raise ValueError(f"controls.{name}.action.{which}: bad template ({e})") from None
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"controls.{name}.action.{which}: the url must be http(s)://")

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def apply(self, control: dict) -> None:
        self._send(self.cfg.apply, control)

    def release(self, control: dict) -> None:
        self._send(self.cfg.release, control)

    def _send(self, template: HttpRequestTemplate, control: dict) -> None:
        method, url, body = render(template, control["fields"])
        headers = {"Content-Type": "application/json", **template.headers}
        attempt = 0
        while True:
            self.attempts += 1
            try:
                status, resp = self._request(method, url, body, headers)
            except (OSError, http.client.HTTPException) as e:
                error, retry = f"{method} {url}: {type(e).__name__}: {e}", True
            else:
                if 200 <= status < 300:
                    return
                error = f"{method} {url}: HTTP {status}: {resp[:ERROR_BODY_CHARS].decode('utf-8', 'replace')}"
                retry = status == 429 or status >= 500
            if not retry:
                raise ActionFailed(error)
            attempt += 1
            if attempt > self.cfg.max_retries:
                raise ActionFailed(f"{error} (after {self.cfg.max_retries} retries)")
            delay = min(self.cfg.backoff_s * 2 ** (attempt - 1), self.cfg.max_backoff_s) * random.uniform(0.5, 1.5)
            log.warning("control %s: %s; retry %d/%d in %.2fs", self.name, error, attempt, self.cfg.max_retries,
                        delay)
            self.sleep(delay)

    def _request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        u = urllib.parse.urlsplit(url)
        if u.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                u.hostname, u.port, timeout=self.cfg.timeout_s, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=self.cfg.timeout_s)
        try:
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conn.request(method, path, body=body if method not in ("GET", "HEAD") else None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def make_action(policy: ControlPolicy, name: str = "") -> Action:
    """The action a policy names; bgp is imported only when used (it brings its own dependencies)."""
    kind = policy.action.type
    if kind == "http":
        return HttpAction(policy, name)
    if kind == "dryrun":
        return DryRunAction(policy, name)
    if kind == "bgp":
        from sinks.control.bgp import BgpAction

        return BgpAction(policy)
    raise ValueError(f"controls.{name}: unknown action type {kind!r}")
