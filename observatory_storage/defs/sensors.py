"""``landing_sensor``: turn new landing files into a handful of ingest runs.

Every tick lists the pending files (in the landing, not settled in the ledger), leaves out
those an unfinished run already holds, and cuts the rest per dataset into batches of at
most INGEST_MAX_FILES_PER_RUN files / INGEST_MAX_BYTES_PER_RUN bytes: a burst of 1,000
small files becomes two runs, not 1,000 (each run costs ~2 s of CPU).

Cursor (JSON, survives daemon restarts): ``seq`` and the in-flight batches, each with a
short hash of every key it holds. A batch leaves the cursor when its runs have finished
(following automatic run retries). Run keys are ``<dataset>-<digest of keys and
fingerprints>-<seq>``: Dagster remembers run keys forever, failed runs included, so a file
retried after a failure must get a new key, and ``seq`` grows at every tick that requests
runs (it starts from the clock, so a reset cursor cannot reuse old keys). Exactly once is
the ledger's job, not the run key's: a file requested twice is loaded once.

A tick raises only for a landing that is not there (a missing folder or bucket: a
configuration error, shown as a failed tick); an unreachable database or a landing that
cannot be read for a while gives a SkipReason with a redacted reason, and the cursor is
kept as it was. Files in no dataset folder are
named in the tick (its SkipReason, or a warning in its log when it requests runs), and so is
a LANDING_NOTIFICATIONS queue that cannot be read (missing, denied, unreachable): the tick
still discovers by listing, and says why the queue was not read.
"""

import hashlib
import json
import time
from dataclasses import dataclass, field

import dagster as dg
import psycopg
from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, WILL_RETRY_TAG

from observatory_storage.db.connection import conninfo
from observatory_storage.defs.assets import RAW, Catalog
from observatory_storage.defs.ingest import run_config_for
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.retry import describe
from observatory_storage.ingest.discovery import Pass, pending_objects
from observatory_storage.landing import OUTSIDE_HINT, LandingMissing, open_landing
from observatory_storage.settings import Settings, SettingsError, get_settings

BATCH_TAG = "observatory/batch"  # run key of the batch; automatic retries inherit it
DATASET_TAG = "dataset"  # dagster.yaml limits concurrent runs per value
CURSOR_VERSION = 1
MAX_RUNS_PER_TICK = 20  # the rest waits for the next tick; keeps one tick short
UNSEEN_RUN_GRACE_SECONDS = 300  # a requested batch with no run after this is re-requested
RETRY_GRACE_SECONDS = 300  # how long a failed run marked will_retry may wait for its retry


def _interval_seconds() -> int:
    try:
        return get_settings().sensor_interval_seconds
    except SettingsError:  # a bad setting is reported by the tick, not at import
        return Settings.model_fields["sensor_interval_seconds"].default


def key_hash(key: str) -> str:
    """16 hex digits per key: keeps the cursor small while runs hold thousands of files."""
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


@dataclass
class Batch:
    dataset: str
    since: float
    keys: list[str]  # key hashes

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "since": round(self.since, 3), "keys": self.keys}


@dataclass
class SensorCursor:
    seq: int = 0
    batches: dict[str, Batch] = field(default_factory=dict)  # run key -> batch

    @classmethod
    def parse(cls, text: str | None) -> "SensorCursor":
        """Read a cursor; an empty or unreadable one starts over (the ledger keeps us safe)."""
        try:
            data = json.loads(text) if text else {}
            if data.get("v") != CURSOR_VERSION:
                raise ValueError("other cursor version")
            batches = {
                run_key: Batch(b["dataset"], float(b["since"]), list(b["keys"]))
                for run_key, b in data.get("batches", {}).items()
            }
            return cls(int(data["seq"]), batches)
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(seq=int(time.time() * 1000))

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "seq": self.seq,
                "batches": {k: b.as_dict() for k, b in sorted(self.batches.items())},
            },
            separators=(",", ":"),
        )

    def in_flight(self) -> set[str]:
        return {h for batch in self.batches.values() for h in batch.keys}


def batch_in_flight(instance: dg.DagsterInstance, run_key: str, batch: Batch, now: float) -> bool:
    """Whether a batch's files may still be loaded by a run of its own."""
    records = instance.get_run_records(dg.RunsFilter(tags={BATCH_TAG: run_key}))  # newest first
    if not records:  # not submitted yet (or the submission was lost): wait a little
        return now - batch.since < UNSEEN_RUN_GRACE_SECONDS
    if any(not record.dagster_run.is_finished for record in records):
        return True
    latest = records[0]
    run = latest.dagster_run
    if run.status == dg.DagsterRunStatus.FAILURE and run.tags.get(WILL_RETRY_TAG) == "true":
        if AUTO_RETRY_RUN_ID_TAG in run.tags:
            return False  # its retry exists, and it is finished (checked above)
        return now - (latest.end_time or now) < RETRY_GRACE_SECONDS
    return False


