"""One run's files on COPY_WORKERS connections at once, and big files part by part.

Across files: every file is still one transaction with its ledger row (``load_one``), run
on one of ``COPY_WORKERS`` threads, each with its own connection. Threads suffice: reading
Parquet and Arrow compute release the GIL, and what holds it (pgpq's encoder, about
0.5 µs per span, and psycopg's COPY writer hand-off) is a small share of a row's cost, most
of which is the server inserting and indexing. The report lists files in the order given.

Within a file: a Parquet / Arrow IPC file of ``COPY_SPLIT_BYTES`` or more (and at least
two row groups / record batches) is split into parts of consecutive row groups / record
batches. The split is claimed first in a short transaction (ledger row ``loading`` with
its ``part_bounds``); each part then loads in its own transaction that claims the part in
``ingest_parts`` (primary key ``(object_key, part)`` serializes racing processes exactly
like files), COPYs it and records its rows. When every part is committed, the file row
becomes ``loaded`` with the sum. A retry (same or another process, any settings) resumes
with the recorded bounds and loads only parts without a row.

A refused part stops the file's parts not started yet; parts already committed stay (their
rows cannot be told apart from other rows), so the file becomes ``partial`` (or plain
``quarantined`` if nothing had committed) and is set aside with the reason and how much
was loaded: never duplicated, never silently short. A file rewritten between parts makes
its later parts ``gone`` (fingerprint-checked reads); the row stays ``loading`` and the
next listing reports a conflict (its old version is partly in the table).

A transient database error in any worker is re-raised after the in-flight files finish
(not-started ones are dropped), so Dagster's RetryPolicy retries the run and the ledger
skips what committed. An interruption (KeyboardInterrupt) that reaches ``load_parallel``
cancels the COPYs in flight at once: their transactions roll back and the next run loads
those files (or parts). Inside a Dagster run the interrupt of a terminated run is captured
by Dagster and raised only when the op returns (as with one connection).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import psycopg

from observatory_storage.db.connection import connect
from observatory_storage.ingest import ledger
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.errors import BadFile
from observatory_storage.ingest.loader import (
    _copy_file,
    _is_data_error,
    _rejected,
    load_one,
    set_aside,
)
from observatory_storage.ingest.readers import ARROW_FILE, PARQUET, BatchReader
from observatory_storage.ingest.summary import FileOutcome, IngestReport
from observatory_storage.landing.base import Landing, LandingError, LandingObject, ObjectGone
from observatory_storage.landing.local import LocalLanding
from observatory_storage.settings import Settings


class _Connections:
    """One autocommit connection per worker thread, all closed at the end."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.local = threading.local()
        self.opened: list[psycopg.Connection] = []
        self.lock = threading.Lock()

    def get(self) -> psycopg.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = self.local.conn = connect(self.settings, autocommit=True)
            with self.lock:
                self.opened.append(conn)
        return conn

    def cancel(self) -> None:
        """Ask the server to cancel whatever each worker connection is running."""
        for conn in list(self.opened):
            try:
                conn.cancel_safe(timeout=5)
            except psycopg.Error:
                pass

    def close(self) -> None:
        for conn in self.opened:
            conn.close()


@dataclass
class _Part:
    status: str  # loaded, skipped (done by someone), stopped, gone, bad
    rows: int = 0
    duplicates: int = 0
    dataset: str | None = None
    error: str | None = None
    bad: BadFile | None = None


@dataclass
class _Split:
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

    def absorb(self, part: _Part) -> None:
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


def _first_row(settings: Settings, landing: Landing, split: _Split, unit: int) -> int:
    """Rows before a unit, to number a part's bad row within the file (only on error)."""
    obj = split.obj
    with split.open(landing) as handle:
        reader = BatchReader(handle, obj.key, settings.copy_batch_size)
        if reader.format == PARQUET:
            meta = reader._parquet.metadata
            return sum(meta.row_group(i).num_rows for i in range(unit))
        return sum(reader._ipc_file.get_batch(i).num_rows for i in range(unit))


