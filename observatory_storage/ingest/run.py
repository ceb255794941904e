"""One ingest pass over every pending file, in this process, through Dagster.

``run_ingest`` is what ``observatory-storage ingest`` and ``demo`` call. It executes the
same ``ingest_job`` the landing sensor launches (``execute_in_process``), so a file loads
the same way whichever path brought it: same op, retry policy, ledger and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.settings import Settings


def _pending_roots(settings: Settings, conn, datasets: Sequence[str] | None) -> set[str] | None:
    """The landing roots (datasets, ``otlp``) with a file that still needs work (a listing
    plus one ledger lookup); None when ``datasets`` names an unknown one.

    Cheap on purpose: it spares an empty pass Dagster's imports and instance set-up, and
    lets the run plan only the assets that have files. The run itself lists again (files
    may arrive meanwhile)."""
    from observatory_storage.ingest import ledger
    from observatory_storage.landing import open_landing
    from observatory_storage.landing.keys import LANDING_ROOTS

    landing = open_landing(settings)
    names = [n for n in (datasets or LANDING_ROOTS) if n in LANDING_ROOTS]
    if len(names) != len(datasets or names):
        return None  # an unknown dataset: let the run name the valid ones
    listed = [obj for name in names for obj in landing.list(name)]
    if not listed:
        return set()
    known = ledger.lookup(conn, settings.db_schema, (obj.key for obj in listed))
    return {obj.dataset for obj in listed if ledger.needs_work(known.get(obj.key), obj)}


class IngestFailed(RuntimeError):
    """The ingest run failed for a reason other than a bad file; the message is redacted."""


def run_ingest(
    settings: Settings,
    landing_url: str | None = None,
    datasets: Sequence[str] | None = None,
    *,
    log_level: str = "WARNING",
    ephemeral: bool = False,
) -> IngestReport:
    """Load every pending file; returns the report (``report.ok`` says if all settled).

    The run is recorded in the Dagster instance the UI reads unless ``ephemeral``
    (``defs.ingest.cli_instance``); with nothing pending there is no run at all, like the
    landing sensor, which launches none (files in no dataset folder are still reported).
    Raises DatabaseUnavailable when the database cannot be reached (checked first, so the
    CLI answers at once instead of after the op's retry backoff) or stays unreachable,
    and IngestFailed on any other failure of the run. ``log_level``: Dagster's console
    logger for the run (the CLI passes CRITICAL unless --verbose: its summary names every
    problem).
    """
    if landing_url:
        settings = settings.model_copy(update={"landing_url": landing_url})
    with connect(settings) as conn:
        pending = _pending_roots(settings, conn, datasets)
    if pending is not None and not pending:  # nothing to do: no Dagster run (~1 s start-up)
        from observatory_storage.landing import open_landing

        return IngestReport(misplaced=[obj.key for obj in open_landing(settings).list_outside()])
    from observatory_storage.defs.ingest import execute_ingest, first_failure

    report, result = execute_ingest(
        settings,
        datasets=list(datasets) if datasets else None,
        ephemeral=ephemeral,
        log_level=log_level,
        assets=sorted(pending) if pending else None,
    )
    if report is not None:
        return report
    message, transient = first_failure(result)
    if transient:
        raise DatabaseUnavailable(message)
    raise IngestFailed(message)
