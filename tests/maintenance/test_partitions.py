"""Daily partitions: created ahead, and rows moved out of DEFAULT (plain PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from observatory_storage.maintenance.partitions import run_partitions
from tests.conftest import make_settings
from tests.maintenance.data import copy_rows, db_now, span


def _partitions(db, table: str) -> set[str]:
    return {
        r[0]
        for r in db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            (table,),
        )
    }


def test_partitions_ahead_and_out_of_default(database_url, landing_dir, db, backend):
    settings = make_settings(database_url, landing_dir, partitions_ahead_days=12)
    now = db_now(db)
    if backend == "timescaledb":
        report = run_partitions(settings)
        ahead = (now + timedelta(days=12)).date()
        assert [i["table"] for i in report.items] == ["traces", "metrics", "logs"]
        assert report.totals["chunks_created"] == 3 * 14  # yesterday .. 12 days ahead
        days = {r[0] for r in db.execute(
            "SELECT (range_start AT TIME ZONE 'UTC')::date FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'traces'")}
        assert ahead in days and len(days) == 14
        assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 0  # no probe left
        assert run_partitions(settings).totals["chunks_created"] == 0  # idempotent
        return

    old, older = now - timedelta(days=10), now - timedelta(days=40)
    copy_rows(db, "traces", [span(old, i) for i in range(7)] + [span(older, i) for i in range(3)])
    assert db.execute("SELECT count(*) FROM traces_default").fetchone()[0] == 10

    report = run_partitions(settings)
    parts = _partitions(db, "traces")
    for day in (old, older, now + timedelta(days=12)):
        assert f"traces_p{day:%Y%m%d}" in parts
    assert db.execute("SELECT count(*) FROM traces_default").fetchone()[0] == 0
    assert db.execute(f"SELECT count(*) FROM traces_p{old:%Y%m%d}").fetchone()[0] == 7  # noqa: S608
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 10
    item = next(i for i in report.items if i["table"] == "traces")
    assert item["rows_moved_from_default"] == 10 and item["rows_left_in_default"] == 0
    assert f"traces_p{older:%Y%m%d}" in item["partitions_created"]

    again = run_partitions(settings)
    assert again.totals["partitions_created"] == 0
