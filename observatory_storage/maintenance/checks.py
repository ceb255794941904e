"""What the Dagster assets report and check, as plain SQL over one connection.

- :func:`row_count`: a table's row count, exact when it is small, else from planner
  statistics (``pg_class.reltuples`` of every chunk/partition), so it stays cheap at 100M rows.
- :func:`run_span`: the event-time range and rows a run's files put in a table (ledger).
- :func:`consistency`: loaded-vs-stored. For the files a run loaded, the rows the ledger
  says were committed against the rows the table holds over the same event-time window.
- :func:`drift`: a table's columns against its contract (``datasets.py`` / rollups).
- :func:`rollup_vs_raw`: a recent hour of an hourly rollup against its raw table.

Every function takes the caller's connection and returns a small dataclass; the Dagster
layer (``defs/assets.py``) turns them into metadata and check results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS, get_dataset
from observatory_storage.landing.keys import OTLP_ROOT
from observatory_storage.maintenance.rollups import COUNT_MEASURE, ROLLUPS
from observatory_storage.settings import Settings

EXACT_COUNT_MAX_BYTES = 64 << 20  # count(*) below this size: a few ms, and always right
CLOSURE_MAX_ROUNDS = 8  # widening rounds of the consistency window (see consistency())
CONSISTENCY_MAX_WINDOW = timedelta(days=2)  # wider: counted no more (cost), reported as such
RUN_LOOKBACK = timedelta(days=1)  # a run's own ledger rows were loaded at most this long ago

_FORMAT_TYPES = {"timestamptz": "timestamp with time zone"}


def _qualified(settings: Settings, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(settings.db_schema), sql.Identifier(table))


# --- row count ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCount:
    rows: int
    exact: bool


def _leaves(conn: psycopg.Connection, settings: Settings, table: str) -> list[tuple]:
    """(reltuples, bytes) of every chunk/partition of the table (the table itself if none)."""
    return conn.execute(
        """
        WITH RECURSIVE tree(oid) AS (
            SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = %(schema)s AND c.relname = %(table)s
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
        )
        SELECT c.reltuples, pg_relation_size(c.oid)
          FROM tree JOIN pg_class c ON c.oid = tree.oid
         WHERE c.relkind = 'r'  -- leaves: a parent's own statistics would count twice
           AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
        """,
        {"schema": settings.db_schema, "table": table},
    ).fetchall()


def row_count(conn: psycopg.Connection, settings: Settings, table: str) -> RowCount:
    """Rows in ``table`` (chunks and partitions included): exact when small, else estimated.

    Small tables (< EXACT_COUNT_MAX_BYTES of heap) are counted. Larger ones sum the planner's
    ``reltuples`` of each chunk/partition (kept by ANALYZE, autovacuum and the nightly
    vacuum job); a never-analyzed piece is estimated from its size at the average row width
    of the analyzed ones.
    """
    leaves = _leaves(conn, settings, table)
    total_bytes = sum(size for _, size in leaves)
    if total_bytes < EXACT_COUNT_MAX_BYTES:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_qualified(settings, table)))
        return RowCount(int(rows.fetchone()[0]), exact=True)
    known = [(tuples, size) for tuples, size in leaves if tuples >= 0]
    known_rows = sum(tuples for tuples, _ in known)
    known_bytes = sum(size for _, size in known)
    unknown_bytes = sum(size for tuples, size in leaves if tuples < 0)
    guessed = unknown_bytes * known_rows / known_bytes if known_bytes else 0
    return RowCount(int(known_rows + guessed), exact=False)


# --- what a run loaded ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpan:
    files: int
    rows: int
    min_time: datetime | None
    max_time: datetime | None


def run_span(conn: psycopg.Connection, settings: Settings, dataset: str, run_id: str) -> RunSpan:
    """Files, rows and event-time range the ledger holds for ``run_id``'s loads of ``dataset``.

    Only rows loaded within RUN_LOOKBACK are read (the ledger's (dataset, status, loaded_at)
    index): a run's own files were loaded while it ran.
    """
    files, rows, lo, hi = conn.execute(
        sql.SQL(
            "SELECT count(*), coalesce(sum(row_count), 0), min(min_time), max(max_time) "
            "FROM {} WHERE dataset = %s AND status = 'loaded' "
            "AND loaded_at >= now() - make_interval(secs => %s) AND run_id = %s"
        ).format(_qualified(settings, "ingest_files")),
        (dataset, RUN_LOOKBACK.total_seconds(), run_id),
    ).fetchone()
    return RunSpan(int(files), int(rows), lo, hi)


# --- loaded vs stored -----------------------------------------------------------------------


@dataclass
class Consistency:
    """``expected`` rows per the ledger vs ``stored`` rows in the table, over one window."""

    dataset: str
    checked: bool
    passed: bool
    reason: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    files: int = 0
    expected: int = 0
    stored: int = 0

    @property
    def difference(self) -> int:
        return self.stored - self.expected


def consistency(
    conn: psycopg.Connection, settings: Settings, dataset: str, run_id: str
) -> Consistency:
    """Whether the table holds exactly the rows the ledger says were loaded around this run.

    The window starts as the event-time range of the run's loaded files and widens to
    every loaded file overlapping it, until no file straddles an edge: then each file with
    rows in the window lies wholly inside it, so the table must hold exactly the sum of
    their ``row_count``. More rows means a file was loaded twice, fewer means a load was
    lost. The ledger and the table are read in one REPEATABLE READ snapshot, and a file's
    ledger row commits with its COPY, so a run loading meanwhile cannot cause a false alarm.

    Not checked (passes, with the reason): the run loaded no rows; the window reaches back
    past retention (dropped chunks would look lost); a loaded file has no recorded time
    range; the window would exceed CONSISTENCY_MAX_WINDOW (counting it would be slow).
    """
    ds = get_dataset(dataset)
    ledger = _qualified(settings, "ingest_files")
    result = Consistency(dataset, checked=False, passed=True, reason="")
    previous_isolation = conn.isolation_level  # the connection must be idle here
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # used by transaction()
    try:
        with conn.transaction():
            span = run_span(conn, settings, dataset, run_id)
            if span.rows == 0 or span.min_time is None or span.max_time is None:
                result.reason = "the run loaded no rows of this dataset"
                return result
            lo, hi = span.min_time, span.max_time
            overlap = sql.SQL(
                "FROM {} WHERE dataset = %(dataset)s AND status = 'loaded' AND row_count > 0 "
                "AND min_time <= %(hi)s AND max_time >= %(lo)s"
            ).format(ledger)
            for _ in range(CLOSURE_MAX_ROUNDS):
                if hi - lo > CONSISTENCY_MAX_WINDOW:
                    result.reason = (
                        f"the loads around this run span more than {CONSISTENCY_MAX_WINDOW}; "
                        "not counted"
                    )
                    return result
                new_lo, new_hi = conn.execute(
                    sql.SQL("SELECT least(min(min_time), %(lo)s), greatest(max(max_time), %(hi)s) ")
                    + overlap,
                    {"dataset": dataset, "lo": lo, "hi": hi},
                ).fetchone()
                if (new_lo, new_hi) == (lo, hi):
                    break
                lo, hi = new_lo, new_hi
            else:
                result.reason = "the window kept widening; not counted"
                return result
            result.window_start, result.window_end = lo, hi
            horizon = conn.execute(
                "SELECT now() - make_interval(days => %s)", (settings.retention_days(dataset),)
            ).fetchone()[0]
            if lo < horizon:
                result.reason = "the window reaches past retention; not counted"
                return result
            untimed = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} WHERE dataset = %s AND status = 'loaded' "
                    "AND row_count > 0 AND min_time IS NULL"
                ).format(ledger),
                (dataset,),
            ).fetchone()[0]
            if untimed:
                result.reason = f"{untimed} loaded file(s) have no recorded time range; not counted"
                return result
            mixed = conn.execute(
                sql.SQL("SELECT count(*) ") + overlap,
                {"dataset": OTLP_ROOT, "lo": lo, "hi": hi},
            ).fetchone()[0]
            if mixed:  # its ledger row holds the rows of several tables in one count
                result.reason = (f"{mixed} OTLP file(s) holding several signals overlap the "
                                 "window; not counted")
                return result
            files, expected = conn.execute(
                sql.SQL("SELECT count(*), coalesce(sum(row_count), 0) ") + overlap,
                {"dataset": dataset, "lo": lo, "hi": hi},
            ).fetchone()
            stored = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {} BETWEEN %s AND %s").format(
                    _qualified(settings, dataset), sql.Identifier(ds.time_column)
                ),
                (lo, hi),
            ).fetchone()[0]
    finally:
        conn.isolation_level = previous_isolation
    result.checked = True
    result.files, result.expected, result.stored = int(files), int(expected), int(stored)
    result.passed = result.expected == result.stored
    if result.passed:
        result.reason = f"{result.stored:,} rows stored = {result.expected:,} loaded"
    elif result.stored > result.expected:
        result.reason = (
            f"{result.difference:,} more rows stored than the ledger loaded: a duplicated load"
        )
    else:
        result.reason = f"{-result.difference:,} rows missing from the table: a lost load"
    return result


# --- schema drift ---------------------------------------------------------------------------


@dataclass
class Drift:
    table: str
    missing: list[str] = field(default_factory=list)  # in the contract, not in the table
    extra: list[str] = field(default_factory=list)  # in the table, not in the contract
    mistyped: list[str] = field(default_factory=list)  # "column: table type != contract type"

    @property
    def passed(self) -> bool:
        return not (self.missing or self.extra or self.mistyped)

    @property
    def severe(self) -> bool:
        """Missing or mistyped columns break COPY; an extra column only wastes space."""
        return bool(self.missing or self.mistyped)


def contract_columns(table: str) -> dict[str, str | None]:
    """Column -> type (``format_type`` spelling; None when only the name is contracted)."""

    if table in DATASETS:
        return {c.name: _FORMAT_TYPES.get(c.pg_type, c.pg_type) for c in DATASETS[table].columns}
    for rollup in ROLLUPS.values():
        if rollup.table == table:
            columns: dict[str, str | None] = {c: None for c in rollup.columns}
            columns["bucket"] = "timestamp with time zone"
            columns["computed_at"] = "timestamp with time zone"
            return columns
    raise KeyError(table)


def drift(conn: psycopg.Connection, settings: Settings, table: str) -> Drift:
    actual = dict(
        conn.execute(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum""",
            (settings.db_schema, table),
        ).fetchall()
    )
    expected = contract_columns(table)
    result = Drift(table)
    result.missing = [c for c in expected if c not in actual]
    result.extra = [c for c in actual if c not in expected]
    result.mistyped = [
        f"{c}: {actual[c]} (contract: {t})"
        for c, t in expected.items()
        if t is not None and c in actual and actual[c] != t
    ]
    return result


