"""What an ingest run did, per file and per dataset: for the CLI, Dagster metadata and logs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from observatory_storage.landing.base import OUTSIDE_HINT

STATUSES = ("loaded", "quarantined", "skipped", "gone", "conflict")
# Statuses after which nothing is left to do for a file: the run succeeded for it.
SETTLED = frozenset({"loaded", "quarantined", "skipped"})


@dataclass(frozen=True)
class FileOutcome:
    key: str
    dataset: str
    status: str  # one of STATUSES
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    duplicates: int = 0  # spans skipped by trace dedupe
    unpriced: int = 0  # spans with a model and tokens the price table could not price
    # OTLP attribute values that did not fit their column (kept in attributes), per column
    unusable: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown file status {self.status!r}")


@dataclass
class DatasetSummary:
    dataset: str
    loaded: int = 0
    quarantined: int = 0
    skipped: int = 0
    gone: int = 0
    conflicts: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    duplicates: int = 0
    unpriced: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, outcome: FileOutcome) -> None:
        name = "conflicts" if outcome.status == "conflict" else outcome.status
        setattr(self, name, getattr(self, name) + 1)
        self.rows += outcome.rows
        self.bytes += outcome.bytes
        self.seconds += outcome.seconds
        self.duplicates += outcome.duplicates
        self.unpriced += outcome.unpriced

    def as_dict(self) -> dict:
        return asdict(self) | {"rows_per_second": round(self.rows_per_second, 1)}


MISPLACED_SHOWN = 20  # keys of misplaced files named in a summary; the count is always exact


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)
    # Keys in no dataset folder: never loaded, never in the ledger, but reported.
    misplaced: list[str] = field(default_factory=list)

    @property
    def datasets(self) -> dict[str, DatasetSummary]:
        out: dict[str, DatasetSummary] = {}
        for outcome in self.files:
            out.setdefault(outcome.dataset, DatasetSummary(outcome.dataset)).add(outcome)
        return dict(sorted(out.items()))

    def add(self, outcome: FileOutcome) -> None:
        self.files.append(outcome)

    def merge(self, other: IngestReport) -> IngestReport:
        return IngestReport([*self.files, *other.files], [*self.misplaced, *other.misplaced])

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def seconds(self) -> float:
        return sum((f.seconds for f in self.files), 0.0)

    @property
    def unusable(self) -> dict[str, int]:
        """OTLP attribute values kept in ``attributes`` because they did not fit their
        column (a token count above the integer range, text where a number belongs), per
        column, over every file."""
        out: dict[str, int] = {}
        for f in self.files:
            for column, n in f.unusable.items():
                out[column] = out.get(column, 0) + n
        return dict(sorted(out.items()))

    @property
    def ok(self) -> bool:
        """Every file ended loaded or quarantined (or was loaded by a racing run)."""
        return all(f.status in SETTLED for f in self.files)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "files": len(self.files),
            "rows": self.rows,
            "unpriced_rows": sum(f.unpriced for f in self.files),
            "values_kept_in_attributes": self.unusable,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "datasets": {name: s.as_dict() for name, s in self.datasets.items()},
            "problems": [
                asdict(f) for f in self.files if f.status not in ("loaded", "skipped")
            ],
            "misplaced": len(self.misplaced),
            "misplaced_keys": self.misplaced[:MISPLACED_SHOWN],
        }

    def format_table(self) -> str:
        header = ("dataset", "loaded", "quarantined", "skipped", "gone", "conflict",
                  "rows", "MB", "rows/s")
        lines = [header]
        for s in self.datasets.values():
            lines.append((s.dataset, str(s.loaded), str(s.quarantined), str(s.skipped),
                          str(s.gone), str(s.conflicts), f"{s.rows:,}",
                          f"{s.bytes / 1e6:.1f}", f"{s.rows_per_second:,.0f}"))
        if len(lines) == 1:
            return "\n".join(["no files to ingest", *self.misplaced_lines()])
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        text = [
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
            for row in lines
        ]
        for f in self.files:
            if f.status in ("quarantined", "gone", "conflict"):
                reason = f.error or "no detail"
                text.append(f"{f.status}: {reason if reason.startswith(f.key) else f'{f.key}: {reason}'}")
        return "\n".join([*text, *self.misplaced_lines()])

    def misplaced_lines(self) -> list[str]:

        lines = [f"not loaded: {key}: {OUTSIDE_HINT}" for key in self.misplaced[:MISPLACED_SHOWN]]
        if len(self.misplaced) > MISPLACED_SHOWN:
            lines.append(f"not loaded: {len(self.misplaced) - MISPLACED_SHOWN} more file(s) "
                         "outside the dataset folders")
        return lines
