"""The `sflowpipe` command: settings are built once here and handed to each subcommand."""

from __future__ import annotations

import argparse
import json
import sys

from sflowpipe import __version__
from sflowpipe.settings import Settings, load_settings


def _decode(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import decode

    if args.output == "json" and args.style != "text":
        raise SystemExit("--format json cannot be combined with -j/-J/-l/-g")
    output = "typed" if args.output == "json" else args.style
    if args.read:
        if args.read == "-":
            source = decode.from_capture(sys.stdin.buffer)
        else:
            f = open(args.read, "rb")
            source = decode.from_capture(f)
        return _guard(lambda: decode.run(source, output, sys.stdout.buffer, flush_each=False))
    port = args.port or settings.decode.port
    source = decode.from_socket(settings.decode.listen_address, port)
    print(f"listening for sFlow on UDP [{settings.decode.listen_address}]:{port}", file=sys.stderr)
    return _guard(lambda: decode.run(source, output, sys.stdout.buffer, flush_each=True))


def _guard(fn) -> int:
    try:
        fn()
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error
        sys.stderr.close()
        return 0
    except ValueError as e:  # a capture this reader does not understand
        print(f"sflowpipe decode: {e}", file=sys.stderr)
        return 2
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from bench import decode as bench_decode

    return bench_decode.main(args.capture, args.datagrams, args.sflowtool)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sflowpipe", description="sFlow v5 analytics on a Kafka stream pipeline.")
    parser.add_argument("--version", action="version", version=f"sflowpipe {__version__}")
    parser.add_argument("--config", metavar="FILE", help="YAML settings file")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("decode", help="decode sFlow like sflowtool (pcap/pcapng file or live UDP)",
                       description="Decode sFlow v5 datagrams; output compatible with sflowtool.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("-r", "--read-pcap", dest="read", metavar="FILE", help="read a pcap/pcapng capture ('-' = stdin)")
    src.add_argument("-p", "--port", type=int, metavar="PORT", help="listen on this UDP port (default 6343)")
    style = p.add_mutually_exclusive_group()
    style.add_argument("-j", "--json", dest="style", action="store_const", const="json",
                       help="sflowtool JSON, one object per datagram per line")
    style.add_argument("-J", "--json-indented", dest="style", action="store_const", const="pretty",
                       help="sflowtool JSON, pretty-printed")
    style.add_argument("-l", "--line", dest="style", action="store_const", const="line",
                       help="sflowtool FLOW/CNTR CSV lines")
    style.add_argument("-g", "--grep", dest="style", action="store_const", const="grep",
                       help="sflowtool grep-friendly lines")
    p.add_argument("--format", dest="output", choices=["sflowtool", "json"], default="sflowtool",
                   help="'json': sflowpipe's typed JSON (numbers as numbers) straight from the data model")
    p.set_defaults(style="text", func=_decode)

    b = sub.add_parser("bench", help="benchmarks (decode)")
    bsub = b.add_subparsers(dest="bench", metavar="WHAT", required=True)
    bd = bsub.add_parser("decode", help="decoder speed: datagrams/s and samples/s")
    bd.add_argument("--capture", default=None, help="capture to repeat (default ../shared/captures/overflowd__sflow.pcap)")
    bd.add_argument("--datagrams", type=int, default=100_000, help="datagrams to decode (default 100000)")
    bd.add_argument("--sflowtool", default="sflowtool", help="sflowtool binary to compare with, if on PATH")
    b.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {}
    if getattr(args, "port", None):
        overrides["decode.port"] = args.port
    try:
        settings = load_settings(args.config, **overrides)
    except Exception as e:  # pydantic's ValidationError, YAML errors, a missing file
        print(f"sflowpipe: invalid settings: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return 0
    if not args.command:
        parser.print_help()
        return 0
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
