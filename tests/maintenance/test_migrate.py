"""The migration runner against real servers: both backends, idempotence, locking, edits."""

from __future__ import annotations

import threading

import psycopg
import pytest

from observatory_storage.maintenance import migrate as migrate_mod
from observatory_storage.maintenance.migrate import (
    MigrationChecksumError,
    discover,
    migrate,
    status,
)


def _tables(conn, schema="public"):
    return {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (schema,),
        )
    }


def test_migrate_creates_backend_specific_tables(empty_settings, backend):
    with psycopg.connect(empty_settings.database_url, autocommit=True) as conn:
        applied = migrate(conn, empty_settings)
        assert [m.version for m in applied] == [m.version for m in discover()]
        tables = _tables(conn)
        assert {"traces", "metrics", "logs", "ingest_files", "schema_migrations"} <= tables
        if backend == "timescaledb":
            hypertables = {
                r[0]
                for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables"
                )
            }
            assert hypertables == {"traces", "metrics", "logs"}
        else:
            kinds = dict(
                conn.execute(
                    "SELECT relname, relkind::text FROM pg_class "
                    "WHERE relname IN ('traces', 'metrics', 'logs')"
                ).fetchall()
            )
            assert kinds == {"traces": "p", "metrics": "p", "logs": "p"}
            assert "traces_default" in tables
        # a second run changes nothing
        assert migrate(conn, empty_settings) == []
        assert all(s.applied and s.checksum_ok for s in status(conn, empty_settings))


def test_dry_run_lists_pending_and_changes_nothing(empty_settings):
    with psycopg.connect(empty_settings.database_url, autocommit=True) as conn:
        plan = migrate(conn, empty_settings, dry_run=True)
        assert [m.filename for m in plan] == [m.filename for m in discover()]
        assert "traces" not in _tables(conn)


def test_two_concurrent_migrations_do_not_collide(empty_settings):
    results, errors = [], []

    def run():
        try:
            with psycopg.connect(empty_settings.database_url, autocommit=True) as conn:
                results.append(len(migrate(conn, empty_settings)))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [0, len(discover())]


def test_edited_applied_migration_is_refused(settings, tmp_path, monkeypatch):
    copy = tmp_path / "migrations"
    copy.mkdir()
    for m in discover():
        (copy / m.filename).write_text(m.text)
    (copy / "0003_ingest_ledger.sql").write_text(m.text + "\n-- edited\n")
    monkeypatch.setattr(migrate_mod, "MIGRATIONS_DIR", copy)
    monkeypatch.setattr(migrate_mod, "discover", lambda directory=copy: discover(directory))
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with pytest.raises(MigrationChecksumError, match="0003_ingest_ledger.sql"):
            migrate(conn, settings)


def test_custom_schema(empty_database_url, landing_dir):
    from tests.conftest import make_settings

    s = make_settings(empty_database_url, landing_dir, db_schema="obs")
    with psycopg.connect(s.database_url, autocommit=True) as conn:
        migrate(conn, s)
        assert {"traces", "metrics", "logs", "ingest_files"} <= _tables(conn, "obs")
        assert "traces" not in _tables(conn, "public")


def test_0006_adds_the_otlp_columns_to_tables_that_hold_data(empty_settings, tmp_path,
                                                               monkeypatch, backend):
    """A deployment at 0005 with rows in its partitions/chunks upgrades in place: the new
    columns are appended, old rows read null, and the contracts' tables match again."""
    from observatory_storage.datasets import DATASETS

    before = tmp_path / "migrations"
    before.mkdir()
    for m in discover():
        if m.version < 6:
            (before / m.filename).write_text(m.text)
    with monkeypatch.context() as patch:
        patch.setattr(migrate_mod, "discover", lambda directory=before: discover(directory))
        with psycopg.connect(empty_settings.database_url, autocommit=True) as conn:
            migrate(conn, empty_settings)
    with psycopg.connect(empty_settings.database_url, autocommit=True) as conn:
        for day in ("2026-12-01", "2026-12-02"):  # two daily partitions / chunks
            conn.execute("INSERT INTO traces (start_time, trace_id, span_id, name) "
                         "VALUES (%s, 'ab', 'cd', 'old')", (f"{day} 10:00Z",))
            conn.execute("INSERT INTO metrics (time, metric_name, value) VALUES (%s, 'm', 1)",
                         (f"{day} 10:00Z",))
            conn.execute("INSERT INTO logs (time, body) VALUES (%s, 'old')", (f"{day} 10:00Z",))
        assert [m.version for m in migrate(conn, empty_settings)] == [6, 7, 8]  # and later ones
        for ds in DATASETS.values():
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name = %s ORDER BY ordinal_position", (ds.name,))]
            assert columns == ds.column_names, ds.name
        assert conn.execute("SELECT count(*), count(cost_source) FROM traces").fetchone() == (2, 0)
        assert conn.execute("SELECT count(*), count(buckets) FROM metrics").fetchone() == (2, 0)
        conn.execute("UPDATE ingest_files SET unpriced_rows = 1 WHERE false")  # column exists
