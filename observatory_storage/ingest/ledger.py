"""The ingest ledger (``ingest_files``): one row per landing key, the source of exactly-once.

A file's ``loaded`` row is inserted in the same transaction as its COPY. The primary key
on ``object_key`` serializes racing runs: the second ``INSERT ... ON CONFLICT`` waits for
the first transaction and then sees its committed row (or, after a rollback, claims the
key itself). Policy for keys that come back:

- loaded, same fingerprint        -> skipped (re-run, sensor restart, cursor reset)
- loaded, different fingerprint   -> NOT reloaded; ``conflict_fingerprint``/``conflict_at``
  are recorded once and the run reports a conflict (like Snowpipe, a loaded name is never
  reloaded: rows cannot be "un-COPYed", so new content must arrive under a new key)
- quarantined, same fingerprint   -> skipped until ``replay`` deletes the row
- quarantined, other fingerprint  -> retried (the file was fixed in place)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from observatory_storage.ingest.errors import BadFile
from observatory_storage.landing.base import LandingObject

CLAIMED, SKIPPED, CONFLICT = "claimed", "skipped", "conflict"
_LOOKUP_CHUNK = 5000


@dataclass(frozen=True)
class LedgerEntry:
    object_key: str
    dataset: str
    status: str
    fingerprint: str
    row_count: int
    error: str | None
    quarantine_key: str | None
    conflict_fingerprint: str | None


_ENTRY_COLUMNS = sql.SQL(
    "object_key, dataset, status, fingerprint, row_count, error, quarantine_key, "
    "conflict_fingerprint"
)


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "ingest_files")


def lookup(conn: psycopg.Connection, schema: str, keys: Iterable[str]) -> dict[str, LedgerEntry]:
    keys = list(keys)
    found: dict[str, LedgerEntry] = {}
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE object_key = ANY(%s)").format(
                _ENTRY_COLUMNS, _table(schema)
            ),
            (keys[start : start + _LOOKUP_CHUNK],),
        ).fetchall()
        found.update((row[0], LedgerEntry(*row)) for row in rows)
    return found


def get(conn: psycopg.Connection, schema: str, key: str) -> LedgerEntry | None:
    return lookup(conn, schema, [key]).get(key)


def quarantined(conn: psycopg.Connection, schema: str) -> list[LedgerEntry]:
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE status = 'quarantined' ORDER BY object_key").format(
            _ENTRY_COLUMNS, _table(schema)
        )
    ).fetchall()
    return [LedgerEntry(*row) for row in rows]


def needs_work(entry: LedgerEntry | None, obj: LandingObject) -> bool:
    """Whether a listed object should go to a run (see the module docstring)."""
    if entry is None:
        return True
    if entry.fingerprint == obj.fingerprint:
        return False
    if entry.status == "quarantined":
        return True
    return entry.conflict_fingerprint != obj.fingerprint  # report a new conflict once


def claim(conn: psycopg.Connection, schema: str, obj: LandingObject, run_id: str | None) -> str:
    """Claim a key for loading inside the caller's transaction.

    Returns CLAIMED (the caller COPYs and commits), SKIPPED or CONFLICT. Blocks while
    another transaction holds an uncommitted claim on the same key.
    """
    claimed = conn.execute(
        sql.SQL(
            """INSERT INTO {table} AS f
                   (object_key, dataset, status, fingerprint, size_bytes, run_id)
               VALUES (%s, %s, 'loaded', %s, %s, %s)
               ON CONFLICT (object_key) DO UPDATE
                   SET status = 'loaded', dataset = EXCLUDED.dataset,
                       fingerprint = EXCLUDED.fingerprint, size_bytes = EXCLUDED.size_bytes,
                       run_id = EXCLUDED.run_id, attempts = f.attempts + 1,
                       error = NULL, error_column = NULL, error_row = NULL,
                       quarantine_key = NULL, loaded_at = now()
                   WHERE f.status = 'quarantined' AND f.fingerprint <> EXCLUDED.fingerprint
               RETURNING 1"""
        ).format(table=_table(schema)),
        (obj.key, obj.dataset, obj.fingerprint, obj.size, run_id),
    ).fetchone()
    if claimed:
        return CLAIMED
    entry = get(conn, schema, obj.key)
    if entry is not None and entry.status == "loaded" and entry.fingerprint != obj.fingerprint:
        return CONFLICT
    return SKIPPED


def mark_loaded(
    conn: psycopg.Connection, schema: str, key: str, rows: int, duration_ms: float,
    *, min_time=None, max_time=None, dataset: str | None = None, unpriced_rows: int = 0,
) -> None:
    """Record a claimed file's rows and event-time span; ``dataset`` is the table it went
    to when that is known only from the content (an OTLP file under ``otlp/``);
    ``unpriced_rows`` the spans the price table could not price (ingest/pricing.py)."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET row_count = %s, duration_ms = %s, loaded_at = now(), "
            "min_time = %s, max_time = %s, dataset = coalesce(%s, dataset), "
            "unpriced_rows = %s WHERE object_key = %s"
        ).format(_table(schema)),
        (rows, duration_ms, min_time, max_time, dataset, unpriced_rows or None, key),
    )


def record_conflict(conn: psycopg.Connection, schema: str, obj: LandingObject) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET conflict_fingerprint = %s, conflict_at = now() "
            "WHERE object_key = %s AND status = 'loaded'"
        ).format(_table(schema)),
        (obj.fingerprint, obj.key),
    )


def record_quarantine(
    conn: psycopg.Connection,
    schema: str,
    obj: LandingObject,
    bad: BadFile,
    *,
    run_id: str | None,
    quarantine_key: str | None,
    duration_ms: float,
) -> bool:
    """Write (or refresh) the quarantined row; False when the key is already loaded."""
    row = conn.execute(
        sql.SQL(
            """INSERT INTO {table} AS f
                   (object_key, dataset, status, fingerprint, size_bytes, error, error_column,
                    error_row, quarantine_key, run_id, duration_ms)
               VALUES (%s, %s, 'quarantined', %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (object_key) DO UPDATE
                   SET fingerprint = EXCLUDED.fingerprint, size_bytes = EXCLUDED.size_bytes,
                       error = EXCLUDED.error, error_column = EXCLUDED.error_column,
                       error_row = EXCLUDED.error_row, quarantine_key = EXCLUDED.quarantine_key,
                       run_id = EXCLUDED.run_id, duration_ms = EXCLUDED.duration_ms,
                       attempts = f.attempts + 1, loaded_at = now()
                   WHERE f.status = 'quarantined'
               RETURNING 1"""
        ).format(table=_table(schema)),
        (obj.key, obj.dataset, obj.fingerprint, obj.size, str(bad), bad.column, bad.row,
         quarantine_key, run_id, duration_ms),
    ).fetchone()
    return row is not None


def set_quarantine_key(conn: psycopg.Connection, schema: str, key: str, where: str | None) -> None:
    conn.execute(
        sql.SQL("UPDATE {} SET quarantine_key = %s WHERE object_key = %s").format(_table(schema)),
        (where, key),
    )


def forget_quarantined(conn: psycopg.Connection, schema: str, key: str) -> bool:
    """Delete a quarantined row so the key loads again; loaded rows are never deleted."""
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE object_key = %s AND status = 'quarantined'").format(
            _table(schema)
        ),
        (key,),
    )
    return cur.rowcount > 0
