"""Retention: drop raw data, rollups, ledger rows and landing files past their age.

Raw data goes a whole chunk (TimescaleDB ``drop_chunks``; it works on the Apache build,
unlike ``add_retention_policy``) or a whole daily partition (plain PostgreSQL: DETACH then
DROP) at a time: never a row-by-row DELETE on the big tables. A slice is dropped only when
its whole time range is older than the cutoff, so no row newer than the cutoff goes.

Before a slice goes, its hours are rolled up in the same transaction, under a SHARE lock
that stops writes to it; the rollups (kept RETENTION_ROLLUPS_DAYS) thus always hold what
retention removed.

Very old rows sitting in a plain-PostgreSQL DEFAULT partition are first given dated
partitions by the partitions job's adoption step (rows moved out of DEFAULT), then dropped
like any other day. DEFAULT should only ever hold stray late/early rows, so that move is small.

Rollup tables themselves are small (one row per hour and dimension set); their expiry is
an ordinary DELETE by bucket.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.db.backend import Backend, detect
from observatory_storage.db.connection import connect
from observatory_storage.landing.base import Landing
from observatory_storage.maintenance import partitions, rollups
from observatory_storage.maintenance.common import (
    JobReport,
    Slice,
    db_now,
    job_lock,
    qualified,
    record_run,
    slices,
    timed,
)
from observatory_storage.maintenance.landing_retention import expire_landing_files
from observatory_storage.settings import Settings

JOB = "retention"
# DETACH takes an ACCESS EXCLUSIVE lock on the parent table; queueing for it behind a long
# query would block every reader after it. Give up quickly and let the run retry.
LOCK_TIMEOUT = "5s"


def doomed_slices(
    conn: psycopg.Connection, settings: Settings, backend: Backend, dataset: str, cutoff: datetime
) -> list[Slice]:
    """Chunks/partitions whose whole range ends at or before the cutoff (never DEFAULT)."""
    return [
        s for s in slices(conn, settings, backend, dataset) if not s.is_default and s.end <= cutoff
    ]


def drop_slice(
    conn: psycopg.Connection,
    settings: Settings,
    backend: Backend,
    dataset: str,
    piece: Slice,
    rollup_cutoff: datetime,
) -> int:
    """Roll up the slice's hours, then drop it, in one transaction; returns hours rolled up."""
    hours = 0
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(piece.relation))
        if dataset in rollups.ROLLUPS and piece.end > rollup_cutoff:
            hours, _ = rollups.recompute(
                conn, settings, dataset, [(max(piece.start, rollup_cutoff), piece.end)]
            )
        if backend.is_timescaledb:
            dropped = conn.execute(
                "SELECT drop_chunks(format('%%I.%%I', %s::text, %s::text)::regclass, "
                "older_than => %s, newer_than => %s)",
                (settings.db_schema, dataset, piece.end, piece.start),
            ).fetchall()
            names = {r[0].split(".")[-1].strip('"') for r in dropped}
            if names != {piece.name}:
                raise RuntimeError(
                    f"drop_chunks for {piece.label} [{piece.start}, {piece.end}) dropped "
                    f"{sorted(names)}; rolled back"
                )
        else:
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                    qualified(settings, dataset), piece.relation
                )
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(piece.relation))
    return hours


