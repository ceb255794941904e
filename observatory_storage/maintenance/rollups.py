"""Hourly rollups of traces and metrics that outlive raw-data retention.

Plain tables (``traces_hourly``, ``metrics_hourly``, migration 0004) on both backends:
continuous aggregates need the Timescale license. An hour is recomputed from the raw rows
in one transaction (upsert of every group, then removal of groups the hour no longer has),
so re-running any hour is harmless and late data simply re-aggregates its hour.

Which hours: files loaded since the last run (``ingest_files.loaded_at`` past the
watermark, minus an overlap for loads that committed late) name their event-time bounds in
``ingest_files.min_time``/``max_time``. When a file lacks them, the job reconciles instead:
hours whose raw row count differs from the rollup's. A rollup hour with no raw rows left is
never touched, so retention dropping raw data can never erase history.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.landing.keys import OTLP_ROOT
from observatory_storage.maintenance.common import (
    JobReport,
    db_now,
    job_lock,
    last_run,
    qualified,
    record_run,
    timed,
)
from observatory_storage.settings import Settings

JOB = "rollups"
HOUR = timedelta(hours=1)
# Loads whose transaction began before the watermark but committed after it carry an
# older loaded_at; re-reading this much of the ledger again catches them. Recomputing an
# hour twice costs little; missing one would be wrong.
WATERMARK_OVERLAP = timedelta(hours=1)
# One transaction recomputes at most this much time, so a year's backfill never holds
# one huge transaction.
WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Rollup:
    dataset: str
    table: str
    time_column: str
    keys: tuple[str, ...]  # dimensions, after the bucket
    measures: tuple[tuple[str, str], ...]  # (column, SQL aggregate over the raw table)

    @property
    def columns(self) -> list[str]:
        return ["bucket", *self.keys, *(m for m, _ in self.measures)]


_PERCENTILES = "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)"

TRACES_HOURLY = Rollup(
    dataset="traces",
    table="traces_hourly",
    time_column="start_time",
    keys=("provider", "request_model", "service_name", "environment"),
    measures=(
        ("spans", "count(*)"),
        ("errors", "count(*) FILTER (WHERE status_code = 'error')"),
        ("input_tokens", "sum(input_tokens)"),
        ("output_tokens", "sum(output_tokens)"),
        ("cost_usd", "sum(cost_usd)"),
        # One sort per group: identical aggregate calls are computed once by PostgreSQL.
        ("latency_p50_ms", f"({_PERCENTILES})[1]"),
        ("latency_p95_ms", f"({_PERCENTILES})[2]"),
        ("latency_p99_ms", f"({_PERCENTILES})[3]"),
    ),
)

METRICS_HOURLY = Rollup(
    dataset="metrics",
    table="metrics_hourly",
    time_column="time",
    keys=("metric_name", "service_name", "provider", "model"),
    measures=(
        # A distribution point (histogram, summary: sample_count set) holds its sum in value
        # and its own min/max: min/max/avg are over measurements, not over point sums.
        ("count", "count(*)"),
        ("sum", "sum(value)"),
        ("min", "min(CASE WHEN sample_count IS NULL THEN value ELSE min_value END)"),
        ("max", "max(CASE WHEN sample_count IS NULL THEN value ELSE max_value END)"),
        ("avg", "CASE WHEN count(sample_count) = 0 THEN avg(value) "
                "ELSE sum(value) / nullif(sum(sample_count), 0) END"),
    ),
)

ROLLUPS: dict[str, Rollup] = {r.dataset: r for r in (TRACES_HOURLY, METRICS_HOURLY)}
COUNT_MEASURE = {"traces": "spans", "metrics": "count"}


def recompute_sql(settings: Settings, rollup: Rollup) -> sql.Composed:
    """Upsert every group of the hours in [%(lo)s, %(hi)s); returns the buckets written."""
    bucket = sql.SQL("date_trunc('hour', {}, 'UTC')").format(sql.Identifier(rollup.time_column))
    keys = [sql.Identifier(k) for k in rollup.keys]
    measures = [sql.SQL(expr) for _, expr in rollup.measures]
    updates = [
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in (*(m for m, _ in rollup.measures), "computed_at")
    ]
    return sql.SQL(
        "INSERT INTO {target} ({columns}, computed_at) "
        "SELECT {bucket}, {keys}, {measures}, now() FROM {raw} "
        "WHERE {time} >= %(lo)s AND {time} < %(hi)s "
        "GROUP BY {group} "
        "ON CONFLICT ON CONSTRAINT {constraint} DO UPDATE SET {updates} "
        "RETURNING bucket"
    ).format(
        target=qualified(settings, rollup.table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in rollup.columns),
        bucket=bucket,
        keys=sql.SQL(", ").join(keys),
        measures=sql.SQL(", ").join(measures),
        raw=qualified(settings, rollup.dataset),
        time=sql.Identifier(rollup.time_column),
        group=sql.SQL(", ").join(sql.Literal(i) for i in range(1, len(rollup.keys) + 2)),
        constraint=sql.Identifier(f"{rollup.table}_key"),
        updates=sql.SQL(", ").join(updates),
    )


def recompute(
    conn: psycopg.Connection,
    settings: Settings,
    dataset: str,
    ranges: Iterable[tuple[datetime, datetime]],
) -> tuple[int, int]:
    """Recompute the hours of ``ranges`` from raw rows; returns (hours, rows) written.

    Each window is one transaction: the upsert, then the removal of groups that the
    hour no longer has (stale since ``computed_at`` predates this transaction).
    """
    rollup = ROLLUPS[dataset]
    upsert = recompute_sql(settings, rollup)
    prune = sql.SQL("DELETE FROM {} WHERE bucket = ANY(%s) AND computed_at < now()").format(
        qualified(settings, rollup.table)
    )
    hours = rows = 0
    for lo, hi in _windows(ranges):
        with conn.transaction():
            buckets = [r[0] for r in conn.execute(upsert, {"lo": lo, "hi": hi}).fetchall()]
            touched = sorted(set(buckets))
            if touched:
                conn.execute(prune, (touched,))
        hours += len(touched)
        rows += len(buckets)
    return hours, rows


def _windows(ranges: Iterable[tuple[datetime, datetime]]) -> Iterable[tuple[datetime, datetime]]:
    for lo, hi in merge_ranges(ranges):
        while lo < hi:
            step = min(hi, lo + WINDOW)
            yield lo, step
            lo = step


def hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def merge_ranges(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Hour-aligned, sorted, non-overlapping ranges covering the given ones."""
    aligned = sorted(
        (hour_floor(lo), hour_floor(hi) + (HOUR if hi != hour_floor(hi) else timedelta(0)))
        for lo, hi in ranges
    )
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in aligned:
        hi = max(hi, lo + HOUR)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def hours_from_ledger(
    conn: psycopg.Connection, settings: Settings, dataset: str, since: datetime
) -> tuple[list[tuple[datetime, datetime]], int]:
    """Event-time ranges of files loaded since ``since``, and how many files lack bounds.

    An OTLP file that held several signals is recorded under its landing root ``otlp``
    with the span of all its rows: its range is recomputed for every rollup (a superset).
    """
    rows = conn.execute(
        sql.SQL(
            "SELECT min_time, max_time FROM {} "
            "WHERE dataset = ANY(%s) AND status IN ('loaded', 'partial') AND loaded_at > %s"
        ).format(qualified(settings, "ingest_files")),
        ([dataset, OTLP_ROOT], since),
    ).fetchall()
    ranges = [(lo, hi + timedelta(microseconds=1)) for lo, hi in rows if lo and hi]
    return ranges, sum(1 for lo, hi in rows if not (lo and hi))


