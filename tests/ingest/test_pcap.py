"""The capture reader: pcap/pcapng, byte orders, link types, VLANs, IPv6, IPv4 fragments."""

from __future__ import annotations

import io
import socket
import struct

import pytest

from ingest.pcap import CaptureError, read_udp


def udp(payload: bytes, sport=5000, dport=6343) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(seg: bytes, src="192.0.2.1", dst="192.0.2.2", ident=1, frag=0, proto=17) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ident, frag, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + seg


def ipv6(seg: bytes, nxt=17, ext=b"") -> bytes:
    return struct.pack(">IHBB16s16s", 0x60000000, len(ext) + len(seg), nxt, 64,
                       socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                       socket.inet_pton(socket.AF_INET6, "2001:db8::2")) + ext + seg


def eth(ip: bytes, etype=0x0800, vlans=()) -> bytes:
    tags = b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in vlans)
    first = vlans[0][0] if vlans else etype
    rest = tags[2:] + struct.pack(">H", etype) if vlans else b""
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", first) + rest + ip


def pcap(frames, link=1, endian="<", nanos=False) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)
    for i, f in enumerate(frames):
        out += struct.pack(endian + "IIII", 100 + i, 5000 if nanos else 5, len(f), len(f)) + f
    return out


def pcapng(frames, link=1) -> bytes:
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", link, 0, 65535) + struct.pack("<HHB3x", 9, 1, 6) + b"\0\0\0\0")
    for i, f in enumerate(frames):
        ticks = (200 + i) * 1_000_000 + 7
        out += block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


def test_pcap_ethernet_vlan_ipv6_and_non_udp():
    frames = [
        eth(ipv4(udp(b"one"))),
        eth(ipv4(b"\0" * 20, proto=6)),  # TCP: skipped
        eth(ipv4(udp(b"two")), vlans=[(0x88A8, 10), (0x8100, 20)]),
        eth(ipv6(udp(b"three")), etype=0x86DD),
        eth(ipv6(udp(b"four"), nxt=0, ext=bytes([17, 0]) + b"\0" * 6), etype=0x86DD),
    ]
    got = list(read_udp(io.BytesIO(pcap(frames))))
    assert [d.payload for d in got] == [b"one", b"two", b"three", b"four"]
    assert got[0].ts_sec == 100 and got[0].ts_usec == 5 and got[0].src == "192.0.2.1" and got[0].dport == 6343
    assert got[2].src == "2001:db8::1"


def test_big_endian_nanosecond_pcap():
    got = list(read_udp(io.BytesIO(pcap([eth(ipv4(udp(b"x")))], endian=">", nanos=True))))
    assert got[0].payload == b"x" and got[0].ts_usec == 5


def test_linux_cooked_and_raw_ip():
    sll = struct.pack(">HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + ipv4(udp(b"sll"))
    assert [d.payload for d in read_udp(io.BytesIO(pcap([sll], link=113)))] == [b"sll"]
    assert [d.payload for d in read_udp(io.BytesIO(pcap([ipv4(udp(b"raw"))], link=101)))] == [b"raw"]


def test_ipv4_fragments_are_reassembled():
    payload = bytes(range(256)) * 12
    seg = udp(payload)
    a, b = seg[:1480], seg[1480:]
    frames = [eth(ipv4(a, ident=9, frag=0x2000)), eth(ipv4(b, ident=9, frag=1480 // 8))]
    got = list(read_udp(io.BytesIO(pcap(frames))))
    assert len(got) == 1 and got[0].payload == payload


def test_pcapng():
    got = list(read_udp(io.BytesIO(pcapng([eth(ipv4(udp(b"ng1"))), eth(ipv4(udp(b"ng2")))]))))
    assert [d.payload for d in got] == [b"ng1", b"ng2"]
    assert got[0].ts_sec == 200 and got[0].ts_usec == 7


def test_not_a_capture():
    with pytest.raises(CaptureError):
        list(read_udp(io.BytesIO(b"hello world, not a pcap")))


def test_truncated_capture_stops_cleanly():
    data = pcap([eth(ipv4(udp(b"a"))), eth(ipv4(udp(b"b")))])
    assert [d.payload for d in read_udp(io.BytesIO(data[:-3]))] == [b"a"]
