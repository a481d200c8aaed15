"""The command-line arguments of every sink command (argparse only).

`sflowpipe --help` and `sflowpipe SINK --help` build their parser from here without importing
the sinks themselves (Kafka clients, pyarrow, ClickHouse drivers): a command imports its module
when it runs. Each sink module re-exports its function under its old name.
"""

from __future__ import annotations

import argparse

SQL_FORMATS = {"table": "PrettyCompactMonoBlock", "json": "JSONEachRow", "csv": "CSVWithNames"}


def clickhouse_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="chdb:///path (embedded) or http://host:8123 (default: sinks.clickhouse.dsn)")
    parser.add_argument("--data-dir", help="embedded engine data directory (same as --dsn chdb:///DIR)")
    parser.add_argument("--no-sql-server", action="store_true",
                        help="do not serve `sflowpipe sql` on a local port (embedded engine only)")
    parser.add_argument("--migrate-only", action="store_true", help="apply migrations and exit")


def sql_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the SQL to run (tables live in database sinks.clickhouse.database)")
    parser.add_argument("--dsn", help="http://host:8123 or chdb:///path (default: sinks.clickhouse.dsn)")
    parser.add_argument("--data-dir", help="embedded engine data directory (through the running sink if any)")
    parser.add_argument("--format", choices=sorted(SQL_FORMATS), default="table")


def syslog_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", metavar="HOST:PORT", help="syslog receiver (setting sinks.syslog.address)")
    parser.add_argument("--transport", choices=["udp", "tcp", "tls"], help="setting sinks.syslog.transport")
    parser.add_argument("--format", dest="syslog_format", choices=["rfc5424", "rfc3164", "cef", "leef"],
                        help="setting sinks.syslog.format")
    parser.add_argument("--file", metavar="PATH", help="append lines to this file instead of sending")
    parser.add_argument("--topics", metavar="NAME[,NAME]", help="topic names before the prefix (default events)")
    parser.add_argument("--tls-ca-file", metavar="PEM", help="CA bundle that signed the receiver's certificate")
    parser.add_argument("--no-tls-verify", action="store_true", help="do not verify the receiver's certificate")
    parser.add_argument("--from-latest", action="store_true", help="a new consumer group starts at the end")
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="Kafka brokers (kafka.bootstrap_servers)")


def http_events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the endpoint: a key of the setting sinks.http")


def prometheus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (setting sinks.prometheus.listen, default "
                                                            "127.0.0.1:9344; 0.0.0.0:9344 exposes it)")
    parser.add_argument("--read-only", action="store_true",
                        help="no scrape defines a flow (setting sinks.prometheus.read_only)")
    parser.add_argument("--stale-seconds", type=float, default=60.0,
                        help="drop a series not updated for this long (default 60)")
    parser.add_argument("--prefix", default="", help="prefix of counter metric names (default none: sFlow-RT's)")
    parser.add_argument("--no-names", dest="names", action="store_false",
                        help="do not read counter samples for ifname/host labels")


def forward_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", action="append", metavar="HOST:PORT",
                        help="UDP collector (repeatable; default: setting sinks.forward.targets)")
    parser.add_argument("--spoof-source", action="store_true",
                        help="send with the original exporter as source (root/CAP_NET_RAW; "
                             "setting sinks.forward.spoof_source)")
    parser.add_argument("--hex", action="store_true", help="write one datagram per line as hex to stdout")
    parser.add_argument("--tls-to", action="append", metavar="HOST:PORT",
                        help="send octet-counted datagrams over TLS to `sflowpipe unhex --tls-listen`")
    parser.add_argument("--tls-ca", metavar="FILE", help="CA file verifying the receiver (default: system CAs)")
    parser.add_argument("--tls-insecure", action="store_true", help="do not verify the receiver's certificate")
    parser.add_argument("--tls-cert", metavar="FILE", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", metavar="FILE", help="client key (mutual TLS)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="a new consumer group starts at the oldest datagram (default: the newest)")
    parser.add_argument("--from-config", action="store_true",
                        help="also forward to the targets defined on the config topic (PUT /forwarding/NAME/json)")


def unhex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", action="append", required=True, metavar="HOST:PORT",
                        help="UDP collector to re-emit to (repeatable)")
    parser.add_argument("--tls-listen", metavar="HOST:PORT",
                        help="receive `forward --tls-to` over TLS instead of hex lines on stdin")
    parser.add_argument("--cert", metavar="FILE", help="server certificate (PEM) for --tls-listen")
    parser.add_argument("--key", metavar="FILE", help="server key (PEM) for --tls-listen")
    parser.add_argument("--client-ca", metavar="FILE", help="require client certificates signed by this CA")


def control_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--consumer-group", default="sflowpipe-control", metavar="GROUP",
                        help="consumer group over the events and flows topics (default sflowpipe-control)")
