"""Group commits: many small files in one transaction, each with its own ledger row; a bad
file drops out of its group and the rest commits, exactly once."""

from __future__ import annotations

import pyarrow as pa

from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.ingest.helpers import count, ledger, put, table


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
