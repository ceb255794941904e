"""The password in DATABASE_URL leaks nowhere, on success and on every failure path.

A real login role with a password is created on the TimescaleDB server for this module
(the server trusts local logins, so the password is never checked: what matters is
that it is in the URL every command receives). Then every output the product has is
collected and searched for it: CLI stdout/stderr (migrate, db status, ingest; with a wrong
user, a wrong database, a closed port and an unknown host), log records, Dagster's event
log and run records of ``ingest_job`` runs (one that retried on a refused connection and
quarantined a file), every ledger column, and /health, /health/ready and /metrics of
``observatory-storage serve`` with the database up and down.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value
from psycopg import sql

from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.defs.in_process import execute_ingest
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from tests.conftest import make_settings
from tests.reliability.corpus import parquet_bytes, traces_table
from tests.reliability.faults import CLI, Background, cli_env, dbname, wait_for
from tests.reliability.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["timescaledb"])]

PASSWORD = f"Sup3r-S3cret-{secrets.token_hex(8)}"


@pytest.fixture
def secret_url(database_url, server_urls):
    """database_url, but logging in as a fresh role whose password is PASSWORD."""
    role = f"obs_secret_{secrets.token_hex(4)}"
    with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
    parts = urlsplit(database_url)
    netloc = f"{role}:{PASSWORD}@{parts.hostname}:{parts.port}"
    yield urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                      (role,))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _variant(url: str, *, user: str | None = None, db: str | None = None,
             host: str | None = None, port: int | None = None) -> str:
    """The same URL (same password) with one part made wrong."""
    parts = urlsplit(url)
    netloc = (f"{user or parts.username}:{PASSWORD}@{host or parts.hostname}:"
              f"{port or parts.port}")
    return urlunsplit((parts.scheme, netloc, "/" + (db or parts.path.lstrip("/")), "", ""))


def _assert_clean(texts: dict[str, str]) -> None:
    leaks = [where for where, text in texts.items() if PASSWORD in text]
    assert not leaks, f"the password leaked into: {leaks}"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def _landing_with_a_bad_file(landing_dir) -> None:
    (landing_dir / "traces").mkdir(exist_ok=True)
    (landing_dir / "traces" / "good.parquet").write_bytes(parquet_bytes(traces_table(10, tag="g")))
    (landing_dir / "traces" / "bad.parquet").write_bytes(b"not parquet at all")


def test_password_never_in_cli_output(secret_url, landing_dir):
    _landing_with_a_bad_file(landing_dir)
    wrong = {
        "wrong user": _variant(secret_url, user="obs_no_such_role"),
        "wrong database": _variant(secret_url, db="obs_no_such_db"),
        "closed port": _variant(secret_url, port=free_port()),
        "unknown host": _variant(secret_url, host="no-such-host.invalid"),
    }
    seen: dict[str, str] = {}
    codes: dict[str, int] = {}
    runs = [("migrate", secret_url, ["migrate"]), ("db status", secret_url, ["db", "status"]),
            ("ingest", secret_url, ["ingest", "--json"])]
    for label, url in wrong.items():  # every failure kind once, and each command once
        runs.append((f"db status ({label})", url, ["db", "status"]))
    runs += [("migrate (wrong user)", wrong["wrong user"], ["migrate"]),
             ("ingest (closed port)", wrong["closed port"], ["ingest"])]
    def run(label: str, url: str, args: list[str]) -> None:
        done = _cli(*args, env=cli_env(url, str(landing_dir), LOG_LEVEL="DEBUG",
                                       DB_CONNECT_TIMEOUT="3"))
        seen[f"{label}: stdout"], seen[f"{label}: stderr"] = done.stdout, done.stderr
        codes[label] = done.returncode

    with ThreadPoolExecutor(max_workers=3) as pool:  # independent processes; 2 cores
        list(pool.map(lambda item: run(*item), runs))
    _assert_clean(seen)
    assert codes["migrate"] == 0 and codes["db status"] == 0
    assert codes["ingest"] == 0  # the bad file is quarantined, the good one loaded
    for label in (label for label in codes if "(" in label):
        assert codes[label] == 3, (label, seen)
        stderr = seen[f"{label}: stderr"]
        assert stderr.startswith("error: ") and "Traceback" not in stderr, stderr
        assert ":***@" in stderr  # the URL is shown, redacted, so the user can check it


def test_password_never_in_logs_errors_or_ledger(secret_url, landing_dir, caplog):
    _landing_with_a_bad_file(landing_dir)
    settings = make_settings(secret_url, landing_dir)
    seen: dict[str, str] = {}
    with caplog.at_level(logging.DEBUG):
        with psycopg.connect(secret_url, autocommit=True) as conn:
            report = load_objects(settings, pending_objects(settings, conn))
        seen["report"] = str(report.as_dict()) + report.format_table()
        for label, url in {"closed port": _variant(secret_url, port=free_port()),
                           "wrong user": _variant(secret_url, user="obs_no_such_role")}.items():
            bad = make_settings(url, landing_dir, db_connect_timeout=3)
            with pytest.raises(DatabaseUnavailable) as caught:
                connect(bad)
            seen[f"error ({label})"] = f"{caught.value!s} {caught.value!r}"
            with pytest.raises(DatabaseUnavailable) as caught:
                load_objects(bad, [])
            seen[f"load_objects error ({label})"] = str(caught.value)
    seen["log records"] = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    with psycopg.connect(secret_url, autocommit=True) as conn:
        rows = conn.execute("SELECT t::text FROM ingest_files t").fetchall()
    seen["ledger rows"] = "\n".join(r[0] for r in rows)
    assert sorted(f.status for f in report.files) == ["loaded", "quarantined"]
    assert len(rows) == 2 and caplog.records
    _assert_clean(seen)


def test_password_never_in_dagster_events(secret_url, landing_dir, server_urls):
    """A run that retried on a refused connection and quarantined a file: every event."""
    _landing_with_a_bad_file(landing_dir)
    settings = make_settings(secret_url, landing_dir)
    instance = dg.DagsterInstance.ephemeral()
    name = dbname(secret_url)
    with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
            sql.Identifier(name)))
        try:
            run = Background(lambda: execute_ingest(settings, instance=instance))
            wait_for(lambda: _event_types(instance) & {"STEP_UP_FOR_RETRY"}, 60,
                     "a retry on the refused connection")
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                sql.Identifier(name)))
    report, result = run.join(90)
    assert result.success and sorted(f.status for f in report.files) == ["loaded", "quarantined"]
    seen: dict[str, str] = {}
    for dagster_run in instance.get_runs():
        seen[f"run {dagster_run.run_id}"] = serialize_value(dagster_run)
        for n, entry in enumerate(instance.all_logs(dagster_run.run_id)):
            seen[f"event {n} of {dagster_run.run_id}"] = serialize_value(entry)
    events = "\n".join(seen.values())
    instance.dispose()
    assert "DatabaseUnavailable" in events and ":***@" in events  # the retry's redacted reason
    assert "bad.parquet" in events  # the quarantine reason is in the metadata
    _assert_clean(seen)


def _event_types(instance: dg.DagsterInstance) -> set[str]:
    return {
        entry.dagster_event.event_type_value
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
        if entry.dagster_event
    }


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_password_never_in_health_or_metrics(secret_url, landing_dir, tmp_path):
    _landing_with_a_bad_file(landing_dir)
    seen: dict[str, str] = {}
    for label, url in {"up": secret_url, "down": _variant(secret_url, port=free_port())}.items():
        health, metrics = free_port(), free_port()
        log = tmp_path / f"serve-{label}.log"
        env = cli_env(url, str(landing_dir), LOG_LEVEL="DEBUG", DB_CONNECT_TIMEOUT="2",
                      METRICS_REFRESH_SECONDS="0.3")
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [CLI, "serve", "--health-port", str(health), "--metrics-port", str(metrics)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda h=health: _live(h), 60, "serve to answer", interval=0.2)
            for path in ("/health", "/health/ready", "/health/live"):
                status, body = _get(health, path)
                seen[f"{label} {path} ({status})"] = body
            status, body = _get(metrics, "/metrics")
            seen[f"{label} /metrics ({status})"] = body
        finally:
            server.terminate()
            server.wait(15)
        seen[f"{label} serve log"] = log.read_text(errors="replace")
    assert any(k.startswith("up /health (200)") for k in seen), list(seen)
    assert any(k.startswith("down /health (503)") for k in seen), list(seen)
    _assert_clean(seen)


def _live(port: int) -> bool:
    try:
        return _get(port, "/health/live")[0] == 200
    except OSError:
        time.sleep(0.1)
        return False
