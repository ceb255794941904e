"""The table every fault test adds a row to; printed at the end of the session.

docs/reliability.md holds a copy of the table from a real run, so the figures there can be
reproduced with ``scripts/test.sh tests/reliability``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultRow:
    fault: str
    backend: str
    files: int
    rows: int
    lost: int
    duplicated: int
    recover_seconds: float | None
    outcome: str

    def cells(self) -> list[str]:
        recover = "-" if self.recover_seconds is None else f"{self.recover_seconds:.1f}"
        return [
            self.fault,
            self.backend,
            str(self.files),
            str(self.rows),
            str(self.lost),
            str(self.duplicated),
            recover,
            self.outcome,
        ]


HEADER = ["fault", "backend", "files", "rows", "lost", "duplicated", "recover s", "outcome"]
RESULTS: list[FaultRow] = []


def render_markdown(rows: list[FaultRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |")
    return "\n".join(lines)
