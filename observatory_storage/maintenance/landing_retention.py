"""Landing retention: delete landing files loaded more than RETENTION_LANDING_DAYS ago.

A loaded file's rows are in the database, so the raw file only costs disk. Deletion goes
through the Landing API (local folder or S3 alike) and is then recorded in
``ingest_files.landing_deleted_at``: file first, ledger second, so a crash in between
leaves a ledger row that the next run completes (deleting a missing file is no error).
The other order could mark a file gone that still exists, and ledger retention would then
forget it and the loader load it twice.

A key whose current content differs from what was loaded (another file written under the
same name) is kept: its rows are not in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from observatory_storage.landing import open_landing
from observatory_storage.landing.base import Landing, ObjectGone
from observatory_storage.maintenance.common import qualified
from observatory_storage.settings import Settings

MAX_FILES_PER_RUN = 10_000


@dataclass
class LandingRetention:
    cutoff: datetime | None
    deleted: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    kept_changed: list[str] = field(default_factory=list)
    bytes: int = 0


def expire_landing_files(
    conn: psycopg.Connection,
    settings: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    landing: Landing | None = None,
    limit: int = MAX_FILES_PER_RUN,
) -> LandingRetention:
    """Delete (or with ``dry_run`` list) loaded landing files past their retention."""
    if settings.retention_landing_days is None:
        return LandingRetention(cutoff=None)
    result = LandingRetention(cutoff=now - timedelta(days=settings.retention_landing_days))
    ledger = qualified(settings, "ingest_files")
    due = conn.execute(
        sql.SQL(
            "SELECT object_key, fingerprint, size_bytes FROM {} "
            "WHERE status = 'loaded' AND landing_deleted_at IS NULL AND loaded_at < %s "
            "ORDER BY loaded_at LIMIT %s"
        ).format(ledger),
        (result.cutoff, limit),
    ).fetchall()
    if not due:
        return result
    landing = landing or open_landing(settings)
    mark = sql.SQL("UPDATE {} SET landing_deleted_at = now() WHERE object_key = %s").format(ledger)
    for key, fingerprint, size in due:
        try:
            current = landing.stat(key)
        except ObjectGone:
            result.already_gone.append(key)
            if not dry_run:
                conn.execute(mark, (key,))
            continue
        if current.fingerprint != fingerprint:
            result.kept_changed.append(key)
            continue
        result.deleted.append(key)
        result.bytes += size
        if not dry_run:
            landing.delete(key)
            conn.execute(mark, (key,))
    return result
