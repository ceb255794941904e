"""The product as an operator runs it: TLS (verify-full), SCRAM passwords from secret files,
and each process as its least-privilege role from sql/roles/create_roles.sql.

One flow per backend (TimescaleDB and plain PostgreSQL secure clusters):

1. ``migrate`` (CLI) as the superuser, DATABASE_URL_FILE holding the URL and password;
2. the roles script (psql over the cluster's socket), then ``migrate`` as ``obs_owner``;
3. ``ingest`` (CLI, which runs ``ingest_job`` in process) as ``obs_ingest``, the password
   from DB_PASSWORD_FILE: one file loaded, one quarantined and moved;
4. a Dagster run of ``ingest_job`` in this process as ``obs_ingest``, events kept;
5. ``obs_ingest`` is refused DROP/ALTER/TRUNCATE/CREATE on the same TLS sessions;
6. ``serve`` as ``obs_readonly``: /health 200 healthy, /metrics; readonly reads, never writes;
7. ``serve`` with a wrong password: /health 503 with a redacted reason;

and no password appears in any output collected on the way.
"""

from __future__ import annotations

import json
import secrets
import subprocess

import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value

from observatory_storage.defs.in_process import execute_ingest
from observatory_storage.settings import PROJECT_ROOT, load_settings
from tests.reliability.corpus import parquet_bytes, traces_table
from tests.security.conftest import CLI, product_env

pytestmark = pytest.mark.slow

ROLES_SCRIPT = PROJECT_ROOT / "sql" / "roles" / "create_roles.sql"
DENIED = psycopg.errors.InsufficientPrivilege


def _cli(*args: str, env: dict[str, str], seen: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          timeout=300)
    seen[f"{' '.join(args)}: stdout"] = done.stdout
    seen[f"{' '.join(args)}: stderr"] = done.stderr
    return done


