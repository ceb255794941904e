"""The /health document and the liveness/readiness verdicts.

The seed's shape (``status``, ``version``, ``database``, ``pool``) is kept field for field
so existing dashboards and probes keep working; ``backend``, ``migrations`` and
``ingest`` are what an operator of this product needs next.

``status``: ``healthy``; ``degraded`` (serving, but the landing bucket cannot be listed,
holds files in no dataset folder, its LANDING_NOTIFICATIONS queue cannot be read, or an applied migration file was edited, so something
needs a look: HTTP 200);
``unhealthy`` (database unreachable or migrations pending: HTTP 503). Probes only read:
they never apply migrations and never start an embedded database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool, PoolTimeout

from observatory_storage import __version__
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import last_connect_error
from observatory_storage.landing.base import OUTSIDE_HINT
from observatory_storage.service import facts
from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.settings import Settings, redact_text

PROBE_TIMEOUT_SECONDS = 3.0  # Kubernetes' default probe timeout is 1 s, typical ones 3-5 s


@dataclass
class Probe:
    """What one round trip to the database found; ``error`` set when it failed."""

    connected: bool
    latency_ms: float | None = None
    backend: dict | None = None
    migrations: facts.MigrationFacts | None = None
    ledger: facts.LedgerSummary | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.connected and self.migrations is not None and not self.migrations.pending


def probe(pool: ConnectionPool, settings: Settings, *, with_ledger: bool = True) -> Probe:
    try:
        with pool.connection(timeout=PROBE_TIMEOUT_SECONDS) as conn:
            latency = facts.ping(conn)
            backend = detect(conn).as_dict()  # never installs: install=False
            migrations = facts.migration_facts(conn, settings)
            ledger = facts.ledger_summary(conn, settings.db_schema) if with_ledger else None
            conn.rollback()  # leave nothing open on a pooled connection
    except Exception as exc:  # pool timeout, connection refused, server gone mid-query
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PoolTimeout) and (why := last_connect_error(pool)):
            error += f"; last connection attempt: {why}"  # e.g. the password was refused
        return Probe(False, error=redact_text(error, settings))
    return Probe(True, round(latency, 3), backend, migrations, ledger)


def pool_stats(pool: ConnectionPool) -> dict:
    stats = pool.get_stats()
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    return {
        "active": max(size - idle, 0),
        "idle": idle,
        "max_size": pool.max_size,
        "waiting": stats.get("requests_waiting", 0),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def health_document(
    pool: ConnectionPool, settings: Settings, backlog: LandingBacklog
) -> tuple[int, dict]:
    """(HTTP status, JSON body) of GET /health."""
    found = probe(pool, settings)
    database = {"connected": found.connected, "latency_ms": found.latency_ms,
                "url": settings.redacted_database_url}
    if found.error:
        database["error"] = found.error
    doc: dict = {
        "status": "healthy",
        "version": __version__,
        "database": database,
        "pool": pool_stats(pool),
        "backend": found.backend,
        "migrations": found.migrations.as_dict() if found.migrations else None,
        "ingest": None,
    }
    problems: list[str] = []
    if found.connected:
        waiting = backlog.get()
        ledger = found.ledger
        doc["ingest"] = {
            "lag_seconds": None if waiting.lag_seconds is None else round(waiting.lag_seconds, 3),
            "pending_files": waiting.pending_files,
            "last_loaded_at": {ds: _iso(at) for ds, at in ledger.last_loaded_at.items()}
            if ledger else None,
            "quarantined_files": ledger.quarantined_files if ledger else None,
            "conflicts": ledger.conflicts if ledger else None,
            "misplaced_files": waiting.misplaced_files,
            "misplaced_keys": list(waiting.misplaced_keys),
            # files written before this were all listed by a sweep since (late ones too)
            "swept_through": None if waiting.swept_through is None
            else _iso(datetime.fromtimestamp(waiting.swept_through, UTC)),
        }
        if waiting.notifications is not None:
            doc["ingest"]["notifications"] = dict(waiting.notifications)
        if waiting.notifications_error:  # discovery goes on by listing: degraded, not down
            doc["ingest"]["notifications"]["error"] = waiting.notifications_error
            problems.append(waiting.notifications_error)
        if ledger and ledger.quarantined_files:
            doc["ingest"]["quarantined_keys"] = list(ledger.quarantined_keys)
            shown = ", ".join(ledger.quarantined_keys)
            more = ledger.quarantined_files - len(ledger.quarantined_keys)
            problems.append(
                f"{ledger.quarantined_files} file(s) quarantined ({shown}"
                + (f" and {more} more" if more > 0 else "")
                + "): see `observatory-storage replay --help` once they are fixed")
        if waiting.misplaced_files:
            problems.append(f"{waiting.misplaced_files} landing file(s) {OUTSIDE_HINT}")
        if waiting.error:
            doc["ingest"]["error"] = waiting.error
            problems.append(waiting.error)  # "cannot list <landing>: why" (a missing folder)
        if found.migrations.edited:
            problems.append("applied migration files were edited")
    if not found.connected:
        doc["status"] = "unhealthy"
        problems.insert(0, "database unreachable")
    elif found.migrations.pending:
        doc["status"] = "unhealthy"
        problems.insert(0, f"{len(found.migrations.pending)} migration(s) pending: run "
                           "`observatory-storage migrate`")
    elif problems:
        doc["status"] = "degraded"
    if problems:
        doc["problems"] = problems
    return (200 if doc["status"] != "unhealthy" else 503), doc


def readiness(pool: ConnectionPool, settings: Settings) -> tuple[int, dict]:
    """(HTTP status, body) of GET /health/ready: database reachable, schema up to date."""
    found = probe(pool, settings, with_ledger=False)
    body: dict = {"ready": found.ready, "database": {"connected": found.connected}}
    if found.migrations is not None:
        body["migrations_pending"] = len(found.migrations.pending)
    if found.error:
        body["database"]["error"] = found.error
    return (200 if found.ready else 503), body
