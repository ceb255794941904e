"""One ingest pass over every pending file, in this process.

``run_ingest`` is what ``observatory-storage ingest`` calls. It is the seam where the
Dagster ``ingest_job`` is executed in process (the Dagster definitions own that body);
this version loads directly so the CLI works without Dagster.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from observatory_storage.db.connection import connect
from observatory_storage.ingest.loader import load_objects, pending_objects
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.landing.base import open_landing
from observatory_storage.settings import Settings


def run_ingest(
    settings: Settings, landing_url: str | None = None, datasets: Sequence[str] | None = None
) -> IngestReport:
    if landing_url:
        settings = settings.model_copy(update={"landing_url": landing_url})
    landing = open_landing(settings)
    with connect(settings, autocommit=True) as conn:
        todo = pending_objects(settings, conn, datasets=datasets, landing=landing)
    return load_objects(settings, todo, run_id=f"cli-{uuid.uuid4().hex[:12]}", landing=landing)
