"""Prometheus metrics computed at scrape time from durable tables, not from process memory.

Why not prometheus_client's multiprocess mode: each Dagster run is its own short-lived
process and that mode keeps one file per dead process forever (10,000 files made a scrape
take ~350 ms, and they grow with every run). The ledger already holds every fact that
matters, durably, written in the same transaction as the data; so this collector reads:

* live, on every scrape (index lookups and small tables): database up, migrations
  pending, pool gauges, last load per dataset, maintenance job runs, landing backlog/lag;
* from the last :class:`~observatory_storage.service.snapshot.Snapshot` (recomputed in
  the background): counters and histograms that migration 0008's triggers keep as ledger
  rows change (a deleted row keeps its counts, so they never go down).

Names follow the seed (``storage_connection_pool_*``, ``storage_copy_*``). Labels are
``dataset`` and ``status`` (plus ``job`` for maintenance jobs): bounded by code, never a
key, file name, run id or trace id.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from psycopg_pool import ConnectionPool

from observatory_storage.service import facts
from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.service.health import pool_stats, probe
from observatory_storage.service.snapshot import CounterRefresher
from observatory_storage.settings import Settings

HELP = {
    "copy_write_duration_seconds": "Seconds one landing file took from open to commit "
    "(one observation per loaded file, from the ingest ledger).",
    "copy_batch_size": "Rows COPYed per loaded landing file (from the ingest ledger).",
}


class StorageCollector:
    def __init__(
        self,
        pool: ConnectionPool,
        settings: Settings,
        backlog: LandingBacklog,
        refresher: CounterRefresher,
    ):
        self._pool = pool
        self._settings = settings
        self._backlog = backlog
        self._refresher = refresher

    def collect(self) -> Iterator[Metric]:
        yield from self._pool_metrics()
        found = probe(self._pool, self._settings)
        yield _gauge("storage_database_up", "1 when the database answered this scrape.",
                     1 if found.connected else 0)
        if found.connected:
            yield _gauge("storage_migrations_pending",
                         "Migration files not applied to the database yet.",
                         len(found.migrations.pending))
            if found.migrations.installed_at is not None:
                yield _gauge("storage_schema_installed_timestamp_seconds",
                             "Unix time the first migration was applied: the age alerts "
                             "compare with before a job's first run.",
                             found.migrations.installed_at)
            yield from self._live_metrics(found)
        yield from self._snapshot_metrics()

    def _pool_metrics(self) -> Iterator[Metric]:
        stats = pool_stats(self._pool)
        yield _gauge("storage_connection_pool_active",
                     "Connections of the service's pool in use.", stats["active"])
        yield _gauge("storage_connection_pool_idle",
                     "Connections of the service's pool open and idle.", stats["idle"])
        yield _gauge("storage_connection_pool_max_size",
                     "Most connections the service's pool opens (DB_POOL_MAX_SIZE).",
                     stats["max_size"])
        yield _gauge("storage_connection_pool_waiting",
                     "Requests waiting for a connection of the service's pool.",
                     stats["waiting"])

    def _live_metrics(self, found) -> Iterator[Metric]:
        if found.ledger is not None:
            last = GaugeMetricFamily(
                "storage_last_load_timestamp_seconds",
                "Unix time of the last successfully loaded file per dataset "
                "(absent until a dataset's first load).",
                labels=["dataset"],
            )
            for ds, at in found.ledger.last_loaded_at.items():
                if at is not None:
                    last.add_metric([ds], at.timestamp())
            yield last
            yield _gauge("storage_quarantined_files",
                         "Files in the ledger currently marked quarantined.",
                         found.ledger.quarantined_files)
            yield _gauge("storage_ledger_conflicts",
                         "Loaded keys that reappeared in the bucket with other content.",
                         found.ledger.conflicts)
        waiting = self._backlog.get()
        if waiting.pending_files is not None:
            yield _gauge("storage_landing_backlog_files",
                         "Landing files not yet loaded or quarantined.", waiting.pending_files)
            yield _gauge("storage_ingest_lag_seconds",
                         "Age of the oldest landing file not yet loaded (0 when none waits).",
                         waiting.lag_seconds)
        if waiting.misplaced_files is not None:
            yield _gauge("storage_landing_misplaced_files",
                         "Landing files in no dataset folder: never loaded (/health names them).",
                         waiting.misplaced_files)
        if waiting.notifications and waiting.notifications["waiting"] is not None:
            yield _gauge("storage_landing_notifications_waiting",
                         "Messages waiting in the LANDING_NOTIFICATIONS queue (SQS's count).",
                         waiting.notifications["waiting"])
        yield _gauge("storage_landing_list_up",
                     "1 when the landing bucket could be listed.",
                     0 if waiting.error else 1)
        yield from self._maintenance_metrics()

    def _maintenance_metrics(self) -> Iterator[Metric]:
        try:
            with self._pool.connection(timeout=3.0) as conn:
                runs = facts.maintenance_last_runs(conn, self._settings.db_schema)
                conn.rollback()
        except Exception:  # the probe just succeeded; a failure here only drops these gauges
            return
        every = GaugeMetricFamily(
            "storage_maintenance_last_run_timestamp_seconds",
            "Unix time each maintenance job last finished (maintenance_state).",
            labels=["job"],
        )
        for job, ts in sorted(runs.items()):
            every.add_metric([job], ts)
        yield every
        for job in ("retention", "vacuum"):
            if job in runs:
                yield _gauge(f"storage_{job}_last_run_timestamp_seconds",
                             f"Unix time the {job} job last finished.", runs[job])

    def _snapshot_metrics(self) -> Iterator[Metric]:
        snap = self._refresher.latest
        yield _gauge("storage_metrics_refresh_failures",
                     "Background recomputations of the ingest counters that failed "
                     "since the service started.", self._refresher.failures)
        if snap is None:
            return
        yield _gauge("storage_metrics_refresh_timestamp_seconds",
                     "Unix time the ingest counters below were computed.", snap.taken_at)
        yield _gauge("storage_metrics_refresh_duration_seconds",
                     "Seconds the last recomputation of the ingest counters took.",
                     snap.duration_seconds)
        counters = snap.counters
        if counters is None:
            return
        rows = CounterMetricFamily("storage_ingested_rows", "Rows loaded per dataset.",
                                   labels=["dataset"])
        nbytes = CounterMetricFamily("storage_ingested_bytes",
                                     "Bytes of landing files loaded per dataset.",
                                     labels=["dataset"])
        files = CounterMetricFamily(
            "storage_ingested_files",
            "Landing files per dataset and outcome: status=loaded counts loaded files, "
            "status=quarantined counts quarantine outcomes (failed attempts).",
            labels=["dataset", "status"],
        )
        errors = CounterMetricFamily("storage_copy_errors",
                                     "Failed load attempts per dataset (every quarantine, "
                                     "including retries of files fixed in place).",
                                     labels=["dataset"])
        for ds in counters.datasets:
            loaded = counters.totals[(ds, "loaded")]
            files.add_metric([ds, "loaded"], loaded.files)
            files.add_metric([ds, "quarantined"], counters.errors(ds))
            rows.add_metric([ds], loaded.rows)
            nbytes.add_metric([ds], loaded.bytes)
            errors.add_metric([ds], counters.errors(ds))
        yield from (rows, nbytes, files, errors)
        unpriced = GaugeMetricFamily(
            "storage_unpriced_rows",
            "Spans of loaded files (live ledger rows) with a model and tokens that the price "
            "table could not price (PRICE_MISSING_COSTS).", labels=["dataset"])
        for ds in counters.datasets:
            unpriced.add_metric([ds], counters.unpriced.get(ds, 0))
        yield unpriced
        for metric in facts.HISTOGRAMS:
            family = HistogramMetricFamily(f"storage_{metric}", HELP[metric], labels=["dataset"])
            for ds in counters.datasets:
                h = counters.histograms.get((metric, ds))
                if h is not None:
                    family.add_metric([ds], h.cumulative(), h.sum)
            if family.samples:
                yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