def plan_batches(objects, max_files: int, max_bytes: int) -> list[list]:
    """Cut objects (one dataset, key order) into runs of <= max_files and <= max_bytes.

    A single file larger than ``max_bytes`` still gets a run of its own.
    """
    batches: list[list] = []
    current: list = []
    size = 0
    for obj in objects:
        if current and (len(current) >= max_files or size + obj.size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(obj)
        size += obj.size
    if current:
        batches.append(current)
    return batches


def run_key_for(dataset: str, objects, seq: int) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for obj in sorted(objects, key=lambda o: o.key):
        digest.update(f"{obj.key}\0{obj.fingerprint}\n".encode())
    return f"{dataset}-{digest.hexdigest()}-{seq}"


def _pending(settings: Settings) -> tuple[list, list[str], str | None]:
    """Pending objects (without starting anything: the sensor never starts a database),
    the keys of files in no dataset folder, and why LANDING_NOTIFICATIONS was not read."""
    landing = open_landing(settings)
    report = Pass()
    with psycopg.connect(conninfo(settings, start_embedded=False), autocommit=True) as conn:
        pending = pending_objects(settings, conn, landing=landing, report=report)
    return pending, [obj.key for obj in landing.list_outside()], report.notifications_error


def misplaced_note(keys: list[str], shown: int = 5) -> str:
    """``3 file(s) not in a dataset folder (...), never loaded: a, b, c``."""
    names = ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
    return f"{len(keys)} file(s) {OUTSIDE_HINT}: {names}"


def _selection(catalog: Catalog, dataset: str) -> dict:
    """The run's asset selection: the batch's dataset, with the ingest run's own checks.

    A batch whose files may fill several tables (not named after one dataset) selects
    every raw table; the run materializes only those it loaded.
    """
    if dataset not in RAW:
        return {}
    return {
        "asset_selection": [catalog.key(dataset)],
        "asset_check_keys": catalog.check_keys_for([dataset]),
    }


def evaluate(context: dg.SensorEvaluationContext, settings: Settings,
             catalog: Catalog | None = None):
    """One tick: RunRequests for pending files not held by an unfinished run."""
    catalog = catalog or Catalog(settings.db_schema)
    cursor = SensorCursor.parse(context.cursor)
    now = time.time()
    try:
        cursor.batches = {
            run_key: batch
            for run_key, batch in cursor.batches.items()
            if batch_in_flight(context.instance, run_key, batch, now)
        }
        pending, misplaced, unread = _pending(settings)
    except LandingMissing as exc:  # configuration: a failed tick, red in the UI
        raise dg.Failure(description=describe(exc, settings)) from None
    except Exception as exc:  # never crash a tick: report, keep the cursor, try again
        return dg.SkipReason(f"cannot list pending files: {describe(exc, settings)}")

    held = cursor.in_flight()
    by_dataset: dict[str, list] = {}
    for obj in pending:
        if key_hash(obj.key) not in held:
            by_dataset.setdefault(obj.dataset, []).append(obj)

    planned = [
        (dataset, batch)
        for dataset, objects in sorted(by_dataset.items())
        for batch in plan_batches(
            objects, settings.ingest_max_files_per_run, settings.ingest_max_bytes_per_run
        )
    ]
    waiting = len(planned) - MAX_RUNS_PER_TICK
    planned = planned[:MAX_RUNS_PER_TICK]
    if not planned:
        context.update_cursor(cursor.to_json())
        reason = "no new landing files"
        if held:
            reason += f" ({len(held)} file(s) held by {len(cursor.batches)} unfinished run(s))"
        if misplaced:
            reason += "; " + misplaced_note(misplaced)
        if unread:
            reason += "; " + unread
        return dg.SkipReason(reason)

    cursor.seq += 1
    requests = []
    for dataset, batch in planned:
        run_key = run_key_for(dataset, batch, cursor.seq)
        cursor.batches[run_key] = Batch(dataset, now, [key_hash(o.key) for o in batch])
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                run_config=run_config_for([o.key for o in batch], [dataset]),
                **_selection(catalog, dataset),
                tags={
                    DATASET_TAG: dataset,
                    BATCH_TAG: run_key,
                    "observatory/files": str(len(batch)),
                    "observatory/bytes": str(sum(o.size for o in batch)),
                },
            )
        )
    context.update_cursor(cursor.to_json())
    if misplaced:
        context.log.warning(misplaced_note(misplaced))
    if unread:
        context.log.warning(unread)
    if waiting > 0:
        context.log.info(f"{waiting} more batch(es) wait for the next tick")
    return requests


def build_sensor(catalog: Catalog, job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches ingest runs for new files in the landing bucket, batched per "
        "dataset. Ticks about every 5 s: the Dagster daemon's sensor loop; the frequency "
        "shown is SENSOR_INTERVAL_SECONDS, only a minimum.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
        try:
            settings = storage.settings()
        except SettingsError as exc:
            return dg.SkipReason(str(exc))
        return evaluate(context, settings, catalog)

    return landing_sensor
