"""The UDP receiving end: one SO_REUSEPORT socket with a large receive buffer.

Any number of these (processes, hosts) can share a port; the kernel spreads datagrams over the
sockets by source address and port. Kernel-side drops (receive buffer overflow) are read from
/proc/net/udp and /proc/net/udp6 for this socket.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)


def bind_error(proto: str, host: str, port: int, err: OSError) -> OSError:
    """A bind failure naming the address (the CLI prints it as the command's one line)."""
    what = err.strerror or str(err)
    return OSError(err.errno, f"cannot listen on {proto} [{host}]:{port}: {what}")


class UdpReceiver:
    """Owns one UDP socket bound with SO_REUSEPORT."""

    def __init__(self, host: str, port: int, rcvbuf: int) -> None:
        self.host, self.port, self.rcvbuf = host, port, rcvbuf
        self.sock: socket.socket | None = None
        self.granted_rcvbuf = 0
        self._inode = 0

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        if hasattr(socket, "SO_RCVBUFFORCE"):
            try:  # beyond net.core.rmem_max when privileged
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUFFORCE, self.rcvbuf)
            except OSError:
                pass
        # Linux reports twice the usable size (bookkeeping overhead included)
        self.granted_rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise bind_error("UDP", self.host, self.port, e) from None
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.sock = sock
        self._inode = os.fstat(sock.fileno()).st_ino
        log.info("listening on UDP [%s]:%d, SO_RCVBUF requested %d, granted %d",
                 self.host, self.port, self.rcvbuf, self.granted_rcvbuf)

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for this socket (receive buffer full)."""
        for name in ("/proc/net/udp6", "/proc/net/udp"):
            p = Path(name)
            if not p.exists():
                continue
            for line in p.read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 13 and cols[9] == str(self._inode):
                    return int(cols[-1])
        return 0
