"""``ingest_job``: load landing files into their tables, exactly once, as asset materializations.

``ingest_files`` is a multi-asset over ``traces``, ``metrics`` and ``logs`` (specs in
``defs/assets.py``), subsettable by dataset, in pool ``observatory_copy`` (dagster.yaml
limits how many run at once). It loads either the keys the sensor chose (re-stat'ed here,
since a file may have changed or vanished since the tick) or, with no keys, every pending
file: that is what ``observatory-storage ingest`` and ``dagster job launch -j ingest_job`` do.

Each dataset the run actually loaded files for is materialized, with the run's numbers as
metadata (rows, files, bytes, rows/s, event-time range, ``dagster/row_count``) and the
results of its two run-time checks (quarantined files, loaded-vs-stored). The outputs are
optional: a run touching only traces materializes only ``traces``. A run that loads a
dataset outside its asset selection (an OTLP file carrying several signals) records an
``AssetMaterialization`` event for it instead, so the catalog follows what was loaded.

Transient database errors are retried by :data:`DB_RETRY_POLICY`; quarantined files are a
success with metadata; the run fails only when a file could not be settled (it vanished
mid-read or a loaded key reappeared with other content) or on a real error.
"""

from dataclasses import dataclass
from typing import Optional

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from observatory_storage.db.connection import connect
from observatory_storage.defs.assets import CONSISTENCY_CHECK, QUARANTINED_CHECK, RAW, Catalog
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import DB_RETRY_POLICY, describe, transient_errors_retried
from observatory_storage.ingest.discovery import forget, pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.ingest.otlp import native
from observatory_storage.ingest.summary import SETTLED, DatasetSummary, FileOutcome
from observatory_storage.landing import OUTSIDE_HINT, LandingError, ObjectGone, open_landing
from observatory_storage.landing.keys import dataset_of
from observatory_storage.maintenance import checks
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


@dataclass(frozen=True)
class Ingest:
    """The ingest definitions of one catalog (schema): the multi-asset and its job."""

    assets: dg.AssetsDefinition
    job: UnresolvedAssetJobDefinition


def build_ingest(catalog: Catalog) -> Ingest:
    @dg.multi_asset(
        name=INGEST_OP,
        specs=catalog.raw_specs,
        check_specs=catalog.ingest_check_specs(),
        can_subset=True,
        pool=COPY_POOL,
        retry_policy=DB_RETRY_POLICY,
        description="Binary-COPY landing files into their dataset tables, exactly once.",
    )
    def ingest_files(
        context: dg.AssetExecutionContext, config: IngestFilesConfig, storage: StorageResource
    ):
        """Binary-COPY landing files into their dataset tables; ledger rows make it exactly
        once."""
        yield from _ingest(context, config, storage, catalog)

    # Drift checks read the whole catalog: they run on their own schedule, not with every load.
    job = dg.define_asset_job(
        "ingest_job",
        selection=(dg.AssetSelection.assets(*(catalog.key(n) for n in RAW))
                   - dg.AssetSelection.checks(*catalog.raw_drift_checks)),
        description="Load landing files (Parquet / Arrow IPC / OTLP) into their tables, "
        "exactly once.",
        tags={"observatory/area": "ingest"},
    )
    return Ingest(ingest_files, job)


def _ingest(context: dg.AssetExecutionContext, config: IngestFilesConfig, storage, catalog):
    settings = storage.settings()
    selected = {catalog.name(key) for key in context.selected_asset_keys}
    whole_landing = not config.keys and not config.datasets  # asked for, before subsetting
    if not config.datasets and selected != set(RAW):  # a subset run: only its datasets
        config = IngestFilesConfig(keys=config.keys, datasets=sorted(selected))
    with transient_errors_retried(settings):  # covers the whole body: only DB blips retry
        objects, missing = _select(settings, config)
        context.log.info(f"{len(objects)} file(s) to load from {settings.landing_url}")
        report = load_objects(settings, objects, run_id=context.run_id, log=context.log)
        for outcome in missing:
            report.add(outcome)
        if whole_landing:  # a pass over the whole landing (the CLI's, or a manual launch)
            report.misplaced = _misplaced(settings, context)
        sink = getattr(storage, "reports", None)  # set by in-process callers (defs/in_process.py)
        if sink is not None:
            sink.append(report)
        metadata = report_metadata(report)
        _tag_run(context, report)
        unsettled = [f for f in report.files if f.status not in SETTLED]
        if unsettled:
            raise dg.Failure(
                description=f"{len(unsettled)} file(s) could not be settled: "
                + "; ".join(
                    f"{f.key}: {f.status} ({f.error or 'no detail'})" for f in unsettled[:5]
                ),
                metadata=metadata,
                allow_retries=False,
            )
        yield from _materializations(context, settings, report, selected, catalog)


def _materializations(context, settings: Settings, report, selected: set[str], catalog: Catalog):
    """One materialization (with its checks) per dataset this run loaded files into.

    Loaded = in this attempt's report, or in the ledger under this run id (an earlier
    attempt of the same run, before a retry, may have committed files that this attempt
    then skipped). A dataset with only quarantined files gets its quarantine check but no
    materialization: nothing was loaded, so its freshness must not be reset.
    """
    if not report.files:  # (a retried attempt lists its predecessor's files as skipped)
        return
    summaries = report.datasets
    candidates = sorted((set(summaries) | selected) & set(RAW))
    with connect(settings, autocommit=True) as conn:
        for name in candidates:
            summary = summaries.get(name, DatasetSummary(name))
            span = checks.run_span(conn, settings, name, context.run_id)
            if not (summary.loaded or span.files):
                if summary.quarantined and name in selected:
                    yield quarantine_result(catalog, name, report)
                continue
            count = checks.row_count(conn, settings, name)
            consistency = checks.consistency(conn, settings, name, context.run_id)
            metadata = dataset_metadata(summary, span, count)
            problems = [
                f for f in report.files if f.dataset == name and f.status not in ("loaded", "skipped")
            ]
            if problems:
                metadata["problems"] = dg.MetadataValue.md(_problems_table(problems))
            if name not in selected:  # loaded although not selected (an OTLP file)
                context.log_event(dg.AssetMaterialization(asset_key=catalog.key(name),
                                                          metadata=metadata))
                continue
            yield dg.MaterializeResult(
                asset_key=catalog.key(name),
                metadata=metadata,
                check_results=[
                    quarantine_result(catalog, name, report),
                    consistency_result(catalog, consistency),
                ],
            )