# --- rollups against raw --------------------------------------------------------------------


@dataclass
class RollupCheck:
    table: str
    checked: bool
    passed: bool
    reason: str
    hour: datetime | None = None
    raw_rows: int = 0
    rollup_rows: int = 0


def rollup_vs_raw(conn: psycopg.Connection, settings: Settings, dataset: str) -> RollupCheck:
    """The newest hour of the rollup: its row count against the raw table's for that hour.

    An hour that received loads after the rollup computed it is not a failure (the next
    rollups run recomputes it): the check says so and passes.
    """

    rollup = ROLLUPS[dataset]
    measure = sql.Identifier(COUNT_MEASURE[dataset])
    hour, rolled, computed = conn.execute(
        sql.SQL(
            "SELECT bucket, sum({m})::bigint, max(computed_at) FROM {t} "
            "WHERE bucket = (SELECT max(bucket) FROM {t}) GROUP BY bucket"
        ).format(m=measure, t=_qualified(settings, rollup.table)),
    ).fetchone() or (None, 0, None)
    if hour is None:
        return RollupCheck(rollup.table, False, True, "the rollup has no hours yet")
    raw = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {c} >= %s AND {c} < %s").format(
            _qualified(settings, dataset), c=sql.Identifier(rollup.time_column)
        ),
        (hour, hour + timedelta(hours=1)),
    ).fetchone()[0]
    result = RollupCheck(rollup.table, True, raw == rolled, "", hour, int(raw), int(rolled))
    if result.passed:
        result.reason = f"{hour:%Y-%m-%d %H:00} UTC: {raw:,} raw rows = rollup"
        return result
    late = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE dataset = %s AND status = 'loaded' AND loaded_at > %s "
            "AND min_time < %s AND max_time >= %s"
        ).format(_qualified(settings, "ingest_files")),
        (dataset, computed, hour + timedelta(hours=1), hour),
    ).fetchone()[0]
    if late:
        result.checked, result.passed = False, True
        result.reason = (
            f"{hour:%Y-%m-%d %H:00} UTC got {late} file(s) after the rollup computed it; "
            "the next rollups run recomputes it"
        )
    else:
        result.reason = (
            f"{hour:%Y-%m-%d %H:00} UTC: rollup counts {rolled:,} rows, raw table {raw:,}"
        )
    return result
