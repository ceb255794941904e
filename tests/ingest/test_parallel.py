"""Parallel COPY on real databases: several connections, split files, chunks made ahead."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from observatory_storage.generate import build_table
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.ingest.replay import replay
from observatory_storage.landing import open_landing
from observatory_storage.service import facts
from tests.conftest import make_settings
from tests.ingest.helpers import count, expected, ledger, load_all, put, stored, table


def parquet(data: pa.Table, row_group_size: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, row_group_size=row_group_size)
    return sink.getvalue().to_pybytes()


def waiting_loaders(db: psycopg.Connection) -> int:
    return db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND application_name = 'observatory-storage'"
    ).fetchone()[0]


def test_files_load_on_several_connections_at_once(database_url, landing_dir, db):
    # one transaction per file (no group commits), to see the files side by side
    settings = make_settings(database_url, landing_dir, copy_workers=3, copy_group_files=1)
    landing = open_landing(settings)
    tables = {f"traces/{i}.parquet": table("traces", 30, seed=i) for i in range(5)}
    for key, data in tables.items():
        put(landing, key, data)
    objects = sorted(landing.list(), key=lambda o: o.key, reverse=True)
    reports = []
    with psycopg.connect(settings.database_url) as blocker:
        blocker.execute("LOCK TABLE traces IN SHARE MODE")  # every COPY queues behind it
        worker = threading.Thread(target=lambda: reports.append(load_objects(settings, objects)))
        worker.start()
        for _ in range(200):
            if waiting_loaders(db) == 3:
                break
            time.sleep(0.05)
        assert waiting_loaders(db) == 3  # three files in flight at once, no more
        blocker.rollback()
    worker.join()
    [report] = reports
    assert [f.key for f in report.files] == [o.key for o in objects]  # order as given
    assert report.count("loaded") == 5 and count(db, "traces") == 150
    both = pa.concat_tables(tables.values())
    assert stored(db, "traces", "span_id") == expected(both, "traces", lambda r: r["span_id"])


def big_file(landing, key="traces/big.parquet", rows=120, groups=20, seed=7, **changes):
    data = table("traces", rows, seed=seed)
    for column, (row, value) in changes.items():
        values = data.column(column).to_pylist()
        values[row] = value
        data = data.set_column(data.schema.get_field_index(column), column,
                               pa.array(values, data.schema.field(column).type))
    landing.put(key, parquet(data, groups))
    return data


def test_big_file_loads_in_parts_and_a_retry_loads_only_missing_parts(database_url, landing_dir,
                                                                       db):
    settings = make_settings(database_url, landing_dir, copy_workers=2, copy_split_bytes=1)
    landing = open_landing(settings)
    data = big_file(landing)  # 6 row groups of 20 rows
    put(landing, "traces/small.parquet", table("traces", 10, seed=8))
    report = load_all(settings)
    assert report.count("loaded") == 2 and report.rows == 130
    parts = db.execute("SELECT part, row_count FROM ingest_parts ORDER BY part").fetchall()
    assert parts == [(i, 20) for i in range(6)]  # one row group: the small file loads whole
    row = ledger(db)["traces/big.parquet"]
    assert row["status"] == "loaded" and row["row_count"] == 120 and row["part_bounds"] == list(
        range(7))
    assert (row["min_time"], row["max_time"]) == db.execute(
        "SELECT min(start_time), max(start_time) FROM traces WHERE span_id = ANY(%s)",
        (data.column("span_id").to_pylist(),)).fetchone()
    # a crash after parts 1 and 4 had not committed: the retry loads exactly those
    lost = pa.concat_tables([data.slice(20, 20), data.slice(80, 20)]).column("span_id").to_pylist()
    db.execute("DELETE FROM traces WHERE span_id = ANY(%s)", (lost,))
    db.execute("DELETE FROM ingest_parts WHERE part IN (1, 4)")
    db.execute("UPDATE ingest_files SET status = 'loading' WHERE object_key = 'traces/big.parquet'")
    one = make_settings(database_url, landing_dir, copy_workers=1)  # settings do not matter
    with psycopg.connect(settings.database_url) as conn:
        assert [o.key for o in pending_objects(one, conn)] == ["traces/big.parquet"]
    again = load_all(one)
    assert [(f.status, f.rows) for f in again.files] == [("loaded", 40)]
    assert ledger(db)["traces/big.parquet"]["status"] == "loaded"
    rows = stored(db, "traces", "span_id")
    everything = pa.concat_tables([data, table("traces", 10, seed=8)])
    assert rows == expected(everything, "traces", lambda r: r["span_id"])  # exactly once
    assert load_all(settings).files == []


def test_refused_part_after_committed_parts_is_partial_never_duplicated(database_url,
                                                                         landing_dir, db):
    settings = make_settings(database_url, landing_dir, copy_workers=2, copy_split_bytes=1)
    landing = open_landing(settings)
    big_file(landing, name=(110, None))  # the last part (rows 100..119) has a null name
    [outcome] = load_all(settings).files
    assert outcome.status == "quarantined"
    assert "(column 'name', row 110)" in outcome.error and "partially loaded" in outcome.error
    row = ledger(db)["traces/big.parquet"]
    committed = db.execute("SELECT count(*), sum(row_count) FROM ingest_parts").fetchone()
    # with two workers the last part starts only after four parts committed
    assert row["status"] == "partial" and committed[0] >= 4
    assert row["row_count"] == committed[1] == count(db, "traces") == outcome.rows
    assert row["error_row"] == 110 and row["quarantine_key"] == "_quarantine/traces/big.parquet"
    assert landing.exists("_quarantine/traces/big.parquet")
    [result] = replay(settings, ["traces/big.parquet"])
    assert result.action == "refused" and count(db, "traces") == committed[1]
    # /health and /metrics count it as a quarantined file (counters: files, rows in the table)
    assert facts.ledger_summary(db, "public").quarantined_files == 1
    quarantined = facts.ingest_counters(db, "public").totals[("traces", "quarantined")]
    assert (quarantined.files, quarantined.rows) == (1, committed[1])


def test_rewritten_file_between_parts_is_a_conflict_not_a_reload(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, copy_workers=2, copy_split_bytes=1)
    landing = open_landing(settings)
    big_file(landing)
    load_all(settings)
    db.execute("DELETE FROM ingest_parts WHERE part = 5")  # as if killed before the last part
    db.execute("UPDATE ingest_files SET status = 'loading'")
    before = count(db, "traces")
    big_file(landing, seed=9)  # rewritten in place meanwhile
    [outcome] = load_all(settings).files
    assert outcome.status == "conflict" and count(db, "traces") == before
    assert ledger(db)["traces/big.parquet"]["conflict_fingerprint"] is not None


def test_concurrent_loads_into_a_day_without_chunk_never_wait(database_url, landing_dir, db,
                                                              backend):
    """Chunks/partitions are created before the COPY, in their own short transactions."""
    settings = make_settings(database_url, landing_dir, copy_workers=2, copy_batch_size=500)
    landing = open_landing(settings)
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) + \
        dt.timedelta(days=40)  # beyond every partition/chunk made ahead
    for i in range(2):
        landing.put(f"traces/{i}.parquet", parquet(build_table(
            "traces", 6000, seed=i, start=day + dt.timedelta(hours=1), spread_hours=40), 6000))
    objects = list(landing.list())
    samples, ungranted, reports = 0, [], []
    worker = threading.Thread(target=lambda: reports.append(load_objects(settings, objects)))
    worker.start()
    while worker.is_alive():
        ungranted += db.execute(
            "SELECT l.locktype, l.relation::regclass::text, l.mode FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database() "
            "AND l.locktype = 'relation'").fetchall()  # not page 'extend' locks: those are brief
        samples += 1
        time.sleep(0.005)
    worker.join()
    assert reports[0].count("loaded") == 2 and count(db, "traces") == 12000
    assert samples > 5 and ungranted == []
    if backend == "timescaledb":
        chunks = db.execute("SELECT count(*) FROM timescaledb_information.chunks "
                            "WHERE hypertable_name = 'traces'").fetchone()[0]
        assert chunks == 2  # the rows span two days
    else:  # both days got their partition: nothing sits in DEFAULT
        assert db.execute("SELECT count(*) FROM traces_default").fetchone()[0] == 0
        counts = [db.execute(f"SELECT count(*) FROM ONLY traces_p{d:%Y%m%d}").fetchone()[0]  # noqa: S608
                  for d in (day, day + dt.timedelta(days=1))]
        assert sum(counts) == 12000 and min(counts) > 0


@pytest.mark.parametrize("fmt", ["arrow"])
def test_arrow_ipc_file_splits_by_record_batch(database_url, landing_dir, db, fmt):
    settings = make_settings(database_url, landing_dir, copy_workers=2, copy_split_bytes=1)
    landing = open_landing(settings)
    data = table("traces", 90, seed=5)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, data.schema) as writer:
        for batch in data.to_batches(max_chunksize=30):
            writer.write_batch(batch)
    landing.put("traces/a.arrow", sink.getvalue().to_pybytes())
    assert load_all(settings).rows == 90
    assert db.execute("SELECT count(*) FROM ingest_parts").fetchone()[0] == 3
    assert stored(db, "traces", "span_id") == expected(data, "traces", lambda r: r["span_id"])
