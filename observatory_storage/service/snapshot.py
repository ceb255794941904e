"""The ingest counters and histograms, recomputed in the background every
METRICS_REFRESH_SECONDS.

They are one aggregate over every live ledger row (~0.5 µs a row: ~50 ms at 100k rows,
~0.5 s at 1M, see docs/service.md), so a scrape reads the last result instead of
waiting for it: scrape time stays flat however long the ledger grows, and the database
does one aggregate per interval however many Prometheus replicas scrape. Values are at
most one interval old, less than a typical scrape interval.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from observatory_storage.service import facts
from observatory_storage.settings import Settings, redact_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    counters: facts.IngestCounters | None  # None: ledger table missing (migrations pending)
    taken_at: float  # epoch seconds
    duration_seconds: float


class CounterRefresher:
    """Owns one thread; ``stop()`` wakes it and joins it (used by graceful shutdown)."""

    def __init__(self, pool: ConnectionPool, settings: Settings, *, timeout: float):
        self._pool = pool
        self._settings = settings
        self._timeout = timeout
        self._stop = threading.Event()
        self._latest: Snapshot | None = None
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="metrics-refresh", daemon=True)

    @property
    def latest(self) -> Snapshot | None:
        return self._latest

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def refresh(self) -> None:
        started = time.perf_counter()
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                counters = facts.ingest_counters(conn, self._settings.db_schema)
                conn.rollback()
        except Exception as exc:  # keep serving the last good snapshot; counters only grow
            self.failures += 1
            log.warning("metrics refresh failed: %s",
                        redact_text(f"{type(exc).__name__}: {exc}", self._settings))
            return
        self._latest = Snapshot(counters, time.time(), time.perf_counter() - started)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._settings.metrics_refresh_seconds)
