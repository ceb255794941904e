"""Daily partitions on plain PostgreSQL: created ahead, and adopted for rows in DEFAULT.

Rows whose day has no partition land in ``<table>_default`` (so a late or far-future row is
never rejected). The DEFAULT partition cannot be dropped by day, so this job gives every
day found there its own partition: ``obs_ensure_partitions`` (migration 0001) creates it,
moves that day's rows out of DEFAULT and attaches it, in one transaction. Retention can
then drop old days whole, which is why very old rows never need a row-by-row DELETE.

On TimescaleDB the job creates the chunks of the same coming days ahead (empty, see
``ingest/chunks.py``): a load whose transaction creates a chunk makes every concurrent load
into that chunk wait until it commits, so chunks should exist before the rows arrive. The
loader also creates missing chunks/partitions just in time, before each batch's COPY.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.maintenance.common import (
    JobReport,
    db_now,
    job_lock,
    qualified,
    record_run,
    slices,
    timed,
)
from observatory_storage.settings import Settings

JOB = "partitions"
# Days adopted out of DEFAULT per table and run: a flood of garbage timestamps must not
# turn one run into thousands of DDL statements; the next run continues.
MAX_ADOPTED_DAYS = 400


def default_days(
    conn: psycopg.Connection, settings: Settings, dataset: str, before: datetime | None = None
) -> list[tuple[date, int]]:
    """(day, rows) of the rows sitting in the DEFAULT partition, oldest first."""
    ds = DATASETS[dataset]
    day = sql.SQL("({} AT TIME ZONE 'UTC')::date").format(sql.Identifier(ds.time_column))
    query = sql.SQL("SELECT {day}, count(*) FROM {default} {where} GROUP BY 1 ORDER BY 1").format(
        day=day,
        default=qualified(settings, f"{dataset}_default"),
        where=sql.SQL("WHERE {} < %s").format(sql.Identifier(ds.time_column))
        if before
        else sql.SQL(""),
    )
    return [(d, n) for d, n in conn.execute(query, (before,) if before else ())]


def ensure_days(
    conn: psycopg.Connection, settings: Settings, dataset: str, first: date, last: date
) -> int:
    """Partitions for [first, last] (rows of those days leave DEFAULT); returns created."""
    return conn.execute(
        sql.SQL("SELECT {}.obs_ensure_partitions(%s, %s, %s, %s, %s)").format(
            sql.Identifier(settings.db_schema)
        ),
        (settings.db_schema, dataset, DATASETS[dataset].time_column, first, last),
    ).fetchone()[0]


def adopt_default_rows(
    conn: psycopg.Connection,
    settings: Settings,
    dataset: str,
    before: datetime | None = None,
    max_days: int = MAX_ADOPTED_DAYS,
) -> list[tuple[date, int]]:
    """Move rows out of DEFAULT into their day's new partition; returns (day, rows) moved."""
    days = default_days(conn, settings, dataset, before)[:max_days]
    for day, _ in days:
        ensure_days(conn, settings, dataset, day, day)
    return days


def _chunks_ahead(settings: Settings, report: JobReport, today: date) -> None:
    """TimescaleDB: the chunks of yesterday to PARTITIONS_AHEAD_DAYS ahead, created empty."""
    with TimeSlots(settings) as slots:
        for dataset in DATASETS.values():
            t0 = time.perf_counter()
            created = slots.ensure_days(dataset, today - timedelta(days=1),
                                        today + timedelta(days=settings.partitions_ahead_days))
            report.items.append({"table": dataset.name, "chunks_created": created,
                                 "duration_ms": (time.perf_counter() - t0) * 1000})
            report.add("chunks_created", created)


def run_partitions(settings: Settings, *, today: date | None = None) -> JobReport:
    """Create partitions (chunks on TimescaleDB) from yesterday to PARTITIONS_AHEAD_DAYS
    ahead; on plain PostgreSQL also adopt DEFAULT rows."""
    with connect(settings, autocommit=True) as conn, job_lock(conn, JOB):
        backend = detect(conn)
        report = JobReport(JOB, backend.kind)
        with timed(report):
            started_at = db_now(conn)
            today = today or started_at.astimezone(UTC).date()
            if backend.is_timescaledb:
                _chunks_ahead(settings, report, today)
                record_run(conn, settings, JOB, started_at, report.totals)
                return report
            for dataset in DATASETS:
                t0 = time.perf_counter()
                before = {s.name for s in slices(conn, settings, backend, dataset)}
                ahead = ensure_days(
                    conn,
                    settings,
                    dataset,
                    today - timedelta(days=1),
                    today + timedelta(days=settings.partitions_ahead_days),
                )
                adopted = adopt_default_rows(conn, settings, dataset)
                after = {s.name for s in slices(conn, settings, backend, dataset)}
                remaining = default_days(conn, settings, dataset)
                moved = sum(n for _, n in adopted)
                report.items.append(
                    {
                        "table": dataset,
                        "created_ahead": ahead,
                        "created_for_default_rows": len(adopted),
                        "rows_moved_from_default": moved,
                        "rows_left_in_default": sum(n for _, n in remaining),
                        "partitions_created": sorted(after - before),
                        "duration_ms": (time.perf_counter() - t0) * 1000,
                    }
                )
                report.add("partitions_created", len(after - before))
                report.add("rows_moved_from_default", moved)
            record_run(conn, settings, JOB, started_at, report.totals)
    return report
