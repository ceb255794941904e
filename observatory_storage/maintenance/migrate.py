"""Migration runner for the numbered SQL files in ``sql/migrations/``.

Each file is applied in its own transaction and recorded in ``schema_migrations`` with the
SHA-256 of its text. Runs are serialized by a session advisory lock, so two ``migrate``
calls at once are safe. An applied file whose text changed is refused
(:class:`MigrationChecksumError`): write a new migration instead.

Files may use placeholders rendered per database: ``{{schema}}`` (quoted identifier), ``{{schema_name}}``
(bare, validated name for literals), ``{{chunk_interval:DS}}``,
``{{partitions_ahead}}`` and ``{{partition_clause:TABLE:COLUMN}}`` (empty on TimescaleDB,
``PARTITION BY RANGE (COLUMN)`` on plain PostgreSQL). The checksum covers the file as
written, so changing a setting never makes an applied file look edited.

A small runner rather than a library: the maintained ones (yoyo, alembic) either lack
templating per schema/backend or bring an ORM; this one is ~150 lines and fully tested.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from observatory_storage.db.backend import Backend, detect
from observatory_storage.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "sql" / "migrations"
LOCK_KEY = 0x0B5E_57A6  # pg_advisory_lock key owned by the migration runner
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)(?::([a-z_]+))?(?::([a-z_]+))?\}\}")


class MigrationError(RuntimeError):
    """A migration could not be applied; names the file."""


class MigrationChecksumError(MigrationError):
    """An applied migration file was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied: bool
    applied_at: object = None
    checksum_ok: bool = True

    def as_dict(self) -> dict:
        return {
            "version": self.migration.version,
            "file": self.migration.filename,
            "applied": self.applied,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "checksum_ok": self.checksum_ok,
        }


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


def render(text: str, settings: Settings, backend: Backend) -> str:
    def substitute(match: re.Match) -> str:
        key, arg1, arg2 = match.groups()
        if key == "schema":
            return sql.Identifier(settings.db_schema).as_string(None)
        if key == "schema_name":  # the bare name, for use inside a string literal
            return settings.db_schema
        if key == "chunk_interval":
            return settings.chunk_interval(arg1)
        if key == "partitions_ahead":
            return str(settings.partitions_ahead_days)
        if key == "partition_clause":
            return "" if backend.is_timescaledb else f"PARTITION BY RANGE ({arg2})"
        raise MigrationError(f"unknown placeholder {match.group(0)}")

    return _PLACEHOLDER.sub(substitute, text)


def _ensure_bookkeeping(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {}.schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   backend text NOT NULL,
                   duration_ms double precision NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        ).format(sql.Identifier(schema))
    )


def _applied(conn: psycopg.Connection, schema: str) -> dict[int, tuple[str, object]]:
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_migrations",)
    ).fetchone()[0]
    if not exists:
        return {}
    rows = conn.execute(
        sql.SQL("SELECT version, checksum, applied_at FROM {}.schema_migrations").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return {v: (c, at) for v, c, at in rows}


def status(conn: psycopg.Connection, settings: Settings) -> list[MigrationState]:
    applied = _applied(conn, settings.db_schema)
    states = []
    for m in discover():
        if m.version in applied:
            checksum, at = applied[m.version]
            states.append(MigrationState(m, True, at, checksum == m.checksum))
        else:
            states.append(MigrationState(m, False))
    return states


def pending(conn: psycopg.Connection, settings: Settings) -> list[Migration]:
    return [s.migration for s in status(conn, settings) if not s.applied]


def migrate(
    conn: psycopg.Connection, settings: Settings, *, dry_run: bool = False
) -> list[Migration]:
    """Apply pending migrations (or list them with ``dry_run``); returns those applied.

    ``conn`` must be in autocommit mode: each migration gets its own transaction.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection")
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        backend = detect(conn, install=not dry_run)
        states = status(conn, settings)
        for state in states:
            if state.applied and not state.checksum_ok:
                raise MigrationChecksumError(
                    f"{state.migration.filename} was applied on {state.applied_at:%Y-%m-%d} and "
                    "has been edited since (checksum differs); restore it and add a new "
                    "migration instead"
                )
        todo = [s.migration for s in states if not s.applied]
        if dry_run:
            return todo
        _ensure_bookkeeping(conn, settings.db_schema)
        for m in todo:
            started = time.perf_counter()
            try:
                with conn.transaction():
                    conn.execute(render(m.text, settings, backend).encode())
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {}.schema_migrations "
                            "(version, name, checksum, backend, duration_ms) "
                            "VALUES (%s, %s, %s, %s, %s)"
                        ).format(sql.Identifier(settings.db_schema)),
                        (m.version, m.name, m.checksum, backend.kind,
                         (time.perf_counter() - started) * 1000),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"{m.filename} failed and was rolled back: {exc}") from exc
        return todo
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
