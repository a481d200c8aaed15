"""`sflowpipe decode`: a drop-in for sflowtool (-r FILE | -p PORT; -j, -J, -l, -g, text; --format json)."""

from __future__ import annotations

import socket
import sys
import time
from typing import BinaryIO, Callable, Iterable, Iterator

from ingest.pcap import udp_payloads
from ingest.sflow.sflowtool_json import Meta, datagram_line

# The decoder, its model (msgspec) and the general sflowtool writers are imported by the output
# formats that use them: `decode -j -r` of common datagrams runs without them (its start-up counts).

# A received datagram: (payload, Meta)
Received = tuple[bytes, Meta]


def from_capture(f: BinaryIO) -> Iterator[Received]:
    """Datagrams of a capture, with the metadata sflowtool prints for capture input."""
    for ts_sec, ts_usec, payload in udp_payloads(f):
        yield payload, Meta("-", len(payload), 0, 0, ts_sec, ts_usec)


def from_socket(address: str, port: int) -> Iterator[Received]:
    """Datagrams received on a UDP socket (IPv4 and IPv6 when bound to ::)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((address, port))
    try:
        while True:
            data, peer = sock.recvfrom(65535)
            now = time.time()
            src = peer[0]
            if src.startswith("::ffff:") and "." in src:
                src = src[7:]
            sec = int(now)
            yield data, Meta(src, len(data), sec, int((now - sec) * 1_000_000))
    finally:
        sock.close()


def _fields(data: bytes, meta: Meta) -> dict:
    """sflowtool's view of one datagram, or the error line for one that cannot be decoded."""
    from ingest.sflow import sflowtool
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.errors import DecodeError

    try:
        return sflowtool.datagram_fields(decode_datagram(data), meta)
    except DecodeError as e:
        return sflowtool.error_fields(e, meta)


def _render_json(data: bytes, meta: Meta) -> bytes:
    """sflowtool -j: straight from the bytes for common datagrams, else through the data model."""
    line = datagram_line(data, meta)
    if line is None:
        from ingest.sflow import sflowtool

        line = sflowtool.json_line(_fields(data, meta))
    return line


def _render_sflowtool(kind: str) -> Callable[[bytes, Meta], bytes]:
    if kind == "json":
        return _render_json
    from ingest.sflow import sflowtool

    if kind == "grep":
        return lambda data, meta: sflowtool.grep(_fields(data, meta), meta).encode("utf-8", "replace")
    writer = {"pretty": sflowtool.json_pretty, "text": sflowtool.text}[kind]
    return lambda data, meta: writer(_fields(data, meta)).encode("utf-8", "replace")


def _render_lines(data: bytes, meta: Meta) -> bytes:
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.errors import DecodeError
    from ingest.sflow.model import CounterSample, FlowSample
    from ingest.sflow.sflowtool_line import counters_line, flow_line

    try:
        dg = decode_datagram(data)
    except DecodeError as e:
        sys.stderr.write(f"{meta.source_ip}: {e}\n")
        return b""
    agent = dg.agent_address
    out = []
    for s in dg.samples:
        if type(s) is FlowSample:
            out.append(flow_line(agent, s))
        elif type(s) is CounterSample:
            out.append(counters_line(agent, s))
    return "".join(out).encode("utf-8", "replace")


_typed: list = []  # (the record type, its encoder), made on first use


def _render_typed(data: bytes, meta: Meta) -> bytes:
    from ingest.sflow.datagram import decode_datagram
    from ingest.sflow.errors import DecodeError

    if not _typed:
        import msgspec

        class Typed(msgspec.Struct):
            source: str
            size: int
            timestamp: float
            datagram: object = None
            error: str | None = None
            offset: int | None = None

        _typed.extend((Typed, msgspec.json.Encoder()))
    typed, encoder = _typed
    ts = (meta.pcap_sec + meta.pcap_usec / 1e6) if meta.pcap_sec else (meta.read_sec + meta.read_usec / 1e6)
    try:
        rec = typed(meta.source_ip, meta.size, ts, datagram=decode_datagram(data))
    except DecodeError as e:
        rec = typed(meta.source_ip, meta.size, ts, error=e.reason, offset=e.offset)
    return encoder.encode(rec) + b"\n"


def renderer(output: str) -> Callable[[bytes, Meta], bytes]:
    """The function turning one datagram into output bytes for an output format name."""
    if output == "line":
        return _render_lines
    if output == "typed":
        return _render_typed
    return _render_sflowtool(output)


def run(source: Iterable[Received], output: str, out: BinaryIO, flush_each: bool) -> int:
    render = renderer(output)
    write = out.write
    n = 0
    if flush_each:
        for data, meta in source:
            write(render(data, meta))
            n += 1
            out.flush()
        return n
    # a capture: lines gathered into ~1 MB writes, not one write call a line
    pending: list[bytes] = []
    size = 0
    try:
        for data, meta in source:
            line = render(data, meta)
            pending.append(line)
            size += len(line)
            n += 1
            if size >= 1 << 20:
                write(b"".join(pending))
                pending.clear()
                size = 0
    finally:  # the lines before a corrupt capture record still go out
        write(b"".join(pending))
        out.flush()
    return n
