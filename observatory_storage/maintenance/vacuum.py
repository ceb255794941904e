"""VACUUM (ANALYZE) of what changed since the last run: chunks, partitions, ledger, rollups.

Autovacuum already runs, but it analyzes a fresh day's chunk late (after 10% of its rows
changed) and never analyzes a partitioned parent; stale statistics make the planner
misjudge the newest data, which is what dashboards query. This job fills that gap at night.

VACUUM cannot run inside a transaction block, so the job uses an autocommit connection and
one statement per relation (one relation's lock at a time; a failure leaves the others
done). A relation is picked when any of these holds since the last run:

- statistics say it changed (``n_mod_since_analyze``, ``n_dead_tup``, ``n_ins_since_vacuum``);
- it has data but was never analyzed (``reltuples < 0``: a new chunk or partition, before
  the statistics collector has caught up);
- a file loaded since the last run has event times inside its range (ledger
  ``min_time``/``max_time``), i.e. it was written since the last run.

The first run (no ``maintenance_state`` row) covers everything. On TimescaleDB the
hypertable parent itself is never vacuumed: that would recurse into every chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.maintenance.common import (
    JobReport,
    Slice,
    db_now,
    job_lock,
    last_run,
    record_run,
    slices,
    timed,
)
from observatory_storage.settings import Settings

JOB = "vacuum_analyze"
SMALL_TABLES = (
    "ingest_files",
    "ingest_totals",
    "maintenance_state",
    "traces_hourly",
    "metrics_hourly",
)
LEDGER_OVERLAP = timedelta(hours=1)  # loads that committed just after the last run began


@dataclass(frozen=True)
class Target:
    schema: str
    name: str
    start: datetime | None = None  # time range, for dataset slices
    end: datetime | None = None
    table: str | None = None  # the logical table (a chunk's hypertable), for Dagster assets

    @property
    def relation(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Stats:
    dead_tuples: int
    modified_since_analyze: int
    inserted_since_vacuum: int
    reltuples: float
    size_bytes: int
    last_analyze: datetime | None

    @property
    def changed(self) -> bool:
        return bool(self.modified_since_analyze or self.dead_tuples or self.inserted_since_vacuum)

    @property
    def never_analyzed(self) -> bool:
        return self.reltuples < 0 and self.size_bytes > 0


_STATS = """
SELECT t.schema, t.name, coalesce(s.n_dead_tup, 0), coalesce(s.n_mod_since_analyze, 0),
       coalesce(s.n_ins_since_vacuum, 0), c.reltuples, pg_relation_size(c.oid),
       greatest(s.last_analyze, s.last_autoanalyze)
FROM unnest(%s::text[], %s::text[]) AS t(schema, name)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
"""


def table_stats(conn: psycopg.Connection, targets: list[Target]) -> dict[str, Stats]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = conn.execute(_STATS, ([t.schema for t in targets], [t.name for t in targets])).fetchall()
    return {f"{schema}.{name}": Stats(*rest) for schema, name, *rest in rows}


def all_targets(conn: psycopg.Connection, settings: Settings, backend) -> list[Target]:
    found: list[Target] = []
    for dataset in DATASETS:
        found += [_target(s, dataset) for s in slices(conn, settings, backend, dataset)]
    found += [Target(settings.db_schema, t, table=t) for t in SMALL_TABLES]
    return found


def _target(piece: Slice, table: str) -> Target:
    return Target(piece.schema, piece.name, piece.start, piece.end, table)


def written_ranges(
    conn: psycopg.Connection, settings: Settings, since: datetime
) -> list[tuple[datetime, datetime]]:
    """Event-time ranges of files loaded since ``since`` (files that recorded them)."""
    return conn.execute(
        sql.SQL(
            "SELECT min_time, max_time FROM {}.ingest_files "
            "WHERE loaded_at > %s AND min_time IS NOT NULL AND max_time IS NOT NULL"
        ).format(sql.Identifier(settings.db_schema)),
        (since,),
    ).fetchall()


def reason(target: Target, stats: Stats, written: list[tuple[datetime, datetime]]) -> str | None:
    """Why the target needs a VACUUM (ANALYZE) now, or None."""
    if stats.changed:
        return "changed"
    if stats.never_analyzed:
        return "never analyzed"
    if target.start is not None and any(
        lo < target.end and hi >= target.start for lo, hi in written
    ):
        return "written since last run"
    return None


def run_vacuum(settings: Settings, *, all_tables: bool = False) -> JobReport:
    """VACUUM (ANALYZE) what changed since the last run (everything with ``all_tables``)."""
    with connect(settings, autocommit=True) as conn, job_lock(conn, JOB):
        backend = detect(conn)
        report = JobReport(JOB, backend.kind)
        with timed(report):
            started_at = db_now(conn)
            previous = None if all_tables else last_run(conn, settings, JOB)
            targets = all_targets(conn, settings, backend)
            before = table_stats(conn, targets)
            written = written_ranges(conn, settings, previous - LEDGER_OVERLAP) if previous else []
            if previous is None:
                report.notes.append("every table (first run or --all-tables)")
            report.totals.update(tables_vacuumed=0, dead_tuples_removed=0, tables_skipped=0)
            for target in targets:
                stats = before.get(target.label)
                if stats is None:  # dropped meanwhile (retention)
                    continue
                why = "all" if previous is None else reason(target, stats, written)
                if why is None:
                    report.add("tables_skipped", 1)
                    continue
                t0 = time.perf_counter()
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(target.relation))
                elapsed = (time.perf_counter() - t0) * 1000
                after = table_stats(conn, [target]).get(target.label, stats)
                report.items.append(
                    {
                        "table": target.label,
                        "of": target.table,
                        "reason": why,
                        "dead_tuples_before": stats.dead_tuples,
                        "dead_tuples_after": after.dead_tuples,
                        "rows": int(max(after.reltuples, 0)),
                        "duration_ms": elapsed,
                    }
                )
                report.add("tables_vacuumed", 1)
                report.add("dead_tuples_removed", max(stats.dead_tuples - after.dead_tuples, 0))
            record_run(conn, settings, JOB, started_at, report.totals)
    return report
