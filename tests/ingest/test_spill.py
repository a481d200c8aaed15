"""The on-disk spill queue: order, bounds, and surviving a restart."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from ingest import spill
from ingest.spill import SpillQueue


def drain(q: SpillQueue, batch: int = 7) -> list:
    out = []
    while True:
        items = q.peek(batch)
        if not items:
            return out
        out.extend((t, k, v) for t, k, v, _ in items)
        q.consume(items[-1][3], len(items), sum(i[3][2] for i in items))


def test_order_and_keys(tmp_path):
    q = SpillQueue(tmp_path, 1 << 20)
    q.start()
    msgs = [("t%d" % (i % 3), None if i % 4 == 0 else b"k%d" % i, b"v" * i) for i in range(50)]
    for m in msgs:
        assert q.append(*m)
    assert q.pending == 50
    assert drain(q) == msgs
    assert q.pending == 0 and q.bytes == 0
    q.stop()


def test_bounded(tmp_path):
    q = SpillQueue(tmp_path, 100)
    q.start()
    assert q.append("t", b"k", b"x" * 50)
    assert not q.append("t", b"k", b"x" * 50)
    assert q.pending == 1
    q.stop()


def test_survives_restart_and_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "SEGMENT_BYTES", 300)
    q = SpillQueue(tmp_path, 1 << 20)
    q.start()
    msgs = [("topic", b"key", bytes([i]) * 40) for i in range(30)]
    for m in msgs:
        q.append(*m)
    first = q.peek(5)
    q.consume(first[-1][3], 5, sum(i[3][2] for i in first))
    q.stop()
    q2 = SpillQueue(tmp_path, 1 << 20)
    q2.start()
    assert q2.pending == 25
    assert drain(q2, 4) == msgs[5:]
    q2.append("topic", None, b"after")
    assert drain(q2) == [("topic", None, b"after")]
    q2.stop()
    assert len(list(tmp_path.glob("*.spill"))) == 1


def test_peek_reads_in_bounded_chunks_and_whole_large_messages(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "PEEK_BYTES", 100)
    monkeypatch.setattr(spill, "SEGMENT_BYTES", 1000)
    q = SpillQueue(tmp_path, 1 << 20)
    q.start()
    msgs = [("t", b"k", bytes([i]) * (30 if i % 5 else 250)) for i in range(40)]  # some larger than a chunk
    for m in msgs:
        q.append(*m)
    assert drain(q, 3) == msgs
    q.stop()


def test_a_kill_keeps_what_was_flushed_and_counts_what_was_in_flight(tmp_path):
    """No stop() (a SIGKILL): what flush() handed to the OS is replayed, a record torn by the kill
    is cut so that appends stay aligned, and the in-flight count is reported by the next run."""
    q = SpillQueue(tmp_path, 1 << 20)
    q.start()
    assert q.crash_in_flight == 0
    for i in range(10):
        q.append("t", b"k", b"v%d" % i)
    q.flush(in_flight=7)
    seg = sorted(tmp_path.glob("*.spill"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x09\x00\x01")  # half a header: the kill came mid-write
    again = SpillQueue(tmp_path, 1 << 20)
    again.start()
    assert again.crash_in_flight == 7 and again.pending == 10
    again.append("t", None, b"after")
    assert [v for _, _, v in drain(again)] == [b"v%d" % i for i in range(10)] + [b"after"]
    again.stop()
    clean = SpillQueue(tmp_path, 1 << 20)
    clean.start()
    assert clean.crash_in_flight == 0  # a clean stop records nothing in flight
    clean.stop()


@pytest.mark.e2e  # a real process, killed
def test_an_appended_record_survives_a_kill_before_any_flush(tmp_path):
    """A real SIGKILL right after append() returns, with no flush() between: the record is the
    OS's already (the spill's pending count is what the crash test reads before killing the
    ingester; a record still in a user-space buffer would be neither on disk nor counted)."""
    code = ("import os, signal, sys\n"
            "from ingest.spill import SpillQueue\n"
            "q = SpillQueue(sys.argv[1], 1 << 20)\n"
            "q.start()\n"
            "for i in range(5):\n"
            "    q.append('t', None, b'v%d' % i)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=60)
    assert res.returncode == -signal.SIGKILL
    again = SpillQueue(tmp_path, 1 << 20)
    again.start()
    assert [v for _, _, v in drain(again)] == [b"v%d" % i for i in range(5)]
    again.stop()
