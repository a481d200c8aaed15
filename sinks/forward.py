"""Raw sFlow forwarding: every datagram of the raw topic re-sent, byte for byte, to other collectors.

* ``sflowpipe forward``: one thread and one consumer group (``<prefix>-<host>-<port>``) per UDP
  target, so a slow or dead collector never holds back the others. With ``spoof_source`` the
  datagram leaves with the original exporter's address and port as its source (raw IPv4 socket
  with IP_HDRINCL: needs root or CAP_NET_RAW; IPv6 exporters/targets are sent unspoofed).
* ``sflowpipe forward --hex``: one datagram per line as hex on stdout, and ``sflowpipe unhex
  --to HOST:PORT`` reads such lines and re-emits them over UDP (``forward --hex | ssh host
  sflowpipe unhex --to 127.0.0.1:6343``).
* ``sflowpipe forward --tls-to HOST:PORT``: datagrams octet-counted (``LEN SP BYTES``, RFC 6587
  framing) over TLS to ``sflowpipe unhex --tls-listen HOST:PORT --cert C --key K --to ...``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import sys
import threading
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from sflowpipe.net import parse_hostport
from sflowpipe.settings import ForwardSettings, LimitSettings, Settings
from sflowpipe.signals import on_stop_signals
from prometheus_client import CollectorRegistry

from sflowpipe.metrics import Snapshots
from sinks.base import SinkRunner, serve_metrics
from sinks.args import forward_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)
from sinks.args import unhex_arguments as add_unhex_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

if TYPE_CHECKING:  # annotations only
    from schemas.codec import Codec
    from sflowpipe.kafka import KafkaClients

log = logging.getLogger(__name__)

MAX_FRAME = 65535


def _resolve(host: str, port: int) -> tuple[int, tuple]:
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
    return family, sockaddr


# -- spoofed source ------------------------------------------------------------------------------

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes, ident: int = 0) -> bytes:
    """An IPv4 + UDP packet (checksums filled in) carrying ``payload``."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    length = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0)
    csum = _checksum(pseudo + udp + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, length, csum)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, ident & 0xFFFF, 0, 64, socket.IPPROTO_UDP, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + udp + payload


class SpoofError(RuntimeError):
    """Spoofing was asked for but no raw socket could be opened."""


def open_raw_socket() -> socket.socket:
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
    except PermissionError:
        raise SpoofError("spoof_source needs a raw socket: run as root or grant CAP_NET_RAW "
                         "(setcap cap_net_raw+ep on the python binary), or turn spoof_source off") from None


# -- the UDP forwarder ---------------------------------------------------------------------------

class UdpForwarder:
    """Sends each consumed datagram to one collector as it arrives (UDP: never waits on it)."""

    def __init__(self, target: str, spoof: bool = False) -> None:
        self.target = target
        host, port = parse_hostport(target, what="target")
        self.family, self.sockaddr = _resolve(host, port)
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.raw = open_raw_socket() if spoof else None
        self.sent = 0
        self.errors = 0
        self.unspoofed = 0
        self._pending = 0
        self._ident = 0

    def send(self, data: bytes, exporter_address: str = "", exporter_port: int = 0) -> None:
        try:
            if self.raw is not None and self.family == socket.AF_INET and ":" not in exporter_address \
                    and exporter_address:
                self._ident += 1
                pkt = ipv4_udp_packet(exporter_address, exporter_port, self.sockaddr[0], self.sockaddr[1], data,
                                      self._ident)
                self.raw.sendto(pkt, (self.sockaddr[0], 0))
            else:
                if self.raw is not None:
                    self.unspoofed += 1
                self.sock.sendto(data, self.sockaddr)
            self.sent += 1
        except OSError as e:  # unreachable, buffer full, too big: this datagram is lost, the next may pass
            self.errors += 1
            if self.errors in (1, 10, 100) or self.errors % 10000 == 0:
                log.warning("forward to %s: %s (%d errors)", self.target, e, self.errors)

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        if stem == "raw_datagram":
            self.send(datum["data"], datum["exporter_address"], datum["exporter_port"])
            self._pending += 1
        return 1

    def flush(self) -> None:
        self._pending = 0

    def pending(self) -> int:
        return self._pending

    def close(self) -> None:
        self.sock.close()
        if self.raw is not None:
            self.raw.close()


