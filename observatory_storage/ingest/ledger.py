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

Split files (``ingest/parts.py``, migration 0007) add two states and a part ledger
(``ingest_parts``, one row per committed part, written in the part's transaction):

- loading, same fingerprint       -> resumed: only the parts without a row are loaded
- loading, other fingerprint      -> conflict (parts of the old version are in the table)
- partial (a part was refused after others committed) -> like loaded: never reloaded

A file row becomes ``loaded`` (row_count = sum of its parts) in the transaction that finds
every part committed. Part transactions hold ``FOR SHARE`` on the file row, so finishing
or failing a split file waits for parts still in flight (of any process) and sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

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


def _parts(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "ingest_parts")


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
    if entry.status == "loading":
        return entry.fingerprint == obj.fingerprint or entry.conflict_fingerprint != obj.fingerprint
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
    return claim_group(conn, schema, [obj], run_id)[obj.key]


def claim_group(conn: psycopg.Connection, schema: str, objs: list[LandingObject],
                run_id: str | None) -> dict[str, str]:
    """:func:`claim` for many files in one statement (a group commit): key -> CLAIMED,
    SKIPPED or CONFLICT. Keys are claimed in key order, so two groups claiming overlapping
    keys wait for each other instead of deadlocking."""
    objs = sorted(objs, key=lambda o: o.key)
    claimed = {row[0] for row in conn.execute(
        sql.SQL(
            """INSERT INTO {table} AS f
                   (object_key, dataset, status, fingerprint, size_bytes, run_id)
               SELECT k, d, 'loaded', fp, sz, %s
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS v(k, d, fp, sz)
               ORDER BY k
               ON CONFLICT (object_key) DO UPDATE
                   SET status = 'loaded', dataset = EXCLUDED.dataset,
                       fingerprint = EXCLUDED.fingerprint, size_bytes = EXCLUDED.size_bytes,
                       run_id = EXCLUDED.run_id, attempts = f.attempts + 1,
                       error = NULL, error_column = NULL, error_row = NULL,
                       quarantine_key = NULL, loaded_at = now(), part_bounds = NULL
                   WHERE f.status = 'quarantined' AND f.fingerprint <> EXCLUDED.fingerprint
               RETURNING object_key"""
        ).format(table=_table(schema)),
        (run_id, [o.key for o in objs], [o.dataset for o in objs],
         [o.fingerprint for o in objs], [o.size for o in objs]),
    ).fetchall()}
    states = {o.key: CLAIMED for o in objs if o.key in claimed}
    others = [o for o in objs if o.key not in claimed]
    if others:
        known = lookup(conn, schema, [o.key for o in others])
        for o in others:
            entry = known.get(o.key)
            conflict = (entry is not None and entry.status != "quarantined"
                        and entry.fingerprint != o.fingerprint)
            states[o.key] = CONFLICT if conflict else SKIPPED
    return states


def mark_group_loaded(conn: psycopg.Connection, schema: str, loads: list[dict]) -> None:
    """:func:`mark_loaded` for a group's files in one statement; each dict has key, rows,
    duration_ms, min_time, max_time, dataset, unpriced_rows, per_dataset."""
    conn.execute(
        sql.SQL(
            """UPDATE {table} AS f
               SET row_count = v.n, duration_ms = v.ms, loaded_at = now(), min_time = v.lo,
                   max_time = v.hi, dataset = coalesce(v.ds, f.dataset),
                   unpriced_rows = nullif(v.unpriced, 0), datasets = v.per
               FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::timestamptz[],
                           %s::timestamptz[], %s::text[], %s::bigint[], %s::jsonb[])
                    AS v(k, n, ms, lo, hi, ds, unpriced, per)
               WHERE f.object_key = v.k"""
        ).format(table=_table(schema)),
        ([d["key"] for d in loads], [d["rows"] for d in loads],
         [d["duration_ms"] for d in loads], [d["min_time"] for d in loads],
         [d["max_time"] for d in loads], [d["dataset"] for d in loads],
         [d["unpriced_rows"] for d in loads],
         [Jsonb(d["per_dataset"]) if d["per_dataset"] else None for d in loads]),
    )


def claim_split(conn: psycopg.Connection, schema: str, obj: LandingObject, run_id: str | None,
                bounds: list[int]) -> tuple[str, list[int] | None]:
    """Claim a key for a part-by-part load (in a short transaction of the caller's).

    Returns (CLAIMED, bounds) for a new split or a resumed one (bounds as first recorded,
    not the caller's), (SKIPPED, None) or (CONFLICT, None).
    """
    row = conn.execute(
        sql.SQL(
            """INSERT INTO {table} AS f
                   (object_key, dataset, status, fingerprint, size_bytes, run_id, part_bounds)
               VALUES (%s, %s, 'loading', %s, %s, %s, %s)
               ON CONFLICT (object_key) DO UPDATE
                   SET status = 'loading', dataset = EXCLUDED.dataset,
                       fingerprint = EXCLUDED.fingerprint, size_bytes = EXCLUDED.size_bytes,
                       run_id = EXCLUDED.run_id, attempts = f.attempts + 1,
                       error = NULL, error_column = NULL, error_row = NULL,
                       quarantine_key = NULL, loaded_at = now(), row_count = 0,
                       part_bounds = EXCLUDED.part_bounds
                   WHERE f.status = 'quarantined' AND f.fingerprint <> EXCLUDED.fingerprint
               RETURNING part_bounds"""
        ).format(table=_table(schema)),
        (obj.key, obj.dataset, obj.fingerprint, obj.size, run_id, bounds),
    ).fetchone()
    if row:
        return CLAIMED, list(row[0])
    entry = conn.execute(
        sql.SQL("SELECT status, fingerprint, part_bounds FROM {} WHERE object_key = %s").format(
            _table(schema)), (obj.key,)).fetchone()
    if entry is None:  # deleted meanwhile (replay of a quarantined row): next listing
        return SKIPPED, None
    status, fingerprint, stored = entry
    if fingerprint != obj.fingerprint and status != "quarantined":
        return CONFLICT, None
    if status == "loading" and stored:
        return CLAIMED, list(stored)
    return SKIPPED, None


def split_bounds(conn: psycopg.Connection, schema: str, key: str) -> list[int] | None:
    row = conn.execute(
        sql.SQL("SELECT part_bounds FROM {} WHERE object_key = %s AND status = 'loading'").format(
            _table(schema)), (key,)).fetchone()
    return list(row[0]) if row and row[0] else None


def claim_part(conn: psycopg.Connection, schema: str, obj: LandingObject, part: int,
               run_id: str | None) -> bool:
    """Claim one part inside the part's transaction; False when it is done (or the file
    is no longer loading, or was rewritten). Blocks while another transaction holds an
    uncommitted claim of the same part, like :func:`claim` for files."""
    row = conn.execute(
        sql.SQL("SELECT status, fingerprint FROM {} WHERE object_key = %s FOR SHARE").format(
            _table(schema)), (obj.key,)).fetchone()
    if row is None or row[0] != "loading" or row[1] != obj.fingerprint:
        return False
    claimed = conn.execute(
        sql.SQL("INSERT INTO {} (object_key, part, fingerprint, run_id) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (object_key, part) DO NOTHING RETURNING 1").format(_parts(schema)),
        (obj.key, part, obj.fingerprint, run_id),
    ).fetchone()
    return claimed is not None


def mark_part_loaded(conn: psycopg.Connection, schema: str, key: str, part: int, rows: int,
                     duration_ms: float, *, min_time=None, max_time=None) -> None:
    conn.execute(
        sql.SQL("UPDATE {} SET row_count = %s, duration_ms = %s, min_time = %s, max_time = %s, "
                "loaded_at = now() WHERE object_key = %s AND part = %s").format(_parts(schema)),
        (rows, duration_ms, min_time, max_time, key, part),
    )


@dataclass(frozen=True)
class SplitState:
    status: str  # the file row's status after the call ('loading' = parts still missing)
    parts: int  # parts committed (by any run)
    rows: int  # rows of the committed parts


def finish_split(conn: psycopg.Connection, schema: str, key: str, duration_ms: float,
                 *, dataset: str | None = None) -> SplitState:
    """In the caller's transaction: mark the file loaded when every part is committed."""
    row = conn.execute(
        sql.SQL("SELECT status, part_bounds FROM {} WHERE object_key = %s FOR UPDATE").format(
            _table(schema)), (key,)).fetchone()
    done, rows, low, high = _parts_done(conn, schema, key)
    if row is None or row[0] != "loading":
        return SplitState(row[0] if row else "gone", done, rows)
    if done < len(row[1]) - 1:
        return SplitState("loading", done, rows)
    conn.execute(
        sql.SQL("UPDATE {} SET status = 'loaded', row_count = %s, min_time = %s, max_time = %s, "
                "duration_ms = %s, loaded_at = now(), dataset = coalesce(%s, dataset) "
                "WHERE object_key = %s").format(_table(schema)),
        (rows, low, high, duration_ms, dataset, key),
    )
    return SplitState("loaded", done, rows)


def fail_split(conn: psycopg.Connection, schema: str, obj: LandingObject, bad: BadFile, *,
               run_id: str | None, quarantine_key: str | None, duration_ms: float) -> SplitState:
    """A part was refused: 'quarantined' if no part committed, else 'partial' (kept rows)."""
    row = conn.execute(
        sql.SQL("SELECT status, part_bounds FROM {} WHERE object_key = %s FOR UPDATE").format(
            _table(schema)), (obj.key,)).fetchone()
    done, rows, low, high = _parts_done(conn, schema, obj.key)
    if row is None or row[0] != "loading":
        return SplitState(row[0] if row else "gone", done, rows)
    status = "partial" if done else "quarantined"
    error = str(bad)
    if done:
        error += (f" [partially loaded: {done} of {len(row[1]) - 1} parts ({rows} rows) were "
                  "committed before and stay; the other parts were not loaded]")
    conn.execute(
        sql.SQL("UPDATE {} SET status = %s, error = %s, error_column = %s, error_row = %s, "
                "quarantine_key = %s, run_id = %s, duration_ms = %s, row_count = %s, "
                "min_time = %s, max_time = %s, loaded_at = now() WHERE object_key = %s"
                ).format(_table(schema)),
        (status, error, bad.column, bad.row, quarantine_key, run_id, duration_ms, rows, low,
         high, obj.key),
    )
    return SplitState(status, done, rows)


def _parts_done(conn: psycopg.Connection, schema: str, key: str):
    return conn.execute(
        sql.SQL("SELECT count(*), coalesce(sum(row_count), 0), min(min_time), max(max_time) "
                "FROM {} WHERE object_key = %s").format(_parts(schema)), (key,)).fetchone()


def mark_loaded(
    conn: psycopg.Connection, schema: str, key: str, rows: int, duration_ms: float,
    *, min_time=None, max_time=None, dataset: str | None = None, unpriced_rows: int = 0,
    per_dataset: dict[str, int] | None = None,
) -> None:
    """Record a claimed file's rows and event-time span; ``dataset`` is the table it went
    to when that is known only from the content (an OTLP file under ``otlp/``);
    ``unpriced_rows`` the spans the price table could not price (ingest/pricing.py);
    ``per_dataset`` the rows of each table of an OTLP file that loaded into several (the
    counters count it under each, migration 0008)."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET row_count = %s, duration_ms = %s, loaded_at = now(), "
            "min_time = %s, max_time = %s, dataset = coalesce(%s, dataset), "
            "unpriced_rows = %s, datasets = %s WHERE object_key = %s"
        ).format(_table(schema)),
        (rows, duration_ms, min_time, max_time, dataset, unpriced_rows or None,
         Jsonb(per_dataset) if per_dataset else None, key),
    )


def record_conflict(conn: psycopg.Connection, schema: str, obj: LandingObject) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET conflict_fingerprint = %s, conflict_at = now() "
            "WHERE object_key = %s AND status <> 'quarantined'"
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
