"""Landing backlog: files in the bucket that no run has taken yet, and how old they are;
and the files no run will ever take, because they lie in no dataset folder.

From the same incremental state as the sensor (``ingest/discovery.py``, read only): the
recent listing and the backlog table, never a full listing of the files the landing keeps
for RETENTION_LANDING_DAYS; with LANDING_NOTIFICATIONS, the messages waiting in its queue
(GetQueueAttributes: never received, so a probe consumes nothing). Still cached for a few seconds and shared by /health and
/metrics: a burst of probes looks once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from observatory_storage.ingest import discovery
from observatory_storage.landing import LandingError, open_landing
from observatory_storage.settings import Settings, redact_text

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0


MISPLACED_SHOWN = 10  # keys /health names; the count is exact


@dataclass(frozen=True)
class Backlog:
    pending_files: int | None
    oldest_modified: float | None  # epoch seconds of the oldest pending file
    error: str | None = None
    misplaced_files: int | None = None  # files in no dataset folder: never loaded
    misplaced_keys: tuple[str, ...] = ()
    swept_through: float | None = None  # see discovery.Backlog
    # LANDING_NOTIFICATIONS: {"queue": name, "waiting": messages} (waiting None when the
    # queue cannot be read: notifications_error says why)
    notifications: dict | None = None
    notifications_error: str | None = None

    @property
    def lag_seconds(self) -> float | None:
        """Age of the oldest pending file now; 0 when nothing waits, None when unknown."""
        if self.pending_files is None:
            return None
        if self.oldest_modified is None:
            return 0.0
        return max(time.time() - self.oldest_modified, 0.0)


class LandingBacklog:
    """Thread-safe, cached: concurrent callers wait for one listing instead of each listing."""

    def __init__(self, settings: Settings, pool: ConnectionPool, *, probe_timeout: float):
        self._settings = settings
        self._pool = pool
        self._probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._value: Backlog | None = None
        self._taken = 0.0

    def get(self) -> Backlog:
        with self._lock:
            if self._value is None or time.monotonic() - self._taken > CACHE_SECONDS:
                self._value = self._measure()
                self._taken = time.monotonic()
            return self._value

    def _measure(self) -> Backlog:
        try:
            landing = open_landing(self._settings)
            misplaced = sorted(o.key for o in landing.list_outside())
        except Exception as exc:  # any bucket failure (S3 credentials, folder gone) is reported
            message = redact_text(f"cannot list {self._settings.landing_url}: {exc}", self._settings)
            log.warning("%s", message)
            return Backlog(None, None, message)
        try:
            with self._pool.connection(timeout=self._probe_timeout) as conn:
                found = discovery.backlog(self._settings, conn, landing)
                conn.rollback()
        except LandingError as exc:
            message = redact_text(f"cannot list {self._settings.landing_url}: {exc}", self._settings)
            log.warning("%s", message)
            return Backlog(None, None, message)
        except Exception as exc:
            message = redact_text(f"cannot compare the listing with the ledger: {exc}",
                                  self._settings)
            return Backlog(None, None, message)
        queue, unread = _notifications(self._settings, landing)
        return Backlog(found.files, found.oldest_modified, misplaced_files=len(misplaced),
                       misplaced_keys=tuple(misplaced[:MISPLACED_SHOWN]),
                       swept_through=found.swept_through, notifications=queue,
                       notifications_error=unread)


def _notifications(settings: Settings, landing) -> tuple[dict | None, str | None]:
    """The LANDING_NOTIFICATIONS queue's waiting messages, or why it cannot be read."""
    if not settings.landing_notifications:
        return None, None
    from observatory_storage.landing.notifications import open_notifications  # lazy: boto3

    name = settings.landing_notifications.rpartition("/")[2]
    try:
        return {"queue": name, "waiting": open_notifications(settings, landing).waiting()}, None
    except LandingError as exc:
        message = redact_text(str(exc), settings)
        log.warning("%s", message)
        return {"queue": name, "waiting": None}, message
