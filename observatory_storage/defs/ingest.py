"""``ingest_job``: load landing files into their tables, exactly once.

One op, ``ingest_files``, in pool ``observatory_copy`` (dagster.yaml limits how many run at
once). It loads either the keys the sensor chose (re-stat'ed here, since a file may have
changed or vanished since the tick) or, with no keys, every pending file: that is what
``observatory-storage ingest`` and ``dagster job launch -j ingest_job`` do.

Transient database errors are retried by :data:`DB_RETRY_POLICY`; quarantined files are a
success with metadata; the run fails only when a file could not be settled (it vanished
mid-read or a loaded key reappeared with other content) or on a real error.
"""

from typing import Optional

import dagster as dg
from pydantic import Field

from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import DB_RETRY_POLICY, describe, transient_errors_retried
from observatory_storage.ingest.summary import SETTLED
from observatory_storage.settings import Settings

COPY_POOL = "observatory_copy"
INGEST_OP = "ingest_files"


class IngestFilesConfig(dg.Config):
    keys: list[str] = Field(
        default_factory=list,
        description="Landing object keys to load (the sensor fills this); empty = all pending.",
    )
    datasets: list[str] = Field(
        default_factory=list,
        description="Only these datasets (traces, metrics, logs); empty = all.",
    )


def run_config_for(keys: list[str] | None = None, datasets: list[str] | None = None) -> dict:
    """The run config that makes ``ingest_job`` load ``keys`` (or everything pending)."""
    return {
        "ops": {INGEST_OP: {"config": {"keys": list(keys or []), "datasets": list(datasets or [])}}}
    }


@dg.op(
    name=INGEST_OP,
    pool=COPY_POOL,
    retry_policy=DB_RETRY_POLICY,
    tags={"kind": "postgres"},
    out=dg.Out(dg.Nothing),
)
def ingest_files(
    context: dg.OpExecutionContext, config: IngestFilesConfig, storage: StorageResource
) -> dg.Output:
    """Binary-COPY landing files into their dataset tables; ledger rows make it exactly once."""
    from observatory_storage.ingest.loader import load_objects

    settings = storage.settings()
    with transient_errors_retried(settings):  # covers the whole body: only DB blips retry
        objects, missing = _select(settings, config)
        context.log.info(f"{len(objects)} file(s) to load from {settings.landing_url}")
        report = load_objects(settings, objects, run_id=context.run_id, log=context.log)
        for outcome in missing:
            report.add(outcome)
        sink = getattr(storage, "reports", None)  # set by execute_ingest (in-process callers)
        if sink is not None:
            sink.append(report)
        metadata = report_metadata(report)
        _tag_run(context, report)
    unsettled = [f for f in report.files if f.status not in SETTLED]
    if unsettled:
        raise dg.Failure(
            description=f"{len(unsettled)} file(s) could not be settled: "
            + "; ".join(f"{f.key}: {f.status} ({f.error or 'no detail'})" for f in unsettled[:5]),
            metadata=metadata,
            allow_retries=False,
        )
    return dg.Output(None, metadata=metadata)


def _select(settings: Settings, config: IngestFilesConfig):
    """The objects to load, and outcomes for requested keys that are no longer there."""
    from observatory_storage.db.connection import connect
    from observatory_storage.ingest.loader import pending_objects
    from observatory_storage.ingest.summary import FileOutcome
    from observatory_storage.landing import open_landing
    from observatory_storage.landing.base import LandingError, ObjectGone
    from observatory_storage.landing.keys import dataset_of

    wanted = set(config.datasets)
    if not config.keys:
        with connect(settings) as conn:
            return pending_objects(settings, conn, datasets=sorted(wanted) or None), []

    landing = open_landing(settings)
    objects, missing = [], []
    for key in config.keys:
        dataset = dataset_of(key) or ""
        if wanted and dataset not in wanted:
            continue
        try:
            objects.append(landing.stat(key))
        except ObjectGone:  # deleted since the sensor listed it: nothing to load
            missing.append(FileOutcome(key, dataset, "skipped", error="gone before the run"))
        except LandingError as exc:  # an unsafe key in hand-written run config
            missing.append(FileOutcome(key, dataset, "gone", error=describe(exc, settings)))
    return objects, missing


