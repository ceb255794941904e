"""``dagster_retention``: Dagster's own storage, pruned like our tables.

Every run leaves a run record and its event log (~1 MB and 60-100 event rows; a busy
landing sensor launches a run every few seconds), and Dagster deletes none of them by
itself. This job deletes finished runs older than DAGSTER_RUN_RETENTION_DAYS, with their
events, through the instance's own ``delete_run`` (SQLite or PostgreSQL storage alike),
oldest first and at most MAX_RUNS_PER_RUN per run (the next run goes on). It never deletes:

- a run that is not finished (queued, starting, started, cancelling);
- a run holding an asset's latest materialization or an asset check's latest result, so
  every asset page keeps its last load, its freshness and its checks;
- its own run.

Sensor and schedule ticks are purged by Dagster's daemon itself (``retention:`` in
dagster.yaml).
"""


import time
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from observatory_storage.defs.assets import (
    CONSISTENCY_CHECK,
    DRIFT_CHECK,
    QUARANTINED_CHECK,
    ROLLUP_CHECK,
)
from observatory_storage.defs.resources import StorageResource
from observatory_storage.maintenance.common import JobReport

TAGS = {"observatory/area": "maintenance"}
CHECKS = (QUARANTINED_CHECK, CONSISTENCY_CHECK, DRIFT_CHECK, ROLLUP_CHECK)
MAX_RUNS_PER_RUN = 5000
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
             dg.DagsterRunStatus.CANCELED]


class DagsterRetentionConfig(dg.Config):
    dry_run: bool = Field(False, description="Count what would be deleted; delete nothing.")


def protected_runs(instance: dg.DagsterInstance) -> set[str]:
    """Runs holding an asset's latest materialization or one of our checks' latest result."""
    keys = list(instance.get_asset_keys())
    keep = {event.run_id for event in instance.get_latest_materialization_events(keys).values()
            if event is not None}
    check_keys = [dg.AssetCheckKey(key, name) for key in keys for name in CHECKS]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    keep |= {record.run_id for record in latest.values() if record is not None}
    return keep


def prune(instance: dg.DagsterInstance, days: int | None, *, dry_run: bool = False,
          current_run: str | None = None, now: datetime | None = None) -> JobReport:
    """Delete (or count, with ``dry_run``) finished runs older than ``days``."""
    started = time.perf_counter()
    report = JobReport("dagster_retention", "dagster", dry_run=dry_run)
    if days is None:
        report.notes.append("DAGSTER_RUN_RETENTION_DAYS is empty: runs are kept forever")
        return report
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    keep = protected_runs(instance) | ({current_run} if current_run else set())
    records = instance.get_run_records(
        dg.RunsFilter(statuses=_FINISHED, created_before=cutoff), limit=MAX_RUNS_PER_RUN,
        ascending=True)
    deleted = kept = 0
    for record in records:
        run = record.dagster_run
        if run.run_id in keep:
            kept += 1
            continue
        if not dry_run:
            instance.delete_run(run.run_id)
        deleted += 1
    report.totals = {"runs_deleted": deleted, "runs_kept_latest": kept,
                     "cutoff_days": days}
    if len(records) == MAX_RUNS_PER_RUN:
        report.notes.append(f"stopped at {MAX_RUNS_PER_RUN} runs; the next run goes on")
    report.notes.append(f"runs created before {cutoff:%Y-%m-%d %H:%M} UTC"
                        + (" would be deleted" if dry_run else " deleted") + "; "
                        f"{kept} kept: they hold an asset's latest materialization or check")
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report


@dg.op(tags=TAGS)
def prune_dagster_runs(context: dg.OpExecutionContext, config: DagsterRetentionConfig,
                       storage: StorageResource) -> dg.Output:
    """Delete finished Dagster runs (and their events) past DAGSTER_RUN_RETENTION_DAYS."""
    settings = storage.settings()
    report = prune(context.instance, settings.dagster_run_retention_days,
                   dry_run=config.dry_run, current_run=context.run_id)
    sink = getattr(storage, "reports", None)  # in-process callers (defs/in_process.py)
    if sink is not None:
        sink.append(report)
    context.log.info(report.text())
    return dg.Output(report.as_dict(), metadata={
        "runs_deleted": dg.MetadataValue.int(report.totals.get("runs_deleted", 0)),
        "runs_kept_latest": dg.MetadataValue.int(report.totals.get("runs_kept_latest", 0)),
        "dry_run": config.dry_run,
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes)),
    })


@dg.job(name="dagster_retention", tags=TAGS,
        description="Delete Dagster runs and their events past DAGSTER_RUN_RETENTION_DAYS.")
def dagster_retention_job():
    prune_dagster_runs()
