"""Compression per license: the Apache build and plain PostgreSQL report "not available"
and succeed; the SQL the licensed path would run is checked as text."""

from __future__ import annotations

import psycopg
import pytest

from observatory_storage.datasets import DATASETS
from observatory_storage.db.backend import Backend
from observatory_storage.maintenance.common import Slice
from observatory_storage.maintenance.compression import (
    compress_chunk_sql,
    enable_sql,
    run_compression,
    unavailable_reason,
)
from observatory_storage.settings import load_settings


def test_job_reports_not_available_and_succeeds(settings, db, backend):
    report = run_compression(settings)
    assert report.totals == {"available": 0, "chunks_compressed": 0}
    assert report.notes and report.notes[0].startswith("not available")
    if backend == "timescaledb":
        assert "'apache' license" in report.notes[0]
        # the server really refuses: our license check matches what it would do
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="license"):
            db.execute(enable_sql(settings, DATASETS["traces"]))


def test_licensed_backend_is_detected_as_available():
    licensed = Backend("timescaledb", "17.2", "2.19.3", "timescale")
    assert unavailable_reason(licensed) is None
    assert "plain PostgreSQL" in unavailable_reason(Backend("postgres", "16.4"))


def test_compression_sql_uses_segment_by_and_time_order():
    settings = load_settings(database_url=None, db_schema="obs")
    assert enable_sql(settings, DATASETS["traces"]).as_string(None) == (
        'ALTER TABLE "obs"."traces" SET (timescaledb.compress, '
        'timescaledb.compress_segmentby = \'"provider","request_model"\', '
        "timescaledb.compress_orderby = '\"start_time\" DESC')"
    )
    assert "compress_segmentby = '\"metric_name\"'" in enable_sql(
        settings, DATASETS["metrics"]
    ).as_string(None)
    chunk = Slice("_timescaledb_internal", "_hyper_1_2_chunk", None, None, 0)
    assert compress_chunk_sql(chunk).as_string(None) == (
        'SELECT compress_chunk(\'"_timescaledb_internal"."_hyper_1_2_chunk"\'::regclass, '
        "if_not_compressed => true)"
    )
