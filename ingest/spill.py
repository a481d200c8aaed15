"""A bounded, ordered on-disk queue of Kafka messages, for riding out broker outages.

Messages are appended to segment files and read back in the same order; the read position is
saved, so what was spilled before a restart is replayed after it. When the queue would exceed
``max_bytes`` the message is refused (the caller counts it as dropped).

Each append is one unbuffered write: once ``append`` returns, the record is the OS's (a killed
process keeps it; ``pending`` never counts a record a kill could take). ``flush(in_flight)`` records
how many messages the caller holds in memory beside it; a clean ``stop()`` records zero, so after
a crash ``crash_in_flight`` says how many were lost with the process.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_HEAD = struct.Struct(">IHH")  # value length, topic length, key length (0xFFFF = no key)
SEGMENT_BYTES = 16 << 20
PEEK_BYTES = 4 << 20  # read at most this much per peek (a larger single message is read whole)


class SpillQueue:
    """Owns a directory of segment files: append at the tail, read from the head."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.pending = 0  # messages waiting
        self.bytes = 0  # bytes waiting
        self._w = None
        self._w_seg = 0
        self._r = None
        self._r_seg = 0
        self._r_pos = 0
        self.crash_in_flight = 0  # messages in memory when the previous run was killed
        self._in_flight = None  # the open in-flight record
        self._in_flight_n = -1

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        segs = self._segments()
        cursor = self.dir / "cursor"
        if cursor.exists() and segs:
            seg, pos = (int(x) for x in cursor.read_text().split())
            segs = [s for s in segs if s >= seg]
            self._r_seg, self._r_pos = (seg, pos) if segs and segs[0] == seg else (segs[0] if segs else 0, 0)
        else:
            self._r_seg, self._r_pos = (segs[0] if segs else 0), 0
        for s in self._segments():
            if s < self._r_seg:
                self._path(s).unlink()
        self._w_seg = (max(segs) if segs else 0)
        self._read_in_flight()
        # count what is waiting
        self.pending = self.bytes = 0
        for s in self._segments():
            data = self._path(s).read_bytes()
            pos = self._r_pos if s == self._r_seg else 0
            while pos + _HEAD.size <= len(data):
                vlen, tlen, klen = _HEAD.unpack_from(data, pos)
                size = _HEAD.size + tlen + (0 if klen == 0xFFFF else klen) + vlen
                if pos + size > len(data):
                    break
                self.pending += 1
                self.bytes += size
                pos += size
            if pos < len(data) and s == self._w_seg:
                # a write torn by a kill: cut it, so that appends start on a record boundary
                os.truncate(self._path(s), pos)
        self._w = open(self._path(self._w_seg), "ab", buffering=0)

    def stop(self) -> None:
        if self._w:
            self._w.close()
            self._w = None
        self._record_in_flight(0)
        if self._in_flight:
            self._in_flight.close()
            self._in_flight = None
        if self._r:
            self._r.close()
            self._r = None
        self._save_cursor()

    def flush(self, in_flight: int) -> None:
        """``in_flight`` (held in memory by the caller) to the record (appends are written already)."""
        self._record_in_flight(in_flight)

    # ---------------------------------------------------------------- queue

    def append(self, topic: str, key: bytes | None, value: bytes) -> bool:
        """Queue a message; False when the queue is full (nothing written)."""
        t = topic.encode()
        k = b"" if key is None else key
        size = _HEAD.size + len(t) + len(k) + len(value)
        if self.bytes + size > self.max_bytes:
            return False
        if self._w.tell() >= SEGMENT_BYTES:
            self._w.close()
            self._w_seg += 1
            self._w = open(self._path(self._w_seg), "ab", buffering=0)
        self._w.write(_HEAD.pack(len(value), len(t), 0xFFFF if key is None else len(k)) + t + k + value)
        self.pending += 1
        self.bytes += size
        return True

    def peek(self, n: int) -> list[tuple[str, bytes | None, bytes, tuple[int, int, int]]]:
        """Up to n messages from the head, not yet removed: (topic, key, value, position after it)."""
        if not self.pending:
            return []
        self._w.flush()
        out = []
        seg, pos = self._r_seg, self._r_pos
        while len(out) < n and seg <= self._w_seg:
            # read from the cursor on, a bounded chunk (not the whole segment on every call)
            base, data = pos, self._read(seg, pos, PEEK_BYTES)
            while len(out) < n and pos - base + _HEAD.size <= len(data):
                vlen, tlen, klen = _HEAD.unpack_from(data, pos - base)
                size = _HEAD.size + tlen + (0 if klen == 0xFFFF else klen) + vlen
                if pos - base + size > len(data):
                    if out or size <= PEEK_BYTES:
                        break  # the rest comes with the next peek
                    data = self._read(seg, base, pos - base + size)  # one message larger than a chunk
                    if pos - base + size > len(data):
                        break
                p = pos - base + _HEAD.size
                topic = data[p : p + tlen].decode()
                p += tlen
                key = None
                if klen != 0xFFFF:
                    key = data[p : p + klen]
                    p += klen
                value = data[p : p + vlen]
                pos += size
                out.append((topic, key, value, (seg, pos, size)))
            if len(out) < n:
                if pos - base < len(data) or base + len(data) < self._size(seg):
                    break  # stopped inside this segment: not at its end
                seg, pos = seg + 1, 0
        return out

    def consume(self, upto: tuple[int, int, int], messages: int, nbytes: int) -> None:
        """Remove the head up to a position peek() returned (``messages`` of ``nbytes`` bytes)."""
        seg, pos, _ = upto
        for s in range(self._r_seg, seg):
            self._path(s).unlink(missing_ok=True)
        self._r_seg, self._r_pos = seg, pos
        self.pending -= messages
        self.bytes -= nbytes
        if self.pending == 0 and self._r_seg == self._w_seg:
            # empty: start the tail segment afresh
            self._w.close()
            self._w = open(self._path(self._w_seg), "wb", buffering=0)
            self._r_pos = 0
        self._save_cursor()

    # ---------------------------------------------------------------- files

    def _read(self, seg: int, pos: int, n: int) -> bytes:
        path = self._path(seg)
        if not path.exists():
            return b""
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read(n)

    def _size(self, seg: int) -> int:
        path = self._path(seg)
        return path.stat().st_size if path.exists() else 0

    def _path(self, seg: int) -> Path:
        return self.dir / f"{seg:012d}.spill"

    def _segments(self) -> list[int]:
        return sorted(int(p.name.split(".")[0]) for p in self.dir.glob("*.spill"))

    def _read_in_flight(self) -> None:
        path = self.dir / "in-flight"
        try:
            self.crash_in_flight = int(path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            self.crash_in_flight = 0
        self._in_flight = open(path, "r+" if path.exists() else "w+")
        self._in_flight_n = -1
        self._record_in_flight(0)

    def _record_in_flight(self, n: int) -> None:
        if self._in_flight is None or n == self._in_flight_n:
            return
        self._in_flight_n = n
        # fixed width, one pwrite: no torn or stale digits, a few µs per change
        os.pwrite(self._in_flight.fileno(), f"{n:20d}\n".encode(), 0)

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(f"{self._r_seg} {self._r_pos}")
        os.replace(tmp, self.dir / "cursor")
