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


def _anything_pending(settings: Settings, conn, datasets: Sequence[str] | None) -> bool:
    """Whether any listed landing file still needs work (listing + one ledger lookup).

    Cheap on purpose: it spares an empty pass Dagster's imports and instance set-up. The
    run itself lists again (files may arrive meanwhile)."""
    from observatory_storage.ingest import ledger
    from observatory_storage.landing import open_landing
    from observatory_storage.landing.keys import LANDING_ROOTS

    landing = open_landing(settings)
    names = [n for n in (datasets or LANDING_ROOTS) if n in LANDING_ROOTS]
    if len(names) != len(datasets or names):
        return True  # an unknown dataset: let the run name the valid ones
    listed = [obj for name in names for obj in landing.list(name)]
    if not listed:
        return False
    known = ledger.lookup(conn, settings.db_schema, (obj.key for obj in listed))
    return any(ledger.needs_work(known.get(obj.key), obj) for obj in listed)


class IngestFailed(RuntimeError):
    """The ingest run failed for a reason other than a bad file; the message is redacted."""


def run_ingest(
    settings: Settings, landing_url: str | None = None, datasets: Sequence[str] | None = None
) -> IngestReport:
    """Load every pending file; returns the report (``report.ok`` says if all settled).

    Raises DatabaseUnavailable when the database cannot be reached (checked first, so the
    CLI answers at once instead of after the op's retry backoff) or stays unreachable,
    and IngestFailed on any other failure of the run.
    """
    if landing_url:
        settings = settings.model_copy(update={"landing_url": landing_url})
    with connect(settings) as conn:
        if not _anything_pending(settings, conn, datasets):
            return IngestReport()  # nothing to do: no Dagster run (about 1 s of start-up)
    from observatory_storage.defs.ingest import execute_ingest, first_failure

    report, result = execute_ingest(settings, datasets=list(datasets) if datasets else None)
    if report is not None:
        return report
    message, transient = first_failure(result)
    if transient:
        raise DatabaseUnavailable(message)
    raise IngestFailed(message)
