"""The tables as Dagster assets: ``traces``, ``metrics``, ``logs`` and the hourly rollups.

Everything an asset shows comes from the dataset contracts (``datasets.py``) and the
rollup definitions (``maintenance/rollups.py``): description, ``dagster/table_name``,
``dagster/column_schema``. Who materializes them:

- ``traces``, ``metrics``, ``logs``: the ``ingest_files`` multi-asset (``defs/ingest.py``),
  one materialization per dataset a run loaded, with the run's numbers as metadata;
- ``traces_hourly``, ``metrics_hourly``: the ``refresh_rollups`` multi-asset
  (``defs/maintenance.py``), each depending on its raw table (Lineage: raw -> hourly).

Checks, and when they run (docs/dagster.md has the table):

- ``quarantined_files`` (WARN) and ``loaded_rows_stored`` (ERROR) on each raw table: with
  every ingest run that loads that dataset (declared as check specs of ``ingest_files``);
- ``columns_match_contract`` on all five tables: on the ``asset_checks`` schedule
  (ASSET_CHECKS_CRON), and with every rollups run for the two rollups;
- ``hourly_matches_raw`` on each rollup: with every rollups run and on the schedule;
- freshness (``FreshnessPolicy.time_window``, FRESHNESS_WARN/FAIL_MINUTES) on the raw
  tables: evaluated continuously by the Dagster daemon from the last materialization.
"""

from datetime import timedelta

import dagster as dg

from observatory_storage.datasets import DATASETS, Dataset
from observatory_storage.db.connection import connect
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import DB_RETRY_POLICY, transient_errors_retried
from observatory_storage.maintenance.checks import drift, rollup_vs_raw
from observatory_storage.maintenance.rollups import ROLLUPS, Rollup
from observatory_storage.settings import Settings, SettingsError, get_settings

GROUP = "observatory"
KINDS = {"postgres", "timescaledb"}  # TimescaleDB hypertables, or plain partitioned tables
RAW = tuple(DATASETS)  # traces, metrics, logs
HOURLY = tuple(r.table for r in ROLLUPS.values())  # traces_hourly, metrics_hourly

QUARANTINED_CHECK = "quarantined_files"
CONSISTENCY_CHECK = "loaded_rows_stored"
DRIFT_CHECK = "columns_match_contract"
ROLLUP_CHECK = "hourly_matches_raw"


def _setting(name: str):
    """A setting at import time; a bad environment falls back to the default (the job's
    own run reports the bad setting)."""
    try:
        return getattr(get_settings(), name)
    except SettingsError:
        return Settings.model_fields[name].default


def freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=_setting("freshness_fail_minutes")),
        warn_window=timedelta(minutes=_setting("freshness_warn_minutes")),
    )


def _column_schema(dataset: Dataset) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.pg_type,
                description=c.description + (f" (OpenTelemetry `{c.otel}`)" if c.otel else ""),
                constraints=dg.TableColumnConstraints(nullable=not c.required),
            )
            for c in dataset.columns
        ]
    )


def _rollup_schema(rollup: Rollup) -> dg.TableSchema:
    raw = DATASETS[rollup.dataset]
    columns = [dg.TableColumn("bucket", "timestamptz", description="Hour (UTC).")]
    columns += [
        dg.TableColumn(k, raw.column(k).pg_type, description=raw.column(k).description)
        for k in rollup.keys
    ]
    columns += [dg.TableColumn(m, "aggregate", description=f"`{expr}`") for m, expr in rollup.measures]
    columns.append(dg.TableColumn("computed_at", "timestamptz", description="When recomputed."))
    return dg.TableSchema(columns=columns)


def _table_name(table: str) -> str:
    return f"{_setting('db_schema')}.{table}"


def raw_spec(dataset: Dataset) -> dg.AssetSpec:
    return dg.AssetSpec(
        dataset.name,
        description=f"{dataset.description} Loaded from the landing's `{dataset.name}/` files.",
        group_name=GROUP,
        kinds=KINDS,
        skippable=True,  # a run materializes only the datasets it loaded
        freshness_policy=freshness_policy(),
        metadata={
            "dagster/table_name": _table_name(dataset.name),
            "dagster/column_schema": _column_schema(dataset),
            "time_column": dataset.time_column,
            "retention_days": _setting(f"retention_{dataset.name}_days"),
        },
    )


def hourly_spec(rollup: Rollup) -> dg.AssetSpec:
    return dg.AssetSpec(
        rollup.table,
        deps=[rollup.dataset],
        description=f"Hourly rollup of `{rollup.dataset}` by "
        + ", ".join(rollup.keys)
        + "; outlives raw retention.",
        group_name=GROUP,
        kinds=KINDS,
        skippable=True,
        metadata={
            "dagster/table_name": _table_name(rollup.table),
            "dagster/column_schema": _rollup_schema(rollup),
            "retention_days": _setting("retention_rollups_days"),
        },
    )