def test_product_over_tls_with_passwords_as_least_privilege_roles(
    secure, secure_backend, secure_database, tmp_path, serve
):
    backend, db = secure_backend, secure_database
    passwords = {kind: f"{kind}-S3cret-{secrets.token_hex(8)}"
                 for kind in ("owner", "ingest", "readonly")}
    secret_values = [secure.password, *passwords.values()]
    tls = {"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": str(secure.ca)}
    landing = tmp_path / "landing"
    (landing / "traces").mkdir(parents=True)
    seen: dict[str, str] = {}

    def as_role(kind: str) -> dict[str, str]:
        return {"DATABASE_URL": secure.url(backend, db, user=f"obs_{kind}"),
                "DB_PASSWORD_FILE": str(secure.secret_file(kind, passwords[kind])),
                "LANDING_URL": str(landing), **tls}

    # 1. migrate as the superuser; the whole URL comes from a secret file
    url_file = secure.secret_file("database_url", secure.url(backend, db, password=secure.password))
    done = _cli("migrate", "--json", seen=seen,
                env=product_env(DATABASE_URL_FILE=str(url_file), LANDING_URL=str(landing), **tls))
    assert done.returncode == 0, done.stderr
    assert "0002_datasets.sql" in json.loads(done.stdout)["applied"]

    # 2. least-privilege roles, then the owner migrates (nothing pending, bookkeeping works)
    made = secure.psql(backend, "-v", "ON_ERROR_STOP=1", "-d", db, "-v", "schema=public",
                       *[arg for kind, pw in passwords.items()
                         for arg in ("-v", f"{kind}_password={pw}")],
                       stdin=ROLES_SCRIPT.read_text())
    assert made.returncode == 0 and "roles ready" in made.stdout, made.stderr
    seen["roles script"] = made.stdout + made.stderr
    done = _cli("migrate", seen=seen, env=product_env(**as_role("owner")))
    assert done.returncode == 0 and "database is up to date" in done.stdout, done.stderr

    # 3. the CLI ingest (ingest_job in process) as the ingest role
    (landing / "traces" / "good.parquet").write_bytes(parquet_bytes(traces_table(50, tag="g")))
    (landing / "traces" / "bad.parquet").write_bytes(b"not parquet at all")
    done = _cli("ingest", "--json", seen=seen, env=product_env(**as_role("ingest")))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 50
    assert (report["datasets"]["traces"]["loaded"], report["datasets"]["traces"]["quarantined"]) \
        == (1, 1)
    assert (landing / "_quarantine" / "traces" / "bad.parquet").exists()

    # 4. a Dagster run in this process, as the ingest role; every event is kept for the check
    (landing / "traces" / "second.parquet").write_bytes(parquet_bytes(traces_table(30, tag="s")))
    ingest_env = as_role("ingest")
    settings = load_settings(
        database_url=ingest_env["DATABASE_URL"], db_password_file=ingest_env["DB_PASSWORD_FILE"],
        landing_url=str(landing), db_sslmode="verify-full", db_sslrootcert=str(secure.ca))
    with dg.DagsterInstance.ephemeral() as instance:
        run_report, result = execute_ingest(settings, instance=instance)
        assert result.success and [f.status for f in run_report.files] == ["loaded"]
        for dagster_run in instance.get_runs():
            seen[f"run {dagster_run.run_id}"] = serialize_value(dagster_run)
            seen[f"events {dagster_run.run_id}"] = "\n".join(
                serialize_value(e) for e in instance.all_logs(dagster_run.run_id))

    with secure.admin(backend, db) as admin:
        assert admin.execute("SELECT count(*) FROM traces").fetchone()[0] == 80
        ledger = dict(admin.execute("SELECT object_key, status FROM ingest_files").fetchall())
        assert ledger == {"traces/good.parquet": "loaded", "traces/bad.parquet": "quarantined",
                          "traces/second.parquet": "loaded"}
        kind = admin.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
                             ).fetchone()[0]
        assert kind == (1 if backend == "timescaledb" else 0)  # the backend the test claims

    # 5. the ingest role, on a verified TLS session, may not change the schema
    with psycopg.connect(secure.url(backend, db, user="obs_ingest", password=passwords["ingest"],
                                    query=f"sslmode=verify-full&sslrootcert={secure.ca}"),
                         autocommit=True) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone()[0] is True
        for statement in ("DROP TABLE traces", "ALTER TABLE traces ADD COLUMN sneaky int",
                          "TRUNCATE ingest_files", "DELETE FROM traces",
                          "CREATE TABLE public.sneaky (x int)"):
            with pytest.raises(DENIED):
                conn.execute(statement)

    # 6. the service as the read-only role
    served = serve(secure.url(backend, db, user="obs_readonly"), landing,
                   **{k: v for k, v in as_role("readonly").items()
                      if k not in ("DATABASE_URL", "LANDING_URL")})
    status, health = served.wait_for(
        lambda: (lambda s, h: (s, h) if s == 200 else None)(*served.health()), "/health 200")
    # degraded (HTTP 200): the one quarantined file is a problem that /health names
    assert health["status"] == "degraded" and health["database"]["connected"], health
    assert any("1 file(s) quarantined (" in p for p in health["problems"]), health
    assert health["database"]["url"].startswith("postgresql://obs_readonly:***@127.0.0.1:")
    assert health["ingest"]["quarantined_files"] == 1
    served.wait_for(lambda: served.sample("storage_ingested_rows_total", dataset="traces") == 80,
                    "/metrics to count the 80 rows (the ledger, read as obs_readonly)")
    with psycopg.connect(secure.url(backend, db, user="obs_readonly",
                                    password=passwords["readonly"],
                                    query=f"sslmode=verify-full&sslrootcert={secure.ca}"),
                         autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 80
        for statement in ("INSERT INTO logs (time, body) VALUES (now(), 'nope')",
                          "DELETE FROM ingest_files", "DROP TABLE logs"):
            with pytest.raises(DENIED):
                conn.execute(statement)

    # 7. a wrong password: /health says 503 and why, without the password
    wrong = f"Wr0ng-{secrets.token_hex(6)}"
    secret_values.append(wrong)
    bad = serve(secure.url(backend, db, user="obs_readonly"), landing, DB_CONNECT_TIMEOUT="3",
                DB_PASSWORD_FILE=str(secure.secret_file("wrong", wrong)), **tls)
    status, body = bad.health()
    assert status == 503 and body["status"] == "unhealthy", body
    assert body["problems"][0] == "database unreachable"
    assert "password authentication failed" in body["database"]["error"], body
    assert body["database"]["url"].startswith("postgresql://obs_readonly:***@")

    for label, server in (("serve", served), ("serve (wrong password)", bad)):
        served_terminated = server.terminate()
        assert served_terminated == 0
        seen[f"{label} log"] = server.output()
        seen[f"{label} responses"] = "\n".join(server.responses)
    leaks = [where for where, text in seen.items() if any(s in text for s in secret_values)]
    assert not leaks, f"a password leaked into: {leaks}"
