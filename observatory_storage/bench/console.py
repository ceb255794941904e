"""Progress lines of a benchmark run (stderr: the report itself goes to stdout)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
