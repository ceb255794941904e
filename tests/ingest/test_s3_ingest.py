"""The whole ingest path with the landing bucket on an S3 API server (moto, real HTTP)."""

from __future__ import annotations

import datetime as dt

import psycopg

from observatory_storage.generate import generate
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.ingest.replay import replay
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.ingest.helpers import count, ledger, load_all, put, table


def s3_settings(database_url, s3_landing_url, s3_endpoint, **overrides):
    return make_settings(database_url, s3_landing_url, s3_endpoint_url=s3_endpoint, **overrides)


def test_generated_files_load_from_s3_exactly_once(database_url, s3_landing_url, s3_endpoint, db):
    settings = s3_settings(database_url, s3_landing_url, s3_endpoint, copy_batch_size=64)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    generate(settings, "traces", 3, 100, "parquet", seed=5, start=start, spread_hours=1)
    generate(settings, "logs", 1, 50, "arrows", seed=5, start=start, spread_hours=1)
    generate(settings, "metrics", 1, 40, "arrow", seed=5, start=start, spread_hours=1)
    report = load_all(settings)
    assert report.ok and report.count("loaded") == 5 and report.rows == 390
    assert (count(db, "traces"), count(db, "logs"), count(db, "metrics")) == (300, 50, 40)
    assert load_all(settings).files == []
    landing = open_landing(settings)
    assert {r["fingerprint"] for r in ledger(db).values()} == {o.fingerprint for o in landing.list()}


def test_bad_file_is_moved_to_quarantine_in_the_bucket_and_replayed(
    database_url, s3_landing_url, s3_endpoint, db, s3_client
):
    settings = s3_settings(database_url, s3_landing_url, s3_endpoint)
    landing = open_landing(settings)
    put(landing, "traces/bad.parquet", table("traces", 5).drop_columns(["trace_id"]))
    put(landing, "traces/good.parquet", table("traces", 5))
    report = load_all(settings)
    assert {f.key: f.status for f in report.files} == {
        "traces/bad.parquet": "quarantined", "traces/good.parquet": "loaded"}
    bucket = s3_landing_url.split("/")[2]
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["landing/_quarantine/traces/bad.parquet", "landing/traces/good.parquet"]
    put(landing, "_quarantine/traces/bad.parquet", table("traces", 7, seed=9))
    assert [r.action for r in replay(settings, ["traces/bad.parquet"])] == ["requeued"]
    assert load_all(settings).rows == 7 and count(db, "traces") == 12


def test_object_overwritten_after_listing_is_gone_on_s3(database_url, s3_landing_url, s3_endpoint, db):
    settings = s3_settings(database_url, s3_landing_url, s3_endpoint)
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 5, seed=1))
    with psycopg.connect(database_url, autocommit=True) as conn:
        todo = pending_objects(settings, conn)
    put(landing, "traces/a.parquet", table("traces", 6, seed=2))
    assert [f.status for f in load_objects(settings, todo).files] == ["gone"]
    assert ledger(db) == {}
    assert load_all(settings).rows == 6


def test_split_file_from_s3_is_downloaded_once_for_all_its_parts(
    database_url, s3_landing_url, s3_endpoint, db
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = s3_settings(database_url, s3_landing_url, s3_endpoint, copy_workers=2,
                           copy_split_bytes=1)
    landing = open_landing(settings)
    data = table("traces", 60, seed=4)
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, row_group_size=20)
    landing.put("traces/big.parquet", sink.getvalue().to_pybytes())
    downloads = []
    get_object = landing.client.get_object
    landing.client.get_object = lambda **kw: downloads.append(kw["Key"]) or get_object(**kw)
    with psycopg.connect(settings.database_url) as conn:
        objects = pending_objects(settings, conn, landing=landing)
    report = load_objects(settings, objects, run_id="s3-split", landing=landing)
    assert [(f.status, f.rows) for f in report.files] == [("loaded", 60)]
    assert db.execute("SELECT count(*) FROM ingest_parts").fetchone()[0] == 3
    assert count(db, "traces") == 60 and len(downloads) == 1
