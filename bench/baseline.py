"""An earlier revision of this project, for benchmarks that compare "today" with "before".

Speed targets are ratios measured in one run on one machine (these machines are shared and noisy:
absolute figures move several-fold between runs). ``baseline_tree(rev)`` extracts the project at
git revision ``rev`` (``git archive``, no worktree bookkeeping) into a temporary directory; a
benchmark runs the same command from there and from this checkout, alternating, with the same
interpreter and packages, and prints the ratio. ``command(tree, args)`` is the command line of
``sflowpipe ARGS`` from a tree.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
# the last revision before the speed work of issue 16: what "today's" figures are measured on
DEFAULT_BASELINE = "81cddb5"


class BaselineError(Exception):
    """The revision cannot be extracted (not a git checkout, unknown revision)."""


@contextlib.contextmanager
def baseline_tree(rev: str = DEFAULT_BASELINE) -> Iterator[Path]:
    """The project's files at ``rev`` in a temporary directory, removed afterwards."""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             capture_output=True, check=True, timeout=120).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", b"") or b""
        raise BaselineError(f"cannot extract revision {rev!r} of {ROOT}: "
                            f"{err.decode(errors='replace').strip() or e}") from None
    with tempfile.TemporaryDirectory(prefix=f"sflowpipe-{rev}-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(tmp, filter="data")
        yield Path(tmp)


class Command(NamedTuple):
    argv: list[str]
    env: dict[str, str]  # added to the environment
    cwd: str  # `python -m` puts the working directory first on sys.path: it must be the tree


def command(tree: Path | None, args: list[str]) -> Command:
    """``sflowpipe ARGS`` run from ``tree`` (None: this checkout)."""
    root = str(ROOT if tree is None else tree)
    return Command([sys.executable, "-m", "sflowpipe.cli", *args], {"PYTHONPATH": root}, root)
