"""Dagster maintenance jobs: one op per job, wrapping the plain functions of
``observatory_storage.maintenance`` (the CLI runs the same functions).

Each op returns the job's report as its output with run metadata (totals as numbers, a
Markdown table of every table, chunk or partition touched, notes), so the Dagster UI shows
what a run did. Op config holds switches only (dry_run, backfill); the database URL comes
from the environment through ``StorageResource`` and never appears in run config.

Transient database errors (connection lost, lock timeout, deadlock, serialization) are
retried by the RetryPolicy (``defs/retry.py``); any other error fails the run at once.
A run that finds another run of the same job holding its lock succeeds as "skipped".
"""

import dagster as dg
from pydantic import Field

from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.maintenance import migrate as migrations
from observatory_storage.maintenance.common import JobBusy, JobReport
from observatory_storage.maintenance.compression import run_compression
from observatory_storage.maintenance.partitions import run_partitions
from observatory_storage.maintenance.retention import run_retention
from observatory_storage.maintenance.rollups import run_rollups
from observatory_storage.maintenance.vacuum import run_vacuum
from observatory_storage.settings import Settings, redact_text

from .assets import HOURLY, HOURLY_SPECS, RAW
from .resources import StorageResource
from .retry import DB_RETRY_POLICY, transient_errors_retried

TAGS = {"observatory/area": "maintenance"}


class DryRunConfig(dg.Config):
    dry_run: bool = Field(False, description="Report what would change; change nothing.")


class VacuumConfig(dg.Config):
    all_tables: bool = Field(
        False,
        description="Vacuum every chunk/partition, not only those changed since the last run.",
    )


class RollupsConfig(dg.Config):
    backfill: bool = Field(False, description="Recompute every hour of raw data.")
    reconcile: bool = Field(
        False, description="Also recompute hours whose raw count differs from the rollup."
    )


def report_metadata(report: JobReport) -> dict:
    metadata: dict = {
        "backend": report.backend,
        "dry_run": report.dry_run,
        "duration_ms": dg.MetadataValue.float(round(report.duration_ms, 1)),
        "details": dg.MetadataValue.md(report.markdown()),
    }
    for key, value in report.totals.items():
        metadata[key] = dg.MetadataValue.int(value) if isinstance(value, int) else value
    if report.notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes))
    return metadata


def _run(context: dg.OpExecutionContext, storage, work) -> dg.Output:
    settings = storage.settings()
    with transient_errors_retried(settings):
        try:
            report = work(settings)
        except JobBusy as exc:  # the other run does the same work; not a failure
            _deliver(storage, exc)
            context.log.warning(str(exc))
            return dg.Output({"skipped": str(exc)}, metadata={"skipped": str(exc)})
    _deliver(storage, report)
    context.log.info(redact_text(report.text(), settings))
    for observation in observations(report):
        context.log_event(observation)
    return dg.Output(report.as_dict(), metadata=report_metadata(report))


def _deliver(storage, outcome) -> None:
    """Hand a JobReport (or JobBusy) to an in-process caller (the CLI), if there is one."""
    sink = getattr(storage, "reports", None)
    if sink is not None:
        sink.append(outcome)


# op (or asset) of each job, for run config
JOB_OPS = {
    "migrate": "apply_migrations",
    "vacuum_analyze": "vacuum_analyze_tables",
    "retention": "apply_retention",
    "partitions": "maintain_partitions",
    "compression": "compress_chunks",
    "rollups": "refresh_rollups",
}


class JobFailed(RuntimeError):
    """A maintenance run failed; the message is the first failing step's (redacted)."""


