"""The SQL behind /health and /metrics: durable facts read at request time.

Every Dagster run is a short-lived process, so nothing here is kept in memory between
requests: what runs did is in the ledger (``ingest_files``), in the totals every deleted
ledger row is folded into (``ingest_totals``, ``ingest_histogram_totals``; migrations
0003/0005) and in ``maintenance_state``. Tables are looked up with ``to_regclass`` first, so a
database whose migrations are pending answers with what exists instead of failing.

Counts and histograms are only ever keyed by dataset (the three names of
:data:`LANDING_ROOTS`: the datasets and `otlp`) and status (``loaded``/``quarantined``): bounded label values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from observatory_storage.datasets import DATASETS
from observatory_storage.landing.keys import LANDING_ROOTS
from observatory_storage.maintenance import migrate
from observatory_storage.settings import Settings

STATUSES = ("loaded", "quarantined")
QUARANTINED_SHOWN = 10  # quarantined keys /health names; the count is exact
# A split file refused after some parts committed ('partial', migration 0007) counts as
# quarantined; a split file still loading ('loading') is not counted until it is loaded.
_STATUS = sql.SQL("CASE WHEN status = 'partial' THEN 'quarantined' ELSE status END")
HISTOGRAMS = ("copy_write_duration_seconds", "copy_batch_size")


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    name = sql.Identifier(schema, table).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def ping(conn: psycopg.Connection) -> float:
    """Round trip of a trivial query, in milliseconds."""
    started = time.perf_counter()
    conn.execute("SELECT 1").fetchone()
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class MigrationFacts:
    applied: int
    pending: list[str]  # file names, in order
    edited: list[str]  # applied files whose text changed since
    installed_at: float | None = None  # epoch seconds the first migration was applied

    def as_dict(self) -> dict:
        return {"applied": self.applied, "pending": len(self.pending),
                "pending_files": self.pending, "edited_files": self.edited}


def migration_facts(conn: psycopg.Connection, settings: Settings) -> MigrationFacts:
    """Read-only: compares sql/migrations/ with schema_migrations; never applies anything."""
    states = migrate.status(conn, settings)
    applied_at = [s.applied_at for s in states if s.applied and s.applied_at is not None]
    return MigrationFacts(
        applied=sum(s.applied for s in states),
        pending=[s.migration.filename for s in states if not s.applied],
        edited=[s.migration.filename for s in states if s.applied and not s.checksum_ok],
        installed_at=min(applied_at).timestamp() if applied_at else None,
    )


@dataclass(frozen=True)
class LedgerSummary:
    """Cheap per-dataset facts for /health (index lookups, no scan of the ledger)."""

    last_loaded_at: dict[str, datetime | None]
    quarantined_files: int
    conflicts: int
    quarantined_keys: tuple[str, ...] = ()  # the most recent ones, at most QUARANTINED_SHOWN


def ledger_summary(conn: psycopg.Connection, schema: str) -> LedgerSummary | None:
    if not table_exists(conn, schema, "ingest_files"):
        return None
    ledger = sql.Identifier(schema, "ingest_files")
    counted = table_exists(conn, schema, "ingest_counters")  # 0008: kept by triggers
    # before 0008, the newest load from the ledger; after it from the counters (they also
    # know a mixed OTLP file's tables): a max() over a dataset the ledger has no rows of
    # walks a whole loaded_at index (0.6 s at 1M rows)
    newest = sql.SQL("NULL::timestamptz") if counted else sql.SQL(
        "(SELECT loaded_at FROM {ledger} WHERE dataset = d.name AND status = 'loaded' "
        "ORDER BY loaded_at DESC LIMIT 1)").format(ledger=ledger)
    rows = conn.execute(
        sql.SQL(
            """SELECT d.name,
                      {newest},
                      (SELECT count(*) FROM {ledger}
                        WHERE dataset = d.name AND status IN ('quarantined', 'partial')),
                      (SELECT count(*) FROM {ledger}
                        WHERE dataset = d.name AND conflict_fingerprint IS NOT NULL)
               FROM unnest(%s::text[]) AS d(name)"""
        ).format(ledger=ledger, newest=newest),
        (list(LANDING_ROOTS),),
    ).fetchall()
    recent = conn.execute(
        sql.SQL(
            """SELECT q.object_key FROM unnest(%s::text[]) AS d(name),
                      LATERAL (SELECT object_key, loaded_at FROM {ledger}
                                WHERE dataset = d.name AND status IN ('quarantined', 'partial')
                                ORDER BY loaded_at DESC LIMIT %s) AS q
               ORDER BY q.loaded_at DESC LIMIT %s"""
        ).format(ledger=ledger),
        (list(LANDING_ROOTS), QUARANTINED_SHOWN, QUARANTINED_SHOWN),
    ).fetchall()
    last_loaded = {name: last for name, last, _, _ in rows}
    if counted:
        last_loaded = dict(conn.execute(
            sql.SQL("SELECT dataset, max(last_at) FROM {} WHERE status = 'loaded' "
                    "GROUP BY dataset").format(sql.Identifier(schema, "ingest_counters"))
        ).fetchall())
    return LedgerSummary(
        last_loaded_at={ds: last_loaded.get(ds) for ds in LANDING_ROOTS
                        if ds in DATASETS or last_loaded.get(ds) is not None},
        quarantined_files=sum(q for _, _, q, _ in rows),
        conflicts=sum(c for _, _, _, c in rows),
        quarantined_keys=tuple(key for (key,) in recent),
    )


@dataclass
class Totals:
    files: int = 0
    rows: int = 0
    bytes: int = 0
    attempts: int = 0


@dataclass
class Histogram:
    bounds: list[float]
    counts: list[int]  # per bucket (not cumulative); len(bounds) + 1 with +Inf last
    sum: float = 0.0

    def add_cumulative(self, cumulative: list[int], total: int, value_sum: float) -> None:
        """Add observations given as cumulative counts per bound plus the overall count."""
        previous = 0
        for i, running in enumerate([*cumulative, total]):
            self.counts[i] += running - previous
            previous = running
        self.sum += value_sum

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (le, cumulative count), ending with +Inf."""
        out, running = [], 0
        for le, count in zip([*map(_le, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((le, running))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


@dataclass
class IngestCounters:
    """Everything ever ingested, per dataset (a deleted ledger row keeps its counts)."""

    totals: dict[tuple[str, str], Totals] = field(default_factory=dict)
    histograms: dict[tuple[str, str], Histogram] = field(default_factory=dict)  # (metric, dataset)
    # spans of live loaded ledger rows the price table could not price (migration 0006);
    # live rows only, so a gauge: ledger retention removes old rows
    unpriced: dict[str, int] = field(default_factory=dict)
    last_loaded_at: dict[str, datetime | None] = field(default_factory=dict)
    datasets: tuple[str, ...] = tuple(DATASETS)  # the label values to expose

    def errors(self, dataset: str) -> int:
        """Failed load attempts: every attempt of a file ever recorded, minus its success.

        Only grows: a quarantined row fixed in place and loaded keeps its attempts, and a
        deleted row (replay, retention) keeps its counts (migration 0008's triggers).
        A count of quarantined rows would drop at every replay instead.
        """
        attempts = sum(t.attempts for (d, _), t in self.totals.items() if d == dataset)
        loaded = self.totals.get((dataset, "loaded"), Totals()).files
        return max(attempts - loaded, 0)


def ingest_counters(conn: psycopg.Connection, schema: str) -> IngestCounters | None:
    """The counters migration 0008's triggers keep as ledger rows change: a few dozen rows
    (datasets x statuses x 16 shards), however long the ledger; None before 0008."""
    if not table_exists(conn, schema, "ingest_counters"):
        return None
    result = IngestCounters()
    rows = conn.execute(
        sql.SQL("SELECT dataset, status, sum(files), sum(rows), sum(bytes), sum(attempts), "
                "sum(unpriced), max(last_at) FROM {} GROUP BY 1, 2").format(
            sql.Identifier(schema, "ingest_counters"))
    ).fetchall()
    seen = set(DATASETS)
    for ds, status, files, nrows, nbytes, attempts, unpriced, last in rows:
        if status not in STATUSES or not (files or nrows or attempts):
            continue
        seen.add(ds)  # a mixed-signal OTLP file loaded before 0008 counts under "otlp"
        result.totals[(ds, status)] = Totals(int(files), int(nrows), int(nbytes), int(attempts))
        if status == "loaded":
            result.unpriced[ds] = int(unpriced)
            result.last_loaded_at[ds] = last
    result.datasets = tuple(d for d in LANDING_ROOTS if d in seen)  # bounded label values
    for ds in result.datasets:
        for status in STATUSES:
            result.totals.setdefault((ds, status), Totals())
    bounds = dict(conn.execute(
        sql.SQL("SELECT m, {}(m) FROM unnest(%s::text[]) AS m").format(
            sql.Identifier(schema, "obs_histogram_bounds")),
        (list(HISTOGRAMS),),
    ).fetchall())
    for metric in HISTOGRAMS:
        for ds in result.datasets:
            b = [float(x) for x in bounds[metric]]
            result.histograms[(metric, ds)] = Histogram(b, [0] * (len(b) + 1))
    for ds, metric, bucket, count, total in conn.execute(
        sql.SQL("SELECT dataset, metric, bucket, sum(count), sum(sum) FROM {} "
                "GROUP BY 1, 2, 3").format(sql.Identifier(schema, "ingest_counter_buckets"))
    ):
        h = result.histograms.get((metric, ds))
        if h is not None:
            h.counts[bucket - 1] += int(count)
            h.sum += float(total)
    return result


def maintenance_last_runs(conn: psycopg.Connection, schema: str) -> dict[str, float]:
    """Epoch seconds of the last run of each maintenance job (table of migration 0004)."""
    if not table_exists(conn, schema, "maintenance_state"):
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT job, extract(epoch FROM max(last_run_at))::float8 FROM {} "
            "WHERE last_run_at IS NOT NULL GROUP BY job"
        ).format(sql.Identifier(schema, "maintenance_state"))
    ).fetchall()
    return {job: ts for job, ts in rows}

