"""Every benchmark module imports and its command parses: benchmarks are not timed tests, but a
benchmark that cannot start is a defect found too late (merging two reshaped benchmarks once left
`bench ingest`, `avro` and `process` importing a name `bench/decode.py` no longer had)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from bench import baseline

# every benchmark is a module of bench/ and a `sflowpipe bench NAME` command (baseline.py is their helper)
NAMES = sorted(p.stem for p in baseline.ROOT.joinpath("bench").glob("*.py") if p.stem not in ("__init__", "baseline"))
MODULES = ["bench." + n for n in NAMES]


@pytest.mark.parametrize("module", MODULES)
def test_benchmark_module_imports(module):
    importlib.import_module(module)


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_benchmark_command_parses(name):
    res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "bench", name, "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "usage" in res.stdout, res.stderr


@pytest.mark.e2e
def test_baseline_tree_holds_that_revision(tmp_path):
    with baseline.baseline_tree("HEAD") as tree:
        assert (tree / "sflowpipe" / "cli.py").is_file() and (tree / "bench" / "baseline.py").is_file()
        c = baseline.command(tree, ["--version"])
        res = subprocess.run(c.argv, env={"PATH": "/usr/bin:/bin", **c.env}, cwd=c.cwd, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.startswith("sflowpipe "), res.stderr
    assert not tree.exists()
    with pytest.raises(baseline.BaselineError, match="no-such-revision"):
        with baseline.baseline_tree("no-such-revision"):
            pass