def execute_job(
    settings: Settings, name: str, config: dict | None = None, *, ephemeral: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> JobReport:
    """Run maintenance job ``name`` in this process, recorded like the CLI's ingest runs.

    Returns the job's report; raises JobBusy when another run holds the job's lock,
    DatabaseUnavailable when the database is unreachable, JobFailed on any other failure.
    """
    from observatory_storage.db.connection import DatabaseUnavailable
    from observatory_storage.defs.ingest import (
        PinnedStorage,
        cli_instance,
        first_failure,
        in_process_job,
    )

    with connect(settings):  # unreachable: say so now, not after the retry policy's backoff
        pass
    storage = PinnedStorage(settings)
    owned = instance is None
    instance = instance or cli_instance(ephemeral=ephemeral)
    try:
        result = in_process_job(name).execute_in_process(
            run_config={
                "ops": {JOB_OPS[name]: {"config": config or {}}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
            resources={"storage": dg.ResourceDefinition.hardcoded_resource(storage)},
            instance=instance,
            raise_on_error=False,
            tags={"observatory/trigger": "in_process"},
        )
    finally:
        if owned:
            instance.dispose()
    if not result.success:
        message, transient = first_failure(result)
        raise (DatabaseUnavailable if transient else JobFailed)(message)
    [outcome] = storage.reports
    if isinstance(outcome, JobBusy):
        raise outcome
    return outcome


ASSET_NAMES = (*RAW, *HOURLY)
_OBSERVED_NUMBERS = (  # item fields summed per asset into its observation
    "bytes", "hours_rolled_up", "dead_tuples_before", "dead_tuples_after", "created_ahead",
    "created_for_default_rows", "rows_moved_from_default", "rows_left_in_default",
    "duration_ms",
)


def observations(report: JobReport) -> list[dg.AssetObservation]:
    """What a maintenance run did to each asset (retention, VACUUM, partitions), as
    observations on the asset's page: slices touched and the item numbers, summed."""
    per_asset: dict[str, list[dict]] = {}
    for item in report.items:
        name = item.get("of") or item.get("table")
        if name in ASSET_NAMES:
            per_asset.setdefault(name, []).append(item)
    out = []
    for name, items in sorted(per_asset.items()):
        metadata: dict = {
            "job": report.job,
            "dry_run": report.dry_run,
            "slices": dg.MetadataValue.int(len(items)),
        }
        for key in _OBSERVED_NUMBERS:
            values = [i[key] for i in items if isinstance(i.get(key), (int, float))]
            if values:
                total = sum(values)
                metadata[key] = (
                    dg.MetadataValue.float(round(float(total), 1))
                    if isinstance(total, float) else dg.MetadataValue.int(total)
                )
        dropped = [str(i["dropped"]) for i in items if i.get("dropped")]
        if dropped:
            metadata["dropped"] = dg.MetadataValue.json(dropped)
        out.append(dg.AssetObservation(asset_key=name, metadata=metadata))
    return out


@dg.op(retry_policy=DB_RETRY_POLICY, tags=TAGS)
def apply_migrations(
    context: dg.OpExecutionContext, config: DryRunConfig, storage: StorageResource
) -> dg.Output:
    """Apply pending SQL migrations (serialized by the runner's advisory lock)."""
    def work(settings: Settings) -> JobReport:
        with connect(settings, autocommit=True) as conn:
            pending = migrations.pending(conn, settings)
            done = migrations.migrate(conn, settings, dry_run=config.dry_run)
            report = JobReport("migrate", detect(conn).kind, dry_run=config.dry_run)
        report.items = [{"file": m.filename, "applied": not config.dry_run} for m in done]
        report.totals = {
            "pending_before": len(pending),
            "applied": 0 if config.dry_run else len(done),
        }
        return report

    return _run(context, storage, work)


@dg.op(retry_policy=DB_RETRY_POLICY, tags=TAGS)
def vacuum_analyze_tables(
    context: dg.OpExecutionContext, config: VacuumConfig, storage: StorageResource
) -> dg.Output:
    """VACUUM (ANALYZE) the chunks/partitions and tables changed since the last run."""
    return _run(
        context, storage, lambda settings: run_vacuum(settings, all_tables=config.all_tables)
    )


@dg.op(retry_policy=DB_RETRY_POLICY, tags=TAGS)
def apply_retention(
    context: dg.OpExecutionContext, config: DryRunConfig, storage: StorageResource
) -> dg.Output:
    """Drop raw chunks/partitions, rollups, ledger rows and landing files past retention."""
    return _run(
        context, storage, lambda settings: run_retention(settings, dry_run=config.dry_run)
    )


@dg.op(retry_policy=DB_RETRY_POLICY, tags=TAGS)
def maintain_partitions(context: dg.OpExecutionContext, storage: StorageResource) -> dg.Output:
    """Create daily partitions ahead and adopt rows from DEFAULT (plain PostgreSQL)."""
    return _run(context, storage, lambda settings: run_partitions(settings))


@dg.op(retry_policy=DB_RETRY_POLICY, tags=TAGS)
def compress_chunks(
    context: dg.OpExecutionContext, config: DryRunConfig, storage: StorageResource
) -> dg.Output:
    """Compress old chunks where the TimescaleDB license allows; else report and succeed."""
    return _run(
        context, storage, lambda settings: run_compression(settings, dry_run=config.dry_run)
    )


@dg.multi_asset(
    name="refresh_rollups",
    specs=HOURLY_SPECS,
    can_subset=True,
    retry_policy=DB_RETRY_POLICY,
    description="Recompute the hourly rollups of the hours touched since the last run.",
)
def refresh_rollups(
    context: dg.AssetExecutionContext, config: RollupsConfig, storage: StorageResource
):
    """Recompute the hourly rollups of the hours touched since the last run."""
    from observatory_storage.maintenance.checks import row_count

    settings = storage.settings()
    with transient_errors_retried(settings):
        try:
            report = run_rollups(settings, backfill=config.backfill, reconcile=config.reconcile)
        except JobBusy as exc:  # the other run does the same work; not a failure
            _deliver(storage, exc)
            context.log.warning(str(exc))
            return
        _deliver(storage, report)
        context.log.info(redact_text(report.text(), settings))
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        items = {item["table"]: item for item in report.items}
        with connect(settings, autocommit=True) as conn:
            for table in HOURLY:
                if table not in selected:
                    continue
                item = items.get(table, {})
                count = row_count(conn, settings, table)
                yield dg.MaterializeResult(
                    asset_key=table,
                    metadata={
                        "hours_recomputed": dg.MetadataValue.int(item.get("hours_recomputed", 0)),
                        "rows_written": dg.MetadataValue.int(item.get("rows_written", 0)),
                        "source": str(item.get("source", "")),
                        "duration_ms": dg.MetadataValue.float(
                            round(float(item.get("duration_ms", 0.0)), 1)
                        ),
                        "dagster/row_count": dg.MetadataValue.int(count.rows),
                        **({"notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes))}
                           if report.notes else {}),
                    },
                )


@dg.job(
    name="migrate",
    tags=TAGS,
    description="Apply pending SQL migrations; run on deploy and daily as a check.",
)
def migrate_job():
    apply_migrations()


@dg.job(
    name="vacuum_analyze",
    tags=TAGS,
    description="VACUUM (ANALYZE) what changed since the last run.",
)
def vacuum_analyze_job():
    vacuum_analyze_tables()


@dg.job(
    name="retention",
    tags=TAGS,
    description="Retention of raw data, rollups, ledger and landing files.",
)
def retention_job():
    apply_retention()


@dg.job(
    name="partitions",
    tags=TAGS,
    description="Daily partitions ahead and out of DEFAULT (plain PostgreSQL).",
)
def partitions_job():
    maintain_partitions()


@dg.job(
    name="compression", tags=TAGS, description="Compress old chunks (licensed TimescaleDB only)."
)
def compression_job():
    compress_chunks()


# The rollup assets' checks (drift, newest hour vs raw) run after each refresh.
rollups_job = dg.define_asset_job(
    "rollups",
    selection=dg.AssetSelection.assets(*HOURLY),
    tags=TAGS,
    description="Hourly rollups of traces and metrics.",
)


JOBS = [
    migrate_job,
    vacuum_analyze_job,
    retention_job,
    partitions_job,
    compression_job,
    rollups_job,
]
ASSETS = [refresh_rollups]
SENSORS: list = []
SCHEDULES: list = []  # in defs/schedules.py
