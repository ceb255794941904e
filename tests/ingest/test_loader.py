"""load_objects against real TimescaleDB and PostgreSQL: values, exactly-once, quarantine."""

from __future__ import annotations

import threading
import time

import psycopg
import pyarrow as pa
import pytest

from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.ingest.helpers import count, expected, ledger, load_all, put, stored, table


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "arrows"])
def test_every_column_round_trips_exactly(settings, db, fmt):
    landing = open_landing(settings)
    traces, metrics, logs = table("traces", 120), table("metrics", 80), table("logs", 60)
    put(landing, f"traces/a.{fmt}", traces, fmt)
    put(landing, f"metrics/m.{fmt}", metrics, fmt)
    put(landing, f"logs/l.{fmt}", logs, fmt)
    report = load_all(settings)
    assert report.ok and report.count("loaded") == 3 and report.rows == 260
    assert stored(db, "traces", "span_id") == expected(traces, "traces", lambda r: r["span_id"])
    assert stored(db, "metrics", "time, metric_name, value") == expected(
        metrics, "metrics", lambda r: (r["time"], r["metric_name"], r["value"]))
    assert stored(db, "logs", "time, body") == expected(logs, "logs", lambda r: (r["time"], r["body"]))
    rows = ledger(db)
    assert rows[f"traces/a.{fmt}"]["status"] == "loaded"
    assert rows[f"traces/a.{fmt}"]["row_count"] == 120
    assert rows[f"traces/a.{fmt}"]["run_id"] == "test-run"
    assert rows[f"traces/a.{fmt}"]["fingerprint"] == landing.stat(f"traces/a.{fmt}").fingerprint


def test_batches_split_a_file_but_it_loads_whole(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, copy_batch_size=7, copy_buffer_size=8192)
    put(open_landing(settings), "traces/a.parquet", table("traces", 100))
    assert load_all(settings).rows == 100 and count(db, "traces") == 100
    # the ledger knows the file's event-time span across all its batches
    span = db.execute("SELECT min_time, max_time FROM ingest_files").fetchone()
    assert span == db.execute("SELECT min(start_time), max(start_time) FROM traces").fetchone()


def test_rerun_is_exactly_once(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 40, seed=1))
    put(landing, "traces/b.parquet", table("traces", 30, seed=2))
    assert load_all(settings).count("loaded") == 2
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert pending_objects(settings, conn) == []
    # a cursor reset / sensor restart hands the same objects over again: skipped
    again = load_objects(settings, list(landing.list()))
    assert [f.status for f in again.files] == ["skipped", "skipped"] and again.ok
    assert count(db, "traces") == 70


def test_racing_loads_load_each_file_once(settings, db):
    landing = open_landing(settings)
    for i in range(3):
        put(landing, f"traces/{i}.parquet", table("traces", 200, seed=i))
    objects = list(landing.list())
    reports, errors = [], []

    def run():
        try:
            reports.append(load_objects(settings, objects))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    outcomes = [f for r in reports for f in r.files]
    for obj in objects:
        statuses = sorted(f.status for f in outcomes if f.key == obj.key)
        assert statuses == ["loaded", "skipped", "skipped", "skipped"]
    assert count(db, "traces") == 600


def test_bad_files_are_quarantined_with_reasons_and_others_load(settings, db):
    landing = open_landing(settings)
    good = table("traces", 20)
    put(landing, "traces/good.parquet", good)
    put(landing, "traces/garbage.parquet", b"definitely not parquet")
    put(landing, "traces/no_span_id.parquet", good.drop_columns(["span_id"]))
    nulls = good.set_column(0, "start_time", pa.array(
        [None if i == 5 else v for i, v in enumerate(good.column("start_time").to_pylist())],
        good.schema.field("start_time").type))
    put(landing, "traces/null_time.parquet", nulls)
    bad_tokens = good.set_column(good.schema.get_field_index("input_tokens"), "input_tokens",
                                 pa.array(["12"] * 7 + ["many"] + ["1"] * 12))
    put(landing, "traces/bad_value.parquet", bad_tokens)
    report = load_all(settings)
    assert report.ok  # quarantine is a normal outcome
    assert {f.key: f.status for f in report.files} == {
        "traces/good.parquet": "loaded", "traces/garbage.parquet": "quarantined",
        "traces/no_span_id.parquet": "quarantined", "traces/null_time.parquet": "quarantined",
        "traces/bad_value.parquet": "quarantined"}
    rows = ledger(db)
    assert "not a Parquet or Arrow IPC file" in rows["traces/garbage.parquet"]["error"]
    assert (rows["traces/no_span_id.parquet"]["error_column"],
            rows["traces/no_span_id.parquet"]["error_row"]) == ("span_id", None)
    assert (rows["traces/null_time.parquet"]["error_column"],
            rows["traces/null_time.parquet"]["error_row"]) == ("start_time", 5)
    assert (rows["traces/bad_value.parquet"]["error_column"],
            rows["traces/bad_value.parquet"]["error_row"]) == ("input_tokens", 7)
    assert rows["traces/bad_value.parquet"]["quarantine_key"] == "_quarantine/traces/bad_value.parquet"
    assert count(db, "traces") == 20
    assert [o.key for o in landing.list()] == ["traces/good.parquet"]
    assert len(list(landing.list_quarantined())) == 4


