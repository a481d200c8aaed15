"""The syslog/SIEM sink: threshold events (and active flows, flow logs) to a syslog receiver or a file.

Messages are RFC 5424 (event fields in the ``sflowpipe@32473`` structured data, a human MSG),
RFC 3164, or a CEF / LEEF 2.0 line (sinks/siem.py) carried as the MSG of an RFC 5424 message.
Transports: UDP (RFC 5426, one message a datagram), TCP with octet-counted framing (RFC 6587)
and TLS (RFC 5425, octet-counted). ``flush`` sends what is pending and raises when the receiver
did not take it, dropping the connection so the next try reconnects; ``SinkRunner`` retries and
commits offsets only after a flush went through (at-least-once: a retry may repeat messages).
With ``file`` set, one line per message is appended to the file instead (CEF/LEEF bare).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import ssl
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sflowpipe import __version__
from sflowpipe.kafka import wiring
from sflowpipe.net import parse_hostport
from sflowpipe.settings import Settings, SyslogSettings
from sflowpipe.signals import on_stop_signals
from sinks import siem
from sinks.base import SinkRunner, serve_metrics
from sinks.args import syslog_arguments as add_arguments  # noqa: F401  (re-export; the parser reads it there, argparse only)

log = logging.getLogger(__name__)

PEN = 32473  # the documentation Private Enterprise Number (RFC 5612)
SD_ID = f"sflowpipe@{PEN}"
NILVALUE = "-"
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---- RFC 5424 / RFC 3164 formatting ----

def sd_escape(value: str) -> str:
    """SD-PARAM value escaping (RFC 5424 6.3.3): '"', '\\' and ']' get a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(sd_id: str, params: list[tuple[str, Any]]) -> str:
    body = "".join(f' {name}="{sd_escape(siem._text(v))}"' for name, v in params if v is not None)
    return f"[{sd_id}{body}]"


def _header_field(value: str, limit: int) -> str:
    """HOSTNAME/APP-NAME/PROCID/MSGID: printable US-ASCII without spaces, or the NILVALUE."""
    v = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return v or NILVALUE


def rfc3339(ms: int) -> str:
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rfc5424(pri: int, timestamp_ms: int, hostname: str, app_name: str, procid: str, msgid: str,
            sd: str, msg: str) -> bytes:
    head = (f"<{pri}>1 {rfc3339(timestamp_ms)} {_header_field(hostname, 255)} {_header_field(app_name, 48)} "
            f"{_header_field(procid, 128)} {_header_field(msgid, 32)} {sd or NILVALUE}")
    if not msg:
        return head.encode()
    # MSG-UTF8 starts with a BOM; plain ASCII is sent as MSG-ANY, which every receiver shows cleanly
    body = msg.encode()
    return head.encode() + b" " + (body if msg.isascii() else b"\xef\xbb\xbf" + body)


def rfc3164(pri: int, timestamp_ms: int, hostname: str, app_name: str, procid: str, msg: str) -> bytes:
    t = time.localtime(timestamp_ms / 1000)  # RFC 3164 timestamps are the sender's local time
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    tag = "".join(c for c in app_name if c.isalnum() or c in "-_.")[:32] or "sflowpipe"
    return f"<{pri}>{stamp} {_header_field(hostname, 255)} {tag}[{procid}]: {msg}".encode()


