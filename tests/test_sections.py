"""Each component takes its own settings section (issue 13), checked from the source: no class in
the services or the shared layer takes the whole ``Settings`` in its constructor. The composition
root (sflowpipe/cli.py, up.py) and each command's ``run(settings, args, ...)`` entry unpack it and
hand a component its section (``ClickHouseSettings``...), the topic names it reads and writes, and
its collaborators (the KafkaClients, the Codec). A module-level function taking ``Settings`` is
either such an entry (``run``, ``run_*``) or listed below with why.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("ingest", "processors", "sinks", "api", "schemas", "sflowpipe")
COMPOSITION = {"sflowpipe/cli.py", "sflowpipe/up.py", "sflowpipe/up_args.py", "sflowpipe/app.py"}

# Constructors that still take the whole Settings: none. A class added here must say why.
CONSTRUCTOR_ALLOW: dict[str, str] = {}

# Functions (not command entries) that take the whole Settings, and why.
FUNCTION_ALLOW = {
    # the processor worker's composition: its Faust agents are closures over the parts it builds
    # (Enricher, Engine, ConfigWatcher, GapFiller: each given its section) from kafka, topics,
    # processors, enrich, limits and the start-up definitions
    "processors/app.py:make_app": "the worker's composition",
    "ingest/service.py:_worker_main": "a spawned ingest worker's entry (run's, in another process)",
    # the start-up definitions come from processors.flows/thresholds, enrich.groups, the
    # definitions file and limits; publish is the CLI's `define`
    "sflowpipe/config_plane.py:startup_definitions": "reads four sections by design",
    "sflowpipe/config_plane.py:publish": "the CLI's one-shot write; components use publish_to",
    "sflowpipe/kafka.py:wiring": "builds the KafkaClients and Codec of a process",
    # a command's helpers, called by its run() only: settings plus command-line flags
    "ingest/tail.py:resolve_topic": "`sflowpipe tail`",
    "sinks/syslog.py:resolve": "`sflowpipe syslog` flags over sinks.syslog",
    "sinks/http_events.py:build": "`sflowpipe http-events NAME`: which endpoint of sinks.http",
    "sinks/forward.py:build_sinks": "`sflowpipe forward` flags over sinks.forward",
    "sinks/clickhouse/sink.py:effective_settings": "`sflowpipe clickhouse` flags over sinks.clickhouse",
    "sinks/clickhouse/sql.py:execute": "`sflowpipe sql`",
}


def names_settings(annotation: ast.expr | None) -> bool:
    """The annotation is the whole Settings: ``Settings``, ``Settings | None``, ``"Settings"``,
    ``settings.Settings``, ``Optional[Settings]``."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    return any((isinstance(n, ast.Name) and n.id == "Settings") or (isinstance(n, ast.Attribute) and n.attr == "Settings")
               for n in ast.walk(annotation))


def takes_settings(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = fn.args
    return any(names_settings(p.annotation) for p in a.posonlyargs + a.args + a.kwonlyargs)


def whole_settings(path: Path, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(constructors, module-level functions) of ``path`` taking the whole Settings, as rel/path.py:Name."""
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(), str(path))
    constructors, functions = [], []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            constructors += [f"{rel}:{node.name}" for f in node.body
                             if isinstance(f, ast.FunctionDef) and f.name == "__init__" and takes_settings(f)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and takes_settings(node):
            functions.append(f"{rel}:{node.name}")
    return constructors, functions


def scanned_files() -> list[Path]:
    return sorted(p for pkg in SCANNED for p in (ROOT / pkg).rglob("*.py")
                  if p.relative_to(ROOT).as_posix() not in COMPOSITION)


def test_no_component_takes_the_whole_settings():
    found = [c for p in scanned_files() for c in whole_settings(p)[0] if c not in CONSTRUCTOR_ALLOW]
    assert not found, ("give these constructors their own section and collaborators (see "
                       "tests/test_sections.py):\n" + "\n".join(found))


def test_only_entries_and_listed_helpers_take_the_whole_settings():
    found = [f for p in scanned_files() for f in whole_settings(p)[1]
             if f not in FUNCTION_ALLOW and not f.rpartition(":")[2].startswith("run")]
    assert not found, "take sections, or list the function in FUNCTION_ALLOW with why:\n" + "\n".join(found)


def test_allow_lists_name_what_exists():
    """A converted function leaves the list: an entry naming nothing would hide a new one."""
    everything = {x for p in scanned_files() for part in whole_settings(p) for x in part}
    assert set(CONSTRUCTOR_ALLOW) | set(FUNCTION_ALLOW) <= everything


def test_the_scan_sees_each_spelling(tmp_path):
    src = tmp_path / "sinks" / "x.py"
    src.parent.mkdir()
    src.write_text("from sflowpipe import settings as s\n"
                   "class A:\n    def __init__(self, settings: Settings) -> None: ...\n"
                   "class B:\n    def __init__(self, x, *, settings: 'Settings | None' = None): ...\n"
                   "class C:\n    def __init__(self, s: s.Settings): ...\n"
                   "class D:\n    def __init__(self, cfg: ClickHouseSettings, kafka: KafkaSettings): ...\n"
                   "def run(settings: Settings): ...\n")
    assert whole_settings(src, tmp_path) == (["sinks/x.py:A", "sinks/x.py:B", "sinks/x.py:C"], ["sinks/x.py:run"])
