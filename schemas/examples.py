"""Versioned example payloads: ``examples/<name>.v<N>.avro`` (single-object encoded) and
``examples/<name>.v<N>.json`` (the datum, bytes as ``{"$bytes": base64}``). Released examples are
never rewritten; tests read every one of them with the newest reader. They are written by
``python -m ingest.examples`` (built through the real decode and batching path, which lives above
this package)."""

from __future__ import annotations

import base64
from pathlib import Path

DIR = Path(__file__).resolve().parent / "examples"


def to_jsonable(v):
    if isinstance(v, bytes):
        return {"$bytes": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):  # a (record name, record) union member becomes a pair
        return [to_jsonable(x) for x in v]
    return v


def from_jsonable(v):
    if isinstance(v, dict):
        if set(v) == {"$bytes"}:
            return base64.b64decode(v["$bytes"])
        return {k: from_jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_jsonable(x) for x in v]
    return v
