"""replay: a quarantined file, once fixed, goes back to the landing and loads."""

from __future__ import annotations

from observatory_storage.ingest.replay import replay
from observatory_storage.landing import open_landing
from tests.ingest.helpers import count, ledger, load_all, put, table


def test_replay_by_key_moves_back_and_requeues(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/bad.parquet", table("traces", 10).drop_columns(["name"]))
    put(landing, "traces/other.parquet", b"junk")
    assert load_all(settings).count("quarantined") == 2
    # the operator fixes the parked file, then replays it (either key spelling works)
    put(landing, "_quarantine/traces/bad.parquet", table("traces", 10))
    results = replay(settings, ["_quarantine/traces/bad.parquet"])
    assert [(r.key, r.action) for r in results] == [("traces/bad.parquet", "requeued")]
    assert "traces/bad.parquet" not in ledger(db)
    assert [o.key for o in landing.list()] == ["traces/bad.parquet"]
    report = load_all(settings)
    assert [(f.key, f.status) for f in report.files] == [("traces/bad.parquet", "loaded")]
    assert count(db, "traces") == 10
    assert ledger(db)["traces/other.parquet"]["status"] == "quarantined"


def test_replay_all_includes_parked_files_without_ledger_rows(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", b"junk")
    load_all(settings)
    put(landing, "_quarantine/logs/orphan.parquet", table("logs", 4))  # crash left it parked
    put(landing, "_quarantine/traces/a.parquet", table("traces", 3))  # fixed
    results = replay(settings, all_quarantined=True)
    assert sorted((r.key, r.action) for r in results) == [
        ("logs/orphan.parquet", "requeued"), ("traces/a.parquet", "requeued")]
    assert list(landing.list_quarantined()) == []
    assert load_all(settings).count("loaded") == 2
    assert count(db, "traces") == 3 and count(db, "logs") == 4


def test_replay_refuses_loaded_keys_and_reports_unknown(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 3))
    load_all(settings)
    results = replay(settings, ["traces/a.parquet", "traces/never.parquet"])
    assert [(r.key, r.action) for r in results] == [
        ("traces/a.parquet", "refused"), ("traces/never.parquet", "unknown")]
    assert ledger(db)["traces/a.parquet"]["status"] == "loaded"


def test_replay_keeps_parked_copy_when_a_fixed_file_was_dropped_at_the_key(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", b"junk")
    load_all(settings)
    put(landing, "traces/a.parquet", table("traces", 2))
    [result] = replay(settings, ["traces/a.parquet"])
    assert result.action == "requeued" and "kept _quarantine/traces/a.parquet" in result.detail
    assert load_all(settings).count("loaded") == 1
