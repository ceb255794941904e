"""Files rendered from code (README config table, .env.example, the dataset migration and
docs): write them when they differ, or with ``check`` report them stale (exit code 1)."""

from __future__ import annotations

import sys
from pathlib import Path


def sync(path: Path, wanted: str, *, check: bool, command: str, what: str | None = None) -> int:
    what = what or path.name
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == wanted:
        return 0
    if check:
        print(f"{what} is stale: run `{command}`", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(wanted, encoding="utf-8")
    print(f"{what} updated", file=sys.stderr)
    return 0