def _expire_raw(
    conn: psycopg.Connection,
    settings: Settings,
    backend: Backend,
    report: JobReport,
    now: datetime,
) -> None:
    rollup_cutoff = now - timedelta(days=settings.retention_rollups_days)
    for dataset in DATASETS:
        cutoff = now - timedelta(days=settings.retention_days(dataset))
        if not backend.is_timescaledb:
            if report.dry_run:
                waiting = partitions.default_days(conn, settings, dataset, before=cutoff)
                if waiting:
                    report.notes.append(
                        f"{dataset}: {sum(n for _, n in waiting)} rows older than the cutoff sit "
                        f"in {dataset}_default; they would be moved to dated partitions and dropped"
                    )
            else:
                partitions.adopt_default_rows(conn, settings, dataset, before=cutoff)
        for piece in doomed_slices(conn, settings, backend, dataset, cutoff):
            t0 = time.perf_counter()
            hours = 0
            if not report.dry_run:
                hours = drop_slice(conn, settings, backend, dataset, piece, rollup_cutoff)
            report.items.append(
                {
                    "table": dataset,
                    "dropped": piece.label,
                    "range_start": piece.start,
                    "range_end": piece.end,
                    "bytes": piece.bytes,
                    "hours_rolled_up": hours,
                    "duration_ms": (time.perf_counter() - t0) * 1000,
                }
            )
            report.add(f"{dataset}_slices_dropped", 1)
            report.add("bytes_freed", piece.bytes)


def _expire_rollups(
    conn: psycopg.Connection, settings: Settings, report: JobReport, now: datetime
) -> None:
    cutoff = now - timedelta(days=settings.retention_rollups_days)
    for rollup in rollups.ROLLUPS.values():
        verb = "SELECT count(*) FROM {} WHERE bucket < %s"
        if not report.dry_run:
            verb = "WITH gone AS (DELETE FROM {} WHERE bucket < %s RETURNING 1) SELECT count(*) FROM gone"
        n = conn.execute(
            sql.SQL(verb).format(qualified(settings, rollup.table)), (cutoff,)
        ).fetchone()[0]
        report.add(f"{rollup.table}_rows_expired", n)


def _expire_ledger_and_landing(
    conn: psycopg.Connection,
    settings: Settings,
    report: JobReport,
    now: datetime,
    landing: Landing | None,
) -> None:
    files = expire_landing_files(conn, settings, now, dry_run=report.dry_run, landing=landing)
    if files.cutoff is None:
        report.notes.append("RETENTION_LANDING_DAYS is empty: landing files are kept forever")
    report.add("landing_files_deleted", len(files.deleted))
    report.add("landing_bytes_freed", files.bytes)
    if files.already_gone:
        report.add("landing_files_already_gone", len(files.already_gone))
    if files.kept_changed:
        report.notes.append(
            f"kept {len(files.kept_changed)} landing file(s) rewritten since they were loaded: "
            + ", ".join(files.kept_changed[:10])
        )
    for key in files.deleted[:200]:
        report.items.append({"table": "landing", "dropped": key})

    # Only rows whose file has left the landing bucket (or was quarantined) are retired:
    # forgetting a file that is still there would load it again.
    cutoff = now - timedelta(days=settings.retention_ledger_days)
    if report.dry_run:
        n = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE loaded_at < %s "
                "AND (landing_deleted_at IS NOT NULL OR status = 'quarantined')"
            ).format(qualified(settings, "ingest_files")),
            (cutoff,),
        ).fetchone()[0]
    else:
        n = conn.execute(
            sql.SQL("SELECT {}.obs_retire_ledger_rows(%s, true)").format(
                sql.Identifier(settings.db_schema)
            ),
            (cutoff,),
        ).fetchone()[0]
    report.add("ledger_rows_retired", n)


def run_retention(
    settings: Settings,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    landing: Landing | None = None,
) -> JobReport:
    """Apply every retention setting; with ``dry_run`` only report what would go."""
    with connect(settings, autocommit=True) as conn, job_lock(conn, JOB):
        backend = detect(conn)
        report = JobReport(JOB, backend.kind, dry_run=dry_run)
        with timed(report):
            started_at = db_now(conn)
            now = now or started_at
            report.totals.update(bytes_freed=0)
            _expire_raw(conn, settings, backend, report, now)
            _expire_rollups(conn, settings, report, now)
            _expire_ledger_and_landing(conn, settings, report, now, landing)
            if not dry_run:
                record_run(conn, settings, JOB, started_at, report.totals)
    return report
