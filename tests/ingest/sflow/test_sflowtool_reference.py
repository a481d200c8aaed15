"""`sflowpipe decode -j` equals sflowtool -j, datagram by datagram, on every shared capture."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from ingest import decode
from tests.conftest import capture_files

pytestmark = pytest.mark.interop


def _first_difference(ours, theirs, path="$"):
    if type(ours) is not type(theirs):
        return f"{path}: ours {ours!r} != sflowtool {theirs!r}"
    if isinstance(ours, dict):
        for k in list(theirs) + [k for k in ours if k not in theirs]:
            if k not in ours:
                return f"{path}.{k}: missing (sflowtool: {theirs[k]!r})"
            if k not in theirs:
                return f"{path}.{k}: extra (ours: {ours[k]!r})"
            d = _first_difference(ours[k], theirs[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(ours, list):
        if len(ours) != len(theirs):
            return f"{path}: {len(ours)} items, sflowtool has {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            d = _first_difference(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if ours == theirs else f"{path}: ours {ours!r} != sflowtool {theirs!r}"


def decode_json_lines(path) -> list[dict]:
    out = io.BytesIO()
    with open(path, "rb") as f:
        decode.run(decode.from_capture(f), "json", out, flush_each=False)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("capture", capture_files(), ids=lambda p: p.name)
def test_matches_sflowtool(capture, captures_dir):
    reference = [json.loads(line) for line in (captures_dir / "reference" / f"{capture.name}.sflowtool.jsonl").open()]
    ours = decode_json_lines(capture)
    assert len(ours) == len(reference), "one line per UDP datagram, in input order"
    compared = 0
    for i, (mine, theirs) in enumerate(zip(ours, reference)):
        if theirs.get("sflowtool_abort"):
            # sflowtool gave up on this datagram; ours must still be one well-formed line
            assert isinstance(mine, dict) and ("error" in mine or "samples" in mine)
            continue
        diff = _first_difference(mine, theirs)
        assert diff is None, f"datagram {i}: {diff}"
        compared += 1
    assert compared or all(r.get("sflowtool_abort") for r in reference)


def test_malformed_datagram_gets_error_line_and_decoding_continues(captures_dir):
    ours = decode_json_lines(captures_dir / "tcpdump__sflow_print-segv.pcap")
    assert len(ours) == 1 and ours[0]["error"] and isinstance(ours[0]["offset"], int)


@pytest.mark.e2e  # runs the CLI as a process
def test_cli_decode_j_matches(captures_dir):
    capture = captures_dir / "akvorado__data-1140.pcap"
    res = subprocess.run([sys.executable, "-m", "sflowpipe.cli", "decode", "-j", "-r", str(capture)],
                         capture_output=True, check=True)
    lines = res.stdout.decode().splitlines()
    ref = [json.loads(x) for x in (captures_dir / "reference" / f"{capture.name}.sflowtool.jsonl").open()]
    assert [json.loads(x) for x in lines] == ref