def hours_out_of_step(
    conn: psycopg.Connection, settings: Settings, dataset: str
) -> list[tuple[datetime, datetime]]:
    """Hours with raw rows whose count differs from the rollup's (a full raw scan)."""
    rollup = ROLLUPS[dataset]
    rows = conn.execute(
        sql.SQL(
            "WITH raw AS (SELECT date_trunc('hour', {time}, 'UTC') AS bucket, count(*) AS n "
            "             FROM {raw} GROUP BY 1), "
            "     rolled AS (SELECT bucket, sum({count}) AS n FROM {target} GROUP BY 1) "
            "SELECT raw.bucket FROM raw LEFT JOIN rolled USING (bucket) "
            "WHERE rolled.n IS DISTINCT FROM raw.n ORDER BY 1"
        ).format(
            time=sql.Identifier(rollup.time_column),
            raw=qualified(settings, dataset),
            count=sql.Identifier(COUNT_MEASURE[dataset]),
            target=qualified(settings, rollup.table),
        )
    ).fetchall()
    return [(b, b + HOUR) for (b,) in rows]


def raw_extent(
    conn: psycopg.Connection, settings: Settings, dataset: str
) -> list[tuple[datetime, datetime]]:
    rollup = ROLLUPS[dataset]
    lo, hi = conn.execute(
        sql.SQL("SELECT min({0}), max({0}) FROM {1}").format(
            sql.Identifier(rollup.time_column), qualified(settings, dataset)
        )
    ).fetchone()
    return [(lo, hi + timedelta(microseconds=1))] if lo else []


def run_rollups(
    settings: Settings, *, backfill: bool = False, reconcile: bool = False
) -> JobReport:
    """Recompute the hours touched since the last run (every hour with ``backfill``).

    The first run ever is a backfill. ``reconcile`` adds hours whose counts disagree.
    """
    with connect(settings, autocommit=True) as conn, job_lock(conn, JOB):
        report = JobReport(JOB, detect(conn).kind)
        with timed(report):
            started_at = db_now(conn)
            previous = last_run(conn, settings, JOB)
            if previous is None and not backfill:
                backfill = True
                report.notes.append("first run: backfilling every hour of raw data")
            for dataset in ROLLUPS:
                t0 = time.perf_counter()
                if backfill:
                    ranges, source = raw_extent(conn, settings, dataset), "backfill"
                else:
                    ranges, unbounded = hours_from_ledger(
                        conn, settings, dataset, previous - WATERMARK_OVERLAP
                    )
                    source = "ledger"
                    if unbounded or reconcile:
                        ranges += hours_out_of_step(conn, settings, dataset)
                        source = "ledger+reconcile"
                        if unbounded:
                            report.notes.append(
                                f"{dataset}: {unbounded} loaded file(s) without min_time/"
                                "max_time; reconciled hourly counts instead"
                            )
                hours, rows = recompute(conn, settings, dataset, ranges)
                report.items.append(
                    {
                        "table": ROLLUPS[dataset].table,
                        "source": source,
                        "hours_recomputed": hours,
                        "rows_written": rows,
                        "duration_ms": (time.perf_counter() - t0) * 1000,
                    }
                )
                report.add("hours_recomputed", hours)
                report.add("rows_written", rows)
            record_run(conn, settings, JOB, started_at, report.totals)
    return report
