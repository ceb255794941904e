"""Results of a benchmark run: ratios to our path, targets, and the printed table.

The ratio of a method is ``our rows/s ÷ its rows/s``: how many times faster our path is.
Targets come from issue 7 and are reported, never asserted by unit tests.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata

import psutil

# method -> (minimum ratio ours/method, how the target reads)
RATIO_TARGETS: dict[str, tuple[float, str]] = {
    "raw": (0.95, ">= 0.95x"),
    "psql": (1.5, ">= 1.5x"),
    "psql2": (0.95, ">= 0.95x"),
    "dlt": (5.0, ">= 5x"),
}
OURS_MIN_RATE = 100_000


@dataclass
class MethodResult:
    method: str
    description: str
    database: str = ""  # the fresh database it loaded into (dropped afterwards)
    rows: int = 0  # rows counted in the method's table afterwards
    expected_rows: int = 0
    seconds: float = 0.0
    sampled: bool = False
    note: str = ""
    skipped: str | None = None
    ratio: float | None = None  # ours rows/s ÷ this method's rows/s
    target: str = ""
    met: bool | None = None

    @property
    def rows_per_second(self) -> float | None:
        if self.skipped or self.seconds <= 0:
            return None
        return self.rows / self.seconds

    def as_dict(self) -> dict:
        return asdict(self) | {"rows_per_second": self.rows_per_second}


@dataclass
class Report:
    backend: str
    server: str  # redacted URL
    rows: int
    machine: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    methods: list[MethodResult] = field(default_factory=list)
    extras: dict = field(default_factory=dict)  # parallelism, memory, queries, e2e

    def method(self, name: str) -> MethodResult | None:
        return next((m for m in self.methods if m.method == name), None)

    def score(self) -> None:
        """Fill ratio, target and met? of every method from our measured rate."""
        ours = self.method("ours")
        ours_rate = ours.rows_per_second if ours else None
        for m in self.methods:
            rate = m.rows_per_second
            if m.method == "ours":
                m.target = f">= {OURS_MIN_RATE // 1000}k rows/s"
                m.ratio = 1.0 if rate else None
                m.met = None if rate is None else rate >= OURS_MIN_RATE
                continue
            if ours_rate and rate:
                m.ratio = ours_rate / rate
            if m.method in RATIO_TARGETS:
                minimum, text = RATIO_TARGETS[m.method]
                m.target = text
                m.met = None if m.ratio is None else m.ratio >= minimum

    def as_dict(self) -> dict:
        return {
            "backend": self.backend,
            "server": self.server,
            "rows": self.rows,
            "machine": self.machine,
            "versions": self.versions,
            "methods": [m.as_dict() for m in self.methods],
            **self.extras,
        }

    def table(self) -> str:
        """The results as a Markdown table (printed by the CLI, pasted into the docs)."""
        lines = [
            "| method | rows | seconds | rows/s | ours is | target | met? |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for m in self.methods:
            if m.skipped:
                lines.append(f"| {m.method} | - | - | - | - | {m.target} | skipped: {m.skipped} |")
                continue
            rate = m.rows_per_second
            rows = f"{m.rows:,}" + (" (sample)" if m.sampled else "")
            ratio = f"{m.ratio:.2f}x" if m.ratio else "-"
            met = {True: "yes", False: "**no**", None: ""}[m.met]
            lines.append(
                f"| {m.method} | {rows} | {m.seconds:.2f} | {rate:,.0f} | {ratio} | "
                f"{m.target} | {met} |"
            )
        return "\n".join(lines)


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                "",
            )
    except OSError:
        model = platform.processor()
    memory_gb = None
    try:

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": memory_gb,
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "platform": platform.platform(),
    }


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in ("observatory-storage", "pgpq", "psycopg", "pyarrow", "pandas", "dlt"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
