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
    from observatory_storage.ingest.loader import pending_objects

    with connect(settings) as conn:
        pending = pending_objects(settings, conn, datasets=datasets)
    if not pending:  # nothing to load: no Dagster run (nor its start-up cost)
        from observatory_storage.landing import open_landing

        return IngestReport(misplaced=[obj.key for obj in open_landing(settings).list_outside()])
    from observatory_storage.defs.ingest import execute_ingest, first_failure

    report, result = execute_ingest(
        settings,
        datasets=list(datasets) if datasets else None,
        ephemeral=ephemeral,
        log_level=log_level,
        assets=sorted({obj.dataset for obj in pending}),
    )
    if report is not None:
        return report
    message, transient = first_failure(result)
    if transient:
        raise DatabaseUnavailable(message)
    raise IngestFailed(message)