class Formatter:
    """Turns one decoded record (event, active flows or flow log) into syslog messages of one format."""

    def __init__(self, cfg: SyslogSettings, keys: siem.FlowKeyNames, hostname: str | None = None,
                 procid: str | None = None, framed: bool = True) -> None:
        self.cfg = cfg
        self.keys = keys
        self.hostname = hostname or socket.getfqdn() or socket.gethostname()
        self.procid = procid or str(os.getpid())
        self.framed = framed  # False: CEF/LEEF lines without a syslog header (files)

    def messages(self, stem: str, datum: Mapping[str, Any]) -> list[bytes]:
        if stem == "event":
            return [self.event(datum)]
        if stem == "active_flows":
            return [self.flow(datum, f) for f in datum["flows"]]
        if stem == "flow_log":
            return [self.flow_log(datum)]
        return []

    def _pri(self, severity: int) -> int:
        return self.cfg.facility * 8 + severity

    def event(self, e: Mapping[str, Any]) -> bytes:
        fmt = self.cfg.format
        text = siem.event_message(e)
        if fmt in ("cef", "leef"):
            line = (siem.cef_event if fmt == "cef" else siem.leef_event)(e, self.keys, self.cfg.severity, __version__)
            return self._wrap(self.cfg.severity, e["timestamp"], "event", line)
        if fmt == "rfc3164":
            return rfc3164(self._pri(self.cfg.severity), e["timestamp"], self.hostname, self.cfg.app_name,
                           self.procid, f"[{e['eventID']}] {text}")
        sd = structured_data(SD_ID, [(k, e.get(k)) for k in ("eventID", "thresholdID", "agent", "dataSource",
                                                              "metric", "value", "threshold", "flowKey")])
        return rfc5424(self._pri(self.cfg.severity), e["timestamp"], self.hostname, self.cfg.app_name,
                       self.procid, "event", sd, text)

    def flow(self, a: Mapping[str, Any], f: Mapping[str, Any]) -> bytes:
        fmt = self.cfg.format
        severity = 6  # informational: an active flow is not an alarm
        text = siem.flow_message(a, f)
        if fmt in ("cef", "leef"):
            line = (siem.cef_flow if fmt == "cef" else siem.leef_flow)(a, f, self.keys, __version__)
            return self._wrap(severity, a["timestamp"], "flow", line)
        if fmt == "rfc3164":
            return rfc3164(self._pri(severity), a["timestamp"], self.hostname, self.cfg.app_name, self.procid, text)
        sd = structured_data(SD_ID, [("flow", a["flow"]), ("agent", a["agent"]), ("dataSource", f["dataSource"]),
                                     ("flowKey", f["key"]), ("value", f["value"]), ("valueName", a["value"])])
        return rfc5424(self._pri(severity), a["timestamp"], self.hostname, self.cfg.app_name, self.procid,
                       "flow", sd, text)

    def flow_log(self, r: Mapping[str, Any]) -> bytes:
        """A flow-log record (flows with ``log: true``): its fields as structured data / CEF / LEEF."""
        fmt = self.cfg.format
        severity = 6  # informational
        ts = r.get("timestamp") or r["end"]
        text = (f"flow {r['flow']} {r['flowKeys']} on {r['agent']}/{r['dataSource']}: {r['bytes']} bytes "
                f"{r['frames']} frames {rfc3339(r['start'])} - {rfc3339(r['end'])} ({r['reason']})")
        names = self.keys.keys_by_flow.get(r["flow"]) or []
        values = list(r.get("keys") or [])
        pairs = list(zip(names, values)) if len(names) == len(values) else []
        if fmt == "cef":
            ext = [("rt", ts), ("dvchost", r["agent"]), *siem._cef_key_fields(pairs), ("msg", text),
                   ("start", r["start"]), ("end", r["end"]), ("cn1", r["bytes"]), ("cn1Label", "bytes"),
                   ("cn2", r["frames"]), ("cn2Label", "frames"), ("cs2", r["flow"]), ("cs2Label", "flow"),
                   ("cs3", r["dataSource"]), ("cs3Label", "dataSource"), ("cs4", r["flowKeys"]),
                   ("cs4Label", "flowKey"), ("cs5", r["reason"]), ("cs5Label", "reason")]
            line = siem.cef_line(f"flowlog:{r['flow']}", f"flow log {r['flow']}", 1, ext, __version__)
            return self._wrap(severity, ts, "flowlog", line)
        if fmt == "leef":
            attrs = [("devTime", ts), ("devTimeFormat", "Millis"), ("cat", "flowlog"), ("sev", 1),
                     ("identHostName", r["agent"]), *siem._leef_key_fields(pairs)]
            attrs += [(k, r.get(k)) for k in ("flow", "agent", "dataSource", "flowKeys", "bytes", "frames", "start",
                                              "end", "reason")] + [("msg", text)]
            return self._wrap(severity, ts, "flowlog", siem.leef_line(f"flowlog:{r['flow']}", attrs, __version__))
        if fmt == "rfc3164":
            return rfc3164(self._pri(severity), ts, self.hostname, self.cfg.app_name, self.procid, text)
        sd = structured_data(SD_ID, [(k, r.get(k)) for k in ("flow", "agent", "dataSource", "flowKeys", "bytes",
                                                              "frames", "start", "end", "reason")])
        return rfc5424(self._pri(severity), ts, self.hostname, self.cfg.app_name, self.procid, "flowlog", sd, text)

    def _wrap(self, severity: int, ts: int, msgid: str, line: str) -> bytes:
        if not self.framed:
            return line.encode()
        return rfc5424(self._pri(severity), ts, self.hostname, self.cfg.app_name, self.procid, msgid, NILVALUE, line)


# ---- transports ----

class UdpTransport:
    """One message a datagram (RFC 5426); unconnected, so a receiver restart is invisible."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.target: Any = None

    def send(self, message: bytes) -> None:
        if self.sock is None:
            family, _, _, _, self.target = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.sendto(message, self.target)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class StreamTransport:
    """TCP (RFC 6587) or TLS (RFC 5425), both octet-counted: ``LEN SP MSG``; reconnects on demand."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        log.info("syslog: connected to %s:%s%s", self.host, self.port, " (TLS)" if self.tls else "")
        return sock

    def _peer_closed(self) -> bool:
        """A receiver that went away shows as a readable socket; writing would 'succeed' into the void."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return False
        try:
            self.sock.setblocking(False)
            data = self.sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            if self.sock is not None:
                self.sock.settimeout(self.timeout)
        return data == b""  # syslog receivers never talk back

    def send_many(self, messages: list[bytes]) -> None:
        if self.sock is not None and self._peer_closed():
            self.close()
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class FileTransport:
    """Appends one line per message (newlines inside a message escaped)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def send_many(self, messages: list[bytes]) -> None:
        with open(self.path, "ab") as f:
            f.write(b"".join(m.replace(b"\n", b"\\n") + b"\n" for m in messages))
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        pass


