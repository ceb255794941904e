"""What still needs work: the landing's files that the ledger has not settled.

``pending_objects`` is what the sensor's tick and an ingest run load from; ``pending_roots``
is the cheap question the CLI asks first (which landing roots have anything to load?), so
an empty pass costs a listing and one ledger lookup, not a Dagster run. Exactly once is the
ledger's job: listing a file twice, or a file another run holds, is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg

from observatory_storage.datasets import get_dataset
from observatory_storage.ingest import ledger
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.landing import Landing, LandingObject, open_landing
from observatory_storage.landing.keys import LANDING_ROOTS
from observatory_storage.settings import Settings


def _roots(datasets: Sequence[str] | None) -> list[str]:
    names = list(datasets) if datasets else list(LANDING_ROOTS)
    for name in names:
        if name not in LANDING_ROOTS:
            get_dataset(name)  # raises, naming the valid datasets
    return names


def _needing_work(conn: psycopg.Connection, schema: str,
                  listed: Iterable[LandingObject]) -> list[LandingObject]:
    listed = list(listed)
    known = ledger.lookup(conn, schema, (obj.key for obj in listed))
    return [obj for obj in listed if ledger.needs_work(known.get(obj.key), obj)]


def pending_objects(
    settings: Settings,
    conn: psycopg.Connection,
    *,
    datasets: Sequence[str] | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
    landing: Landing | None = None,
) -> list[LandingObject]:
    """Listed objects the ledger says still need work, oldest first, within the bounds.

    ``max_bytes`` stops before the file that would exceed it, but a first file larger
    than the bound is still returned alone (it must load some day).
    """
    landing = landing or open_landing(settings)
    listed = (obj for name in _roots(datasets) for obj in landing.list(name))
    todo = _needing_work(conn, settings.db_schema, listed)
    todo.sort(key=lambda obj: (obj.modified, obj.key))
    chosen: list[LandingObject] = []
    total = 0
    for obj in todo:
        if max_files is not None and len(chosen) >= max_files:
            break
        if max_bytes is not None and chosen and total + obj.size > max_bytes:
            break
        chosen.append(obj)
        total += obj.size
    return chosen


def pending_roots(settings: Settings, conn: psycopg.Connection,
                  datasets: Sequence[str] | None) -> set[str] | None:
    """The landing roots (datasets, ``otlp``) with a file that still needs work; None when
    ``datasets`` names an unknown one (the run then names the valid ones)."""
    names = [n for n in (datasets or LANDING_ROOTS) if n in LANDING_ROOTS]
    if len(names) != len(datasets or names):
        return None
    landing = open_landing(settings)
    listed = [obj for name in names for obj in landing.list(name)]
    return {obj.dataset for obj in _needing_work(conn, settings.db_schema, listed)}


def idle_report(settings: Settings) -> IngestReport:
    """The report of a pass with nothing to load: only the files in no dataset folder."""
    return IngestReport(misplaced=[obj.key for obj in open_landing(settings).list_outside()])
