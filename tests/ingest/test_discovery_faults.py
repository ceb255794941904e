"""Incremental discovery must never cost a file: late keys, keys rewritten in place, a lost
cursor, a pass killed before it committed, two processes at once, and an S3 listing that
does not show a key for a while all end with every file loaded exactly once, within one
sweep interval (real ledger, real landing: a local folder and a moto S3 server)."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg

from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import Pass, discover, pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.ingest.helpers import count, ledger, put, table

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
LAYOUT = "traces/{:%Y/%m/%d/%H}/{}"  # the product's generator's layout (hour folders)


def _key(hours_ago: float, name: str) -> str:
    return LAYOUT.format(NOW - dt.timedelta(hours=hours_ago), name)


def _ingest(settings) -> int:
    """One discovery pass and the load of what it found; the files it loaded."""
    with connect(settings) as conn:
        todo = pending_objects(settings, conn, datasets=["traces"])
        conn.commit()
    return load_objects(settings, todo).count("loaded") if todo else 0


def _history(landing, hours: int = 6) -> list[str]:
    keys = [put(landing, _key(h, f"batch-{h}.parquet"), table("traces", 3, seed=h))
            for h in range(hours)]
    return keys


def _sweep_interval_passes(settings, db, landing_id: str) -> None:
    """Make the last finished sweep LANDING_SWEEP_MINUTES old (time passing, cheaply)."""
    db.execute("UPDATE landing_sweeps SET last_pass_at = last_pass_at - %s * interval '1 minute' "
               "WHERE landing = %s", (settings.landing_sweep_minutes + 1, landing_id))


def test_a_late_key_waits_for_the_next_sweep_and_loads_once(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_lookback_minutes=30,
                             landing_sweep_minutes=60, landing_sweep_batch=4)
    landing = open_landing(settings)
    _history(landing)
    assert _ingest(settings) == 6  # the first pass lists everything
    late = put(landing, _key(5, "late.parquet"), table("traces", 3, seed=99))
    quiet = Pass()
    with connect(settings, autocommit=True) as conn:
        assert discover(settings, conn, landing, ["traces"], report=quiet) == []
    assert quiet.swept == 0 and quiet.recent == 2  # between sweeps: the two newest hours only
    _sweep_interval_passes(settings, db, landing.identity)
    passes = 0
    while not ledger(db).get(late):
        passes += 1
        _ingest(settings)
        assert passes <= 7 // 4 + 2, "the sweep did not reach the late key"
    assert count(db, "traces") == 21 and _ingest(settings) == 0


def test_a_key_rewritten_in_place_after_loading_is_reported_never_loaded_twice(
        database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_sweep_minutes=0)
    landing = open_landing(settings)
    old, *_ = _history(landing, 3)
    assert _ingest(settings) == 3
    put(landing, old, table("traces", 5, seed=42))  # a writer rewrote an old batch
    with connect(settings, autocommit=True) as conn:
        discover(settings, conn, landing, ["traces"], sweep=True)
    _ingest(settings)
    row = ledger(db)[old]
    assert row["status"] == "loaded" and row["conflict_fingerprint"] is not None
    assert count(db, "traces") == 9  # the first version's rows, once
    assert _ingest(settings) == 0


def test_a_lost_cursor_and_backlog_cost_one_sweep_never_a_file(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=2,
                             landing_lookback_minutes=30)
    landing = open_landing(settings)
    _history(landing)
    with connect(settings) as conn:  # a pass found everything, nothing loaded yet
        pending_objects(settings, conn, datasets=["traces"], max_files=1)
        conn.commit()
    assert db.execute("SELECT count(*) FROM landing_backlog").fetchone()[0] == 6
    db.execute("TRUNCATE landing_backlog, landing_sweeps")  # an operator reset the state
    late = put(landing, _key(4, "late.parquet"), table("traces", 3, seed=77))
    loaded = sum(_ingest(settings) for _ in range(3))
    assert loaded == 7 and ledger(db)[late]["status"] == "loaded"
    assert count(db, "traces") == 21 and _ingest(settings) == 0


def test_a_pass_killed_before_it_committed_leaves_nothing_behind(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=2)
    landing = open_landing(settings)
    _history(landing)
    conn = psycopg.connect(database_url)  # the daemon died mid-tick: no commit
    discover(settings, conn, landing, ["traces"])
    conn.close()
    assert db.execute("SELECT count(*) FROM landing_sweeps").fetchone()[0] == 0
    assert _ingest(settings) == 6 and count(db, "traces") == 18


def test_two_processes_discovering_and_loading_at_once_load_each_file_once(
        database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=3,
                             landing_sweep_minutes=0, landing_lookback_minutes=30)
    landing = open_landing(settings)
    _history(landing, 4)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(4):
                put(landing, _key(0, f"w{seed}-{i}.parquet"), table("traces", 2, seed=seed + i))
                put(landing, _key(3, f"late{seed}-{i}.parquet"), table("traces", 2, seed=seed))
                _ingest(settings)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for _ in range(2 * (20 // 3 + 1)):  # two whole sweeps reach what the recent listing left
        _ingest(settings)
    files = ledger(db)
    assert len(files) == 4 + 16 and {r["status"] for r in files.values()} == {"loaded"}
    assert count(db, "traces") == 4 * 3 + 16 * 2  # no file's rows twice


def test_an_s3_key_the_recent_listing_does_not_show_loads_within_one_sweep(
        database_url, s3_landing_url, s3_endpoint, db):
    settings = make_settings(database_url, s3_landing_url, s3_endpoint_url=s3_endpoint,
                             landing_sweep_batch=3, landing_sweep_minutes=60,
                             landing_lookback_minutes=30)
    landing = open_landing(settings)
    _history(landing)
    assert _ingest(settings) == 6
    hidden = put(landing, _key(5, "hidden.parquet"), table("traces", 3, seed=55))
    fresh = put(landing, _key(0, "fresh.parquet"), table("traces", 3, seed=56))
    assert _ingest(settings) == 1 and hidden not in ledger(db) and fresh in ledger(db)
    _sweep_interval_passes(settings, db, landing.identity)
    for _ in range(8 // 3 + 2):
        _ingest(settings)
    assert ledger(db)[hidden]["status"] == "loaded" and count(db, "traces") == 24
