"""Native compression of older chunks, where the TimescaleDB license allows it.

Compression needs the Timescale (community) license: on the Apache build and on plain
PostgreSQL the job reports "not available" and succeeds, so the same schedule runs
everywhere. When available, each hypertable is set to compress segmented by the
dataset's ``segment_by`` columns (datasets.py: provider + model for traces, metric name
for metrics, service for logs; the columns dashboards filter on) and ordered by time
descending, and chunks older than COMPRESS_AFTER_DAYS are compressed.

COMPRESS_AFTER_DAYS must exceed how late data arrives: inserting into a compressed chunk
works on recent TimescaleDB but is slow. The job measures the lateness of recently loaded
files (ledger ``loaded_at - min_time``) and warns when it reaches the setting.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS, Dataset
from observatory_storage.db.backend import Backend, detect
from observatory_storage.db.connection import connect
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
from observatory_storage.settings import Settings

JOB = "compression"
LATENESS_WINDOW = timedelta(days=7)


def unavailable_reason(backend: Backend) -> str | None:
    if not backend.is_timescaledb:
        return "not available: plain PostgreSQL has no native compression"
    if not backend.compression_available:
        return (
            f"not available: TimescaleDB {backend.timescaledb_version} runs under the "
            f"{backend.license!r} license; compression needs the Timescale license"
        )
    return None


def enable_sql(settings: Settings, dataset: Dataset) -> sql.Composed:
    """ALTER TABLE ... SET (timescaledb.compress, segmentby, orderby) for one dataset."""
    segment_by = ",".join(sql.Identifier(c).as_string(None) for c in dataset.segment_by)
    order_by = f"{sql.Identifier(dataset.time_column).as_string(None)} DESC"
    return sql.SQL(
        "ALTER TABLE {} SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = {}, timescaledb.compress_orderby = {})"
    ).format(qualified(settings, dataset.name), sql.Literal(segment_by), sql.Literal(order_by))


def compress_chunk_sql(chunk: Slice) -> sql.Composed:
    return sql.SQL("SELECT compress_chunk({}::regclass, if_not_compressed => true)").format(
        sql.Literal(chunk.relation.as_string(None))
    )


def observed_lateness(
    conn: psycopg.Connection, settings: Settings, now: datetime
) -> timedelta | None:
    """The latest arrival seen lately: max(loaded_at - min_time) over a week of loads."""
    return conn.execute(
        sql.SQL(
            "SELECT max(loaded_at - min_time) FROM {} "
            "WHERE status = 'loaded' AND loaded_at > %s AND min_time IS NOT NULL"
        ).format(qualified(settings, "ingest_files")),
        (now - LATENESS_WINDOW,),
    ).fetchone()[0]


def _compression_enabled(conn: psycopg.Connection, settings: Settings, table: str) -> bool:
    row = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = %s AND hypertable_name = %s",
        (settings.db_schema, table),
    ).fetchone()
    return bool(row and row[0])


def run_compression(
    settings: Settings, *, dry_run: bool = False, now: datetime | None = None
) -> JobReport:
    """Compress chunks older than COMPRESS_AFTER_DAYS, or report why it cannot."""
    with connect(settings, autocommit=True) as conn, job_lock(conn, JOB):
        backend = detect(conn)
        report = JobReport(JOB, backend.kind, dry_run=dry_run)
        with timed(report):
            why_not = unavailable_reason(backend)
            if why_not:
                report.notes.append(why_not)
                report.totals.update(available=0, chunks_compressed=0)
                return report
            started_at = db_now(conn)
            now = now or started_at
            after = timedelta(days=settings.compress_after_days)
            lateness = observed_lateness(conn, settings, now)
            if lateness is not None and lateness >= after:
                report.notes.append(
                    f"files arrived up to {lateness} late, more than COMPRESS_AFTER_DAYS="
                    f"{settings.compress_after_days}: late rows will go into compressed chunks"
                )
            report.totals.update(available=1, chunks_compressed=0, bytes_before=0, bytes_after=0)
            for dataset in DATASETS.values():
                if not dry_run and not _compression_enabled(conn, settings, dataset.name):
                    conn.execute(enable_sql(settings, dataset))
                for chunk in slices(conn, settings, backend, dataset.name):
                    if chunk.compressed or chunk.end > now - after:
                        continue
                    t0 = time.perf_counter()
                    size_after = chunk.bytes
                    if not dry_run:
                        conn.execute(compress_chunk_sql(chunk))
                        size_after = conn.execute(
                            "SELECT coalesce(after_compression_total_bytes, 0) "
                            "FROM chunk_compression_stats(%s::regclass) WHERE chunk_name = %s",
                            (qualified(settings, dataset.name).as_string(None), chunk.name),
                        ).fetchone()[0]
                    report.items.append(
                        {
                            "table": dataset.name,
                            "chunk": chunk.label,
                            "bytes_before": chunk.bytes,
                            "bytes_after": size_after,
                            "duration_ms": (time.perf_counter() - t0) * 1000,
                        }
                    )
                    report.add("chunks_compressed", 1)
                    report.add("bytes_before", chunk.bytes)
                    report.add("bytes_after", size_after)
            if not dry_run:
                record_run(conn, settings, JOB, started_at, report.totals)
    return report