def test_rows_rejected_by_postgres_are_quarantined_with_the_row(settings, db):
    db.execute("ALTER TABLE traces ADD CONSTRAINT tokens_positive CHECK (input_tokens >= 0)")
    landing = open_landing(settings)
    bad = table("traces", 10)
    tokens = [5] * 10
    tokens[6] = -1
    bad = bad.set_column(bad.schema.get_field_index("input_tokens"), "input_tokens",
                         pa.array(tokens, pa.int32()))
    put(landing, "traces/neg.parquet", bad)
    report = load_all(settings)
    assert report.files[0].status == "quarantined"
    row = ledger(db)["traces/neg.parquet"]
    assert "rejected by PostgreSQL (23514)" in row["error"] and row["error_row"] == 6
    assert count(db, "traces") == 0


@pytest.mark.parametrize("bad", ["{not json", "NaN", '{"a": Infinity}', '"\\u0000"'])
def test_invalid_json_text_is_quarantined_naming_column_and_row(settings, db, bad):
    # JSON text is validated once, by PostgreSQL's jsonb input during the COPY
    landing = open_landing(settings)
    spans = table("traces", 5)
    payload = ['{"ok": 1}'] * 5
    payload[3] = bad
    spans = spans.set_column(spans.schema.get_field_index("input_payload"), "input_payload",
                             pa.array(payload, pa.string()))
    put(landing, "traces/json.parquet", spans)
    put(landing, "traces/good.parquet", table("traces", 4, seed=9))
    report = load_all(settings)
    assert {f.key: f.status for f in report.files} == {
        "traces/json.parquet": "quarantined", "traces/good.parquet": "loaded"}
    row = ledger(db)["traces/json.parquet"]
    assert (row["error_column"], row["error_row"]) == ("input_payload", 3)
    assert "traces/json.parquet" in row["error"]
    assert count(db, "traces") == 4


def test_nul_character_in_text_is_quarantined_naming_column_and_row(settings, db):
    # text encoding is verified once, by PostgreSQL, which refuses NUL (SQLSTATE 22021)
    landing = open_landing(settings)
    spans = table("traces", 3)
    spans = spans.set_column(spans.schema.get_field_index("name"), "name",
                             pa.array(["ok", "ok", "bad\x00name"], pa.string()))
    put(landing, "traces/nul.parquet", spans)
    report = load_all(settings)
    assert report.files[0].status == "quarantined"
    row = ledger(db)["traces/nul.parquet"]
    assert (row["error_column"], row["error_row"]) == ("name", 2) and "22021" in row["error"]
    assert count(db, "traces") == 0


def test_invalid_utf8_in_a_priced_column_is_quarantined_not_a_crash(settings, db):
    """A span with a model and tokens but no cost whose provider is not UTF-8 (found by the
    mutation fuzzer): pricing leaves it alone and PostgreSQL refuses the file, naming the
    row and column; the run does not fail."""
    landing = open_landing(settings)
    spans = table("traces", 3)
    names = spans.schema.names
    provider = pa.array([b"openai", b"\xefpenai", b"openai"], pa.binary()).view(pa.string())
    spans = spans.set_column(names.index("provider"), "provider", provider)
    spans = spans.set_column(names.index("cost_usd"), "cost_usd",
                             pa.nulls(3, spans.schema.field("cost_usd").type))
    spans = spans.set_column(names.index("request_model"), "request_model",
                             pa.array(["gpt-4o"] * 3))
    spans = spans.set_column(names.index("input_tokens"), "input_tokens",
                             pa.array([10, 20, 30], pa.int32()))
    put(landing, "traces/utf8.parquet", spans)
    report = load_all(settings)
    assert report.files[0].status == "quarantined"
    row = ledger(db)["traces/utf8.parquet"]
    assert (row["error_column"], row["error_row"]) == ("provider", 1) and "22021" in row["error"]
    assert count(db, "traces") == 0


def test_file_vanishing_between_listing_and_reading_is_gone(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 10, seed=1))
    put(landing, "traces/b.parquet", table("traces", 10, seed=2))
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        todo = pending_objects(settings, conn)
    landing.delete("traces/a.parquet")
    report = load_objects(settings, todo)
    assert [f.status for f in report.files] == ["gone", "loaded"] and not report.ok
    assert list(ledger(db)) == ["traces/b.parquet"]


