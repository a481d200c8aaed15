"""The `sflowpipe` command: settings are built once here and handed to each subcommand.

Building the parser imports argparse-level modules only (`sflowpipe --help` and `SUB --help`
stay fast; tests/test_startup.py checks it): each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sflowpipe import __version__

if TYPE_CHECKING:
    from sflowpipe.settings import Settings


def _decode(args: argparse.Namespace, settings: Settings | None) -> int:
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
    if args.bench == "ingest":
        from bench import ingest as bench_ingest

        return bench_ingest.main(settings, args)
    if args.bench == "clickhouse":
        from bench import clickhouse as bench_clickhouse

        return bench_clickhouse.main(settings, args)
    if args.bench == "process":
        from bench import process as bench_process

        return bench_process.main(settings, args)
    if args.bench == "threshold":
        from bench import threshold as bench_threshold

        return bench_threshold.main(settings, args)
    if args.bench == "startup":
        from bench import startup as bench_startup

        return bench_startup.main(args)
    if args.bench == "avro":
        from bench import avro as bench_avro

        return bench_avro.main(args)
    from bench import decode as bench_decode

    return bench_decode.main(args)


def _wiring(settings: Settings):
    """This process's one Kafka client factory and one codec (sflowpipe/kafka.py), built here and
    handed to the command's components: none builds its own client configuration or picks a framing."""
    from sflowpipe.kafka import wiring

    return wiring(settings)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import service

    if not args.embedded_broker:
        clients, codec = _wiring(settings)
        return service.run(settings, clients=clients, codec=codec)
    from sflowpipe.broker import EmbeddedBroker, free_port
    from sflowpipe.net import parse_hostport

    # the first bootstrap address (no port: 9092, as librdkafka reads it), where the clients will
    # look; a bad one is the command's one-line error (it used to be dropped for a free port, unsaid)
    host, port = parse_hostport(settings.kafka.bootstrap_servers.split(",")[0].strip(), 9092, "127.0.0.1",
                                what="broker address")
    try:
        broker = EmbeddedBroker(port=port, host=f"[{host}]" if ":" in host else host)  # Tansu's URL brackets IPv6
        broker.start(timeout=15)
    except RuntimeError:  # that port is taken: any free one (the clients are told which)
        broker = EmbeddedBroker(port=free_port())
        broker.start()
    print(f"embedded Kafka-compatible broker (Tansu, in-memory storage: data is gone when it stops) "
          f"on {broker.bootstrap}", file=sys.stderr)
    try:
        settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"bootstrap_servers": broker.bootstrap})})
        clients, codec = _wiring(settings)
        return service.run(settings, clients=clients, codec=codec)
    finally:
        broker.stop()


def _process(args: argparse.Namespace, settings: Settings) -> int:
    import sys as _sys

    from processors import app as processors_app

    if args.definitions:
        settings = settings.model_copy(update={"processors": settings.processors.model_copy(
            update={"definitions_file": args.definitions})})
    fault = _definitions_fault(settings)
    if fault:
        print(f"sflowpipe process: {fault}", file=sys.stderr)
        return 2
    workers = settings.processors.workers
    if workers > 1 and args.worker_index == 0 and not args.single:
        return _process_workers(args, workers)
    _sys.argv = [_sys.argv[0], "worker"]  # Faust's Worker parses the command line
    clients, codec = _wiring(settings)
    return processors_app.run(settings, args.worker_index, clients, codec)


def _definitions_fault(settings: Settings) -> str | None:
    """Why the start-up definitions (settings, the definitions file) cannot be used, or None:
    checked with the workers' compiler before anything connects, so a bad file is one line at once."""
    from sflowpipe.config_plane import DefinitionError, startup_definitions

    try:
        startup_definitions(settings)
    except DefinitionError as e:
        where = settings.processors.definitions_file or "settings"
        at = f" (at {e.detail['position']} of {e.detail['field']})" if "position" in e.detail else ""
        return f"{where}: {e}{at}"
    except Exception as e:  # the file: unreadable, or not YAML (yaml is imported only with a file)
        import yaml

        if isinstance(e, (OSError, yaml.YAMLError)):
            return f"definitions file: {e}"
        raise
    return None


