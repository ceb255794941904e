"""The SQL behind the asset checks, on both backends: loaded-vs-stored catches a duplicated
and a lost load, drift catches a changed column, the row count estimate follows ANALYZE."""

from __future__ import annotations

from observatory_storage.defs.in_process import execute_ingest
from observatory_storage.maintenance import checks
from tests.defs.files import T0, traces_table, write, write_sample


def _loaded_run(settings, landing_dir) -> str:
    write_sample(landing_dir, traces_files=2, rows=10)
    report, result = execute_ingest(settings, ephemeral=True)
    assert result.success and report.count("loaded") == 4
    return result.run_id


def test_consistency_catches_a_duplicated_and_a_lost_load(settings, db, landing_dir):
    run_id = _loaded_run(settings, landing_dir)
    found = checks.consistency(db, settings, "traces", run_id)
    assert found.checked and found.passed, found.reason
    assert found.expected == found.stored == 20 and found.files == 2

    # The same rows COPYed again behind the ledger's back: more stored than loaded.
    db.execute("INSERT INTO traces SELECT * FROM traces WHERE span_id = %s", (f"{3:016x}",))
    db.commit()
    found = checks.consistency(db, settings, "traces", run_id)
    assert found.checked and not found.passed and found.difference == 1
    assert "duplicated" in found.reason

    # Rows gone: fewer stored than loaded.
    db.execute("DELETE FROM traces WHERE span_id IN (%s, %s)", (f"{3:016x}", f"{4:016x}"))
    db.commit()
    found = checks.consistency(db, settings, "traces", run_id)
    assert not found.passed and found.difference == -2 and "lost" in found.reason


def test_consistency_widens_to_files_overlapping_the_run(settings, db, landing_dir):
    """A later run's file overlapping this run's window is counted with it, not as a dup."""
    first = _loaded_run(settings, landing_dir)
    write(landing_dir, "traces/overlap.parquet", traces_table(5, offset=15))  # inside batch-1
    _, later = execute_ingest(settings, ephemeral=True)
    assert later.success
    # first run: 12:00:00-12:00:19 takes in the later file; the later run's 12:00:15-19
    # widens to batch-1 (12:00:10-19) only
    for run_id, rows, files in ((first, 25, 3), (later.run_id, 15, 2)):
        found = checks.consistency(db, settings, "traces", run_id)
        assert found.checked and found.passed, found.reason
        assert found.expected == found.stored == rows and found.files == files
    assert checks.run_span(db, settings, "traces", later.run_id).min_time == T0.replace(second=15)


def test_drift_names_missing_extra_and_mistyped_columns(settings, db):
    for table in ("traces", "metrics", "logs", "traces_hourly", "metrics_hourly"):
        assert checks.drift(db, settings, table).passed, table
    db.execute("ALTER TABLE logs ADD COLUMN surprise text")
    db.execute("ALTER TABLE logs DROP COLUMN span_id")
    db.execute("ALTER TABLE logs ALTER COLUMN severity_number TYPE integer")
    db.commit()
    found = checks.drift(db, settings, "logs")
    assert found.missing == ["span_id"] and found.extra == ["surprise"]
    assert found.mistyped == ["severity_number: integer (contract: smallint)"]
    assert found.severe


def test_row_count_is_exact_when_small_and_estimated_from_statistics(settings, db, landing_dir,
                                                                     monkeypatch):
    _loaded_run(settings, landing_dir)
    assert checks.row_count(db, settings, "traces") == checks.RowCount(20, exact=True)
    db.execute("ANALYZE traces")
    monkeypatch.setattr(checks, "EXACT_COUNT_MAX_BYTES", 0)  # as if the table were large
    estimate = checks.row_count(db, settings, "traces")
    assert not estimate.exact and estimate.rows == 20
