"""Write schemas/<name>.v<N>.avsc from the data model: ``python -m schemas.generate``.

A released schema file is never edited: when the model changes, this writes the next version
(whose new fields must have defaults); tests check the newest file matches the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.definitions import MESSAGES

DIR = Path(__file__).resolve().parent


def versions(stem: str) -> list[tuple[int, Path]]:
    out = []
    for p in DIR.glob(f"{stem}.v*.avsc"):
        v = p.name[len(stem) + 2 : -5]
        if v.isdigit():
            out.append((int(v), p))
    return sorted(out)


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main() -> int:
    for stem, build in MESSAGES.items():
        text = render(build())
        have = versions(stem)
        if have and have[-1][1].read_text() == text:
            continue
        n = have[-1][0] + 1 if have else 1
        path = DIR / f"{stem}.v{n}.avsc"
        path.write_text(text)
        print(f"wrote {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