def test_rewritten_before_reading_is_gone_then_new_version_loads(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 10, seed=1))
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        todo = pending_objects(settings, conn)
    time.sleep(0.01)
    put(landing, "traces/a.parquet", table("traces", 12, seed=2))
    assert load_objects(settings, todo).files[0].status == "gone"
    assert load_all(settings).rows == 12 and count(db, "traces") == 12


def test_loaded_key_with_new_content_is_a_conflict_not_a_reload(settings, db):
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 10, seed=1))
    load_all(settings)
    time.sleep(0.01)
    put(landing, "traces/a.parquet", table("traces", 15, seed=2))
    report = load_all(settings)
    assert [f.status for f in report.files] == ["conflict"] and not report.ok
    row = ledger(db)["traces/a.parquet"]
    assert row["status"] == "loaded" and row["row_count"] == 10
    assert row["conflict_fingerprint"] == landing.stat("traces/a.parquet").fingerprint
    assert row["conflict_at"] is not None
    assert count(db, "traces") == 10
    assert load_all(settings).files == []  # reported once, not on every tick


def test_quarantined_file_fixed_in_place_is_retried(database_url, landing_dir, db):
    settings = make_settings(database_url, landing_dir, landing_quarantine_move=False)
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", b"broken")
    assert load_all(settings).files[0].status == "quarantined"
    assert [o.key for o in landing.list()] == ["traces/a.parquet"]  # not moved
    assert load_all(settings).files == []  # same content: not retried
    put(landing, "traces/a.parquet", table("traces", 9))
    report = load_all(settings)
    assert [f.status for f in report.files] == ["loaded"]
    row = ledger(db)["traces/a.parquet"]
    assert (row["status"], row["row_count"], row["error"], row["attempts"]) == ("loaded", 9, None, 2)


@pytest.mark.parametrize("dedupe", [False, True])
def test_trace_dedupe(database_url, landing_dir, db, dedupe):
    settings = make_settings(database_url, landing_dir, copy_dedupe_traces=dedupe)
    landing = open_landing(settings)
    spans = table("traces", 40, seed=3)
    put(landing, "traces/a.parquet", spans)
    put(landing, "traces/b.parquet", pa.concat_tables([spans.slice(20), table("traces", 5, seed=4)]))
    report = load_all(settings)
    assert report.ok
    if dedupe:
        assert count(db, "traces") == 45
        assert report.rows == 45 and sum(f.duplicates for f in report.files) == 20
        # files load concurrently (COPY_WORKERS): the one committing first owns the shared spans
        rows = {key: entry["row_count"] for key, entry in ledger(db).items()}
        assert rows in ({"traces/a.parquet": 40, "traces/b.parquet": 5},
                        {"traces/a.parquet": 20, "traces/b.parquet": 25})
    else:
        assert count(db, "traces") == 65


def test_pending_objects_bounds(settings):
    landing = open_landing(settings)
    for i in range(5):
        put(landing, f"traces/{i}.parquet", b"x" * 100)
        time.sleep(0.005)
    put(landing, "metrics/m.parquet", b"x" * 1000)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert len(pending_objects(settings, conn)) == 6
        assert [o.key for o in pending_objects(settings, conn, max_files=2)] == [
            "traces/0.parquet", "traces/1.parquet"]
        assert len(pending_objects(settings, conn, max_bytes=250)) == 2
        assert [o.key for o in pending_objects(settings, conn, datasets=["metrics"],
                                               max_bytes=10)] == ["metrics/m.parquet"]


def test_connection_loss_propagates_and_the_retry_loads(settings, db):
    """An admin shutdown mid-load raises (Dagster retries); nothing half-loaded remains."""
    landing = open_landing(settings)
    put(landing, "traces/a.parquet", table("traces", 10))
    objects = list(landing.list())
    failures = []
    with psycopg.connect(settings.database_url) as blocker:
        blocker.execute("LOCK TABLE ingest_files IN ACCESS EXCLUSIVE MODE")

        def run():
            try:
                load_objects(settings, objects)
            except Exception as exc:
                failures.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        for _ in range(200):
            waiting = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND application_name = 'observatory-storage'"
            ).fetchall()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "loader never reached the ledger"
        db.execute("SELECT pg_terminate_backend(%s)", (waiting[0][0],))
        blocker.rollback()
    worker.join()
    assert len(failures) == 1 and isinstance(failures[0], psycopg.OperationalError)
    assert ledger(db) == {} and count(db, "traces") == 0
    assert load_all(settings).count("loaded") == 1 and count(db, "traces") == 10
