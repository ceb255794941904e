"""Dagster jobs run in this process for the CLI: ``ingest``, ``demo`` and ``maintenance``.

The one module that knows how such a run is set up, so every command runs its job alike:

- the instance it is recorded in: DAGSTER_HOME, else the project-local home ``dev`` uses
  (``defs/home.py``), so the run shows in the UI; ``ephemeral``: in memory, nothing kept;
- the console log level: the caller's (the CLI passes CRITICAL, or LOG_LEVEL with
  ``--verbose``: its own summary names every problem);
- the settings: pinned (:class:`PinnedStorage`), not re-read from the environment, so a
  ``--landing`` or a test's database applies; the op hands its report back through it,
  also when the run fails;
- the job: resolved once per process from the definitions of the run's schema
  (``defs/definitions.py``: in ``public`` the code location's own assets, elsewhere assets
  keyed ``<schema>/<table>``, so the demo's runs never land on ``public``'s); an ingest
  run plans only the assets that have files.
"""

import functools
from dataclasses import dataclass
from typing import Optional

import dagster as dg

from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.defs.assets import RAW, asset_key, catalog_for
from observatory_storage.defs.definitions import build
from observatory_storage.defs.home import dagster_home
from observatory_storage.defs.ingest import run_config_for
from observatory_storage.defs.maintenance import JOB_OPS
from observatory_storage.ingest import discovery
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.maintenance.common import JobBusy, JobReport
from observatory_storage.settings import Settings

DEFAULT_LOG_LEVEL = "CRITICAL"  # the CLI prints its own summary; --verbose passes LOG_LEVEL


class RunFailed(RuntimeError):
    """A run failed for a reason other than a bad file or an unreachable database; the
    message is the first failing step's, redacted."""


