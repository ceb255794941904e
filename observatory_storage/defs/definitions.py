"""The Dagster code location: every job, sensor, schedule and resource of the product.

Loaded through ``observatory_storage/definitions.py`` by ``workspace.yaml`` (``dagster dev``,
webserver, daemon), by the CLI's in-process runs (``defs/in_process.py``) and by tests.
Steps run in the run worker's own process (in_process_executor): one process per run
instead of one per step keeps a burst of ingest runs cheap on small machines.
"""

import dagster as dg

from observatory_storage.defs import assets, ingest, maintenance, resources, schedules, sensors

defs = dg.Definitions(
    assets=[ingest.ingest_files, *maintenance.ASSETS],
    asset_checks=assets.ASSET_CHECKS,
    jobs=[*ingest.JOBS, *maintenance.JOBS, *assets.JOBS],
    sensors=[*sensors.SENSORS, *ingest.SENSORS, *maintenance.SENSORS],
    schedules=[*schedules.SCHEDULES, *maintenance.SCHEDULES, *assets.SCHEDULES],
    resources=resources.RESOURCES,
    executor=dg.in_process_executor,
)