def load_part(settings: Settings, conn: psycopg.Connection, landing: Landing, split: _Split,
              part: int, *, run_id: str, log, slots: TimeSlots | None) -> _Part:
    """Load one part of a split file in its own transaction."""
    if split.stop:
        return _Part("stopped")
    obj, schema = split.obj, settings.db_schema
    units = (split.bounds[part], split.bounds[part + 1])
    started = time.perf_counter()
    try:
        with conn.transaction():
            if not ledger.claim_part(conn, schema, obj, part, run_id):
                return _Part("skipped")
            with split.open(landing) as handle:
                loaded = _copy_file(settings, conn, handle, obj, slots=slots, units=units)
            ledger.mark_part_loaded(conn, schema, obj.key, part, loaded.rows,
                                    (time.perf_counter() - started) * 1000,
                                    min_time=loaded.min_time, max_time=loaded.max_time)
    except ObjectGone as exc:
        split.stop = True
        return _Part("gone", error=str(exc))
    except (BadFile, psycopg.Error) as exc:
        if isinstance(exc, psycopg.Error) and not _is_data_error(exc):
            raise
        split.stop = True
        bad = exc if isinstance(exc, BadFile) else _rejected(obj.key, exc)
        if bad.row is not None and units[0] > 0:
            try:
                bad.row += _first_row(settings, landing, split, units[0])
            except (BadFile, ObjectGone, LandingError):
                pass
        return _Part("bad", bad=bad)
    log.info(f"loaded {obj.key} part {part + 1}/{len(split.bounds) - 1}: {loaded.rows} rows "
             f"in {time.perf_counter() - started:.2f}s")
    return _Part("loaded", loaded.rows, loaded.duplicates, loaded.dataset)


def _finish(settings: Settings, conn: psycopg.Connection, landing: Landing, split: _Split, *,
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
        log.warning(f"quarantined {obj.key}: {error}")
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


def load_parallel(settings: Settings, objects: list[LandingObject], *, run_id: str, log,
                  landing: Landing) -> IngestReport:
    """:func:`~observatory_storage.ingest.loader.load_objects` on COPY_WORKERS connections."""
    schema = settings.db_schema
    outcomes: list[FileOutcome | None] = [None] * len(objects)
    splits: dict[int, _Split] = {}
    futures: dict[Future, tuple[str, int]] = {}
    conns = _Connections(settings)
    error: BaseException | None = None
    copies: list[str] = []
    workers = settings.copy_workers_resolved
    with connect(settings, autocommit=True) as main, TimeSlots(settings, log) as slots, \
            ThreadPoolExecutor(workers, thread_name_prefix="copy") as pool:
        try:
            known = ledger.lookup(main, schema, [o.key for o in objects])
            for index, obj in enumerate(objects):
                entry = known.get(obj.key)
                resumed = entry is not None and entry.status == "loading"
                copy = local_copy(settings, landing, obj, resumed=resumed)
                if copy:
                    copies.append(copy)
                if resumed:
                    bounds = ledger.split_bounds(main, schema, obj.key)
                else:
                    bounds = plan_split(settings, landing, obj, copy)
                if bounds is None:
                    futures[pool.submit(lambda obj=obj: load_one(
                        settings, conns.get(), landing, obj, run_id=run_id, log=log,
                        slots=slots))] = ("file", index)
                    continue
                with main.transaction():
                    state, bounds = ledger.claim_split(main, schema, obj, run_id, bounds)
                    if state == ledger.CONFLICT:
                        ledger.record_conflict(main, schema, obj)
                if state != ledger.CLAIMED:
                    status = "conflict" if state == ledger.CONFLICT else "skipped"
                    message = ("loaded before with other content; not reloaded (write new "
                               "content under a new key)") if status == "conflict" else None
                    (log.warning if message else log.info)(f"{status} {obj.key}: "
                                                           f"{message or 'already in the ledger'}")
                    outcomes[index] = FileOutcome(obj.key, obj.dataset, status, 0, obj.size,
                                                  0.0, message)
                    continue
                split = splits[index] = _Split(obj, bounds, remaining=len(bounds) - 1, copy=copy)
                for part in range(len(bounds) - 1):
                    futures[pool.submit(lambda split=split, part=part: load_part(
                        settings, conns.get(), landing, split, part, run_id=run_id, log=log,
                        slots=slots))] = ("part", index)
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, index = futures.pop(future)
                    if future.cancelled():
                        continue
                    exc = future.exception()
                    if exc is not None:
                        if error is None:
                            error = exc
                            for other in futures:
                                other.cancel()
                        continue
                    if kind == "file":
                        outcomes[index] = future.result()
                        continue
                    split = splits[index]
                    split.absorb(future.result())
                    if split.remaining == 0 and error is None:
                        outcomes[index] = _finish(settings, main, landing, split,
                                                  run_id=run_id, log=log)
        except BaseException as exc:
            error = error or exc
            for other in futures:
                other.cancel()
            if not isinstance(exc, Exception):  # interrupted (run terminated, Ctrl-C):
                conns.cancel()  # end the COPYs in flight now; their transactions roll back
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            conns.close()
            for copy in copies:
                os.unlink(copy)
    if error is not None:
        raise error
    return IngestReport([o for o in outcomes if o is not None])
