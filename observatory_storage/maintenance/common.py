"""What every maintenance job shares: its report, its lock, its watermark, and the list of
time slices (TimescaleDB chunks or daily partitions) a dataset table is made of."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from observatory_storage.db.backend import Backend
from observatory_storage.settings import Settings

LOCK_NAMESPACE = 0x0B5E_3A17  # first key of every maintenance job's pg_advisory_lock


class JobBusy(RuntimeError):
    """Another run of the same maintenance job holds its lock."""


@dataclass
class JobReport:
    """What a run did, in a shape the CLI prints and Dagster shows as run metadata.

    ``items`` has one dict per table, chunk or partition touched; ``totals`` holds the
    numbers worth a chart (each becomes its own metadata entry in Dagster).
    """

    job: str
    backend: str
    dry_run: bool = False
    items: list[dict] = field(default_factory=list)
    totals: dict[str, int | float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    def add(self, key: str, amount: int | float) -> None:
        self.totals[key] = self.totals.get(key, 0) + amount

    def as_dict(self) -> dict:
        return {
            "job": self.job,
            "backend": self.backend,
            "dry_run": self.dry_run,
            "duration_ms": round(self.duration_ms, 1),
            "totals": self.totals,
            "notes": self.notes,
            "items": self.items,
        }

    def markdown(self, limit: int = 200) -> str:
        """The items as a Markdown table (Dagster renders it in the run's metadata)."""
        if not self.items:
            return "_nothing to do_"
        columns: list[str] = []
        for item in self.items:
            columns += [k for k in item if k not in columns]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for item in self.items[:limit]:
            lines.append("| " + " | ".join(_cell(item.get(c)) for c in columns) + " |")
        if len(self.items) > limit:
            lines.append(f"\n_{len(self.items) - limit} more rows not shown_")
        return "\n".join(lines)

    def text(self) -> str:
        """Human summary for the CLI."""
        head = f"{self.job}{' (dry run)' if self.dry_run else ''} on {self.backend}: " + (
            ", ".join(f"{k}={v}" for k, v in self.totals.items()) or "nothing to do"
        )
        return "\n".join([head, *(f"  note: {n}" for n in self.notes)])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value).replace("|", "\\|")


@contextlib.contextmanager
def timed(report: JobReport) -> Iterator[JobReport]:
    started = time.perf_counter()
    try:
        yield report
    finally:
        report.duration_ms = (time.perf_counter() - started) * 1000


def qualified(settings: Settings, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(settings.db_schema), sql.Identifier(table))


@contextlib.contextmanager
def job_lock(conn: psycopg.Connection, job: str) -> Iterator[None]:
    """Serialize runs of one job (a schedule firing while a manual run is going).

    A session advisory lock, so it works on an autocommit connection; refuses at once
    rather than queueing, because the second run would only redo the first one's work.
    """
    got = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, job)
    ).fetchone()[0]
    if not got:
        raise JobBusy(f"another {job} run is in progress (advisory lock held); try again later")
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_NAMESPACE, job))


def db_now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT statement_timestamp()").fetchone()[0]


def last_run(conn: psycopg.Connection, settings: Settings, job: str) -> datetime | None:
    row = conn.execute(
        sql.SQL("SELECT last_run_at FROM {} WHERE job = %s").format(
            qualified(settings, "maintenance_state")
        ),
        (job,),
    ).fetchone()
    return row[0] if row else None


def record_run(
    conn: psycopg.Connection, settings: Settings, job: str, at: datetime, details: dict
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (job, last_run_at, details) VALUES (%s, %s, %s::jsonb) "
            "ON CONFLICT (job) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, "
            "details = EXCLUDED.details"
        ).format(qualified(settings, "maintenance_state")),
        (job, at, json.dumps(details, default=str)),
    )


@dataclass(frozen=True)
class Slice:
    """One physical piece of a dataset table: a chunk or a daily partition."""

    schema: str
    name: str
    start: datetime | None  # None for the DEFAULT partition
    end: datetime | None
    bytes: int
    compressed: bool = False

    @property
    def relation(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def is_default(self) -> bool:
        return self.start is None


_CHUNKS = """
SELECT ch.chunk_schema, ch.chunk_name, ch.range_start, ch.range_end,
       pg_total_relation_size(format('%%I.%%I', ch.chunk_schema, ch.chunk_name)::regclass),
       ch.is_compressed
FROM timescaledb_information.chunks ch
WHERE ch.hypertable_schema = %s AND ch.hypertable_name = %s
ORDER BY ch.range_start
"""

# Bounds come from the catalog, not from the name, so a hand-made partition is handled too.
_PARTITIONS = r"""
SELECT n.nspname, c.relname, b.m[1]::timestamptz, b.m[2]::timestamptz,
       pg_total_relation_size(c.oid), false
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                        'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m
) b ON true
WHERE i.inhparent = to_regclass(format('%%I.%%I', %s::text, %s::text))
ORDER BY b.m[1]::timestamptz NULLS FIRST
"""


def slices(
    conn: psycopg.Connection, settings: Settings, backend: Backend, table: str
) -> list[Slice]:
    """Chunks (TimescaleDB) or partitions incl. DEFAULT (plain PostgreSQL), oldest first."""
    query = _CHUNKS if backend.is_timescaledb else _PARTITIONS
    return [Slice(*row) for row in conn.execute(query, (settings.db_schema, table))]
