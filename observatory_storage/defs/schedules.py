"""Dagster schedules of the maintenance jobs, all in UTC.

The order through the night is deliberate: partitions (00:15) exist before the day's first
rows, migrate (01:00) checks the schema, retention (02:30) drops what aged out and leaves
the vacuum (03:17) less to do, compression (04:00) runs last. Rollups run hourly at :05,
after the top of the hour's files have landed. Odd minutes keep clear of the crowd of
other cron jobs at :00.

Running by default: everything the database needs to stay healthy. Compression starts
stopped: it changes how late rows are written and only works with the Timescale license.
"""

import dagster as dg

from observatory_storage.defs.assets import ROLLUPS_CRON
from observatory_storage.defs.dagster_retention import dagster_retention_job
from observatory_storage.defs.maintenance import (
    compression_job,
    migrate_job,
    partitions_job,
    retention_job,
    vacuum_analyze_job,
)

RUNNING = dg.DefaultScheduleStatus.RUNNING
STOPPED = dg.DefaultScheduleStatus.STOPPED


def _schedule(job, cron: str, status: dg.DefaultScheduleStatus, description: str):
    return dg.ScheduleDefinition(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=status,
        description=description,
    )


def build_schedules(rollups_job) -> list[dg.ScheduleDefinition]:
    """Every schedule; the rollups job is the catalog's (one per schema)."""
    return [
        _schedule(rollups_job, ROLLUPS_CRON, RUNNING, "Hourly rollups of the hours touched."),
        *MAINTENANCE_SCHEDULES,
    ]


MAINTENANCE_SCHEDULES = [
    _schedule(partitions_job, "15 0 * * *", RUNNING, "Daily partitions ahead (plain PostgreSQL)."),
    _schedule(migrate_job, "0 1 * * *", RUNNING, "Daily migration check (applies pending files)."),
    _schedule(retention_job, "30 2 * * *", RUNNING, "Daily retention."),
    _schedule(vacuum_analyze_job, "17 3 * * *", RUNNING, "Nightly VACUUM (ANALYZE)."),
    _schedule(compression_job, "0 4 * * *", STOPPED, "Daily compression (licensed TimescaleDB)."),
]

dagster_retention_schedule = _schedule(
    dagster_retention_job, "45 2 * * *", RUNNING,
    "Daily: Dagster runs and their events past DAGSTER_RUN_RETENTION_DAYS.")