def report_metadata(report) -> dict:
    """Run metadata shown in the Dagster UI: counts, volume, speed, and why files failed."""
    seconds = report.seconds
    metadata: dict = {
        "files": dg.MetadataValue.int(len(report.files)),
        "loaded": dg.MetadataValue.int(report.count("loaded")),
        "quarantined": dg.MetadataValue.int(report.count("quarantined")),
        "skipped": dg.MetadataValue.int(report.count("skipped")),
        "rows": dg.MetadataValue.int(report.rows),
        # spans with a model and tokens the price table could not price (PRICE_MISSING_COSTS)
        "unpriced_rows": dg.MetadataValue.int(sum(f.unpriced for f in report.files)),
        "bytes": dg.MetadataValue.int(report.bytes),
        "seconds": dg.MetadataValue.float(round(float(seconds), 3)),
        "rows_per_second": dg.MetadataValue.float(
            round(report.rows / seconds, 1) if seconds else 0.0
        ),
        "datasets": dg.MetadataValue.json(
            {name: summary.as_dict() for name, summary in report.datasets.items()}
        ),
    }
    problems = [f for f in report.files if f.status not in ("loaded", "skipped")]
    if problems:
        metadata["problems"] = dg.MetadataValue.md(_problems_table(problems))
    return metadata


def _problems_table(problems, limit: int = 50) -> str:
    def cell(text: Optional[str]) -> str:  # noqa: UP045
        return (text or "").replace("|", "\\|").replace("\n", " ")[:300]

    lines = ["| file | status | reason |", "|---|---|---|"]
    lines += [f"| `{cell(f.key)}` | {f.status} | {cell(f.error)} |" for f in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"| ... | | {len(problems) - limit} more |")
    return "\n".join(lines)


def _tag_run(context: dg.OpExecutionContext, report) -> None:
    """Counts as run tags too: the runs list shows them without opening each run."""
    tags = {
        "observatory/loaded": str(report.count("loaded")),
        "observatory/quarantined": str(report.count("quarantined")),
        "observatory/rows": str(report.rows),
    }
    try:
        context.instance.add_run_tags(context.run_id, tags)
    except Exception as exc:  # tags are a convenience; never fail a load for them
        context.log.warning(f"could not tag run: {describe(exc)}")


@dg.job(
    description="Load landing files (Parquet / Arrow IPC) into TimescaleDB, exactly once.",
    tags={"observatory/area": "ingest"},
)
def ingest_job():
    ingest_files()


class PinnedStorage:
    """The ``storage`` resource for in-process runs: given settings, and a report sink.

    ``StorageResource`` re-reads the environment; a caller holding a ``Settings`` object
    (the CLI with ``--landing``, tests) pins it here instead, and gets back the report the
    op produced even when the run fails.
    """

    def __init__(self, settings: Settings):
        self._settings = settings
        self.reports: list = []

    def settings(self) -> Settings:
        return self._settings


def execute_ingest(
    settings: Settings,
    *,
    keys: Optional[list[str]] = None,  # noqa: UP045
    datasets: Optional[list[str]] = None,  # noqa: UP045
    instance: Optional[dg.DagsterInstance] = None,  # noqa: UP045
    tags: Optional[dict[str, str]] = None,  # noqa: UP045
    log_level: str = "WARNING",
):
    """Run ``ingest_job`` in this process; returns (report or None, Dagster result).

    The run is recorded in DAGSTER_HOME's instance when that is set (so it shows in the
    UI), else in a throw-away ephemeral instance. Dagster's console logger prints from
    ``log_level`` up (WARNING: quarantined files and failures, not every step event).
    """
    from observatory_storage.ingest.summary import IngestReport

    storage = PinnedStorage(settings)
    owned = instance is None
    instance = instance or _instance_for_cli()
    try:
        result = ingest_job.execute_in_process(
            run_config={
                **run_config_for(keys, datasets),
                "loggers": {"console": {"config": {"log_level": log_level}}},
            },
            resources={"storage": dg.ResourceDefinition.hardcoded_resource(storage)},
            instance=instance,
            raise_on_error=False,
            tags={"observatory/trigger": "in_process", **(tags or {})},
        )
    finally:
        if owned:
            instance.dispose()
    report = None
    for part in storage.reports:
        report = part if report is None else report.merge(part)
    if report is None and result.success:
        report = IngestReport()
    return report, result


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
    return "ingest run failed", False


def _instance_for_cli() -> dg.DagsterInstance:
    import os

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


JOBS = [ingest_job]
SENSORS: list = []
SCHEDULES: list = []
