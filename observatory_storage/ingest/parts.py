"""Big files part by part: each part of a split file is loaded in its own transaction.

A Parquet / Arrow IPC file of ``COPY_SPLIT_BYTES`` or more (and at least two row groups /
record batches) is split into parts of consecutive row groups / record batches
(:func:`plan_split`). The split is claimed first in a short transaction (ledger row
``loading`` with its ``part_bounds``); each part then loads in its own transaction that
claims the part in ``ingest_parts`` (primary key ``(object_key, part)`` serializes racing
processes exactly like files), COPYs it and records its rows (:func:`load_part`). When every
part is committed, the file row becomes ``loaded`` with the sum (:func:`finish`). A retry
(same or another process, any settings) resumes with the recorded bounds and loads only
parts without a row.

A refused part stops the file's parts not started yet; parts already committed stay (their
rows cannot be told apart from other rows), so the file becomes ``partial`` (or plain
``quarantined`` if nothing had committed) and is set aside with the reason and how much
was loaded: never duplicated, never silently short. A file rewritten between parts makes
its later parts ``gone`` (fingerprint-checked reads); the row stays ``loading`` and the
next listing reports a conflict (its old version is partly in the table).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import psycopg

from observatory_storage.ingest import ledger
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.errors import BadFile
from observatory_storage.ingest.load_file import copy_file, is_data_error, rejected, set_aside
from observatory_storage.ingest.readers import ARROW_FILE, PARQUET, BatchReader
from observatory_storage.ingest.summary import FileOutcome
from observatory_storage.landing import Landing, LandingError, LandingObject, ObjectGone
from observatory_storage.landing.local import LocalLanding
from observatory_storage.settings import Settings


@dataclass
class PartOutcome:
    status: str  # loaded, skipped (done by someone), stopped, gone, bad
    rows: int = 0
    duplicates: int = 0
    dataset: str | None = None
    error: str | None = None
    bad: BadFile | None = None


@dataclass
class Split:
    obj: LandingObject
    bounds: list[int]
    started: float = field(default_factory=time.perf_counter)
    remaining: int = 0
    rows: int = 0  # rows this run committed
    duplicates: int = 0
    loaded_parts: int = 0
    dataset: str | None = None
    bad: BadFile | None = None
    gone: str | None = None
    stop: bool = False
    copy: str | None = None  # a local copy of a remote (S3) file, downloaded once for all parts

    def open(self, landing: Landing):
        return open(self.copy, "rb") if self.copy else landing.open(self.obj)  # noqa: SIM115

    def absorb(self, part: PartOutcome) -> None:
        self.remaining -= 1
        if part.status == "loaded":
            self.rows += part.rows
            self.duplicates += part.duplicates
            self.loaded_parts += 1
            self.dataset = part.dataset or self.dataset
        elif part.status == "bad" and self.bad is None:
            self.bad = part.bad
        elif part.status == "gone" and self.gone is None:
            self.gone = part.error


def plan_split(settings: Settings, landing: Landing, obj: LandingObject,
               copy: str | None = None) -> list[int] | None:
    """Part bounds (unit indexes, first..last) to load a file by, or None to load it whole.

    ``copy`` is a local copy of a remote file to read instead (see :func:`local_copy`).
    """
    if settings.copy_workers_resolved < 2 or obj.size < settings.copy_split_bytes:
        return None
    try:
        with (open(copy, "rb") if copy else landing.open(obj)) as handle:  # noqa: SIM115
            if not handle.read(8).startswith((b"PAR1", b"ARROW1")):
                return None
            handle.seek(0)
            reader = BatchReader(handle, obj.key, settings.copy_batch_size)
            if reader.format not in (PARQUET, ARROW_FILE):
                return None
            units = reader.units or 0
    except (BadFile, ObjectGone, LandingError):
        return None  # loaded whole, which quarantines or reports it
    if units < 2:
        return None
    parts = min(units, max(settings.copy_workers_resolved,
                           math.ceil(obj.size / settings.copy_split_bytes)))
    return [round(i * units / parts) for i in range(parts + 1)]


def local_copy(settings: Settings, landing: Landing, obj: LandingObject, *,
               resumed: bool = False) -> str | None:
    """A remote (S3) file worth splitting, downloaded once (fingerprint-checked) to a local
    temporary file that every part reads: parts never download it again, and they all read
    the one version that was listed. None for a local landing (parts open the file itself)
    or a file too small to split."""
    if isinstance(landing, LocalLanding):
        return None
    if not resumed and (settings.copy_workers_resolved < 2 or obj.size < settings.copy_split_bytes):
        return None
    try:
        with landing.open(obj) as source, tempfile.NamedTemporaryFile(
                prefix="obs-split-", delete=False) as target:
            shutil.copyfileobj(source, target, 1 << 20)
            return target.name
    except (ObjectGone, LandingError):
        return None  # loaded whole, which reports it


def first_row(settings: Settings, landing: Landing, split: Split, unit: int) -> int:
    """Rows before a unit, to number a part's bad row within the file (only on error)."""
    obj = split.obj
    with split.open(landing) as handle:
        reader = BatchReader(handle, obj.key, settings.copy_batch_size)
        if reader.format == PARQUET:
            meta = reader._parquet.metadata
            return sum(meta.row_group(i).num_rows for i in range(unit))
        return sum(reader._ipc_file.get_batch(i).num_rows for i in range(unit))