class HexWriter:
    """Writes each datagram as one hex line (forward --hex)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buffer: list[str] = []
        self.closed = threading.Event()  # the reader went away (ssh ended): stop forwarding

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        if stem == "raw_datagram":
            self.buffer.append(datum["data"].hex() + "\n")
        return 1

    def flush(self) -> None:
        try:
            self.out.write("".join(self.buffer))
            self.out.flush()
        except BrokenPipeError:
            self.closed.set()
            raise
        self.buffer.clear()

    def pending(self) -> int:
        return len(self.buffer)


def frame(data: bytes) -> bytes:
    return b"%d %s" % (len(data), data)


def read_frames(stream: BinaryIO):
    """Datagrams from an octet-counted stream (``LEN SP BYTES``...) until EOF."""
    while True:
        digits = b""
        while True:
            c = stream.read(1)
            if not c:
                if digits:
                    raise ValueError("stream ended inside a frame length")
                return
            if c == b" ":
                break
            if not c.isdigit() or len(digits) > 5:
                raise ValueError(f"bad frame length byte {c!r}")
            digits += c
        n = int(digits)
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes is larger than a datagram")
        data = stream.read(n)
        if len(data) != n:
            raise ValueError("stream ended inside a frame")
        yield data


class TlsSender:
    """Sends datagrams octet-counted over one TLS connection; a failed flush reconnects and the
    runner retries the batch (at-least-once: a retried batch may repeat datagrams)."""

    def __init__(self, target: str, ca_file: str | None = None, verify: bool = True,
                 cert: str | None = None, key: str | None = None) -> None:
        self.host, self.port = parse_hostport(target, what="target")
        self.context = ssl.create_default_context(cafile=ca_file)
        if not verify:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        if cert:
            self.context.load_cert_chain(cert, key)
        self.conn: ssl.SSLSocket | None = None
        self.buffer: list[bytes] = []

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        if stem == "raw_datagram":
            self.buffer.append(frame(datum["data"]))
        return 1

    def flush(self) -> None:
        try:
            if self.conn is None:
                sock = socket.create_connection((self.host, self.port), timeout=10)
                self.conn = self.context.wrap_socket(sock, server_hostname=self.host)
            self.conn.sendall(b"".join(self.buffer))
        except (OSError, ssl.SSLError):
            self.close()
            raise
        self.buffer.clear()

    def pending(self) -> int:
        return len(self.buffer)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


# -- the forward command -------------------------------------------------------------------------

class Forwarder:
    """Owns one SinkRunner thread per destination over the raw topic."""

    def __init__(self, topic: str, status_topic: str, sinks: list[tuple[str, Any]], clients: KafkaClients,
                 codec: Codec, from_beginning: bool = False, batch_size: int = 500, batch_seconds: float = 0.2) -> None:
        """``topic``: the raw-datagram topic, ``status_topic`` the status one (prefixed); ``sinks``:
        (consumer group, destination)."""
        self.sinks = sinks
        self.runners = [SinkRunner(sink, [topic], group, batch_size, batch_seconds, from_beginning=from_beginning,
                                   clients=clients, codec=codec, status_topic=status_topic) for group, sink in sinks]
        self.threads: list[threading.Thread] = []
        self.metrics = Snapshots("group")  # each destination's runner, labelled by its consumer group
        for (group, _), runner in zip(sinks, self.runners):
            self.metrics.latest[group] = runner.metrics

    def start(self) -> None:
        for (group, _), runner in zip(self.sinks, self.runners):
            runner.start()
            th = threading.Thread(target=runner.run, name=f"forward-{group}", daemon=True)
            th.start()
            self.threads.append(th)

    def stop(self) -> None:
        for r in self.runners:
            r.stop()
        for th in self.threads:
            th.join(15)
        for _, sink in self.sinks:
            if hasattr(sink, "close"):
                sink.close()


class ConfigForwarder:
    """Forwarding targets from the config topic (the REST API's /forwarding/{name}/json): one
    consumer group and thread per named target, started, replaced and stopped as definitions
    change. A target starts at the newest datagram."""

    def __init__(self, cfg: ForwardSettings, raw_topic: str, status_topic: str, config_topic: str,
                 limits: LimitSettings, clients: KafkaClients, codec: Codec, spoof: bool = False) -> None:
        from sflowpipe.config_plane import ConfigWatcher

        self.cfg = cfg
        self.raw_topic, self.status_topic = raw_topic, status_topic
        self.clients, self.codec = clients, codec
        self.spoof = spoof
        self.lock = threading.Lock()
        self.active: dict[str, tuple[Any, Forwarder]] = {}  # name -> (definition, forwarder)
        self.watcher = ConfigWatcher(clients, config_topic, limits, self.define)
        self.metrics = Snapshots("group")  # the live targets' runners (run() serves them with the static ones)

    def define(self, kind: str, name: str, definition: Any) -> None:
        if kind != "forwarding":
            return
        with self.lock:
            current = self.active.get(name)
            if current and current[0] == definition:
                return
            if current:
                current[1].stop()
                del self.active[name]
                for group in current[1].metrics.latest:
                    self.metrics.latest.pop(group, None)
                log.info("forward: stopped %s", name)
            if definition is None:
                return
            target = f"[{definition.address}]:{definition.port}" if ":" in definition.address else \
                f"{definition.address}:{definition.port}"
            try:
                sink = UdpForwarder(target, self.spoof)
            except (OSError, ValueError, SpoofError) as e:
                log.error("forward: %s -> %s: %s", name, target, e)
                return
            group = f"{self.cfg.consumer_group_prefix}-config-{name}"
            fwd = Forwarder(self.raw_topic, self.status_topic, [(group, sink)], self.clients, self.codec)
            fwd.start()
            self.active[name] = (definition, fwd)
            self.metrics.latest.update(fwd.metrics.latest)
            log.info("forward: %s -> %s", name, target)

    def start(self) -> None:
        self.watcher.start()
        log.info("forward: following forwarding definitions on the config topic")

    def stop(self) -> None:
        self.watcher.stop()
        with self.lock:
            for _, fwd in self.active.values():
                fwd.stop()
            self.active.clear()


def _group_name(prefix: str, kind: str, target: str) -> str:
    host, port = parse_hostport(target, what="target")
    return f"{prefix}-{kind}{host}-{port}".replace(":", "_")


def build_sinks(settings: Settings, args) -> list[tuple[str, Any]]:
    """(consumer group, sink) for each destination the settings and flags name."""
    fs = settings.sinks.forward
    prefix = fs.consumer_group_prefix
    if getattr(args, "hex", False):
        return [(f"{prefix}-hex", HexWriter(sys.stdout))]
    if getattr(args, "tls_to", None):
        return [(_group_name(prefix, "tls-", t), TlsSender(t, args.tls_ca, not args.tls_insecure,
                                                           args.tls_cert, args.tls_key)) for t in args.tls_to]
    targets = list(getattr(args, "to", None) or fs.targets)
    spoof = fs.spoof_source or getattr(args, "spoof_source", False)
    return [(_group_name(prefix, "", t), UdpForwarder(t, spoof)) for t in targets]


def _wait_for_signal(done: threading.Event | None = None) -> None:
    done = done or threading.Event()
    on_stop_signals(done.set)
    done.wait()


def run(settings: Settings, args, clients=None, codec=None) -> int:
    try:
        sinks = build_sinks(settings, args)
    except SpoofError as e:
        log.error("forward: %s", e)
        print(f"sflowpipe forward: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, ssl.SSLError) as e:
        print(f"sflowpipe forward: {e}", file=sys.stderr)
        return 2
    from_config = getattr(args, "from_config", False)
    if not sinks and not from_config:
        print("sflowpipe forward: no targets (--to, --hex, --tls-to, --from-config or sinks.forward.targets)",
              file=sys.stderr)
        return 2
    if clients is None or codec is None:
        from sflowpipe.kafka import wiring

        clients, codec = wiring(settings)
    k, t = settings.kafka, settings.topics
    fwd = Forwarder(k.topic(t.raw), k.topic(t.status), sinks, clients, codec,
                    from_beginning=getattr(args, "from_beginning", False))
    dynamic = ConfigForwarder(settings.sinks.forward, k.topic(t.raw), k.topic(t.status), k.topic(t.config),
                              settings.limits, clients, codec, settings.sinks.forward.spoof_source) if from_config else None
    if dynamic:
        dynamic.metrics = fwd.metrics  # one family per metric over the static and the live targets
    registry = CollectorRegistry()
    registry.register(fwd.metrics)
    metrics = serve_metrics(settings.sinks.forward.metrics_listen, registry, "forward")
    fwd.start()
    if dynamic:
        dynamic.start()
    hex_writer = next((s for _, s in sinks if isinstance(s, HexWriter)), None)
    _wait_for_signal(hex_writer.closed if hex_writer else None)
    if dynamic:
        dynamic.stop()
    fwd.stop()
    metrics.stop()
    return 0


# -- the receiving side: unhex -------------------------------------------------------------------

class UdpEmitter:
    """Sends datagrams to one or more UDP collectors."""

    def __init__(self, targets: list[str]) -> None:
        self.dests = []
        for t in targets:
            family, sockaddr = _resolve(*parse_hostport(t, what="target"))
            self.dests.append((socket.socket(family, socket.SOCK_DGRAM), sockaddr))
        self.sent = 0

    def send(self, data: bytes) -> None:
        for sock, addr in self.dests:
            try:
                sock.sendto(data, addr)
            except OSError as e:
                log.warning("unhex: send to %s: %s", addr, e)
        self.sent += 1

    def close(self) -> None:
        for sock, _ in self.dests:
            sock.close()


def unhex_stream(lines: TextIO, emitter: UdpEmitter) -> int:
    """Re-emit every hex line; returns the number of bad lines (skipped)."""
    bad = 0
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            emitter.send(bytes.fromhex(line))
        except ValueError:
            bad += 1
            log.warning("unhex: line %d is not hex, skipped", n)
    return bad


class TlsReceiver:
    """Owns a TLS listener; each connection's octet-counted datagrams go to the emitter."""

    def __init__(self, listen: str, cert: str, key: str, emitter: UdpEmitter, client_ca: str | None = None) -> None:
        host, port = parse_hostport(listen, what="listen address")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca:
            self.context.load_verify_locations(client_ca)
            self.context.verify_mode = ssl.CERT_REQUIRED
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.emitter = emitter
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def start(self) -> None:
        self.thread = threading.Thread(target=self._accept, name="unhex-tls", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread:
            self.thread.join(5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    def _serve(self, conn: socket.socket, addr) -> None:
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls, tls.makefile("rb") as stream:
                for data in read_frames(stream):
                    with self.lock:
                        self.emitter.send(data)
        except (OSError, ssl.SSLError, ValueError) as e:
            log.warning("unhex: connection from %s: %s", addr, e)


def run_unhex(settings: Settings, args) -> int:
    try:
        emitter = UdpEmitter(args.to)
    except (OSError, ValueError) as e:
        print(f"sflowpipe unhex: {e}", file=sys.stderr)
        return 2
    if not args.tls_listen:
        bad = unhex_stream(sys.stdin, emitter)
        emitter.close()
        return 1 if bad else 0
    if not (args.cert and args.key):
        print("sflowpipe unhex: --tls-listen needs --cert and --key", file=sys.stderr)
        return 2
    try:
        receiver = TlsReceiver(args.tls_listen, args.cert, args.key, emitter, args.client_ca)
    except (OSError, ValueError, ssl.SSLError) as e:
        print(f"sflowpipe unhex: {e}", file=sys.stderr)
        return 2
    receiver.start()
    log.info("unhex: TLS on port %d, re-emitting to %s", receiver.port, ", ".join(args.to))
    _wait_for_signal()
    receiver.stop()
    emitter.close()
    return 0
