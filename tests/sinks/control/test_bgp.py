"""The BGP action against a real BIRD 2 router on loopback: RTBH routes and FlowSpec rules.

BIRD (/usr/sbin/bird, Debian bird2, installed by scripts/system-deps.sh) runs in the foreground
with its own configuration, control socket and pid file; it listens on a free port of 127.0.0.1
(passive) and ExaBGP, started by BgpAction, connects from 127.0.0.2. What BIRD learnt is read
with ``birdc show route ... all``. Nothing is mocked and nothing is skipped: a missing BIRD or
ExaBGP fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sinks.control.bgp import BgpAction, BgpOptions, FlowspecOptions
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]  # BIRD and ExaBGP processes

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"
BIRD_ADDR = "127.0.0.1"
EXA_ADDR = "127.0.0.2"


def _free_port(host: str = BIRD_ADDR) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Bird:
    def __init__(self, tmp_path: Path, port: int, flowspec: bool, connect_to: int | None = None) -> None:
        """BIRD on 127.0.0.1 `port`; passive, or connecting to ExaBGP's port `connect_to`."""
        for exe in (BIRD, BIRDC):
            assert os.access(exe, os.X_OK), f"{exe} not found: install BIRD 2 (apt-get install bird2, " \
                                            "scripts/system-deps.sh)"
        self.sock = str(tmp_path / "bird.ctl")
        self.conf = tmp_path / "bird.conf"
        self.log = tmp_path / "bird.log"
        if flowspec:
            tables = "flow4 table flowtab4;\nflow6 table flowtab6;"
            channels = ("flow4 { table flowtab4; import all; export none; };\n"
                        "    flow6 { table flowtab6; import all; export none; };")
        else:
            tables = ""
            channels = "ipv4 { import all; export none; };\n    ipv6 { import all; export none; };"
        # the static blackhole routes resolve the RTBH next-hops (as a router's discard route does)
        self.conf.write_text(f"""
log "{self.log}" all;
router id 10.255.0.1;
{tables}
protocol device {{ }}
protocol static blackhole4 {{
    ipv4;
    route 192.0.2.0/24 blackhole;
}}
protocol static blackhole6 {{
    ipv6;
    route 100::/64 blackhole;
}}
protocol bgp exa {{
    local {BIRD_ADDR} port {port} as 65001;
    neighbor {EXA_ADDR} {f"port {connect_to} " if connect_to else ""}as 65002;
    passive {"off" if connect_to else "on"};
    connect retry time 1;
    multihop;
    hold time 30;
    {channels}
}}
""")
        self.out = tmp_path / "bird.out"
        with open(self.out, "wb") as out:  # -f: in the foreground, a child of the test
            self.proc = subprocess.Popen([BIRD, "-f", "-c", str(self.conf), "-s", self.sock,
                                          "-P", str(tmp_path / "bird.pid")], stdout=out, stderr=subprocess.STDOUT)
        try:
            until(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, timeout=30, interval=0.05)
            assert os.path.exists(self.sock)
        except AssertionError:
            self.stop()
            out = self.out.read_text(errors="replace")
            pytest.fail(f"BIRD did not start (status {self.proc.returncode}): {out}\n{self._log()}")

    def _log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def birdc(self, *args: str) -> str:
        r = subprocess.run([BIRDC, "-s", self.sock, *args], capture_output=True, text=True, timeout=10,
                           check=False)
        return r.stdout + r.stderr

    def wait_for(self, predicate, what: str, *args: str, timeout: float = 20) -> str:
        last = [""]

        def seen() -> str | None:
            last[0] = self.birdc(*args)
            return last[0] if predicate(last[0]) else None

        try:
            return until(seen, timeout)
        except AssertionError:
            pytest.fail(f"BIRD: {what} not seen within {timeout} s; last `birdc {' '.join(args)}`:\n{last[0]}\n"
                        f"protocols:\n{self.birdc('show', 'protocols', 'all', 'exa')}\nlog:\n{self._log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def bird_factory(tmp_path):
    started: list[Bird] = []

    def make(flowspec: bool = False, connect_to: int | None = None) -> tuple[Bird, int]:
        port = _free_port()
        bird = Bird(tmp_path, port, flowspec, connect_to)
        started.append(bird)
        return bird, port

    yield make
    for b in started:
        b.stop()


def _answered(out: str) -> bool:
    """birdc reached BIRD (so a route missing from its answer is really gone)."""
    return "BIRD 2" in out and "ready." in out


def _options(port: int, **kw) -> BgpOptions:
    kw.setdefault("connect_timeout_s", 20)
    return BgpOptions(local_as=65002, peer_as=65001, router_id="10.255.0.2", local_address=EXA_ADDR,
                      peer_address=BIRD_ADDR, peer_port=port, **kw)


def test_rtbh_announce_and_withdraw(bird_factory, tmp_path):
    bird, port = bird_factory(flowspec=False)
    action = BgpAction({"bgp": _options(port, run_dir=str(tmp_path / "exabgp"))})
    action.start()
    try:
        bird.wait_for(lambda out: re.search(r"exa\s+BGP\s+\S+\s+up\s", out), "session up", "show", "protocols")
        control = {"key": "198.51.100.7,53", "fields": ["198.51.100.7", "53"], "address": "198.51.100.7",
                   "policy": "rtbh"}
        action.apply(control)
        out = bird.wait_for(lambda o: "198.51.100.7/32" in o and "(65535,666)" in o, "the RTBH route",
                            "show", "route", "198.51.100.7/32", "all")
        assert "192.0.2.1" in out  # the discard next-hop
        assert "BGP.as_path: 65002" in out

        # a second key for the same address shares the route; it stays until both are released
        second = dict(control, key="198.51.100.7,123", fields=["198.51.100.7", "123"])
        action.apply(second)
        assert len(action.announced) == 1
        action.release(control)
        time.sleep(1)  # waiting this out is the check: a wrong withdrawal would have reached BIRD by now
        assert "198.51.100.7/32" in bird.birdc("show", "route", "198.51.100.7/32", "all")
        action.release(second)
        bird.wait_for(lambda o: _answered(o) and "198.51.100.7/32" not in o, "the withdrawal",
                      "show", "route", "198.51.100.7/32", "all")
        assert action.announced == []

        # IPv6: /128 to the RFC 6666 discard next-hop
        v6 = {"key": "2001:db8::7", "fields": ["2001:db8::7"], "address": "2001:db8::7"}
        action.apply(v6)
        out = bird.wait_for(lambda o: "2001:db8::7/128" in o and "(65535,666)" in o, "the IPv6 RTBH route",
                            "show", "route", "2001:db8::7/128", "all")
        assert "100::1" in out, out
        action.release(v6)
        bird.wait_for(lambda o: _answered(o) and "2001:db8::7/128" not in o, "the IPv6 withdrawal",
                      "show", "route", "2001:db8::7/128", "all")
    finally:
        action.stop()
    assert action._proc is None
    bird.wait_for(lambda out: re.search(r"exa\s+BGP\s+\S+\s+(start|down)\s", out) is not None,
                  "session closed", "show", "protocols")


def test_rtbh_route_comes_back_after_router_restart(bird_factory, tmp_path):
    """ExaBGP keeps what was announced and sends it again when the session comes back."""
    bird, port = bird_factory(flowspec=False)
    action = BgpAction({"bgp": _options(port)})
    action.start()
    try:
        control = {"key": "198.51.100.8", "fields": ["198.51.100.8"], "address": "198.51.100.8"}
        action.apply(control)
        bird.wait_for(lambda o: "(65535,666)" in o, "the RTBH route", "show", "route", "198.51.100.8/32", "all")
        with pytest.raises(RuntimeError, match="refused"):  # ExaBGP's "error" answer surfaces
            action._send("announce route 198.51.100.300/32 next-hop 192.0.2.1")
        bird.stop()
        until(lambda: not action.established, timeout=30, interval=0.1)
        bird = Bird(tmp_path, port, flowspec=False)
        try:
            bird.wait_for(lambda o: "(65535,666)" in o, "the RTBH route after the restart",
                          "show", "route", "198.51.100.8/32", "all", timeout=30)
            assert action.established
            action.release(control)
            bird.wait_for(lambda o: _answered(o) and "198.51.100.8/32" not in o, "the withdrawal",
                          "show", "route", "198.51.100.8/32", "all")
        finally:
            bird.stop()
    finally:
        action.stop()


def test_passive_exabgp_accepts_the_router(bird_factory):
    """listen_port + passive: ExaBGP waits on 127.0.0.2:PORT and BIRD connects to it."""
    listen = _free_port(EXA_ADDR)
    bird, port = bird_factory(flowspec=False, connect_to=listen)
    action = BgpAction({"bgp": _options(port, listen_port=listen, passive=True)})
    action.start()
    try:
        action.apply({"key": "198.51.100.9", "fields": ["198.51.100.9"], "address": "198.51.100.9"})
        bird.wait_for(lambda o: "(65535,666)" in o, "the RTBH route", "show", "route", "198.51.100.9/32", "all")
    finally:
        action.stop()


@pytest.mark.parametrize("how, community", [
    # rate-limit 1000 travels as the traffic-rate extended community 0x8006, 1000.0 as an IEEE float
    ("rate-limit 1000", "(generic, 0x80060000, 0x447a0000)"),
    ("discard", "(generic, 0x80060000, 0x0)"),  # discard: a traffic-rate of 0 bytes/s
])
def test_flowspec_announce_and_withdraw(bird_factory, how, community):
    bird, port = bird_factory(flowspec=True)
    opts = _options(port, mode="flowspec", flowspec=FlowspecOptions(protocol="udp", source_port_key=1, action=how))
    action = BgpAction({"bgp": opts.model_dump()})
    action.start()
    try:
        control = {"key": "203.0.113.9,53", "fields": ["203.0.113.9", "53"], "address": "203.0.113.9"}
        action.apply(control)
        out = bird.wait_for(lambda o: "203.0.113.9/32" in o, "the FlowSpec rule",
                            "show", "route", "table", "flowtab4", "all")
        assert "flow4 { dst 203.0.113.9/32; proto 17; sport 53; }" in out, out
        assert community in out, out
        action.release(control)
        bird.wait_for(lambda o: _answered(o) and "203.0.113.9/32" not in o, "the FlowSpec withdrawal",
                      "show", "route", "table", "flowtab4", "all")

        v6 = {"key": "2001:db8::9,123", "fields": ["2001:db8::9", "123"], "address": "2001:db8::9"}
        action.apply(v6)
        out = bird.wait_for(lambda o: "2001:db8::9/128" in o, "the IPv6 FlowSpec rule",
                            "show", "route", "table", "flowtab6", "all")
        assert "next header 17" in out and "sport 123" in out and community in out, out
        action.release(v6)
        bird.wait_for(lambda o: _answered(o) and "2001:db8::9/128" not in o, "the IPv6 FlowSpec withdrawal",
                      "show", "route", "table", "flowtab6", "all")
    finally:
        action.stop()


def test_start_fails_clearly_without_peer(tmp_path):
    port = _free_port()  # nobody listens there
    action = BgpAction({"bgp": _options(port, connect_timeout_s=3)})
    with pytest.raises(RuntimeError, match="not established within 3 s"):
        action.start()
    assert action._proc is None


def test_commands():
    rtbh = BgpAction({"bgp": _options(179, community="65535:666 no-export")})
    assert rtbh._commands({"key": "192.0.2.10,53", "address": "192.0.2.10"}) == (
        "announce route 192.0.2.10/32 next-hop 192.0.2.1 community [65535:666 no-export]",
        "withdraw route 192.0.2.10/32 next-hop 192.0.2.1")
    assert rtbh._commands({"address": "2001:db8::1"})[0] == (
        "announce route 2001:db8::1/128 next-hop 100::1 community [65535:666 no-export]")
    fs = BgpAction({"bgp": _options(179, mode="flowspec", flowspec={"protocol": "udp", "source_port_key": 1})})
    assert fs._commands({"key": "192.0.2.10,53", "fields": ["192.0.2.10", "53"], "address": "192.0.2.10"}) == (
        ("announce flow route { match { destination 192.0.2.10/32; protocol udp; source-port =53; } "
         "then { discard; } }"),
        "withdraw flow route { match { destination 192.0.2.10/32; protocol udp; source-port =53; } }")
    with pytest.raises(ValueError):
        fs._commands({"key": "192.0.2.10", "fields": ["192.0.2.10"], "address": "192.0.2.10"})
    with pytest.raises(ValueError):
        BgpOptions(local_as=1, peer_as=2, local_address="127.0.0.1", peer_address="127.0.0.1",
                   community="70000:1")
    with pytest.raises(ValueError):
        FlowspecOptions(action="drop")


def test_options_from_the_control_policy():
    """The control service hands over a settings.ControlPolicy: options under action.bgp, or kept as
    extra fields of the action; a dict with 'bgp' or a BgpOptions work too."""
    from sflowpipe.settings import ControlPolicy

    opts = {"local_as": 65002, "peer_as": 65001, "local_address": "127.0.0.2", "peer_address": "127.0.0.1",
            "mode": "flowspec", "flowspec": {"source_port_key": 1, "action": "rate-limit 100"}}
    nested = ControlPolicy(threshold="udp_reflection", action={"type": "bgp", "bgp": opts})
    flat = ControlPolicy(threshold="udp_reflection", action={"type": "bgp", **opts})
    for policy in (nested, flat, {"bgp": opts}, {"action": {"type": "bgp", **opts}}, BgpOptions(**opts)):
        o = BgpAction(policy).opts
        assert (o.local_as, o.mode, o.flowspec.action, o.router_id) == (65002, "flowspec", "rate-limit 100",
                                                                        "127.0.0.2")
    with pytest.raises(ValueError):
        BgpAction(ControlPolicy(threshold="t", action={"type": "bgp", **opts, "local_ass": 1}))
