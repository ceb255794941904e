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

from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.defs.assets import HOURLY, RAW, Catalog, asset_key
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import DB_RETRY_POLICY, transient_errors_retried
from observatory_storage.maintenance import migrate as migrations
from observatory_storage.maintenance.checks import row_count
from observatory_storage.maintenance.common import JobBusy, JobReport
from observatory_storage.maintenance.compression import run_compression
from observatory_storage.maintenance.partitions import run_partitions
from observatory_storage.maintenance.retention import run_retention
from observatory_storage.maintenance.rollups import run_rollups
from observatory_storage.maintenance.vacuum import run_vacuum
from observatory_storage.settings import Settings, redact_text

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
    for observation in observations(report, settings.db_schema):
        context.log_event(observation)
    return dg.Output(report.as_dict(), metadata=report_metadata(report))


def _deliver(storage, outcome) -> None:
    """Hand a JobReport (or JobBusy) to an in-process caller (``defs/in_process.py``)."""
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
    "dagster_retention": "prune_dagster_runs",
}


ASSET_NAMES = (*RAW, *HOURLY)
_OBSERVED_NUMBERS = (  # item fields summed per asset into its observation
    "bytes", "hours_rolled_up", "dead_tuples_before", "dead_tuples_after", "created_ahead",
    "created_for_default_rows", "rows_moved_from_default", "rows_left_in_default",
    "duration_ms",
)


def observations(report: JobReport, schema: str = "public") -> list[dg.AssetObservation]:
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
        out.append(dg.AssetObservation(asset_key=asset_key(schema, name), metadata=metadata))
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


@dataclass(frozen=True)
class Rollups:
    """The rollup definitions of one catalog (schema): the multi-asset and its job."""

    assets: dg.AssetsDefinition
    job: UnresolvedAssetJobDefinition


def build_rollups(catalog: Catalog) -> Rollups:
    @dg.multi_asset(
        name="refresh_rollups",
        specs=catalog.hourly_specs,
        can_subset=True,
        retry_policy=DB_RETRY_POLICY,
        description="Recompute the hourly rollups of the hours touched since the last run.",
    )
    def refresh_rollups(
        context: dg.AssetExecutionContext, config: RollupsConfig, storage: StorageResource
    ):
        """Recompute the hourly rollups of the hours touched since the last run."""
        yield from _refresh_rollups(context, config, storage, catalog)

    # The rollup assets' checks (drift, newest hour vs raw) run after each refresh.
    job = dg.define_asset_job(
        "rollups",
        selection=dg.AssetSelection.assets(*(catalog.key(t) for t in HOURLY)),
        tags=TAGS,
        description="Hourly rollups of traces and metrics.",
    )
    return Rollups(refresh_rollups, job)


def _refresh_rollups(context, config: RollupsConfig, storage, catalog: Catalog):
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
        selected = {catalog.name(key) for key in context.selected_asset_keys}
        items = {item["table"]: item for item in report.items}
        with connect(settings, autocommit=True) as conn:
            for table in HOURLY:
                if table not in selected:
                    continue
                item = items.get(table, {})
                count = row_count(conn, settings, table)
                yield dg.MaterializeResult(
                    asset_key=catalog.key(table),
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


def _job(name: str, op: dg.OpDefinition, description: str) -> dg.JobDefinition:
    """A maintenance job: its one op, tagged as maintenance."""

    @dg.job(name=name, tags=TAGS, description=description)
    def job():
        op()

    return job


migrate_job = _job("migrate", apply_migrations,
                   "Apply pending SQL migrations; run on deploy and daily as a check.")
vacuum_analyze_job = _job("vacuum_analyze", vacuum_analyze_tables,
                          "VACUUM (ANALYZE) what changed since the last run.")
retention_job = _job("retention", apply_retention,
                     "Retention of raw data, rollups, ledger and landing files.")
partitions_job = _job("partitions", maintain_partitions,
                      "Daily partitions ahead and out of DEFAULT (plain PostgreSQL).")
compression_job = _job("compression", compress_chunks,
                       "Compress old chunks (licensed TimescaleDB only).")

JOBS = [migrate_job, vacuum_analyze_job, retention_job, partitions_job, compression_job]
