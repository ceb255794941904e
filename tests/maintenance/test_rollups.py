"""Hourly rollups equal the raw data exactly, and late data re-aggregates its hour."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from observatory_storage.maintenance.rollups import merge_ranges, run_rollups
from tests.maintenance.data import add_ledger, copy_rows, db_now, span

TRACE_KEY = ("provider", "request_model", "service_name", "environment")


def _expected(rows: list[dict]) -> dict[tuple, dict]:
    """The rollup computed independently in Python (percentiles: linear, as percentile_cont)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        bucket = r["start_time"].replace(minute=0, second=0, microsecond=0)
        groups.setdefault((bucket, *(r[k] for k in TRACE_KEY)), []).append(r)
    out = {}
    for key, members in groups.items():
        latencies = [m["duration_ms"] for m in members]
        out[key] = {
            "spans": len(members),
            "errors": sum(m["status_code"] == "error" for m in members),
            "input_tokens": sum(m["input_tokens"] for m in members),
            "output_tokens": sum(m["output_tokens"] for m in members),
            "cost_usd": sum((m["cost_usd"] for m in members), Decimal(0)),
            "p": [float(np.percentile(latencies, q)) for q in (50, 95, 99)],
        }
    return out


def _actual(db) -> dict[tuple, dict]:
    rows = db.execute(
        "SELECT bucket, provider, request_model, service_name, environment, spans, errors, "
        "input_tokens, output_tokens, cost_usd, latency_p50_ms, latency_p95_ms, latency_p99_ms "
        "FROM traces_hourly"
    ).fetchall()
    return {
        tuple(r[:5]): {
            "spans": r[5],
            "errors": r[6],
            "input_tokens": r[7],
            "output_tokens": r[8],
            "cost_usd": r[9],
            "p": list(r[10:13]),
        }
        for r in rows
    }


def _assert_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert got["p"] == pytest.approx(want["p"], rel=1e-12), key
        assert {k: v for k, v in got.items() if k != "p"} == {
            k: v for k, v in want.items() if k != "p"
        }, key


def test_rollup_values_are_exact_and_late_data_reaggregates(settings, db):
    now = db_now(db)
    base = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    rows = [span(base + timedelta(minutes=7 * i), i) for i in range(300)]  # ~35 hours
    copy_rows(db, "traces", rows)
    add_ledger(
        db,
        "traces/a.parquet",
        "traces",
        min_time=rows[0]["start_time"],
        max_time=rows[-1]["start_time"],
        loaded_at=now - timedelta(hours=3),
    )
    first = run_rollups(settings)  # first run: a backfill
    assert any("first run" in n for n in first.notes)
    _assert_equal(_actual(db), _expected(rows))

    # a late file for one old hour: only that hour is recomputed
    late_hour = base + timedelta(hours=2)
    late = [span(late_hour + timedelta(minutes=m), 1000 + m) for m in range(0, 60, 4)]
    copy_rows(db, "traces", late)
    add_ledger(
        db,
        "traces/late.parquet",
        "traces",
        min_time=late[0]["start_time"],
        max_time=late[-1]["start_time"],
    )
    second = run_rollups(settings)
    traces_item = next(i for i in second.items if i["table"] == "traces_hourly")
    assert traces_item["source"] == "ledger" and traces_item["hours_recomputed"] == 1
    _assert_equal(_actual(db), _expected(rows + late))

    # nothing new: at most the late hour again (the watermark overlap re-reads the last
    # hour of the ledger), with the same values
    third = run_rollups(settings)
    assert third.totals["hours_recomputed"] <= 1
    _assert_equal(_actual(db), _expected(rows + late))


def test_files_without_time_bounds_fall_back_to_reconciling_counts(settings, db):
    now = db_now(db)
    run_rollups(settings)  # empty backfill sets the watermark
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    copy_rows(
        db,
        "metrics",
        [
            {"time": hour + timedelta(minutes=i), "metric_name": "m", "value": float(i)}
            for i in range(10)
        ],
    )
    add_ledger(db, "metrics/x.parquet", "metrics")  # loader did not record min/max_time
    report = run_rollups(settings)
    assert any("without min_time/max_time" in n for n in report.notes)
    row = db.execute(
        "SELECT bucket, count, sum, min, max, avg FROM metrics_hourly WHERE metric_name = 'm'"
    ).fetchone()
    assert row == (hour, 10, 45.0, 0.0, 9.0, 4.5)


def test_backfill_never_erases_hours_whose_raw_rows_are_gone(settings, db):
    now = db_now(db)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    copy_rows(
        db, "traces", [span(hour + timedelta(minutes=1), 1), span(hour + timedelta(hours=5), 2)]
    )
    run_rollups(settings, backfill=True)
    db.execute("DELETE FROM traces WHERE start_time < %s", (hour + timedelta(hours=1),))
    run_rollups(settings, backfill=True, reconcile=True)
    assert db.execute("SELECT sum(spans) FROM traces_hourly").fetchone()[0] == 2


def test_merge_ranges_aligns_to_hours():
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, 10, 20, tzinfo=UTC)
    merged = merge_ranges(
        [
            (t, t),
            (t + timedelta(minutes=50), t + timedelta(hours=1)),
            (t + timedelta(hours=5), t + timedelta(hours=5, minutes=1)),
        ]
    )
    assert merged == [
        (datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)),
        (datetime(2026, 1, 1, 15, tzinfo=UTC), datetime(2026, 1, 1, 16, tzinfo=UTC)),
    ]
