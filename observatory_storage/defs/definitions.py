"""The Dagster code location: every job, sensor, schedule and resource of the product.

Loaded through ``observatory_storage/definitions.py`` by ``workspace.yaml`` (``dagster dev``,
webserver, daemon), by the CLI's in-process runs (``defs/in_process.py``) and by tests.
:func:`build` makes the definitions of one schema: their asset keys name its tables
(``defs/assets.py``), so a run on another schema (the demo's) never lands on the assets of
``public``. Steps run in the run worker's own process (in_process_executor): one process
per run instead of one per step keeps a burst of ingest runs cheap on small machines.
"""

import functools

import dagster as dg

from observatory_storage.defs import maintenance, resources, schedules
from observatory_storage.defs.assets import catalog_for
from observatory_storage.defs.dagster_retention import dagster_retention_job
from observatory_storage.defs.ingest import build_ingest
from observatory_storage.defs.maintenance import build_rollups
from observatory_storage.defs.sensors import build_sensor


@functools.cache
def build(schema: str | None = None) -> dg.Definitions:
    """The definitions for ``schema`` (default: the configured DB_SCHEMA)."""
    catalog = catalog_for(schema)
    ingest = build_ingest(catalog)
    rollups = build_rollups(catalog)
    return dg.Definitions(
        assets=[ingest.assets, rollups.assets],
        asset_checks=catalog.asset_checks,
        jobs=[ingest.job, *maintenance.JOBS, rollups.job, catalog.asset_checks_job,
              dagster_retention_job],
        sensors=[build_sensor(catalog, ingest.job)],
        schedules=[*schedules.build_schedules(rollups.job), catalog.asset_checks_schedule,
                   schedules.dagster_retention_schedule],
        resources=resources.RESOURCES,
        executor=dg.in_process_executor,
    )


defs = build()
