"""Raw forwarding against the real broker: UDP collectors, hex pipe, TLS, spoofed source."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from schemas.codec import AvroCodec
from sflowpipe.kafka import ensure_topics, wiring
from sflowpipe.settings import Settings
from sinks.forward import (Forwarder, TlsReceiver, TlsSender, UdpEmitter, UdpForwarder, frame, ipv4_udp_packet,
                           read_frames)

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def _settings(bootstrap: str, prefix: str) -> Settings:
    return Settings(kafka={"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 2},
                    sinks={"forward": {"consumer_group_prefix": prefix + "fwd"}})


def _datagrams(n: int) -> list[bytes]:
    # varied sizes and every byte value, so nothing is mangled on the way
    return [bytes((i + j) % 256 for j in range(64 + (i * 37) % 1200)) for i in range(n)]


def _produce(settings: Settings, datagrams: list[bytes], exporter: str = "192.0.2.1") -> None:
    topic = settings.kafka.topic(settings.topics.raw)
    ensure_topics(settings.kafka, [topic])
    codec = AvroCodec("raw_datagram")
    p = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for d in datagrams:
        # one key: one partition, so the collector sees them in order
        p.produce(topic, codec.encode({"receive_time_us": int(time.time() * 1e6), "exporter_address": exporter,
                                       "exporter_port": 50000, "data": d}), exporter.encode())
    assert p.flush(30) == 0


def _collector() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def _receive(sock: socket.socket, n: int, timeout: float = 60.0) -> list[tuple[bytes, tuple]]:
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(sock.recvfrom(65535))
        except socket.timeout:
            pass
    return out


def _target(sock: socket.socket) -> str:
    return "127.0.0.1:%d" % sock.getsockname()[1]


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_two_collectors_identical_dead_and_stalled_targets_hold_back_nobody(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    sent = _datagrams(300)
    _produce(settings, sent)
    a, b = _collector(), _collector()
    stalled = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never read: its buffer fills
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.bind(("127.0.0.1", 0))
    targets = [_target(a), _target(b), _target(stalled), f"127.0.0.1:{_free_udp_port()}"]  # last: nobody there
    sinks = [(f"{topic_prefix}fwd-{i}", UdpForwarder(t)) for i, t in enumerate(targets)]
    fwd = Forwarder(settings.kafka.topic(settings.topics.raw), settings.kafka.topic(settings.topics.status),
                    sinks, *wiring(settings), from_beginning=True)
    started = time.monotonic()
    fwd.start()
    try:
        got_a, got_b = _receive(a, len(sent)), _receive(b, len(sent))
        elapsed = time.monotonic() - started
    finally:
        fwd.stop()
    assert [d for d, _ in got_a] == sent
    assert [d for d, _ in got_b] == sent
    assert elapsed < 30, elapsed  # consumer group join + fetch, nothing waits on the dead targets
    assert sinks[3][1].sent + sinks[3][1].errors == len(sent)  # the dead target was tried, not waited on
    for s in (a, b, stalled):
        s.close()


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, **kw)


RUN = """
import argparse, logging, sys
from sflowpipe.settings import Settings
from sinks import forward
logging.basicConfig(level="INFO", stream=sys.stderr)
settings = Settings(kafka={{"bootstrap_servers": {bootstrap!r}, "topic_prefix": {prefix!r}}},
                    sinks={{"forward": {{"consumer_group_prefix": {prefix!r} + "fwd", "metrics_listen": "127.0.0.1:0"}}}})
p = argparse.ArgumentParser()
forward.{adder}(p)
sys.exit(forward.{runner}(settings, p.parse_args({argv!r})))
"""


def test_hex_round_trip_through_processes(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    sent = _datagrams(100)
    _produce(settings, sent)
    out = _collector()
    fmt = dict(bootstrap=kafka_bootstrap, prefix=topic_prefix)
    producer = _python(RUN.format(adder="add_arguments", runner="run", argv=["--hex", "--from-beginning"], **fmt),
                       stdout=subprocess.PIPE)
    consumer = _python(RUN.format(adder="add_unhex_arguments", runner="run_unhex", argv=["--to", _target(out)], **fmt),
                       stdin=producer.stdout)
    producer.stdout.close()
    try:
        got = _receive(out, len(sent))
        producer.send_signal(signal.SIGTERM)
        assert producer.wait(30) == 0
        assert consumer.wait(30) == 0  # EOF on its stdin
    finally:
        for proc in (producer, consumer):
            if proc.poll() is None:
                proc.kill()
    assert [d for d, _ in got] == sent


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_tls_round_trip(kafka_bootstrap, topic_prefix, tmp_path):
    settings = _settings(kafka_bootstrap, topic_prefix)
    sent = _datagrams(200)
    _produce(settings, sent)
    cert, key = _self_signed(tmp_path)
    out = _collector()
    emitter = UdpEmitter([_target(out)])
    receiver = TlsReceiver("127.0.0.1:0", cert, key, emitter)
    receiver.start()
    sender = TlsSender(f"127.0.0.1:{receiver.port}", ca_file=cert)  # verified against the self-signed cert
    fwd = Forwarder(settings.kafka.topic(settings.topics.raw), settings.kafka.topic(settings.topics.status),
                    [(topic_prefix + "tls", sender)], *wiring(settings),
                    from_beginning=True)
    fwd.start()
    try:
        got = _receive(out, len(sent))
    finally:
        fwd.stop()
        receiver.stop()
        emitter.close()
    assert [d for d, _ in got] == sent


def test_framing():
    import io

    data = [b"", b"x", bytes(range(256)) * 5]
    assert list(read_frames(io.BytesIO(b"".join(frame(d) for d in data)))) == data
    with pytest.raises(ValueError):
        list(read_frames(io.BytesIO(b"5 abc")))


@pytest.mark.skipif(os.geteuid() != 0, reason="spoofing needs root/CAP_NET_RAW")
def test_spoofed_source(kafka_bootstrap, topic_prefix):
    settings = _settings(kafka_bootstrap, topic_prefix)
    sent = _datagrams(20)
    _produce(settings, sent, exporter="127.0.0.7")
    out = _collector()
    fwd = Forwarder(settings.kafka.topic(settings.topics.raw), settings.kafka.topic(settings.topics.status),
                    [(topic_prefix + "spoof", UdpForwarder(_target(out), spoof=True))],
                    *wiring(settings), from_beginning=True)
    fwd.start()
    try:
        got = _receive(out, len(sent))
    finally:
        fwd.stop()
    assert [d for d, _ in got] == sent
    assert {addr for _, addr in got} == {("127.0.0.7", 50000)}


def test_ipv4_udp_packet_checksums():
    pkt = ipv4_udp_packet("10.0.0.1", 1234, "10.0.0.2", 6343, b"abc")
    assert len(pkt) == 20 + 8 + 3 and pkt[-3:] == b"abc"
    from sinks.forward import _checksum
    assert _checksum(pkt[:20]) == 0  # a valid IPv4 header sums to zero
