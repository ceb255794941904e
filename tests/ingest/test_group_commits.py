"""Group commits: many small files in one transaction, each with its own ledger row; a bad
file drops out of its group and the rest commits, exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import TEMPLATE, _new_database, make_settings
from tests.ingest.helpers import count, ledger, put, stored, table


def _transactions(db) -> dict[str, int]:
    """Ledger rows per writing transaction (xmin): files that committed together."""
    rows = db.execute("SELECT object_key, xmin::text FROM ingest_files WHERE status = 'loaded'")
    return {key: xid for key, xid in rows}


def test_small_files_commit_together_and_a_bad_one_drops_out(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, copy_workers=1, copy_group_files=50)
    landing = open_landing(settings)
    for i in range(20):
        put(landing, f"traces/ok-{i:02d}.parquet", table("traces", 10, seed=i))
    spans = table("traces", 3, seed=99)  # refused by PostgreSQL, row 2 (NUL in text)
    spans = spans.set_column(spans.schema.get_field_index("name"), "name",
                             pa.array(["ok", "ok", "bad\x00name"], pa.string()))
    put(landing, "traces/refused.parquet", spans)
    put(landing, "traces/unreadable.parquet", b"not parquet")  # refused before the group
    with connect(settings) as conn:
        objects = pending_objects(settings, conn)
    report = load_objects(settings, objects)
    assert report.count("loaded") == 20 and report.count("quarantined") == 2
    assert count(db, "traces") == 200
    rows = ledger(db)
    assert (rows["traces/refused.parquet"]["error_column"],
            rows["traces/refused.parquet"]["error_row"]) == ("name", 2)
    assert "22021" in rows["traces/refused.parquet"]["error"]
    assert rows["traces/unreadable.parquet"]["status"] == "quarantined"
    assert len(set(_transactions(db).values())) == 1  # the 20 good files: one transaction
    assert all(rows[f"traces/ok-{i:02d}.parquet"]["row_count"] == 10 for i in range(20))
    # exactly once: a second pass finds nothing to do, the counters say 20 files, 200 rows
    with connect(settings) as conn:
        assert pending_objects(settings, conn) == []
    assert load_objects(settings, objects).count("loaded") == 0
    assert count(db, "traces") == 200
    assert db.execute("SELECT sum(files), sum(rows) FROM ingest_counters WHERE dataset = "
                      "'traces' AND status = 'loaded'").fetchone() == (20, 200)


@pytest.fixture
def alone_database_url(backend, server_urls) -> Iterator[str]:
    """A second migrated database of the same backend: the same files loaded one by one."""
    name, url = _new_database(server_urls[backend], TEMPLATE)
    yield url
    with psycopg.connect(server_urls[backend], autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def test_a_group_stores_what_its_files_alone_would(database_url, alone_database_url,
                                                   landing_dir, db):
    """Files of several schemas and formats, unpriced rows and a file breaking its
    contract in one row: the group conforms them together, yet the tables and every
    ledger row (rows, event-time span, unpriced rows, the bad file's row) are those of
    loading each file alone."""
    landing = open_landing(make_settings(database_url, landing_dir))
    for i in range(6):
        spans = table("traces", 10, seed=i)
        if i % 2:  # unpriced: a model no price table knows, no cost of its own
            spans = spans.set_column(spans.schema.get_field_index("response_model"),
                                     "response_model", pa.array(["no-such-model"] * 10))
            spans = spans.set_column(spans.schema.get_field_index("cost_usd"), "cost_usd",
                                     pa.nulls(10, spans.schema.field("cost_usd").type))
        put(landing, f"traces/a-{i}.parquet", spans)
    other = table("traces", 7, seed=20).drop_columns(["session_id"])  # another schema
    put(landing, "traces/b-0.parquet", other.append_column("team", pa.array(["x"] * 7)))
    put(landing, "traces/c-0.arrow", table("traces", 5, seed=21), fmt="arrow")
    spans = table("traces", 10, seed=30)
    put(landing, "traces/d-bad.parquet", spans.set_column(0, "start_time", pa.array(
        [None if i == 4 else v for i, v in enumerate(spans.column("start_time").to_pylist())],
        spans.schema.field("start_time").type)))
    for url, group in ((database_url, 50), (alone_database_url, 1)):
        settings = make_settings(url, landing_dir, copy_workers=1, copy_group_files=group)
        with connect(settings) as conn:
            objects = pending_objects(settings, conn)
        report = load_objects(settings, objects)
        assert report.count("loaded") == 8 and report.count("quarantined") == 1
        for obj in landing.list_quarantined():  # back, for the second database
            landing.move(obj.key, landing.original_key(obj.key))
    with psycopg.connect(alone_database_url, autocommit=True) as alone:
        assert stored(db, "traces", "span_id") == stored(alone, "traces", "span_id")
        grouped, one_by_one = ledger(db), ledger(alone)
    columns = ("status", "dataset", "row_count", "min_time", "max_time", "unpriced_rows",
               "error_column", "error_row")
    assert {k: [v[c] for c in columns] for k, v in grouped.items()} == \
        {k: [v[c] for c in columns] for k, v in one_by_one.items()}
    assert grouped["traces/d-bad.parquet"]["error_row"] == 4
    assert sum(v["unpriced_rows"] or 0 for v in grouped.values()) > 0  # some were counted
    assert len({v for k, v in _transactions(db).items()}) == 1  # the 8 good files, together
