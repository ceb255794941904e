"""Fresh databases for benchmark methods: one per method, migrated, dropped afterwards.

A new database per method (rather than TRUNCATE) means every loader meets the same empty
hypertable or partition set, the same shipped indexes and no bloat left by the previous one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from observatory_storage.db import embedded
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import with_dbname
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import Settings, load_settings, redact_url

DEFAULT_TIMESCALEDB_URL = "postgresql://postgres@127.0.0.1:55432/postgres"


def dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def default_server_url(settings: Settings) -> str:
    """The local TimescaleDB when it answers, else the embedded PostgreSQL (started)."""
    if reachable(DEFAULT_TIMESCALEDB_URL):
        return DEFAULT_TIMESCALEDB_URL

    return embedded.ensure_started(settings.embedded_pg_dir)


def backend_kind(server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    return "timescaledb" if available and "timescaledb" in preload else "postgres"


def server_versions(server_url: str) -> dict[str, str | None]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        backend = detect(conn)
        ts = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    return {"postgresql": backend.server_version, "timescaledb": ts[0] if ts else None}


@contextlib.contextmanager
def fresh_database(server_url: str, label: str, *, keep: bool = False) -> Iterator[str]:
    """Create ``obs_bench_<label>_<random>``, migrate it, yield its URL, drop it.

    The database name is the path of the yielded URL (see :func:`dbname`).
    """
    name = f"obs_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_dbname(server_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, load_settings(database_url=url))
        yield url
    finally:
        if not keep:
            drop_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def count_rows(url: str, table: str = "traces") -> int:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        return conn.execute(query).fetchone()[0]


def shown(url: str) -> str:
    return redact_url(url)
