"""`observatory-storage serve` as a subprocess against real TimescaleDB and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.maintenance.migrate import discover
from tests.conftest import TEMPLATE, _new_database, with_dbname

pytestmark = pytest.mark.slow


def write_logs_file(landing, name: str, rows: int) -> None:
    folder = landing / "logs" / "2026" / "11" / "28"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "time": pa.array([datetime(2026, 11, 28, 12, 0, i % 60, tzinfo=UTC)
                          for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "body": [f"line {i}" for i in range(rows)],
    })
    pq.write_table(table, folder / name)


def load_pending_in_another_process(database_url: str, landing) -> dict:
    """What a Dagster run does, in its own short-lived process: list, load, exit."""
    code = textwrap.dedent(f"""
        import json
        from observatory_storage.db.connection import connect
        from observatory_storage.ingest.discovery import pending_objects
        from observatory_storage.ingest.loader import load_objects
        from observatory_storage.settings import load_settings
        s = load_settings(database_url={database_url!r}, landing_url={str(landing)!r})
        with connect(s) as conn:
            todo = pending_objects(s, conn)
        report = load_objects(s, todo)
        print(json.dumps([o.status for o in report.files]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_health_has_the_seed_shape_and_operator_fields(serve, database_url, landing_dir, backend):
    served = serve(database_url, landing_dir)

    status, doc = served.health()
    assert status == 200, doc
    assert doc["status"] == "healthy"
    assert doc["version"]
    assert doc["database"]["connected"] is True
    assert doc["database"]["latency_ms"] >= 0
    assert set(doc["pool"]) >= {"active", "idle", "max_size"}
    assert doc["pool"]["max_size"] == 4  # DB_POOL_MAX_SIZE of the fixture
    assert doc["backend"]["kind"] == backend
    if backend == "timescaledb":
        assert doc["backend"]["timescaledb_version"] and doc["backend"]["license"]
    assert doc["migrations"]["applied"] == len(discover())
    assert doc["migrations"]["pending"] == 0
    assert doc["ingest"]["pending_files"] == 0
    assert doc["ingest"]["lag_seconds"] == 0
    # the tables only: an OTLP file counts under the tables it loaded into (issue 22)
    assert doc["ingest"]["last_loaded_at"] == {ds: None for ds in DATASETS}
    assert doc["ingest"]["quarantined_files"] == 0
    assert doc["ingest"]["conflicts"] == 0
    assert (doc["ingest"]["misplaced_files"], doc["ingest"]["misplaced_keys"]) == (0, [])

    assert served.health("/health/live") == (200, {"status": "alive"})
    status, ready = served.health("/health/ready")
    assert (status, ready["ready"]) == (200, True)
    assert served.get("/nope")[0] == 404
    assert served.get("/health", port=served.metrics_port)[0] == 404


def test_metrics_add_up_what_other_processes_loaded(
    serve, database_url, landing_dir, backend, promtool
):
    served = serve(database_url, landing_dir)
    write_logs_file(landing_dir, "a.parquet", 120)
    write_logs_file(landing_dir, "b.parquet", 30)
    (landing_dir / "logs" / "2026" / "11" / "28" / "bad.parquet").write_bytes(b"not parquet")
    (landing_dir / "foo").mkdir()
    (landing_dir / "foo" / "x.parquet").write_bytes(b"PAR1")  # in no dataset folder

    # Before any run: three files wait in the bucket; one will never be loaded.
    status, doc = served.health()
    assert doc["ingest"]["pending_files"] == 3
    assert doc["ingest"]["lag_seconds"] >= 0
    assert (doc["ingest"]["misplaced_files"], doc["ingest"]["misplaced_keys"]) == (
        1, ["foo/x.parquet"])
    assert (status, doc["status"]) == (200, "degraded")
    assert doc["ingest"]["swept_through"] is None  # no pass has listed every key yet
    assert "1 landing file(s) not in a dataset folder" in doc["problems"][0]
    assert served.sample("storage_landing_misplaced_files") == 1

    statuses = load_pending_in_another_process(database_url, landing_dir)
    assert sorted(statuses) == ["loaded", "loaded", "quarantined"]

    def files(status):
        return served.sample("storage_ingested_files_total", dataset="logs", status=status)

    # The counters are a background snapshot: wait for the whole expected state (one taken
    # between the other process's two commits has the loads but not yet the quarantine).
    served.wait_for(lambda: (files("loaded"), files("quarantined")) == (2, 1),
                    "2 loaded and 1 quarantined log file in /metrics")
    assert served.sample("storage_ingested_rows_total", dataset="logs") == 150
    assert served.sample("storage_ingested_rows_total", dataset="traces") == 0
    assert served.sample("storage_copy_errors_total", dataset="logs") == 1
    assert served.sample("storage_copy_batch_size_count", dataset="logs") == 2
    assert served.sample("storage_copy_batch_size_sum", dataset="logs") == 150
    assert served.sample("storage_copy_batch_size_bucket", dataset="logs", le="10.0") == 0
    assert served.sample("storage_copy_batch_size_bucket", dataset="logs", le="100.0") == 1
    assert served.sample("storage_copy_batch_size_bucket", dataset="logs", le="1000.0") == 2
    assert served.sample("storage_copy_write_duration_seconds_count", dataset="logs") == 2
    assert served.sample("storage_ingested_bytes_total", dataset="logs") > 0
    assert served.sample("storage_last_load_timestamp_seconds", dataset="logs") > 0
    assert served.sample("storage_database_up") == 1
    assert served.sample("storage_migrations_pending") == 0
    installed = served.sample("storage_schema_installed_timestamp_seconds")
    assert 0 < installed <= time.time()  # what the "not running" alerts fall back to
    assert served.sample("storage_quarantined_files") == 1
    served.wait_for(lambda: served.sample("storage_landing_backlog_files") == 0,
                    "empty backlog after the run")  # the listing is cached a few seconds
    assert served.sample("storage_ingest_lag_seconds") == 0
    swept = datetime.fromisoformat(served.health()[1]["ingest"]["swept_through"])
    assert abs(time.time() - swept.timestamp()) < 600  # the run's first pass listed every key

    status, doc = served.health()
    assert doc["ingest"]["last_loaded_at"]["logs"] is not None
    assert doc["ingest"]["quarantined_files"] == 1
    bad = "logs/2026/11/28/bad.parquet"
    assert doc["ingest"]["quarantined_keys"] == [bad]
    assert any(p.startswith(f"1 file(s) quarantined ({bad})") for p in doc["problems"]), doc

    exposition = served.metrics()
    check = subprocess.run([promtool, "check", "metrics"], input=exposition, text=True,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    # Deleting ledger rows (replay, ledger retention) must never make a counter go down.
    before = {name: served.sample(name, dataset="logs") for name in (
        "storage_ingested_rows_total", "storage_copy_errors_total",
        "storage_copy_batch_size_count", "storage_copy_write_duration_seconds_sum")}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ingest_files WHERE status = 'quarantined'")  # as replay does
        retired = conn.execute(
            "SELECT obs_retire_ledger_rows(now() + interval '1 day', false)").fetchone()[0]
        assert retired == 2
        assert conn.execute("SELECT count(*) FROM ingest_files").fetchone()[0] == 0
    deleted_at = time.time()
    served.wait_for(
        lambda: served.sample("storage_metrics_refresh_timestamp_seconds") > deleted_at + 0.1,
        "a refresh after the deletions")
    assert served.sample("storage_quarantined_files") == 0
    after = {name: served.sample(name, dataset="logs") for name in before}
    assert after == before
    assert files("loaded") == 2 and files("quarantined") == 1


def test_pending_migrations_make_health_503_and_probes_never_migrate(
    serve, empty_database_url, landing_dir
):
    served = serve(empty_database_url, landing_dir)

    status, doc = served.health()
    assert status == 503
    assert doc["status"] == "unhealthy"
    assert doc["database"]["connected"] is True
    assert doc["migrations"]["applied"] == 0
    assert doc["migrations"]["pending"] == len(discover())
    assert "migrate" in doc["problems"][0]
    assert served.health("/health/ready")[0] == 503
    assert served.health("/health/live")[0] == 200
    assert served.sample("storage_migrations_pending") == len(discover())
    assert served.sample("storage_database_up") == 1

    with psycopg.connect(empty_database_url) as conn:  # the probes changed nothing
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None


def test_sigterm_stops_cleanly_with_exit_code_0(serve, database_url, landing_dir):
    served = serve(database_url, landing_dir)
    assert served.health()[0] == 200
    assert served.terminate(timeout=15) == 0
    log = served.output()
    assert "SIGTERM received" in log and "stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_password_never_appears_in_responses_or_logs(
    serve, backend, server_urls, templates, landing_dir
):
    """The TimescaleDB test server trusts local connections, so the password is not checked,
    but it is in DATABASE_URL, where a careless error message or log line would leak it."""
    password = "s3cr3t-Pa55-" + "d0nt-leak"
    name, url = _new_database(server_urls[backend], TEMPLATE)
    with psycopg.connect(server_urls[backend], autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'obs_svc'").fetchone():
            admin.execute(sql.SQL("CREATE ROLE obs_svc LOGIN PASSWORD {}").format(
                sql.Literal(password)))
    with psycopg.connect(url, autocommit=True) as conn:  # read-only is all serve needs
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO obs_svc")
    secret_url = url.replace("postgres@", f"obs_svc:{password}@", 1)
    assert password in secret_url
    try:
        served = serve(secret_url, landing_dir)
        assert served.health()[0] == 200
        served.metrics()
        served.get("/health/ready")
        served.get("/missing")
        # A database that does not exist: errors are reported, still without the password.
        broken = serve(with_dbname(secret_url, "obs_no_such_db"), landing_dir)
        status, doc = broken.health()
        assert status == 503 and doc["database"]["connected"] is False
        assert "***" in doc["database"]["url"]
        broken.metrics()
        assert served.terminate() == 0 and broken.terminate() == 0
        for text in [*served.responses, *broken.responses, served.output(), broken.output()]:
            assert password not in text
        assert "obs_svc:***@" in served.output()
    finally:
        with psycopg.connect(server_urls[backend], autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def test_a_missing_landing_is_a_failed_check_on_health(serve, database_url, tmp_path):
    """The long-running service names a landing folder that is not there; never creates it."""
    missing = tmp_path / "landig"
    served = serve(database_url, missing)
    status, doc = served.health()
    assert (status, doc["status"]) == (200, "degraded")
    assert doc["ingest"]["pending_files"] is None
    assert any(f"landing folder {missing} does not exist" in p for p in doc["problems"]), doc
    assert not missing.exists()