def _process_workers(args: argparse.Namespace, workers: int) -> int:
    """N Faust workers on this host, each its own process (web port and data dir by index)."""
    import signal
    import subprocess

    base = [sys.executable, "-m", "sflowpipe.cli"] + (["--config", args.config] if args.config else []) + ["process"]
    if args.definitions:
        base += ["--definitions", args.definitions]
    if args.bootstrap_servers:
        base += ["--bootstrap-servers", args.bootstrap_servers]
    procs = [subprocess.Popen(base + ["--worker-index", str(i), "--single"]) for i in range(workers)]

    def forward(sig, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [p.wait() for p in procs]
    return 0 if all(c == 0 for c in codes) else 1


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from sflowpipe import up

    return up.run(args, settings)


def _definitions(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from sflowpipe.config_plane import DefinitionError, check_caps, file_definitions, parse, publish

    clients, _ = _wiring(settings)
    if args.action == "apply":
        data = yaml.safe_load(open(args.file)) or {}
        todo = file_definitions(data)
        faults = []
        for kind, name, body in todo:  # all or nothing: check every definition before publishing one
            try:
                parse(kind, name, body)
            except DefinitionError as e:
                faults.append(f"{args.file}: {e}" + (f" (at {e.detail['position']} of {e.detail['field']})"
                                                     if "position" in e.detail else ""))
        try:
            check_caps(settings.limits, todo)
        except DefinitionError as e:
            faults.append(f"{args.file}: {e}")
        if faults:
            print("\n".join(faults) + "\nnothing published", file=sys.stderr)
            return 2
        for kind, name, body in todo:
            publish(settings, kind, name, body, clients=clients)
        print(f"published {len(todo)} definitions to {settings.kafka.topic(settings.topics.config)}")
    else:
        publish(settings, args.kind, args.name, None, clients=clients)
        print(f"deleted {args.kind} {args.name}")
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import replay

    return replay.run(args, settings, *_wiring(settings))


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import tail

    return tail.run(args, settings, *_wiring(settings))


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import generate

    return generate.run(args, settings)


def _kafka_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="Kafka brokers (setting kafka.bootstrap_servers)")


def _lazy(module: str, fn: str, uses_kafka: bool = True):
    """A subcommand handler importing its module only when run (given this process's Kafka clients
    and codec when it uses Kafka)."""
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        import importlib

        run = getattr(importlib.import_module(module), fn)
        return run(settings, args, *_wiring(settings)) if uses_kafka else run(settings, args)
    return handler


# sink subcommands: (name, help, module, add-arguments function in sinks/args.py or api/args.py
# (argparse only), run function, takes --bootstrap-servers)
SINK_COMMANDS = (
    ("clickhouse", "flow samples, counters, metrics, flows and events into ClickHouse",
     "sinks.clickhouse", "sinks.args:clickhouse_arguments", "run", True),
    ("sql", "run a SQL query on the ClickHouse database (server or embedded directory)",
     "sinks.clickhouse", "sinks.args:sql_arguments", "run_sql", False),
    ("syslog", "events (and flows) to syslog RFC 5424/3164 over UDP/TCP/TLS, CEF/LEEF",
     "sinks.syslog", "sinks.args:syslog_arguments", "run", False),  # adds its own --bootstrap-servers
    ("http-events", "events to Loggly, Splunk HEC, Elastic or a JSON webhook",
     "sinks.http_events", "sinks.args:http_events_arguments", "run", True),
    ("prometheus", "Prometheus exporter of counter metrics and top flows",
     "sinks.prometheus", "sinks.args:prometheus_arguments", "run", True),
    ("forward", "re-send raw sFlow datagrams to other collectors (UDP, hex, TLS)",
     "sinks.forward", "sinks.args:forward_arguments", "run", True),
    ("api", "the sFlow-RT compatible REST API and the web UI (port 8008)",
     "api.service", "api.args:api_arguments", "run", True),
    ("unhex", "re-emit datagrams from `forward --hex` (stdin) or `forward --tls-to` over UDP",
     "sinks.forward", "sinks.args:unhex_arguments", "run_unhex", False),
    ("control", "block flows a threshold reports (HTTP controller, BGP, dry run), release them when gone",
     "sinks.control.service", "sinks.args:control_arguments", "run", True),
)


def _add_sinks(sub) -> None:
    import importlib

    for name, help_text, module, add, run, kafka in SINK_COMMANDS:
        p = sub.add_parser(name, help=help_text)
        args_module, _, function = add.partition(":")
        getattr(importlib.import_module(args_module), function)(p)
        if kafka:
            _kafka_option(p)
        p.set_defaults(func=_lazy(module, run, uses_kafka=name not in ("sql", "unhex")))


def build_parser(only_decode: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``only_decode``: the global options and `decode` alone (its start-up
    is part of every `decode -r` run, the sflowtool drop-in's, and the other commands' parsers cost ~13 ms)."""
    parser = argparse.ArgumentParser(prog="sflowpipe", description="sFlow v5 analytics on a Kafka stream pipeline.")
    parser.add_argument("--version", action="version", version=f"sflowpipe {__version__}")
    parser.add_argument("--config", metavar="FILE", help="YAML settings file")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings and exit")
    parser.add_argument("--debug", action="store_true", help="on failure, print the traceback too")
    # `sflowpipe up` gives the stages that serve no port of their own a /health endpoint (loopback)
    parser.add_argument("--health-port", type=int, metavar="PORT", help=argparse.SUPPRESS)
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
    if only_decode:
        return parser

    p = sub.add_parser("ingest", help="receive sFlow on UDP and publish it, decoded, to Kafka",
                       description="Stateless UDP ingester: decode sFlow, publish Avro batches to Kafka.")
    p.add_argument("--listen", metavar="HOST:PORT", help="UDP address (setting ingest.listen, default [::]:6343)")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--metrics-listen", metavar="HOST:PORT", help="Prometheus endpoint (default 127.0.0.1:9343)")
    p.add_argument("--embedded-broker", action="store_true",
                   help="start a local in-memory Kafka-compatible broker (Tansu) for this run")
    _kafka_option(p)
    p.set_defaults(func=_ingest)

    p = sub.add_parser("process", help="run a Faust worker: flows, top-N, thresholds, events, counter metrics, "
                                        "enrichment", description="Stream processors (faust-streaming).")
    p.add_argument("--definitions", metavar="FILE.yaml", help="flows:, thresholds:, groups: (setting "
                                                               "processors.definitions_file)")
    p.add_argument("--worker-index", type=int, default=0, help="distinct per worker on one host (web port, data dir)")
    p.add_argument("--workers", type=int, metavar="N", help="run N worker processes (setting processors.workers)")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    _kafka_option(p)
    p.set_defaults(func=_process)

    p = sub.add_parser("up", help="the whole pipeline on this machine (broker, ingest, processors, sinks, API and "
                                  "web UI on 8008) until Ctrl-C",
                       description="Run everything on embedded defaults: Tansu broker, ingest, Faust workers, "
                                   "ClickHouse (chDB), sinks, REST API and web UI.")
    from sflowpipe import up_args

    up_args.add_arguments(p)
    p.set_defaults(func=_up)

    p = sub.add_parser("definitions", help="publish flow/threshold/group definitions to the config topic (live)")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    da = dsub.add_parser("apply", help="publish every definition of a YAML file")
    da.add_argument("file", metavar="FILE.yaml")
    _kafka_option(da)
    dd = dsub.add_parser("delete", help="delete one definition")
    dd.add_argument("kind", choices=["flow", "threshold", "group", "topology"])
    dd.add_argument("name")
    _kafka_option(dd)
    p.set_defaults(func=_definitions)

    p = sub.add_parser("replay", help="send a capture's sFlow over UDP, or publish it straight to Kafka")
    p.add_argument("file", metavar="FILE.pcap")
    p.add_argument("--to", required=True, metavar="HOST:PORT|kafka", help="UDP destination, or 'kafka'")
    p.add_argument("--speed", type=float, default=1.0,
                   help="time factor vs the capture's timing (2 = twice as fast, 0 = as fast as possible)")
    p.add_argument("--rate", type=float, default=0, help="send at this many datagrams/s instead")
    p.add_argument("--loop", type=int, default=1, help="send the capture this many times")
    p.add_argument("--keep-timestamps", action="store_true", help="--to kafka: receive time = capture time")
    _kafka_option(p)
    p.set_defaults(func=_replay)

    p = sub.add_parser("tail", help="print the records of a topic as JSON lines (one per sample)")
    p.add_argument("topic", metavar="TOPIC", help="topic name, with or without the prefix (e.g. flow-samples)")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument("--max", type=int, default=0, metavar="N", help="stop after N samples (messages with --batches)")
    p.add_argument("--batches", action="store_true", help="print whole messages, not one line per sample")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="stop after S seconds without messages")
    _kafka_option(p)
    p.set_defaults(func=_tail)

    p = sub.add_parser("generate", help="emit synthetic sFlow (agents, interfaces, flows incl. elephants, counters)")
    p.add_argument("--to", default="127.0.0.1:6343", metavar="HOST:PORT")
    p.add_argument("--agents", type=int, default=2)
    p.add_argument("--interfaces", type=int, default=8)
    p.add_argument("--sampling-rate", type=int, default=1000)
    p.add_argument("--samples-per-datagram", type=int, default=6)
    p.add_argument("--counter-interval", type=float, default=5.0, help="seconds between counter samples")
    p.add_argument("--elephants", type=int, default=3, help="elephant flows in the mix")
    p.add_argument("--rate", type=float, default=200, help="datagrams per second (0: as fast as possible)")
    p.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C or --count)")
    p.add_argument("--count", type=int, default=0, help="datagrams to send (0: unlimited)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flood-target", metavar="IP", help="add a DNS-amplification flood (UDP from port 53) to IP")
    p.add_argument("--flood-after", type=float, default=0, metavar="S", help="seconds of normal traffic first")
    p.add_argument("--flood-duration", type=float, default=0, metavar="S", help="flood seconds (0: until the end)")
    p.set_defaults(func=_generate)

    _add_sinks(sub)

    b = sub.add_parser("bench", help="benchmarks (decode, avro, ingest, process, threshold, clickhouse, startup)")
    bsub = b.add_subparsers(dest="bench", metavar="WHAT", required=True)
    bd = bsub.add_parser("decode", help="decode -j vs sflowtool -j (whole processes) and in-process samples/s")
    bd.add_argument("--capture", action="append", metavar="FILE|TEXT",
                    help="a capture file, or only the shared captures (and 'router-mix') whose name contains "
                         "TEXT; repeatable (default: every shared capture and the router mix)")
    bd.add_argument("--sflowtool", default="sflowtool", metavar="PATH",
                    help="the sflowtool binary to compare with (default: sflowtool on PATH)")
    bd.add_argument("--no-sflowtool", action="store_true", help="sflowpipe figures only")
    bd.add_argument("--rounds", type=int, default=3, help="timed runs of each command line per input (default 3)")
    bd.add_argument("--min-seconds", type=float, default=0.5,
                    help="repeat each input until sflowtool (else sflowpipe) takes this much CPU (default 0.5)")
    ba = bsub.add_parser("avro", help="Avro batch layouts and codecs: encode/decode µs per sample")
    ba.add_argument("--capture", default=None)
    bi = bsub.add_parser("ingest", help="UDP -> one ingester process -> local broker: CPU per flow sample beside "
                                        "sflowtool's, lossless rate beside the baseline revision's")
    bi.add_argument("--capture", default=None)
    bi.add_argument("--rate", type=float, default=0, help="datagrams/s to send (0: step up to the lossless rate)")
    bi.add_argument("--start-rate", type=float, default=2000, help="first step, datagrams/s (default 2000)")
    bi.add_argument("--step", type=float, default=1.3, help="each step's rate over the last (default 1.3)")
    bi.add_argument("--max-rate", type=float, default=40000, help="last step, datagrams/s (default 40000)")
    bi.add_argument("--seconds", type=float, default=1.5, help="seconds of datagrams per step (default 1.5)")
    bi.add_argument("--sflowtool", default="sflowtool", help="sflowtool binary to compare with (default: on PATH)")
    bi.add_argument("--sflowtool-datagrams", type=int, default=20_000,
                    help="datagrams in the pcap sflowtool reads (default 20000)")
    bi.add_argument("--baseline", default=None, metavar="REV",
                    help="git revision the baseline ingester runs (default: bench/baseline.py's, before issue 16)")
    _kafka_option(bi)
    bp = bsub.add_parser("process", help="one Faust worker, 3 flows + 1 threshold: flow samples/s, profile")
    bp.add_argument("--capture", default=None)
    bp.add_argument("--samples", type=int, default=200_000, help="flow samples in the backlog")
    bp.add_argument("--baseline", default=None, metavar="REV",
                    help="also run the worker of this git revision, alternating, and print the ratio "
                         "(default: bench/baseline.py DEFAULT_BASELINE; '': none)")
    bp.add_argument("--rounds", type=int, default=2, help="runs of each worker, alternating (default 2)")
    bp.add_argument("--worker-profile", default=None, metavar="FILE",
                    help="run this checkout's worker under cProfile, its stats written to FILE (pstats)")
    _kafka_option(bp)
    bt = bsub.add_parser("threshold", help="one Faust worker at --rate flow samples/s: delay from traffic over "
                                           "a threshold to its event on the events topic")
    bt.add_argument("--capture", default=None, help="the background traffic (default the overflowd capture)")
    bt.add_argument("--rate", type=float, default=50_000, help="flow samples/s (default 50000)")
    bt.add_argument("--over", type=float, default=4.0, help="the new flow's rate, times the threshold (default 4)")
    bt.add_argument("--warmup-max", type=float, default=40.0, help="seconds to wait for the worker to keep up")
    bt.add_argument("--watch", type=float, default=10.0, help="seconds after the step to wait for the event")
    bt.add_argument("--baseline", default="", metavar="REV", help="also measure the worker of this git revision first")
    _kafka_option(bt)
    bc = bsub.add_parser("clickhouse", help="the ClickHouse sink into embedded chDB: flow-sample rows/s")
    bc.add_argument("--samples", type=int, default=200_000)
    bc.add_argument("--partitions", type=int, default=1)
    bc.add_argument("--consumer-option", action="append", default=[], metavar="K=V")
    _kafka_option(bc)
    bs = bsub.add_parser("startup", help="own start-up time of --help, each command's --help, decode -r, settings")
    bs.add_argument("--runs", type=int, default=5, help="runs of each command line (median; default 5)")
    bs.add_argument("--capture", default=None, help="the capture decode -r reads (default a 1-datagram one)")
    b.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(only_decode=argv[:1] == ["decode"])
    args = parser.parse_args(argv)
    overrides = {}
    if getattr(args, "port", None):
        overrides["decode.port"] = args.port
    # `up --workers` counts Faust workers, as `process --workers` does
    workers_key = "processors.workers" if args.command in ("process", "up") else "ingest.workers"
    for attr, key in (("bootstrap_servers", "kafka.bootstrap_servers"), ("listen", "ingest.listen"),
                      ("workers", workers_key), ("metrics_listen", "ingest.metrics_listen")):
        if getattr(args, attr, None):
            overrides[key] = getattr(args, attr)
    if args.command == "decode" and args.read and not args.print_config:
        # a capture, decoded like sflowtool, reads no setting: start as fast as sflowtool does
        # (the settings model and pydantic cost more than decoding a small file)
        return _run(args, None)
    from sflowpipe.settings import load_settings

    try:
        settings = load_settings(args.config, **overrides)
    except Exception as e:  # SettingsError (one line naming the key), or anything unforeseen
        print(f"sflowpipe: invalid settings: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.print_config:
        import json

        from sflowpipe.secrets import mask

        print(json.dumps(mask(settings.model_dump(mode="python")), indent=2, default=str))
        return 0
    if not args.command:
        parser.print_help()
        return 0
    import logging

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.health_port:
        from sflowpipe.health import HealthServer

        HealthServer("127.0.0.1", args.health_port).start()  # a daemon thread: ends with the command
    if args.command in ("api", "prometheus"):  # they serve the start-up definitions too
        fault = _definitions_fault(settings)
        if fault:
            print(f"sflowpipe {args.command}: {fault}", file=sys.stderr)
            return 2
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    try:
        return args.func(args, settings)
    except (KeyboardInterrupt, SystemExit, BrokenPipeError):
        raise
    except Exception as e:  # one line naming the problem; the traceback only with --debug
        if args.debug:
            raise
        print(f"sflowpipe {args.command}: {failure_line(e)}", file=sys.stderr)
        return 1


def failure_line(err: BaseException) -> str:
    """Why a command failed, as one line: the file or address it names, without a traceback."""
    from sflowpipe.kafka import one_line

    if isinstance(err, OSError) and err.filename:
        text = f"{err.filename}: {err.strerror or err}"
    elif isinstance(err, OSError) and err.strerror:
        text = err.strerror
    elif type(err).__module__.startswith(("confluent_kafka", "cimpl")):
        text = f"Kafka: {one_line(err)}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