def load_part(settings: Settings, conn: psycopg.Connection, landing: Landing, split: Split,
              part: int, *, run_id: str, log, slots: TimeSlots | None) -> PartOutcome:
    """Load one part of a split file in its own transaction."""
    if split.stop:
        return PartOutcome("stopped")
    obj, schema = split.obj, settings.db_schema
    units = (split.bounds[part], split.bounds[part + 1])
    started = time.perf_counter()
    try:
        with conn.transaction():
            if not ledger.claim_part(conn, schema, obj, part, run_id):
                return PartOutcome("skipped")
            with split.open(landing) as handle:
                loaded = copy_file(settings, conn, handle, obj, slots=slots, units=units)
            ledger.mark_part_loaded(conn, schema, obj.key, part, loaded.rows,
                                    (time.perf_counter() - started) * 1000,
                                    min_time=loaded.min_time, max_time=loaded.max_time)
    except ObjectGone as exc:
        split.stop = True
        return PartOutcome("gone", error=str(exc))
    except (BadFile, psycopg.Error) as exc:
        if isinstance(exc, psycopg.Error) and not is_data_error(exc):
            raise
        split.stop = True
        bad = exc if isinstance(exc, BadFile) else rejected(obj.key, exc)
        if bad.row is not None and units[0] > 0:
            try:
                bad.row += first_row(settings, landing, split, units[0])
            except (BadFile, ObjectGone, LandingError):
                pass
        return PartOutcome("bad", bad=bad)
    log.info(f"loaded {obj.key} part {part + 1}/{len(split.bounds) - 1}: {loaded.rows} rows "
             f"in {time.perf_counter() - started:.2f}s")
    return PartOutcome("loaded", loaded.rows, loaded.duplicates, loaded.dataset)


def finish(settings: Settings, conn: psycopg.Connection, landing: Landing, split: Split, *,
            run_id: str, log) -> FileOutcome:
    obj, schema = split.obj, settings.db_schema
    seconds = time.perf_counter() - split.started

    def outcome(status: str, error: str | None = None) -> FileOutcome:
        return FileOutcome(obj.key, split.dataset or obj.dataset, status, split.rows, obj.size,
                           seconds, error, split.duplicates)

    if split.bad is not None:
        target = landing.quarantine_key(obj.key) if settings.landing_quarantine_move else None
        with conn.transaction():
            state = ledger.fail_split(conn, schema, obj, split.bad, run_id=run_id,
                                      quarantine_key=target, duration_ms=seconds * 1000)
        if state.status not in ("quarantined", "partial"):
            return outcome("skipped")
        set_aside(settings, conn, landing, obj.key, target, log)
        error = str(split.bad)
        if state.status == "partial":
            error += (f" [partially loaded: {state.parts} of {len(split.bounds) - 1} parts "
                      f"({state.rows} rows) stay loaded; the rest was not loaded]")
        log.warning(f"quarantined {error}")  # the reason names the file
        return outcome("quarantined", error)
    if split.gone is not None:
        log.warning(f"gone {obj.key}: {split.gone} (after {split.loaded_parts} part(s))")
        return outcome("gone", split.gone)
    with conn.transaction():
        state = ledger.finish_split(conn, schema, obj.key, seconds * 1000, dataset=split.dataset)
    if split.loaded_parts == 0:
        log.info(f"skipped {obj.key}: its parts were loaded by another run")
        return outcome("skipped")
    log.info(f"loaded {obj.key}: {split.rows} rows in {split.loaded_parts} part(s), "
             f"{seconds:.2f}s ({state.status})")
    return outcome("loaded")


