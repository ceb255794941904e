"""Which backend a database is: TimescaleDB (hypertables) or plain PostgreSQL (partitions)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Backend:
    kind: str  # "timescaledb" or "postgres"
    server_version: str
    timescaledb_version: str | None = None
    license: str | None = None  # "apache" refuses compression and add_retention_policy

    @property
    def is_timescaledb(self) -> bool:
        return self.kind == "timescaledb"

    @property
    def compression_available(self) -> bool:
        return self.is_timescaledb and self.license == "timescale"

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "server_version": self.server_version,
            "timescaledb_version": self.timescaledb_version,
            "license": self.license,
        }


def detect(conn: psycopg.Connection, *, install: bool = False) -> Backend:
    """Detect the backend; with ``install`` create the extension when it can be loaded."""
    server_version = conn.execute("SHOW server_version").fetchone()[0]
    installed = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if installed is None and install and _loadable(conn):
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        installed = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    if installed is None:
        return Backend("postgres", server_version)
    license_ = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()[0]
    return Backend("timescaledb", server_version, installed[0], license_ or "apache")


def _loadable(conn: psycopg.Connection) -> bool:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    return available is not None and "timescaledb" in preload