def dataset_metadata(summary, span, count) -> dict:
    """A dataset's materialization metadata: numbers Dagster plots over time."""
    metadata: dict = {  # max(): the ledger also counts an earlier attempt's commits
        "rows_loaded": dg.MetadataValue.int(max(summary.rows, span.rows)),
        "files_loaded": dg.MetadataValue.int(max(summary.loaded, span.files)),
        "files_quarantined": dg.MetadataValue.int(summary.quarantined),
        "files_skipped": dg.MetadataValue.int(summary.skipped),
        "bytes": dg.MetadataValue.int(summary.bytes),
        "rows_per_second": dg.MetadataValue.float(round(summary.rows_per_second, 1)),
        "dagster/row_count": dg.MetadataValue.int(count.rows),
        "row_count_exact": dg.MetadataValue.bool(count.exact),
    }
    if summary.duplicates:
        metadata["duplicates_skipped"] = dg.MetadataValue.int(summary.duplicates)
    if span.min_time is not None and span.max_time is not None:
        metadata["event_time_min"] = dg.MetadataValue.timestamp(span.min_time)
        metadata["event_time_max"] = dg.MetadataValue.timestamp(span.max_time)
    return metadata


def quarantine_result(catalog: Catalog, dataset: str, report) -> dg.AssetCheckResult:
    bad = [f for f in report.files if f.dataset == dataset and f.status == "quarantined"]
    return dg.AssetCheckResult(
        asset_key=catalog.key(dataset),
        check_name=QUARANTINED_CHECK,
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(bad)} file(s) quarantined; fix and `observatory-storage replay` them"
            if bad else "no file quarantined"
        ),
        metadata={
            "quarantined": dg.MetadataValue.int(len(bad)),
            **({"files": dg.MetadataValue.md(_problems_table(bad))} if bad else {}),
        },
    )


def consistency_result(catalog: Catalog, found) -> dg.AssetCheckResult:
    metadata: dict = {
        "checked": found.checked,
        "files": dg.MetadataValue.int(found.files),
        "rows_expected": dg.MetadataValue.int(found.expected),
        "rows_stored": dg.MetadataValue.int(found.stored),
    }
    if found.window_start is not None and found.window_end is not None:
        metadata["window_start"] = dg.MetadataValue.timestamp(found.window_start)
        metadata["window_end"] = dg.MetadataValue.timestamp(found.window_end)
    return dg.AssetCheckResult(
        asset_key=catalog.key(found.dataset),
        check_name=CONSISTENCY_CHECK,
        passed=found.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=found.reason,
        metadata=metadata,
    )


def _select(settings: Settings, config: IngestFilesConfig):
    """The objects to load, and outcomes for requested keys that are no longer there."""
    wanted = set(config.datasets)
    if not config.keys:
        with connect(settings) as conn:
            return pending_objects(settings, conn, datasets=sorted(wanted) or None), []

    landing = open_landing(settings)
    objects, missing, gone = [], [], []
    for key in config.keys:
        dataset = dataset_of(key) or ""
        if wanted and dataset not in wanted:
            continue
        try:
            objects.append(landing.stat(key))
        except ObjectGone:  # deleted since the sensor listed it: nothing to load
            missing.append(FileOutcome(key, dataset, "skipped", error="gone before the run"))
            gone.append(key)
        except LandingError as exc:  # an unsafe key in hand-written run config
            missing.append(FileOutcome(key, dataset, "gone", error=describe(exc, settings)))
    if gone:  # the discovery backlog forgets them too
        with connect(settings) as conn:
            forget(conn, settings.db_schema, landing, gone)
    return objects, missing


def _misplaced(settings: Settings, context) -> list[str]:
    """Keys in no dataset folder, each named once in the run's log."""
    keys = [obj.key for obj in open_landing(settings).list_outside()]
    for key in keys[:20]:
        context.log.warning(f"{key}: {OUTSIDE_HINT}")
    return keys


def report_metadata(report) -> dict:
    """Run metadata shown in the Dagster UI: counts, volume, speed, and why files failed."""
    seconds = report.seconds
    metadata: dict = {
        "files": dg.MetadataValue.int(len(report.files)),
        "loaded": dg.MetadataValue.int(report.count("loaded")),
        "quarantined": dg.MetadataValue.int(report.count("quarantined")),
        "skipped": dg.MetadataValue.int(report.count("skipped")),
        "misplaced": dg.MetadataValue.int(len(report.misplaced)),
        "rows": dg.MetadataValue.int(report.rows),
        # spans with a model and tokens the price table could not price (PRICE_MISSING_COSTS)
        "unpriced_rows": dg.MetadataValue.int(sum(f.unpriced for f in report.files)),
        # OTLP attribute values that did not fit their column: kept in attributes, per column
        "values_kept_in_attributes": dg.MetadataValue.json(report.unusable),
        "otlp_decoder": dg.MetadataValue.text(native.describe()),  # compiled or python
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
