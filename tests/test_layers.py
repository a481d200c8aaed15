"""The layers, checked from the source: every module's imports (lazy ones in functions too) point
down, never up or sideways.

    sflowpipe/cli.py, up.py, up_args.py      the composition root: may import anything
    ingest/  processors/  sinks/  api/       services: themselves and everything below
    sflowpipe/ (the rest)                    the shared layer: config plane, read models, helpers
    schemas/                                 wire format
    ingest/sflow/                            the decoder's pure model: imports nothing of the project

bench/ and tests/ are exempt. A new package or composition module must be placed here, so that
the rule stays a rule and not a list of exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "processors", "sinks", "api", "schemas", "sflowpipe")
COMPOSITION = {"sflowpipe.cli", "sflowpipe.up", "sflowpipe.up_args", "sflowpipe.app", "sflowpipe.commands"}  # and modules below them
SERVICES = ("ingest", "processors", "sinks", "api")
DECODER = "ingest.sflow"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer(module: str) -> str:
    """The layer (or, for a service, the service) a module belongs to."""
    if _within(module, DECODER):
        return "decoder"
    if any(_within(module, c) for c in COMPOSITION):
        return "composition"
    top = module.split(".")[0]
    if top == "sflowpipe":
        return "shared"
    return top  # a service, or schemas


def allowed(importer: str, imported: str) -> bool:
    """May ``importer`` import ``imported`` (both project modules)?"""
    src, dst = layer(importer), layer(imported)
    if src == "composition" or src == dst:
        return True
    if src == "decoder":
        return False  # the bottom: nothing of the project but itself
    if src == "schemas":
        return dst == "decoder"
    if src == "shared":
        return dst in ("schemas", "decoder")
    if src in SERVICES:
        return dst in ("shared", "schemas", "decoder")
    raise AssertionError(f"{importer}: no layer rule for {src!r}")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) of every import of a project module in the file, at any depth (a lazy import
    in a function counts); ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            names = [base_name]
            for a in node.names:
                sub = f"{base_name}.{a.name}"
                if _is_module(sub, root):
                    names.append(sub)
        else:
            continue
        out += [(node.lineno, n) for n in names if n.split(".")[0] in PACKAGES]
    return out


def _is_module(name: str, root: Path) -> bool:
    p = root.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_import_points_down():
    wrong = [f"{p.relative_to(ROOT)}:{line}: {module_name(p)} ({layer(module_name(p))}) imports {name} "
             f"({layer(name)})"
             for p in source_files() for line, name in project_imports(p)
             if not allowed(module_name(p), name)]
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_no_module_imports_another_modules_private_name():
    """``from a.b import _name`` reaches into another module's insides: make the name public or
    move the thing down. A private module (``_common``) holds its package's shared internals: its
    names are for the package's modules, so importing them is how it is meant to be used."""
    wrong = []
    for p in source_files():
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES \
                    and not _package_internal(node.module, module_name(p)):
                wrong += [f"{p.relative_to(ROOT)}:{node.lineno}: {a.name} from {node.module}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not wrong, "private names imported from other modules:\n" + "\n".join(wrong)


def _package_internal(module: str, importer: str) -> bool:
    """``module`` is a private module of the package ``importer`` is in."""
    package, _, name = module.rpartition(".")
    return name.startswith("_") and _within(importer, package)


@pytest.mark.parametrize("importer,imported,ok", [
    ("api.state", "sinks.prometheus", False),  # sideways: a service reaching into another
    ("sinks.prometheus", "processors.config", False),
    ("api.state", "sflowpipe.readmodels.exporter", True),
    ("sflowpipe.readmodels.exporter", "sinks.prometheus", False),  # shared importing a service: up
    ("sflowpipe.config_plane", "sflowpipe.cli", False),  # shared importing the composition root: up
    ("sflowpipe.cli", "sinks.prometheus", True),
    ("schemas.examples", "ingest.batches", False),
    ("schemas.definitions", "ingest.sflow.model", True),
    ("ingest.sflow.datagram", "schemas.codec", False),  # the decoder's model is the bottom
    ("ingest.batches", "ingest.sflow.model", True),
    ("ingest.sflow.model", "sflowpipe.names", False),
    ("processors.engine", "ingest.sflow.layout", True),
    ("processors.engine", "ingest.batches", False),
])
def test_the_rule_itself(importer, imported, ok):
    assert allowed(importer, imported) is ok


def test_lazy_and_relative_imports_are_seen(tmp_path):
    src = tmp_path / "api" / "lazy.py"
    (tmp_path / "sinks").mkdir()
    (tmp_path / "sinks" / "prometheus.py").write_text("")
    src.parent.mkdir()
    src.write_text("from . import state\n\ndef f():\n    from sinks import prometheus\n    return prometheus\n")
    found = project_imports(src, tmp_path)
    assert (1, "api") in found and (4, "sinks") in found and (4, "sinks.prometheus") in found
    assert not allowed(module_name(src, tmp_path), "sinks.prometheus")