class PinnedStorage:
    """The ``storage`` resource of an in-process run: the caller's settings, and a sink
    for the report the op produces (``StorageResource`` re-reads the environment)."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self.reports: list = []

    def settings(self) -> Settings:
        return self._settings


@dataclass
class InProcessRun:
    result: dg.ExecuteInProcessResult
    reports: list  # what the op handed back (IngestReport, JobReport or JobBusy)

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def success(self) -> bool:
        return self.result.success

    def failure(self) -> tuple[str, bool]:
        """(message, transient) of the first failing step; see :func:`first_failure`."""
        return first_failure(self.result)


def instance_for(*, ephemeral: bool = False) -> dg.DagsterInstance:
    """The instance CLI runs are recorded in: the one ``dev``'s UI reads (``ephemeral``: a
    throw-away in-memory instance)."""
    if ephemeral:
        return dg.DagsterInstance.ephemeral()
    return dg.DagsterInstance.from_config(str(dagster_home()))


def recorded_home(*, ephemeral: bool = False):
    """The DAGSTER_HOME a run is recorded in, or None when ``ephemeral``."""
    return None if ephemeral else dagster_home()


@functools.cache
def job(name: str, schema: str) -> dg.JobDefinition:
    """A job of the definitions of ``schema``, resolved once per process."""
    return build(schema).resolve_job_def(name)


def run_job(
    settings: Settings,
    job_def: dg.JobDefinition,
    run_config: dict,
    *,
    tags: Optional[dict[str, str]] = None,  # noqa: UP045
    log_level: str = DEFAULT_LOG_LEVEL,
    ephemeral: bool = False,
    instance: Optional[dg.DagsterInstance] = None,  # noqa: UP045
) -> InProcessRun:
    """Execute ``job_def`` here with pinned ``settings``; never raises for a failed run."""
    storage = PinnedStorage(settings)
    owned = instance is None
    instance = instance or instance_for(ephemeral=ephemeral)
    try:
        result = job_def.execute_in_process(
            run_config={**run_config, "loggers": {"console": {"config": {"log_level": log_level}}}},
            resources={"storage": dg.ResourceDefinition.hardcoded_resource(storage)},
            instance=instance,
            raise_on_error=False,
            tags={"observatory/trigger": "in_process", **(tags or {})},
        )
    finally:
        if owned:
            instance.dispose()
    return InProcessRun(result, storage.reports)


def first_failure(result) -> tuple[str, bool]:
    """(message, transient) of a failed run's first failing step; messages are redacted.

    ``transient`` is True when the step gave up on a transient database error, which the
    CLI reports as "database unreachable" rather than as a failed run.
    """
    for event in result.all_events:
        if not (event.is_step_failure or event.is_run_failure):
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is None:
            continue
        transient, message, current = False, None, error
        while current is not None:
            if current.cls_name == "TransientDatabaseError":
                transient = True
            if current.cls_name not in ("DagsterExecutionStepExecutionError",):
                message = message or current.message.strip().splitlines()[0]
            current = current.cause or current.context
        return message or error.message.strip().splitlines()[0], transient
    return "run failed", False


def _raise_failure(run: InProcessRun) -> None:
    message, transient = run.failure()
    raise (DatabaseUnavailable if transient else RunFailed)(message)


# --- ingest ---------------------------------------------------------------------------------


def ingest_job_for(schema: str, assets) -> dg.JobDefinition:
    """``ingest_job`` of ``schema``, planned for only ``assets`` (the datasets with files)
    when they are known: the catalog then does not show the other datasets' checks as
    skipped."""
    whole = job("ingest_job", schema)
    chosen = set(assets or ())
    if not chosen or not chosen <= set(RAW) or chosen == set(RAW):
        return whole  # every dataset (also when a file may fill several: OTLP)
    return whole.get_subset(
        asset_selection={asset_key(schema, name) for name in chosen},
        asset_check_selection=set(catalog_for(schema).check_keys_for(sorted(chosen))),
    )


def execute_ingest(
    settings: Settings,
    *,
    keys: Optional[list[str]] = None,  # noqa: UP045
    datasets: Optional[list[str]] = None,  # noqa: UP045
    assets: Optional[list[str]] = None,  # noqa: UP045
    instance: Optional[dg.DagsterInstance] = None,  # noqa: UP045
    tags: Optional[dict[str, str]] = None,  # noqa: UP045
    log_level: str = DEFAULT_LOG_LEVEL,
    ephemeral: bool = False,
):
    """Run ``ingest_job`` here; returns (report or None, Dagster result).

    ``keys``/``datasets``: what to load (empty: every pending file); ``assets``: the
    datasets with files, when known (see :func:`ingest_job_for`).
    """
    run = run_job(settings, ingest_job_for(settings.db_schema, assets),
                  run_config_for(keys, datasets), tags=tags,
                  log_level=log_level, ephemeral=ephemeral, instance=instance)
    report = None
    for part in run.reports:
        report = part if report is None else report.merge(part)
    if report is None and run.success:
        report = IngestReport()
    return report, run.result


def run_ingest(
    settings: Settings,
    datasets: Optional[list[str]] = None,  # noqa: UP045
    *,
    pending: Optional[set[str]] = None,  # noqa: UP045
    log_level: str = DEFAULT_LOG_LEVEL,
    ephemeral: bool = False,
) -> IngestReport:
    """The body of ``observatory-storage ingest``: load every pending file.

    ``pending``: the landing roots with files to load, when the caller looked already
    (:func:`~observatory_storage.ingest.discovery.pending_roots`). With nothing pending
    there is no run at all, as the sensor launches none. Raises DatabaseUnavailable when
    the database cannot be reached (checked first: the CLI answers at once instead of
    after the op's retry backoff) or stays unreachable, RunFailed on any other failure.
    """
    if pending is None:
        with connect(settings) as conn:
            pending = discovery.pending_roots(settings, conn, datasets)
    if pending is not None and not pending:
        return discovery.idle_report(settings)
    report, result = execute_ingest(settings, datasets=list(datasets) if datasets else None,
                                    assets=sorted(pending) if pending else None,
                                    log_level=log_level, ephemeral=ephemeral)
    if report is not None:
        return report
    message, transient = first_failure(result)
    raise (DatabaseUnavailable if transient else RunFailed)(message)


# --- maintenance ----------------------------------------------------------------------------


def run_maintenance(
    settings: Settings,
    name: str,
    config: Optional[dict] = None,  # noqa: UP045
    *,
    log_level: str = DEFAULT_LOG_LEVEL,
    ephemeral: bool = False,
    instance: Optional[dg.DagsterInstance] = None,  # noqa: UP045
) -> JobReport:
    """Run maintenance job ``name`` here; returns its report.

    Raises JobBusy when another run holds the job's lock, DatabaseUnavailable when the
    database is unreachable, RunFailed on any other failure.
    """
    with connect(settings):  # unreachable: say so now, not after the retry policy's backoff
        pass
    run = run_job(settings, job(name, settings.db_schema),
                  {"ops": {JOB_OPS[name]: {"config": config or {}}}},
                  log_level=log_level, ephemeral=ephemeral, instance=instance)
    if not run.success:
        _raise_failure(run)
    [outcome] = run.reports
    if isinstance(outcome, JobBusy):
        raise outcome
    return outcome


# --- asset checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    check: str
    passed: bool
    severity: str
    description: str | None

    def as_dict(self) -> dict:
        return {"asset": self.asset, "check": self.check, "passed": self.passed,
                "severity": self.severity, "description": self.description}


def run_checks(
    settings: Settings,
    *,
    log_level: str = DEFAULT_LOG_LEVEL,
    ephemeral: bool = False,
    instance: Optional[dg.DagsterInstance] = None,  # noqa: UP045
) -> list[CheckOutcome]:
    """Run the ``asset_checks`` job here (schema drift of every table, the newest rollup
    hour against raw); returns every check's outcome. Raises like :func:`run_maintenance`."""
    with connect(settings):  # unreachable: say so now, not after the retry policy's backoff
        pass
    run = run_job(settings, job("asset_checks", settings.db_schema), {}, log_level=log_level,
                  ephemeral=ephemeral, instance=instance)
    if not run.success:
        _raise_failure(run)
    outcomes = []
    for event in run.result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        data = event.event_specific_data
        outcomes.append(CheckOutcome(data.asset_key.to_user_string(), data.check_name,
                                     data.passed, data.severity.value, data.description))
    return sorted(outcomes, key=lambda o: (o.asset, o.check))
