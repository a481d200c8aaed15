"""Sampled frames and flow samples carrying payloads (ARP, DNS, ICMP echo) and application records,
as datagrams through the project's own encoder, for the payload keys' tests."""

from __future__ import annotations

import socket
import struct

from ingest.batches import AgentBatches
from ingest.sflow import decode_datagram, encode_datagram
from ingest.sflow.flow_records import AppOperation, ExtendedSocketIpv4, HttpRequest, MemcacheOperation, SampledHeader
from ingest.sflow.model import Datagram, FlowSample
from schemas.codec import AvroCodec

MAC_A, MAC_B = "0cc47a7e6d4e", "020000000002"


def eth(t: int, payload: bytes, dst: str = MAC_B, src: str = MAC_A, vlan: int | None = None) -> bytes:
    tag = struct.pack(">HH", 0x8100, vlan) if vlan is not None else b""
    return bytes.fromhex(dst + src) + tag + struct.pack(">H", t) + payload


def ip4(proto: int, payload: bytes, src: str, dst: str) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + payload


def arp_frame(op: int, sender_ip: str, target_ip: str, vlan: int | None = None) -> bytes:
    body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, bytes.fromhex(MAC_A), socket.inet_aton(sender_ip),
                       bytes.fromhex(MAC_B if op == 2 else "000000000000"), socket.inet_aton(target_ip))
    return eth(0x0806, body, dst="ffffffffffff" if op == 1 else MAC_B, vlan=vlan)


def dns_message(mid: int, qname: str, qtype: int = 1, response: bool = False, rcode: int = 0) -> bytes:
    flags = 0x0100 | (0x8180 | rcode if response else 0)
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.split(".") if p) + b"\0"
    msg = struct.pack(">HHHHHH", mid, flags, 1, 1 if response else 0, 0, 0) + q + struct.pack(">HH", qtype, 1)
    if response:  # an answer whose name points back at the question
        msg += b"\xc0\x0c" + struct.pack(">HHIH4s", qtype, 1, 60, 4, socket.inet_aton("192.0.2.53"))
    return msg


def dns_frame(client: str, server: str, mid: int, qname: str, qtype: int = 1, response: bool = False,
              rcode: int = 0) -> bytes:
    msg = dns_message(mid, qname, qtype, response, rcode)
    sport, dport = (53, 40000) if response else (40000, 53)
    src, dst = (server, client) if response else (client, server)
    return eth(0x0800, ip4(17, struct.pack(">HHHH", sport, dport, 8 + len(msg), 0) + msg, src, dst))


def echo_frame(src: str, dst: str, ident: int, seq: int, reply: bool = False) -> bytes:
    return eth(0x0800, ip4(1, struct.pack(">BBHHH", 0 if reply else 8, 0, 0, ident, seq) + b"x" * 32, src, dst))


def tcp_frame(src: str, dst: str, sport: int = 40000, dport: int = 80) -> bytes:
    return eth(0x0800, ip4(6, struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 1000, 0, 0), src, dst))


def header_sample(frame: bytes, seq: int, rate: int = 100, cut: int | None = None) -> FlowSample:
    h = frame[:cut] if cut else frame
    return FlowSample(False, seq, 0, 3, rate, rate * seq, 0, 0, 3, 0, 7,
                      (SampledHeader.of(1, len(frame) + 4, 4, h),))


def record_sample(records: tuple, seq: int, rate: int = 10) -> FlowSample:
    """An application transaction sample (ds 2.1, as the Host sFlow agent's applications send)."""
    return FlowSample(True, seq, 2, 1, rate, rate * seq, 0, 0, 0, 0, 0, records)


def http(method: int = 2, uri: str = "/index.html", host: str = "www.example.com", status: int = 200) -> HttpRequest:
    return HttpRequest(method, 1001, uri, host, "", "curl/8.0", "", "", "text/html", 0, 512, 1500, status)


def memcache(key: str = "user:42", cmd: int = 7, status: int = 8) -> MemcacheOperation:
    return MemcacheOperation(1, cmd, key, 1, 0, 120, status)


def app_op(app: str = "payment", op: str = "get.balance", status: int = 0) -> AppOperation:
    return AppOperation(app, op, "user=1234", "", 10, 20, 300, status)


def socket4(server: str = "10.0.0.80", client: str = "10.0.0.99") -> ExtendedSocketIpv4:
    return ExtendedSocketIpv4(6, server, client, 80, 51234)


def datagram(samples: list[FlowSample], agent: str = "192.0.2.200", seq: int = 1) -> bytes:
    return encode_datagram(Datagram(5, agent, 0, seq, 1000 * seq, tuple(samples)))


def flow_batch(samples: list[FlowSample], agent: str = "192.0.2.200", full: bool = True) -> dict:
    """The samples as one flow-sample batch through the real decode, batching and Avro path, read back
    whole (``full``) or as the processors read it by default (the hot prefix)."""
    from schemas.definitions import hot_field_count

    b = AgentBatches(10_000, 1e9)
    b.add(decode_datagram(datagram(samples, agent)), agent, 1_763_683_200_000_000)
    (batch,) = [x for x in b.drain() if x.kind == "flow"]
    codec = AvroCodec("flow_sample_batch")
    message = codec.encode(batch.datum)
    return codec.decode(message) if full else codec.decode_prefix(message, hot_field_count())
