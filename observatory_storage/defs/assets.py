"""The tables as Dagster assets: ``traces``, ``metrics``, ``logs`` and the hourly rollups.

Everything an asset shows comes from the dataset contracts (``datasets.py``) and the
rollup definitions (``maintenance/rollups.py``): description, ``dagster/table_name``,
``dagster/column_schema``. An asset's key names its table: ``traces`` in the ``public``
schema, ``<schema>/traces`` in any other (the demo's ``observatory_demo/traces``), so what
the UI says about an asset is true of the table it names; :class:`Catalog` builds the keys,
specs and checks of one schema. Who materializes them:

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

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import dagster as dg
import psycopg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from observatory_storage.datasets import DATASETS, Dataset, otel_cell
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect, conninfo
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import DB_RETRY_POLICY, transient_errors_retried
from observatory_storage.maintenance.checks import drift, rollup_vs_raw
from observatory_storage.maintenance.rollups import ROLLUPS, Rollup
from observatory_storage.settings import Settings, SettingsError, get_settings

GROUP = "observatory"
RAW = tuple(DATASETS)  # traces, metrics, logs
HOURLY = tuple(r.table for r in ROLLUPS.values())  # traces_hourly, metrics_hourly
ROLLUPS_CRON = "5 * * * *"  # the rollups schedule (defs/schedules.py)

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


def backend_kinds(settings: Settings | None = None) -> frozenset[str]:
    """The kind tags of the tables: ``timescaledb`` only when the database is TimescaleDB
    (asked once, quickly, never starting the embedded server); ``postgres`` always."""
    try:
        settings = settings or get_settings()
        info = conninfo(settings, start_embedded=False)
        with psycopg.connect(info, connect_timeout=3, autocommit=True) as conn:
            timescale = detect(conn).is_timescaledb
    except Exception:  # no database yet (or a bad setting): the kind is only a label
        timescale = False
    return frozenset({"postgres", "timescaledb"} if timescale else {"postgres"})


def _column_schema(dataset: Dataset) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.pg_type,
                description=c.description + (f" OpenTelemetry: {otel_cell(c, mark='')}."
                                             if c.otel else ""),
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


def asset_key(schema: str, name: str) -> dg.AssetKey:
    """The asset of table ``name`` in ``schema``: ``traces`` in public, ``<schema>/traces``
    elsewhere."""
    return dg.AssetKey(name) if schema == "public" else dg.AssetKey([schema, name])


@dataclass(frozen=True)
class Catalog:
    """The product's tables in one schema as Dagster assets: keys, specs and checks."""

    schema: str
    kinds: frozenset[str] = frozenset({"postgres"})

    def key(self, name: str) -> dg.AssetKey:
        return asset_key(self.schema, name)

    def name(self, key: dg.AssetKey) -> str:
        """The table an asset key names (inverse of :meth:`key`)."""
        return key.path[-1]

    def _table_name(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def raw_spec(self, dataset: Dataset) -> dg.AssetSpec:
        return dg.AssetSpec(
            self.key(dataset.name),
            description=f"{dataset.description} Loaded from the landing's `{dataset.name}/` "
            "files (and OTLP files under `otlp/`).",
            group_name=GROUP,
            kinds=set(self.kinds),
            skippable=True,  # a run materializes only the datasets it loaded
            freshness_policy=freshness_policy(),
            metadata={
                "dagster/table_name": self._table_name(dataset.name),
                "dagster/column_schema": _column_schema(dataset),
                "time_column": dataset.time_column,
                "retention_days": _setting(f"retention_{dataset.name}_days"),
            },
        )

    def hourly_spec(self, rollup: Rollup) -> dg.AssetSpec:
        return dg.AssetSpec(
            self.key(rollup.table),
            deps=[self.key(rollup.dataset)],
            description=f"Hourly rollup of `{rollup.dataset}` by "
            + ", ".join(rollup.keys)
            + "; outlives raw retention. Refreshed by `rollups_schedule` at minute 5 of every "
            "hour (UTC; `dev` also runs it once at start-up, `observatory-storage maintenance "
            "rollups` on demand); until its first refresh it reads Never materialized.",
            group_name=GROUP,
            kinds=set(self.kinds),
            skippable=True,
            metadata={
                "dagster/table_name": self._table_name(rollup.table),
                "dagster/column_schema": _rollup_schema(rollup),
                "retention_days": _setting("retention_rollups_days"),
                "refreshed": f"hourly, cron `{ROLLUPS_CRON}` (UTC), by rollups_schedule",
            },
        )

    @cached_property
    def raw_specs(self) -> list[dg.AssetSpec]:
        return [self.raw_spec(d) for d in DATASETS.values()]

    @cached_property
    def hourly_specs(self) -> list[dg.AssetSpec]:
        return [self.hourly_spec(r) for r in ROLLUPS.values()]

    def ingest_check_specs(self) -> list[dg.AssetCheckSpec]:
        """The checks every ingest run evaluates for each dataset it loaded."""
        specs = []
        for name in RAW:
            specs += [
                dg.AssetCheckSpec(
                    QUARANTINED_CHECK,
                    asset=self.key(name),
                    description="WARN when the run quarantined files (see the run's "
                    "`problems`).",
                ),
                dg.AssetCheckSpec(
                    CONSISTENCY_CHECK,
                    asset=self.key(name),
                    description="Rows the ledger says were loaded around this run = rows the "
                    "table holds over the same event-time window (catches lost or duplicated "
                    "loads).",
                ),
            ]
        return specs

    def check_keys_for(self, datasets) -> list[dg.AssetCheckKey]:
        """The ingest run's own check keys for ``datasets`` (a sensor's asset selection)."""
        return [
            dg.AssetCheckKey(self.key(name), check)
            for name in datasets
            for check in (QUARANTINED_CHECK, CONSISTENCY_CHECK)
        ]

    # --- checks that read the tables: drift, rollups vs raw ------------------------------

    def drift_result(self, settings: Settings, table: str) -> dg.AssetCheckResult:
        with connect(settings, autocommit=True) as conn:
            found = drift(conn, settings, table)
        return dg.AssetCheckResult(
            asset_key=self.key(table),
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

    def rollup_result(self, settings: Settings, dataset: str) -> dg.AssetCheckResult:
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
            asset_key=self.key(found.table),
            check_name=ROLLUP_CHECK,
            passed=found.passed,
            description=found.reason,
            metadata=metadata,
        )

    def _drift_check(self, table: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=self.key(table),
            name=DRIFT_CHECK,
            description="The table's columns and types against its contract (schema drift).",
            retry_policy=DB_RETRY_POLICY,
        )
        def check(storage: StorageResource) -> dg.AssetCheckResult:
            settings = storage.settings()
            with transient_errors_retried(settings):
                return self.drift_result(settings, table)

        return check

    def _rollup_check(self, rollup: Rollup) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=self.key(rollup.table),
            name=ROLLUP_CHECK,
            description=f"The newest hour's row count in `{rollup.table}` against "
            f"`{rollup.dataset}`.",
            retry_policy=DB_RETRY_POLICY,
        )
        def check(storage: StorageResource) -> dg.AssetCheckResult:
            settings = storage.settings()
            with transient_errors_retried(settings):
                return self.rollup_result(settings, rollup.dataset)

        return check

    @cached_property
    def raw_drift_checks(self) -> list[dg.AssetChecksDefinition]:
        return [self._drift_check(name) for name in RAW]

    @cached_property
    def asset_checks(self) -> list[dg.AssetChecksDefinition]:
        hourly = [self._drift_check(name) for name in HOURLY]
        return [*self.raw_drift_checks, *hourly, *(self._rollup_check(r) for r in ROLLUPS.values())]

    @cached_property
    def asset_checks_job(self) -> UnresolvedAssetJobDefinition:
        return dg.define_asset_job(
            "asset_checks",
            selection=dg.AssetSelection.checks(*self.asset_checks),
            description="Schema drift of every table, and the newest rollup hour against raw.",
            tags={"observatory/area": "checks"},
        )

    @cached_property
    def asset_checks_schedule(self) -> dg.ScheduleDefinition:
        return dg.ScheduleDefinition(
            name="asset_checks_schedule",
            job=self.asset_checks_job,
            cron_schedule=_setting("asset_checks_cron"),
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Hourly asset checks (drift, rollups vs raw), after the rollups run.",
        )


def catalog_for(schema: str | None = None, settings: Settings | None = None) -> Catalog:
    """The catalog of ``schema`` (the configured DB_SCHEMA by default)."""
    return Catalog(schema or _setting("db_schema"), backend_kinds(settings))
