"""Ethernet frames of ICMP errors quoting a probe, and of an echo request, for the scan keys'
and the ClickHouse columns' tests."""

from __future__ import annotations

import socket
import struct


def _ip4(proto: int, payload: bytes, src: str, dst: str, frag: int = 0x4000) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + payload


def _ip6(nh: int, payload: bytes, src: str, dst: str) -> bytes:
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), nh, 64, socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def _eth(t: int, payload: bytes) -> bytes:
    return bytes.fromhex("020000000002020000000001") + struct.pack(">H", t) + payload


def _icmp(t: int, c: int, quoted: bytes) -> bytes:
    return struct.pack(">BBHI", t, c, 0, 0) + quoted


def unreach4(code: int, scanner: str, target: str, proto: int = 17, dport: int = 1434, router: str = "10.0.0.254"):
    """An Ethernet frame: ``router`` (or the target) tells ``scanner`` its probe to ``target`` failed."""
    probe = _ip4(proto, struct.pack(">HHHH", 40000, dport, 8, 0), scanner, target)
    return _eth(0x0800, _ip4(1, _icmp(3, code, probe), router, scanner))


def unreach6(code: int, scanner: str, target: str, dport: int = 22, icmp_type: int = 1, nh: int = 6):
    probe = _ip6(nh, struct.pack(">HHII", 40000, dport, 1, 0), scanner, target)
    return _eth(0x86DD, _ip6(58, _icmp(icmp_type, code, probe), "2001:db8::fe", scanner))


def echo4(src: str, dst: str):
    return _eth(0x0800, _ip4(1, _icmp(8, 0, b"abcdefgh" * 4), src, dst))