def tls_context(cfg: SyslogSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.tls_ca_file)
    if not cfg.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_transport(cfg: SyslogSettings):
    if cfg.file:
        return FileTransport(cfg.file)
    host, port = parse_hostport(cfg.address, DEFAULT_PORTS[cfg.transport], what="syslog address")
    if cfg.transport == "udp":
        return UdpTransport(host, port)
    return StreamTransport(host, port, tls_context(cfg) if cfg.transport == "tls" else None)


# ---- the sink ----

class SyslogSink:
    """Owns the rendered messages not yet sent and the connection to the receiver (or the file)."""

    def __init__(self, cfg: SyslogSettings, keys: siem.FlowKeyNames | None = None, transport=None,
                 formatter: Formatter | None = None) -> None:
        self.cfg = cfg
        self.formatter = formatter or Formatter(cfg, keys or siem.FlowKeyNames(), framed=not cfg.file)
        self.transport = transport or make_transport(cfg)
        self.buffer: list[bytes] = []
        self.sent = 0
        self.skipped = 0

    def add(self, topic: str, stem: str, key: bytes | None, datum: Any, raw: bytes) -> int:
        messages = self.formatter.messages(stem, datum) if datum is not None else []
        if not messages:
            self.skipped += 1
            log.debug("syslog: nothing to send for a %r record on %s", stem, topic)
        self.buffer.extend(messages)
        return len(messages)

    def pending(self) -> int:
        return len(self.buffer)

    def flush(self) -> None:
        if not self.buffer:
            return
        try:
            if isinstance(self.transport, UdpTransport):
                while self.buffer:
                    self.transport.send(self.buffer[0])
                    self.buffer.pop(0)
                    self.sent += 1
            else:
                self.transport.send_many(self.buffer)
                self.sent += len(self.buffer)
                self.buffer.clear()
        except (OSError, ssl.SSLError):
            self.transport.close()  # the next flush reconnects
            raise

    def close(self) -> None:
        self.transport.close()


# ---- `sflowpipe syslog` ----


def resolve(settings: Settings, args: argparse.Namespace) -> SyslogSettings:
    """The syslog settings with the command line's flags applied."""
    update: dict[str, Any] = {}
    for attr, field in (("address", "address"), ("transport", "transport"), ("syslog_format", "format"),
                        ("file", "file"), ("tls_ca_file", "tls_ca_file")):
        if getattr(args, attr, None) is not None:
            update[field] = getattr(args, attr)
    if getattr(args, "topics", None):
        update["topics"] = [t.strip() for t in args.topics.split(",") if t.strip()]
    if getattr(args, "no_tls_verify", False):
        update["tls_verify"] = False
    return SyslogSettings.model_validate({**settings.sinks.syslog.model_dump(), **update})


def run(settings: Settings, args: argparse.Namespace, clients=None, codec=None) -> int:
    """Consume the configured topics and send each record to syslog until SIGTERM/SIGINT."""
    if getattr(args, "bootstrap_servers", None) and args.bootstrap_servers != settings.kafka.bootstrap_servers:
        settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"bootstrap_servers": args.bootstrap_servers})})
        clients = codec = None  # built below from these settings
    if clients is None or codec is None:
        clients, codec = wiring(settings)
    cfg = resolve(settings, args)
    sink = SyslogSink(cfg, siem.FlowKeyNames.from_settings(settings.processors))
    topics = [settings.kafka.topic(t) for t in cfg.topics]
    runner = SinkRunner(sink, topics, cfg.consumer_group, batch_size=500, batch_seconds=1.0,
                        status_topic=settings.kafka.topic(settings.topics.status),
                        from_beginning=not getattr(args, "from_latest", False), clients=clients, codec=codec)
    on_stop_signals(runner.stop)
    runner.metrics.observed("sflowpipe_sink_messages_written_total", "counter", "syslog messages sent",
                            lambda: sink.sent)
    runner.metrics.observed("sflowpipe_sink_skipped_total", "counter", "records not sent (not an event or "
                            "a selected flow)", lambda: sink.skipped)
    metrics = serve_metrics(cfg.metrics_listen, runner.metrics, "syslog")
    where = cfg.file or f"{cfg.transport}://{cfg.address}"
    log.info("syslog: %s from %s to %s", cfg.format, ",".join(topics), where)
    runner.start()
    try:
        runner.run()
    finally:
        sink.close()
        metrics.stop()
    log.info("syslog: sent %d messages", sink.sent)
    return 0
