"""Load a run's files: each file (or part of a big file) in its own transaction, on
COPY_WORKERS connections at once.

``load_objects`` schedules; the units it runs are :func:`~observatory_storage.ingest.load_file.load_one`
(a whole file: claim, COPY, ledger row, commit, or set aside) and, for big files,
:func:`~observatory_storage.ingest.parts.load_part`. One worker is the same path with one
thread: files load one after the other.

Threads suffice: reading Parquet and Arrow compute release the GIL, and what holds it
(pgpq's encoder, about 0.5 µs per span, and psycopg's COPY writer hand-off) is a small
share of a row's cost, most of which is the server inserting and indexing. Each worker has
its own connection; ``ingest/chunks.py`` creates missing chunks/partitions before each
batch is COPYed. The report lists files in the order given.

A transient database error in any worker is re-raised after the in-flight files finish
(not-started ones are dropped), so Dagster's RetryPolicy retries the run and the ledger
skips what committed. An interruption (KeyboardInterrupt) that reaches ``load_objects``
cancels the COPYs in flight at once: their transactions roll back and the next run loads
those files (or parts). Inside a Dagster run the interrupt of a terminated run is captured
by Dagster and raised only when the op returns.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import psycopg

from observatory_storage.db.connection import connect
from observatory_storage.ingest import ledger, parts
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.load_file import CONFLICT_MESSAGE, load_one
from observatory_storage.ingest.load_group import load_group
from observatory_storage.ingest.summary import FileOutcome, IngestReport
from observatory_storage.landing import Landing, LandingObject, open_landing
from observatory_storage.settings import Settings

logger = logging.getLogger(__name__)
GROUP_MAX_BYTES = 16 << 20  # file bytes one group commit reads into memory at most


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


class _Halt:
    """Stops the units not started yet once one has failed: the worker that failed sets it
    before it can pick up the next unit, so nothing starts after an error (the run is
    retried, and the retry loads them)."""

    def __init__(self):
        self.event = threading.Event()

    def guard(self, unit):
        def run():
            if self.event.is_set():
                return None  # not started: left for the retry
            try:
                return unit()
            except BaseException:
                self.event.set()
                raise

        return run


def load_objects(
    settings: Settings,
    objects: Iterable[LandingObject],
    *,
    run_id: str | None = None,
    log=None,
    landing: Landing | None = None,
) -> IngestReport:
    """Load each object in its own transaction (big files part by part); returns what
    happened to every file, in the order given."""
    log = log or logger
    run_id = run_id or f"adhoc-{uuid.uuid4().hex[:12]}"
    landing = landing or open_landing(settings)
    objects = list(objects)
    schema = settings.db_schema
    outcomes: list[FileOutcome | None] = [None] * len(objects)
    splits: dict[int, parts.Split] = {}
    futures: dict[Future, tuple[str, int]] = {}
    conns = _Connections(settings)
    halt = _Halt()
    error: BaseException | None = None
    copies: list[str] = []
    workers = settings.copy_workers_resolved
    groups = _Groups(settings.copy_group_files)
    group_indexes: dict[int, list[int]] = {}  # a group's id -> the indexes of its files
    group_ids = itertools.count()
    with connect(settings, autocommit=True) as main, TimeSlots(settings, log) as slots, \
            ThreadPoolExecutor(workers, thread_name_prefix="copy") as pool:

        def submit_group(group: list[tuple[int, LandingObject]]) -> None:
            if len(group) == 1:  # alone: the plain path
                (index, obj), = group
                futures[pool.submit(halt.guard(lambda obj=obj: load_one(
                    settings, conns.get(), landing, obj, run_id=run_id, log=log,
                    slots=slots)))] = ("file", index)
                return
            gid = next(group_ids)
            group_indexes[gid] = [i for i, _ in group]
            objs = [o for _, o in group]
            futures[pool.submit(halt.guard(lambda objs=objs: load_group(
                settings, conns.get(), landing, objs, run_id=run_id, log=log,
                slots=slots)))] = ("group", gid)

        try:
            known = ledger.lookup(main, schema, [o.key for o in objects])
            for index, obj in enumerate(objects):
                entry = known.get(obj.key)
                resumed = entry is not None and entry.status == "loading"
                copy = parts.local_copy(settings, landing, obj, resumed=resumed)
                if copy:
                    copies.append(copy)
                if resumed:
                    bounds = ledger.split_bounds(main, schema, obj.key)
                else:
                    bounds = parts.plan_split(settings, landing, obj, copy)
                if bounds is None:
                    if _groups_with_others(settings, obj, resumed):
                        group = groups.add(index, obj)
                        if group is not None:
                            submit_group(group)
                        continue
                    futures[pool.submit(halt.guard(lambda obj=obj: load_one(
                        settings, conns.get(), landing, obj, run_id=run_id, log=log,
                        slots=slots)))] = ("file", index)
                    continue
                with main.transaction():
                    state, bounds = ledger.claim_split(main, schema, obj, run_id, bounds)
                    if state == ledger.CONFLICT:
                        ledger.record_conflict(main, schema, obj)
                if state != ledger.CLAIMED:
                    outcomes[index] = _not_claimed(obj, state, log)
                    continue
                split = splits[index] = parts.Split(obj, bounds, remaining=len(bounds) - 1,
                                                    copy=copy)
                for part in range(len(bounds) - 1):
                    futures[pool.submit(halt.guard(lambda split=split, part=part: parts.load_part(
                        settings, conns.get(), landing, split, part, run_id=run_id, log=log,
                        slots=slots)))] = ("part", index)
            for group in groups.rest():
                submit_group(group)
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, index = futures.pop(future)
                    if future.cancelled() or (future.exception() is None
                                              and future.result() is None):
                        continue  # not started: an earlier unit failed
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
                    if kind == "group":
                        for i, outcome in zip(group_indexes.pop(index), future.result(),
                                              strict=True):
                            outcomes[i] = outcome
                        continue
                    split = splits[index]
                    split.absorb(future.result())
                    if split.remaining == 0 and error is None:
                        outcomes[index] = parts.finish(settings, main, landing, split,
                                                       run_id=run_id, log=log)
        except BaseException as exc:
            error = error or exc
            halt.event.set()
            for other in futures:
                other.cancel()
            if not isinstance(exc, Exception):  # interrupted (run terminated, Ctrl-C):
                # end the COPYs in flight now (their transactions roll back), again until
                # every unit ended: one that was starting as the first cancel went out
                # would otherwise wait on its lock while shutdown waits for it
                running = [future for future in futures if not future.done()]
                while running:
                    conns.cancel()
                    _, running = wait(running, timeout=0.5)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            conns.close()
            for copy in copies:
                os.unlink(copy)
    if error is not None:
        raise error
    return IngestReport([o for o in outcomes if o is not None])


def _groups_with_others(settings: Settings, obj: LandingObject, resumed: bool) -> bool:
    """Whether a file joins a group commit: small, whole, not a deduplicated load."""
    return (settings.copy_group_files > 1 and obj.size < settings.copy_group_bytes
            and not resumed and not settings.copy_dedupe_traces)


class _Groups:
    """Small files gathered per dataset into groups of at most ``size`` files and
    GROUP_MAX_BYTES bytes; :meth:`add` returns a group when it is full."""

    def __init__(self, size: int):
        self.size = size
        self.open: dict[str, list[tuple[int, LandingObject]]] = {}
        self.bytes: dict[str, int] = {}

    def add(self, index: int, obj: LandingObject) -> list[tuple[int, LandingObject]] | None:
        group = self.open.setdefault(obj.dataset, [])
        if group and self.bytes[obj.dataset] + obj.size > GROUP_MAX_BYTES:
            self.open[obj.dataset] = [(index, obj)]
            self.bytes[obj.dataset] = obj.size
            return group
        group.append((index, obj))
        self.bytes[obj.dataset] = self.bytes.get(obj.dataset, 0) + obj.size
        if len(group) >= self.size:
            del self.open[obj.dataset]
            self.bytes[obj.dataset] = 0
            return group
        return None

    def rest(self) -> list[list[tuple[int, LandingObject]]]:
        rest = [g for g in self.open.values() if g]
        self.open.clear()
        return rest


def _not_claimed(obj: LandingObject, state: str, log) -> FileOutcome:
    """The outcome of a split file another run settled (skipped) or rewrote (conflict)."""
    if state == ledger.CONFLICT:
        log.warning(f"conflict {obj.key}: {CONFLICT_MESSAGE}")
        return FileOutcome(obj.key, obj.dataset, "conflict", 0, obj.size, 0.0, CONFLICT_MESSAGE)
    log.info(f"skipped {obj.key}: already in the ledger")
    return FileOutcome(obj.key, obj.dataset, "skipped", 0, obj.size, 0.0)
