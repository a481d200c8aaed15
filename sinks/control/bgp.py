"""The BGP action of measurement-based control: RTBH routes or FlowSpec rules through ExaBGP.

``BgpAction.start`` writes an ExaBGP configuration (one neighbor, the peer router) into its own
directory and runs ExaBGP as a child process. ExaBGP runs a small relay helper as its API
process; the relay connects back to a Unix socket this class listens on and copies lines both
ways: commands from sflowpipe to ExaBGP (the helper's stdout), and ExaBGP's acknowledgements
("done" / "error") and neighbor state changes (JSON) back. ``start`` returns once ExaBGP reports
the session up, or raises after ``connect_timeout_s`` with the tail of ExaBGP's log.

``apply`` announces, ``release`` withdraws:

* mode ``rtbh``: ``ADDRESS/32`` (``/128`` for IPv6) with the configured next-hop (by convention
  one the routers route to a discard interface, e.g. 192.0.2.1) and communities (default
  65535:666, BLACKHOLE, RFC 7999);
* mode ``flowspec``: a FlowSpec rule (RFC 8955 / 8956) matching destination ``ADDRESS/32``, the
  protocol and the source and/or destination port taken from the flow key, then ``discard`` or
  ``rate-limit N`` (bytes per second).

Several controls that map to the same route (e.g. two flow keys of one destination address in
RTBH mode) share it: the route is withdrawn when the last of them is released. ``stop``
withdraws nothing itself: ExaBGP closes the session and the peer drops the routes learnt on it.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

from sflowpipe.typed import Field, field_validator, model_validator
from sflowpipe.typed import Model as BaseModel

from sflowpipe.names import split_flow_key

log = logging.getLogger(__name__)

_COMMUNITY = re.compile(r"^(\d{1,5}:\d{1,5}|no-export|no-advertise|no-export-subconfed|nopeer|blackhole)$")
_ACTION = re.compile(r"^(discard|rate-limit\s+\d+(\.\d+)?)$")
_PROTOCOLS = {"tcp", "udp", "icmp", "gre", "esp", "ah", "sctp", "ipv6-icmp", "igmp", "ospf", "pim"}

# The API process ExaBGP runs: relays lines between its stdin/stdout and BgpAction's socket.
_RELAY = r'''
import os, socket, sys, threading
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
def from_exabgp():
    try:
        for line in sys.stdin.buffer:
            sock.sendall(line)
    finally:
        os._exit(0)
threading.Thread(target=from_exabgp, daemon=True).start()
try:
    for line in sock.makefile("rb"):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
finally:
    os._exit(0)
'''


class FlowspecOptions(BaseModel):
    """What a FlowSpec rule matches besides the destination address, and what it does."""

    model_config = {"extra": "forbid"}

    protocol: str | None = Field("udp", description="IP protocol to match (tcp, udp, icmp, ... or a number); "
                                                     "null: any")
    source_port_key: int | None = Field(None, ge=0, description="index of the flow key field holding the "
                                                                "source port to match (e.g. 1); null: any")
    destination_port_key: int | None = Field(None, ge=0, description="index of the flow key field holding "
                                                                     "the destination port; null: any")
    action: str = Field("discard", description='"discard" or "rate-limit N" (N bytes/s)')

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().lower()
        if v.isdigit() and 0 <= int(v) <= 255:
            return v
        if v not in _PROTOCOLS:
            raise ValueError(f"unknown protocol {v!r} (one of {sorted(_PROTOCOLS)} or 0-255)")
        return v

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        v = " ".join(v.split()).lower()
        if not _ACTION.match(v):
            raise ValueError(f'action must be "discard" or "rate-limit N", not {v!r}')
        return v


class BgpOptions(BaseModel):
    """The BGP session to the router(s) and what to announce on it."""

    model_config = {"extra": "forbid"}

    local_as: int = Field(ge=1, le=4294967295)
    peer_as: int = Field(ge=1, le=4294967295)
    router_id: str | None = Field(None, description="BGP identifier; default: local_address (if IPv4)")
    local_address: str = Field(description="address ExaBGP connects from (and listens on, if listening)")
    peer_address: str
    peer_port: int = Field(179, ge=1, le=65535)
    listen_port: int = Field(0, ge=0, le=65535, description="also accept the peer's connections on this "
                                                            "port of local_address; 0: only connect out")
    passive: bool = Field(False, description="only wait for the peer to connect (needs listen_port)")
    hold_time: int = Field(180, ge=3, le=65535)
    mode: Literal["rtbh", "flowspec"] = "rtbh"
    community: str = Field("65535:666", description="space/comma separated communities of RTBH routes "
                                                    "(e.g. '65535:666 no-export')")
    next_hop: str = Field("192.0.2.1", description="next-hop of IPv4 RTBH routes (routed to discard)")
    next_hop_v6: str = Field("100::1", description="next-hop of IPv6 RTBH routes (RFC 6666 discard prefix)")
    flowspec: FlowspecOptions = FlowspecOptions()
    exabgp_path: str | None = Field(None, description="ExaBGP's executable; default: the one next to "
                                                      "the Python interpreter, else on PATH")
    run_dir: str | None = Field(None, description="directory for ExaBGP's configuration and log; "
                                                  "default: a new temporary directory")
    connect_timeout_s: float = Field(30.0, gt=0, description="start() fails when the session is not "
                                                             "up within this time")
    command_timeout_s: float = Field(10.0, gt=0, description="wait this long for ExaBGP to acknowledge "
                                                             "a command")

    @field_validator("local_address", "peer_address", "next_hop", "next_hop_v6")
    @classmethod
    def _address(cls, v: str) -> str:
        return str(ipaddress.ip_address(v.strip()))

    @field_validator("router_id")
    @classmethod
    def _router_id(cls, v: str | None) -> str | None:
        return None if v is None else str(ipaddress.IPv4Address(v.strip()))

    @field_validator("community")
    @classmethod
    def _community(cls, v: str) -> str:
        parts = v.replace(",", " ").split()
        for p in parts:
            if not _COMMUNITY.match(p.lower()) or (":" in p and any(int(x) > 65535 for x in p.split(":"))):
                raise ValueError(f"invalid community {p!r} (ASN:VALUE, 16 bits each, or a well-known name)")
        return " ".join(p.lower() for p in parts)

    @field_validator("next_hop")
    @classmethod
    def _next_hop_v4(cls, v: str) -> str:
        return str(ipaddress.IPv4Address(v))

    @field_validator("next_hop_v6")
    @classmethod
    def _next_hop_v6(cls, v: str) -> str:
        return str(ipaddress.IPv6Address(v))

    @model_validator(mode="after")
    def _check(self) -> BgpOptions:
        if self.router_id is None:
            if ipaddress.ip_address(self.local_address).version != 4:
                raise ValueError("router_id is needed when local_address is IPv6")
            self.router_id = self.local_address
        if self.passive and not self.listen_port:
            raise ValueError("passive needs listen_port")
        return self


_ACTION_FIELDS = {"type", "apply", "release", "timeout_s", "max_retries", "backoff_s", "max_backoff_s"}


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _validate(bgp: Any) -> BgpOptions:
    if isinstance(bgp, BgpOptions):
        return bgp
    if isinstance(bgp, BaseModel):
        bgp = bgp.model_dump()
    return BgpOptions.model_validate(bgp)


def _bgp_options(policy: Any) -> BgpOptions:
    """The BgpOptions of a policy: ``policy.bgp``, ``policy.action.bgp``, the BGP options kept as
    extra fields of ``policy.action`` (settings.ControlAction), or the options themselves."""
    if isinstance(policy, BgpOptions):
        return policy
    action = _get(policy, "action")
    for holder in (policy, action):
        if holder is not None and _get(holder, "bgp") is not None:
            return _validate(_get(holder, "bgp"))
    if action is not None:
        extra = (getattr(action, "model_extra", None) if isinstance(action, BaseModel) else
                 {k: v for k, v in action.items() if k not in _ACTION_FIELDS} if isinstance(action, dict) else None)
        if extra:
            return BgpOptions.model_validate(extra)
    if isinstance(policy, dict):
        return BgpOptions.model_validate(policy)
    raise ValueError("the policy has no BGP options (policy.bgp, policy.action.bgp or the action's fields)")


def _exabgp_path(opts: BgpOptions) -> str:
    if opts.exabgp_path:
        return opts.exabgp_path
    beside = Path(sys.executable).parent / "exabgp"
    if beside.exists():
        return str(beside)
    found = shutil.which("exabgp")
    if not found:
        raise RuntimeError("ExaBGP not found (pip install exabgp, or set bgp.exabgp_path)")
    return found


def _port(value: Any, what: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{what} {port} is not a port number")
    return port


class BgpAction:
    """Announce / withdraw RTBH routes or FlowSpec rules for controls through an ExaBGP child."""

    def __init__(self, policy: Any) -> None:
        self.opts = _bgp_options(policy)
        # which part of a flow key is the address (settings.ControlPolicy.address_key)
        self.address_key = 0 if isinstance(policy, BgpOptions) else int(_get(policy, "address_key") or 0)
        self._proc: subprocess.Popen | None = None
        self._run_dir: Path | None = None
        self._own_run_dir = False
        self._sock_dir: str | None = None
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._conn_ready = threading.Condition()
        self._acks: queue.Queue[str] = queue.Queue()
        self._state = "down"
        self._state_changed = threading.Condition()
        self._log_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._lock = threading.Lock()  # one command (and its ack) at a time
        self._routes: dict[str, tuple[str, set[str]]] = {}  # announce command -> (withdraw command, keys)
        self._by_key: dict[str, str] = {}  # control key -> announce command
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ----

    @property
    def established(self) -> bool:
        return self._state == "up"

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("BgpAction already started")
        opts = self.opts
        self._stopping = False
        exabgp = _exabgp_path(opts)
        if opts.run_dir:
            self._run_dir = Path(opts.run_dir)
            self._run_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._run_dir = Path(tempfile.mkdtemp(prefix="sflowpipe-bgp-"))
            self._own_run_dir = True
        # a short directory for the socket: AF_UNIX paths are limited to ~107 bytes
        self._sock_dir = tempfile.mkdtemp(prefix="sfp-bgp-")
        sock_path = os.path.join(self._sock_dir, "api.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(sock_path)
        self._listener.listen(4)

        # the relay beside the socket: ExaBGP's `run` line splits on spaces, the temp path has none
        relay = Path(self._sock_dir) / "relay.py"
        relay.write_text(_RELAY)
        runner = Path(self._sock_dir) / "relay.sh"  # ExaBGP runs a program: a wrapper with the full command
        runner.write_text(f"#!/bin/sh\nexec {_sh_quote(sys.executable)} {_sh_quote(str(relay))} "
                          f"{_sh_quote(sock_path)}\n")
        runner.chmod(0o755)
        conf = self._run_dir / "exabgp.conf"
        conf.write_text(self._config(str(runner)))
        envfile = self._run_dir / "exabgp.env"
        envfile.write_text("")

        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("exabgp")}
        user = pwd.getpwuid(os.getuid()).pw_name
        env.update({
            "EXABGP_ENVFILE": str(envfile),
            "exabgp_daemon_user": user,
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_daemon_pid": "",
            "exabgp_log_destination": "stdout",
            "exabgp_log_level": "INFO",
            "exabgp_log_short": "true",
            "exabgp_api_cli": "false",
            "exabgp_api_ack": "true",
            "exabgp_api_encoder": "json",
            "exabgp_api_respawn": "true",
            "exabgp_tcp_attempts": "0",
            "exabgp_tcp_bind": "",  # no global listener: the neighbor's own `listen` port, if any
            "exabgp_bgp_passive": "false",
            "PYTHONUNBUFFERED": "1",
        })
        cmd = [exabgp, str(conf)]  # ExaBGP 5 reads this as `exabgp server CONF`, 4.x as is
        log.info("starting ExaBGP: %s (peer %s port %d AS%d, mode %s)", " ".join(cmd), opts.peer_address,
                 opts.peer_port, opts.peer_as, opts.mode)
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, env=env, cwd=str(self._run_dir),
                                          start_new_session=True)
        except OSError as e:
            self._cleanup()
            raise RuntimeError(f"cannot run ExaBGP ({exabgp}): {e}") from e
        self._spawn(self._read_log, "exabgp-log")
        self._spawn(self._accept, "exabgp-api-accept")

        deadline = time.monotonic() + opts.connect_timeout_s
        with self._state_changed:
            while self._state != "up":
                left = deadline - time.monotonic()
                if self._proc.poll() is not None or left <= 0:
                    break
                self._state_changed.wait(min(left, 0.2))
        if self._state != "up":
            code = self._proc.poll()
            why = (f"ExaBGP exited with status {code}" if code is not None else
                   f"BGP session to {opts.peer_address} port {opts.peer_port} (AS{opts.peer_as}) not "
                   f"established within {opts.connect_timeout_s:g} s")
            self.stop()
            tail = "\n".join(self._log_tail)
            raise RuntimeError(f"{why}; ExaBGP's last log lines:\n{tail}")
        log.info("BGP session to %s (AS%d) established", opts.peer_address, opts.peer_as)

    def stop(self) -> None:
        """Stop ExaBGP (the peer drops the routes of the closed session); withdraws nothing itself."""
        self._stopping = True
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("ExaBGP did not stop on SIGTERM, killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if proc is not None:
            log.info("ExaBGP stopped (status %s)", proc.returncode)
        self._cleanup()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []
        self._state = "down"
        if self._routes:
            log.info("BGP session closed: the peer drops the %d route(s) announced on it", len(self._routes))
        self._routes.clear()
        self._by_key.clear()

    def _cleanup(self) -> None:
        for s in (self._conn, self._listener):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self._conn = self._listener = None
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None
        if self._own_run_dir and self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
            self._own_run_dir = False

    # ---- the control interface ----

    def apply(self, control: dict) -> None:
        announce, withdraw = self._commands(control)
        key = str(control.get("key") or announce)
        with self._lock:
            if self._by_key.get(key) == announce:
                return
            if key in self._by_key:  # the same key with another route: replace
                self._release_key(key)
            entry = self._routes.get(announce)
            if entry is None:
                self._send(announce)
                log.info("BGP announced for %s: %s", key, announce)
                self._routes[announce] = (withdraw, {key})
            else:
                entry[1].add(key)
            self._by_key[key] = announce

    def release(self, control: dict) -> None:
        key = control.get("key")
        with self._lock:
            if key is None or str(key) not in self._by_key:
                # not announced by this instance (e.g. before a restart): withdraw what it would be
                _, withdraw = self._commands(control)
                self._send(withdraw)
                log.info("BGP withdrawn for %s: %s", key, withdraw)
                return
            self._release_key(str(key))

    def _release_key(self, key: str) -> None:
        announce = self._by_key.pop(key)
        withdraw, keys = self._routes[announce]
        keys.discard(key)
        if not keys:
            self._send(withdraw)
            del self._routes[announce]
            log.info("BGP withdrawn for %s: %s", key, withdraw)

    @property
    def announced(self) -> list[str]:
        """The announce commands in force."""
        return list(self._routes)

    def _commands(self, control: dict) -> tuple[str, str]:
        """(announce, withdraw) ExaBGP API commands for a control."""
        opts = self.opts
        # the service's control record: fields is a dict of template fields (k0, k1...); a list
        # of the key's parts is taken as is
        fields = control.get("fields")
        parts = (list(fields) if isinstance(fields, (list, tuple)) and fields
                 else split_flow_key(str(control.get("key") or "")))
        address = control.get("address")
        if not address and isinstance(fields, dict):
            address = fields.get(f"k{self.address_key}")
        if not address and self.address_key < len(parts):
            address = parts[self.address_key]
        if not address:
            raise ValueError(f"control {control.get('key')!r} has no address to block")
        ip = ipaddress.ip_address(str(address).strip())
        prefix = f"{ip}/{ip.max_prefixlen}"
        if opts.mode == "rtbh":
            next_hop = opts.next_hop if ip.version == 4 else opts.next_hop_v6
            return (f"announce route {prefix} next-hop {next_hop} community [{opts.community}]",
                    f"withdraw route {prefix} next-hop {next_hop}")
        fs = opts.flowspec
        match = [f"destination {prefix};"]
        if fs.protocol:
            match.append(f"{'protocol' if ip.version == 4 else 'next-header'} {fs.protocol};")
        for index, name in ((fs.source_port_key, "source-port"), (fs.destination_port_key, "destination-port")):
            if index is None:
                continue
            if index >= len(parts):
                raise ValueError(f"control {control.get('key')!r}: no key field {index} for the {name}")
            match.append(f"{name} ={_port(parts[index], name)};")
        rule = "match { " + " ".join(match) + " }"
        return (f"announce flow route {{ {rule} then {{ {fs.action}; }} }}",
                f"withdraw flow route {{ {rule} }}")

    # ---- ExaBGP plumbing ----

    def _config(self, runner: str) -> str:
        o = self.opts
        families = ("ipv4 unicast; ipv6 unicast;" if o.mode == "rtbh" else "ipv4 flow; ipv6 flow;")
        return (
            "process sflowpipe {\n"
            f"    run {runner};\n"
            "    encoder json;\n"
            "}\n\n"
            f"neighbor {o.peer_address} {{\n"
            f"    router-id {o.router_id};\n"
            f"    local-address {o.local_address};\n"
            f"    local-as {o.local_as};\n"
            f"    peer-as {o.peer_as};\n"
            f"    connect {o.peer_port};\n"
            + (f"    listen {o.listen_port};\n" if o.listen_port else "") +
            f"    hold-time {o.hold_time};\n"
            f"    passive {'true' if o.passive else 'false'};\n"
            "    group-updates false;\n"
            f"    family {{ {families} }}\n"
            "    api {\n"
            "        processes [ sflowpipe ];\n"
            "        neighbor-changes;\n"
            "    }\n"
            "}\n")

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _read_log(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._log_tail.append(line)
                log.debug("exabgp: %s", line)
        self._set_state("down")

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopping:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._conn_ready:
                old, self._conn = self._conn, conn
                self._conn_ready.notify_all()
            if old is not None:
                old.close()
            self._spawn(lambda c=conn: self._read_api(c), "exabgp-api-read")

    def _read_api(self, conn: socket.socket) -> None:
        try:
            for raw in conn.makefile("rb"):
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                if line.startswith("{"):
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        log.debug("exabgp api: unparsable %s", line)
                        continue
                    if "answer" in msg:
                        self._acks.put(str(msg["answer"]))
                    elif msg.get("type") == "state":
                        state = str(msg.get("neighbor", {}).get("state", ""))
                        log.info("BGP neighbor %s: %s", self.opts.peer_address, state)
                        self._set_state(state)
                    elif msg.get("type") == "notification" and msg.get("notification") == "shutdown":
                        self._set_state("down")
                else:
                    if line in ("done", "error", "shutdown"):
                        if line == "shutdown":
                            self._set_state("down")
                        else:
                            self._acks.put(line)
                    else:
                        log.debug("exabgp api: %s", line)
        except OSError:
            pass

    def _set_state(self, state: str) -> None:
        with self._state_changed:
            self._state = state
            self._state_changed.notify_all()

    def _send(self, command: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"ExaBGP is not running; cannot send: {command}")
        timeout = self.opts.command_timeout_s
        deadline = time.monotonic() + timeout
        with self._conn_ready:
            while self._conn is None and time.monotonic() < deadline:
                self._conn_ready.wait(0.2)
            conn = self._conn
        if conn is None:
            raise RuntimeError("ExaBGP's API process did not connect")
        while not self._acks.empty():  # stale answers (e.g. of a command that timed out)
            self._acks.get_nowait()
        if not self.established:
            log.warning("BGP session to %s is %s: ExaBGP keeps the command for when it is up",
                        self.opts.peer_address, self._state)
        conn.sendall(command.encode() + b"\n")
        try:
            answer = self._acks.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"ExaBGP did not acknowledge within {timeout:g} s: {command}") from None
        if answer != "done":
            tail = "\n".join(list(self._log_tail)[-5:])
            raise RuntimeError(f"ExaBGP refused ({answer}): {command}\n{tail}")


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"
