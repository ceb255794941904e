"""VACUUM (ANALYZE) updates the statistics of the chunks/partitions that were written."""

from __future__ import annotations

from datetime import timedelta

from observatory_storage.db.backend import detect
from observatory_storage.maintenance.common import last_run, slices
from observatory_storage.maintenance.vacuum import run_vacuum
from tests.maintenance.data import add_ledger, copy_rows, db_now, span


def _last_analyze(db, label: str):
    schema, name = label.split(".")
    return db.execute(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (schema, name),
    ).fetchone()[0]


def _slice_of(db, settings, when) -> str:
    for s in slices(db, settings, detect(db), "traces"):
        if s.start is not None and s.start <= when < s.end:
            return s.label
    raise AssertionError(f"no traces slice holds {when}")


def test_vacuum_analyzes_written_slices_only(settings, db, backend):
    now = db_now(db)
    today, yesterday = now - timedelta(minutes=5), now - timedelta(days=1)
    copy_rows(db, "traces", [span(today, i) for i in range(50)])
    copy_rows(db, "traces", [span(yesterday, i) for i in range(50)])
    db.execute("DELETE FROM traces WHERE start_time = %s AND input_tokens < 120", (today,))

    first = run_vacuum(settings)
    assert last_run(db, settings, "vacuum_analyze") is not None
    touched = {i["table"]: i for i in first.items}
    today_slice, yesterday_slice = (
        _slice_of(db, settings, today),
        _slice_of(db, settings, yesterday),
    )
    assert {today_slice, yesterday_slice, "public.ingest_files"} <= touched.keys()
    assert touched[today_slice]["rows"] == 30
    assert touched[today_slice]["dead_tuples_after"] == 0
    analyzed_at = _last_analyze(db, today_slice)
    assert analyzed_at is not None and _last_analyze(db, yesterday_slice) is not None

    # a file written into yesterday's slice since the last run: only that slice is redone
    copy_rows(db, "traces", [span(yesterday, 100 + i) for i in range(5)])
    add_ledger(db, "traces/y.parquet", "traces", min_time=yesterday, max_time=yesterday)
    second = run_vacuum(settings)
    redone = {i["table"] for i in second.items}
    assert yesterday_slice in redone and today_slice not in redone
    assert second.totals["tables_skipped"] > 0
    assert _last_analyze(db, today_slice) == analyzed_at
    if backend == "timescaledb":  # the hypertable parent would recurse into every chunk
        assert "public.traces" not in redone
