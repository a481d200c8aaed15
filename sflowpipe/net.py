"""Network addresses as the settings and the command line write them: ``HOST:PORT``.

One parser for every listener and target (UDP ingest, HTTP listeners, forwarding targets, syslog
receivers); each caller says which parts may be left out and what they default to.
"""

from __future__ import annotations

__all__ = ["parse_hostport"]


def parse_hostport(text: str, default_port: int | None = None, default_host: str | None = None,
                   what: str = "address") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` or ``:PORT`` as ``(host, port)``; a bare IPv6 address
    (``::1``: more than one colon, no brackets) is a host without a port.

    A missing port is ``default_port`` and a missing host ``default_host``; where the caller gives
    no default that part is required. A bare IPv6 address where a port is required is refused
    rather than guessed at (is ``2001:db8::1:80`` port 80?). The port must be 0-65535. Errors are
    ValueError naming ``what`` and the text (the command's one-line error)."""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"bad {what} {text!r}: expected [IPv6]:PORT")
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif text.count(":") > 1 and default_port is None:
        raise ValueError(f"bad {what} {text!r}: write an IPv6 address with a port as [IPv6]:PORT")
    else:  # a host name, an IPv4 address or a bare IPv6 address: no port
        host, port = text, ""
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ValueError(f"bad {what} {text!r}: the port must be a number 0-65535")
    if not port and default_port is None:
        raise ValueError(f"bad {what} {text!r}: expected HOST:PORT")
    if not host and default_host is None:
        raise ValueError(f"bad {what} {text!r}: expected HOST:PORT (a host is required)")
    return host or str(default_host), int(port) if port else int(default_port)  # type: ignore[arg-type]