RAW_SPECS = [raw_spec(d) for d in DATASETS.values()]
HOURLY_SPECS = [hourly_spec(r) for r in ROLLUPS.values()]


def ingest_check_specs() -> list[dg.AssetCheckSpec]:
    """The checks every ingest run evaluates for each dataset it loaded."""
    specs = []
    for name in RAW:
        specs += [
            dg.AssetCheckSpec(
                QUARANTINED_CHECK,
                asset=name,
                description="WARN when the run quarantined files (see the run's `problems`).",
            ),
            dg.AssetCheckSpec(
                CONSISTENCY_CHECK,
                asset=name,
                description="Rows the ledger says were loaded around this run = rows the "
                "table holds over the same event-time window (catches lost or duplicated loads).",
            ),
        ]
    return specs


def check_keys_for(datasets) -> list[dg.AssetCheckKey]:
    """The ingest run's own check keys for ``datasets`` (a sensor's asset selection)."""
    return [
        dg.AssetCheckKey(dg.AssetKey(name), check)
        for name in datasets
        for check in (QUARANTINED_CHECK, CONSISTENCY_CHECK)
    ]


# --- checks that read the tables: drift, rollups vs raw --------------------------------------


def drift_result(settings: Settings, table: str) -> dg.AssetCheckResult:
    with connect(settings, autocommit=True) as conn:
        found = drift(conn, settings, table)
    return dg.AssetCheckResult(
        asset_key=table,
        check_name=DRIFT_CHECK,
        passed=found.passed,
        severity=dg.AssetCheckSeverity.ERROR if found.severe else dg.AssetCheckSeverity.WARN,
        description=None if found.passed else "the table's columns differ from its contract",
        metadata={
            "missing": dg.MetadataValue.json(found.missing),
            "extra": dg.MetadataValue.json(found.extra),
            "mistyped": dg.MetadataValue.json(found.mistyped),
        },
    )


def rollup_result(settings: Settings, dataset: str) -> dg.AssetCheckResult:
    with connect(settings, autocommit=True) as conn:
        found = rollup_vs_raw(conn, settings, dataset)
    metadata = {
        "checked": found.checked,
        "raw_rows": dg.MetadataValue.int(found.raw_rows),
        "rollup_rows": dg.MetadataValue.int(found.rollup_rows),
    }
    if found.hour is not None:
        metadata["hour"] = dg.MetadataValue.text(f"{found.hour:%Y-%m-%dT%H:00Z}")
    return dg.AssetCheckResult(
        asset_key=found.table,
        check_name=ROLLUP_CHECK,
        passed=found.passed,
        description=found.reason,
        metadata=metadata,
    )


def _drift_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=DRIFT_CHECK,
        description="The table's columns and types against its contract (schema drift).",
        retry_policy=DB_RETRY_POLICY,
    )
    def check(storage: StorageResource) -> dg.AssetCheckResult:
        settings = storage.settings()
        with transient_errors_retried(settings):
            return drift_result(settings, table)

    return check


def _rollup_check(rollup: Rollup) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=rollup.table,
        name=ROLLUP_CHECK,
        description=f"The newest hour's row count in `{rollup.table}` against `{rollup.dataset}`.",
        retry_policy=DB_RETRY_POLICY,
    )
    def check(storage: StorageResource) -> dg.AssetCheckResult:
        settings = storage.settings()
        with transient_errors_retried(settings):
            return rollup_result(settings, rollup.dataset)

    return check


RAW_DRIFT_CHECKS = [_drift_check(name) for name in RAW]
HOURLY_CHECKS = [_drift_check(name) for name in HOURLY] + [
    _rollup_check(r) for r in ROLLUPS.values()
]
ASSET_CHECKS = [*RAW_DRIFT_CHECKS, *HOURLY_CHECKS]

asset_checks_job = dg.define_asset_job(
    "asset_checks",
    selection=dg.AssetSelection.checks(*ASSET_CHECKS),
    description="Schema drift of every table, and the newest rollup hour against raw.",
    tags={"observatory/area": "checks"},
)

asset_checks_schedule = dg.ScheduleDefinition(
    name="asset_checks_schedule",
    job=asset_checks_job,
    cron_schedule=_setting("asset_checks_cron"),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly asset checks (drift, rollups vs raw), after the rollups run.",
)

JOBS = [asset_checks_job]
SCHEDULES = [asset_checks_schedule]
