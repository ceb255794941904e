"""Landing retention deletes old loaded files through the Landing API and records it;
ledger retention then retires those rows; their counts stay (migration 0008's counters)."""

from __future__ import annotations

from datetime import timedelta

from observatory_storage.landing import open_landing
from observatory_storage.maintenance.landing_retention import expire_landing_files
from observatory_storage.maintenance.retention import run_retention
from tests.conftest import make_settings
from tests.maintenance.data import add_ledger, db_now


def _loaded(db, landing, key: str, age_days: float) -> None:
    landing.put(key, b"x" * 10)
    fingerprint = landing.stat(key).fingerprint
    add_ledger(
        db,
        key,
        key.split("/")[0],
        fingerprint=fingerprint,
        size=10,
        loaded_at=db_now(db) - timedelta(days=age_days),
    )


def _deleted_at(db, key):
    return db.execute(
        "SELECT landing_deleted_at FROM ingest_files WHERE object_key = %s", (key,)
    ).fetchone()[0]


def test_old_loaded_files_are_deleted_and_marked(settings, db, landing_dir):
    landing = open_landing(settings)
    _loaded(db, landing, "traces/old.parquet", 10)
    _loaded(db, landing, "traces/new.parquet", 1)
    _loaded(db, landing, "logs/rewritten.parquet", 10)
    landing.put("logs/rewritten.parquet", b"other content, not loaded yet")
    _loaded(db, landing, "metrics/gone.parquet", 10)
    landing.delete("metrics/gone.parquet")

    dry = expire_landing_files(db, settings, db_now(db), dry_run=True)
    assert dry.deleted == ["traces/old.parquet"]
    assert (landing_dir / "traces" / "old.parquet").exists()
    assert _deleted_at(db, "traces/old.parquet") is None

    done = expire_landing_files(db, settings, db_now(db))
    assert done.deleted == ["traces/old.parquet"] and done.bytes == 10
    assert done.already_gone == ["metrics/gone.parquet"]
    assert done.kept_changed == ["logs/rewritten.parquet"]
    assert not (landing_dir / "traces" / "old.parquet").exists()
    assert (landing_dir / "traces" / "new.parquet").exists()
    assert (landing_dir / "logs" / "rewritten.parquet").exists()
    assert _deleted_at(db, "traces/old.parquet") is not None
    assert _deleted_at(db, "metrics/gone.parquet") is not None
    assert _deleted_at(db, "logs/rewritten.parquet") is None


def test_ledger_retention_retires_only_rows_whose_file_left(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, retention_ledger_days=30)
    landing = open_landing(settings)
    _loaded(db, landing, "traces/a.parquet", 40)
    _loaded(db, landing, "traces/b.parquet", 40)
    _loaded(db, landing, "traces/c.parquet", 5)
    report = run_retention(settings)
    assert report.totals["landing_files_deleted"] == 2  # c is younger than 7 days
    remaining = {r[0] for r in db.execute("SELECT object_key FROM ingest_files")}
    assert remaining == {"traces/c.parquet"}
    # the retired rows still count, with c's: /metrics never goes down
    assert db.execute(
        "SELECT sum(files), sum(rows), sum(bytes) FROM ingest_counters "
        "WHERE dataset = 'traces' AND status = 'loaded'"
    ).fetchone() == (3, 3, 30)


def test_keeping_landing_files_forever_keeps_their_ledger_rows(database_url, landing_dir, db):
    settings = make_settings(
        database_url, landing_dir, retention_landing_days="", retention_ledger_days=30
    )
    landing = open_landing(settings)
    _loaded(db, landing, "traces/a.parquet", 400)
    report = run_retention(settings)
    assert any("kept forever" in n for n in report.notes)
    assert (landing_dir / "traces" / "a.parquet").exists()
    assert db.execute("SELECT count(*) FROM ingest_files").fetchone()[0] == 1
