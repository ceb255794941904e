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


# bad inputs: object key -> (outcome, reason, backends it was tried on)
INPUTS: dict[str, tuple[str, str, set[str]]] = {}


def record_input(key: str, backend: str, status: str, reason: str | None) -> None:
    _, _, backends = INPUTS.setdefault(key, (status, _short(reason, key), set()))
    backends.add(backend)


def _short(reason: str | None, key: str, limit: int = 110) -> str:
    text = (reason or "").replace(key, "<file>").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_inputs_markdown() -> str:
    lines = ["| input (object key) | outcome | reason (file, column, row) | backends |",
             "|---|---|---|---|"]
    for key, (status, reason, backends) in INPUTS.items():
        cells = [f"`{key}`", status, reason,
                 ", ".join(sorted(backends))]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
