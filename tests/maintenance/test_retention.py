"""Retention on real servers: whole chunks/partitions older than each cutoff go, nothing
newer does, rollups keep the dropped hours, and a dry run changes nothing."""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.db.backend import detect
from observatory_storage.maintenance.common import slices
from observatory_storage.maintenance.partitions import run_partitions
from observatory_storage.maintenance.retention import run_retention
from tests.maintenance.data import day_floor, db_now, load_spread

EVERY = timedelta(hours=7)


def _counts(db) -> dict[str, int]:
    return {
        t: db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
        for t in DATASETS
    }


def _slice_names(db, settings) -> dict[str, set[str]]:
    backend = detect(db)
    return {t: {s.name for s in slices(db, settings, backend, t)} for t in DATASETS}


def test_retention_drops_exactly_the_old_slices(settings, db, backend):
    now = db_now(db)
    times = load_spread(db, now, days=120, every=EVERY)
    if backend == "postgres":
        run_partitions(settings)  # old days leave DEFAULT for dated partitions
        assert db.execute("SELECT count(*) FROM traces_default").fetchone()[0] == 0

    before_counts, before_slices = _counts(db), _slice_names(db, settings)
    dry = run_retention(settings, dry_run=True, now=now)
    assert _counts(db) == before_counts and _slice_names(db, settings) == before_slices
    assert db.execute("SELECT count(*) FROM traces_hourly").fetchone()[0] == 0

    report = run_retention(settings, now=now)
    assert [i["dropped"] for i in report.items] == [i["dropped"] for i in dry.items]
    assert report.totals["bytes_freed"] == dry.totals["bytes_freed"] > 0

    for table in DATASETS:
        cutoff = now - timedelta(days=settings.retention_days(table))
        keep_from = day_floor(cutoff)  # the slice holding the cutoff stays whole
        column = DATASETS[table].time_column
        expected = sum(1 for t in times[table] if t >= keep_from)
        assert _counts(db)[table] == expected, table
        oldest = db.execute(
            sql.SQL("SELECT min({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table))
        ).fetchone()[0]
        assert oldest >= keep_from
        dropped = {i["dropped"].split(".")[-1] for i in report.items if i["table"] == table}
        assert dropped == before_slices[table] - _slice_names(db, settings)[table]
        assert report.totals[f"{table}_slices_dropped"] == len(dropped) > 0

    # the rollups hold every dropped hour: their totals equal everything ever loaded
    spans = db.execute("SELECT sum(spans) FROM traces_hourly").fetchone()[0]
    old_spans = sum(
        1
        for t in times["traces"]
        if t < day_floor(now - timedelta(days=settings.retention_traces_days))
    )
    assert spans == old_spans
    points = db.execute("SELECT sum(count) FROM metrics_hourly").fetchone()[0]
    assert points == sum(
        1
        for t in times["metrics"]
        if t < day_floor(now - timedelta(days=settings.retention_metrics_days))
    )

    again = run_retention(settings, now=now)
    assert again.items == [] and again.totals["bytes_freed"] == 0


def test_old_rows_in_default_partition_are_moved_then_dropped(settings, db, backend):
    if backend != "postgres":
        return  # TimescaleDB has no DEFAULT partition
    now = db_now(db)
    load_spread(db, now, days=20, every=timedelta(hours=5))
    in_default = db.execute("SELECT count(*) FROM logs_default").fetchone()[0]
    assert in_default > 0

    dry = run_retention(settings, dry_run=True, now=now)
    assert any("logs_default" in n for n in dry.notes)
    assert db.execute("SELECT count(*) FROM logs_default").fetchone()[0] == in_default

    run_retention(settings, now=now)
    keep_from = day_floor(now - timedelta(days=settings.retention_logs_days))
    assert db.execute("SELECT count(*) FROM logs WHERE time < %s", (keep_from,)).fetchone()[0] == 0
    # rows newer than the cutoff stay in DEFAULT: moving them is the partitions job's work
    assert db.execute("SELECT count(*) FROM logs WHERE time >= %s", (keep_from,)).fetchone()[0] > 0


def test_rollups_older_than_their_retention_expire(settings, db):
    now = db_now(db)
    old = now - timedelta(days=settings.retention_rollups_days + 2)
    db.execute(
        "INSERT INTO traces_hourly (bucket, provider, spans, errors) VALUES (%s, 'x', 1, 0), (%s, 'x', 1, 0)",
        (day_floor(old), day_floor(now)),
    )
    dry = run_retention(settings, dry_run=True, now=now)
    assert dry.totals["traces_hourly_rows_expired"] == 1
    report = run_retention(settings, now=now)
    assert report.totals["traces_hourly_rows_expired"] == 1
    assert db.execute("SELECT count(*) FROM traces_hourly").fetchone()[0] == 1
