"""Small files loaded together, a group commit: many files, one transaction, each file
still with a ledger row of its own (exactly once, as ``load_file.load_one``).

A Collector flushes a file a minute per exporter and an SDK every few seconds, so small
files are the norm; one transaction, ledger round trips, a conform and a COPY per file cost
more than their rows (issue 19). A group is loaded in three steps:

1. **read** every file into memory (one that is unreadable is quarantined on its own);
2. **conform** the batches of the group that share a table and a file schema as ONE batch
   (the column mapping, the casts and the pricing run once for the group, not once per
   file); a value that breaks the contract is located by its row, and that file is conformed
   alone, so that its error names its own row, and quarantined;
3. **commit**: one claim statement, one COPY per table, one ledger update, one commit. A
   file PostgreSQL refuses (the COPY's line says which) is quarantined and the group is
   committed again without it; when the refusal names no line, every file is loaded on its
   own instead.

Rows, event-time span and unpriced rows are counted per file from its slice of the group's
batches, so the ledger says the same as if each file had been loaded alone.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from observatory_storage.datasets import get_dataset
from observatory_storage.ingest import ledger
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.conform import Conformer
from observatory_storage.ingest.copy import copy_batches
from observatory_storage.ingest.errors import BadFile, ConformError
from observatory_storage.ingest.load_file import (
    CONFLICT_MESSAGE,
    COPY_CONTEXT,
    TimeSpan,
    is_data_error,
    load_one,
    quarantine,
    rejected,
)
from observatory_storage.ingest.pricing import Pricer
from observatory_storage.ingest.readers import open_reader
from observatory_storage.ingest.summary import FileOutcome
from observatory_storage.landing import Landing, LandingObject, ObjectGone
from observatory_storage.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Read:
    """One file of the group: its batches as read, then what its rows became."""

    obj: LandingObject
    raw: list[tuple[str, pa.RecordBatch]]  # (table, batch) in read order
    unusable: dict  # OTLP values kept in attributes, per column (the reader's count)
    started: float  # perf_counter when its reading began
    seconds: float = 0.0  # reading it, and its share of conforming the group
    rows: dict[str, int] = field(default_factory=dict)  # per table
    spans: dict[str, TimeSpan] = field(default_factory=dict)
    unpriced: int = 0


@dataclass
class _Segment:
    """Rows ``[start, start + length)`` of a conformed batch: one file's."""

    read: _Read
    start: int
    length: int


@dataclass
class _Conformed:
    """A conformed batch of one table and the files its rows came from, in order."""

    table: str
    batch: pa.RecordBatch
    segments: list[_Segment]


class _Refused(Exception):
    """PostgreSQL refused a row of one file of a group: that file leaves the group."""

    def __init__(self, read: _Read | None, bad: BadFile | None):
        self.read, self.bad = read, bad


def load_group(
    settings: Settings,
    conn: psycopg.Connection,
    landing: Landing,
    objs: list[LandingObject],
    *,
    run_id: str,
    log=logger,
    slots: TimeSlots | None = None,
) -> list[FileOutcome]:
    """Load ``objs`` (small whole files) in one transaction; the outcomes in their order."""
    outcomes: dict[str, FileOutcome] = {}
    reads: list[_Read] = []
    for obj in objs:
        started = time.perf_counter()
        try:
            reads.append(_read(settings, landing, obj, started))
        except ObjectGone as exc:
            log.warning(f"gone {obj.key}: {exc}")
            outcomes[obj.key] = FileOutcome(obj.key, obj.dataset, "gone", 0, obj.size,
                                            time.perf_counter() - started, str(exc))
        except BadFile as bad:
            outcomes[obj.key] = quarantine(settings, conn, landing, obj, bad, run_id, log,
                                           _outcome_of(obj, started))
    conformed, bad = _conform(reads)
    for read, error in bad:
        reads.remove(read)
        outcomes[read.obj.key] = quarantine(settings, conn, landing, read.obj, error, run_id,
                                            log, _outcome_of(read.obj, read.started))
    _finish(settings, conformed, slots)
    while reads:
        try:
            outcomes.update(_commit(settings, conn, reads, conformed, run_id, log))
            break
        except _Refused as refused:
            if refused.read is None:  # no line to tell the file by: one at a time
                for read in reads:
                    outcomes[read.obj.key] = load_one(settings, conn, landing, read.obj,
                                                      run_id=run_id, log=log, slots=slots)
                break
            read = refused.read
            reads.remove(read)
            outcomes[read.obj.key] = quarantine(settings, conn, landing, read.obj, refused.bad,
                                                run_id, log, _outcome_of(read.obj, read.started))
    return [outcomes[obj.key] for obj in objs]


_ARROW_HEADS = (b"PAR1", b"ARRO", b"\xff\xff\xff\xff")  # Parquet, Arrow IPC file, stream


def _read(settings: Settings, landing: Landing, obj: LandingObject, started: float) -> _Read:
    with landing.open(obj) as handle:
        data = handle.read()  # small: read once; Arrow then reads memory, not Python files
    source = pa.BufferReader(data) if data[:4] in _ARROW_HEADS else io.BytesIO(data)
    reader = open_reader(source, obj.key, obj.dataset, settings.copy_batch_size)
    raw = list(reader.batches())
    read = _Read(obj, raw, getattr(reader, "unusable", {}), started)
    read.seconds = time.perf_counter() - started
    return read


def _outcome_of(obj: LandingObject, started: float):
    def outcome(status: str, rows: int = 0, error: str | None = None, **_):
        return FileOutcome(obj.key, obj.dataset, status, rows, obj.size,
                           time.perf_counter() - started, error)

    return outcome


# --- conform -----------------------------------------------------------------------------


def _conform(reads: list[_Read]) -> tuple[list[_Conformed], list[tuple[_Read, BadFile]]]:
    """The group's batches conformed, one batch per (table, file schema) where it can be;
    and the files that broke their contract, each with the error it gives alone."""
    started = time.perf_counter()
    alone: set[int] = set()  # ids of files conformed on their own (a combined batch failed)
    while True:
        conformed, failed = _conform_together([r for r in reads if id(r) not in alone])
        if not failed:
            break
        alone |= {id(r) for r in failed}
    bad: list[tuple[_Read, BadFile]] = []
    for read in reads:
        if id(read) in alone:
            try:
                conformed.extend(_conform_alone(read))
            except ConformError as error:
                bad.append((read, error))
    share = (time.perf_counter() - started) / max(len(reads), 1)
    for read in reads:
        read.seconds += share
    return conformed, bad


def _conform_together(reads: list[_Read]) -> tuple[list[_Conformed], list[_Read]]:
    """One conform per (table, schema) over every file's batches; the files to conform
    alone instead (the one whose row broke the contract; every file of the batch when the
    error is in no row, e.g. a required column missing from the schema they share)."""
    buckets: dict[tuple[str, pa.Schema], list[tuple[_Read, pa.RecordBatch]]] = {}
    for read in reads:
        for table, batch in read.raw:
            buckets.setdefault((table, batch.schema), []).append((read, batch))
    conformed: list[_Conformed] = []
    failed: list[_Read] = []
    for (table, schema), items in buckets.items():
        segments, start = [], 0
        for read, batch in items:
            segments.append(_Segment(read, start, batch.num_rows))
            start += batch.num_rows
        first = items[0][0].obj.key
        try:
            combined = pa.Table.from_batches([b for _, b in items], schema).combine_chunks()
            batch = Conformer(get_dataset(table), schema, first).conform(
                combined.to_batches()[0])
        except ConformError as error:
            culprit = _segment_of(segments, error.row)
            failed.extend([culprit.read] if culprit else {s.read: None for s in segments})
            continue
        except (pa.ArrowException, ValueError):  # e.g. dictionaries that do not combine
            failed.extend({s.read: None for s in segments})
            continue
        conformed.append(_Conformed(table, batch, segments))
    return conformed, failed


def _conform_alone(read: _Read) -> list[_Conformed]:
    """One file's batches conformed as ``load_one`` conforms them (rows counted from the
    file's first, so an error names the file's own row)."""
    conformers: dict[tuple[str, pa.Schema], Conformer] = {}
    out = []
    for table, batch in read.raw:
        key = (table, batch.schema)
        conformer = conformers.get(key)
        if conformer is None:
            conformer = conformers[key] = Conformer(get_dataset(table), batch.schema,
                                                    read.obj.key)
        out.append(_Conformed(table, conformer.conform(batch),
                              [_Segment(read, 0, batch.num_rows)]))
    return out


def _segment_of(segments: list[_Segment], row: int | None) -> _Segment | None:
    if row is None:
        return None
    for segment in segments:
        if segment.start <= row < segment.start + segment.length:
            return segment
    return None


def _finish(settings: Settings, conformed: list[_Conformed], slots: TimeSlots | None) -> None:
    """Price traces, make chunks/partitions ahead, and count per file what its rows hold."""
    pricer = Pricer(settings.price_missing_costs)
    for item in conformed:
        dataset = get_dataset(item.table)
        if item.table == "traces":
            item.batch = pricer.apply(item.batch)
        if slots is not None:
            slots.ensure_batch(dataset, item.batch)
        unpriced = pricer.last_unpriced if item.table == "traces" else None
        for segment in item.segments:
            read = segment.read
            rows = item.batch.slice(segment.start, segment.length)
            read.rows[item.table] = read.rows.get(item.table, 0) + segment.length
            read.spans.setdefault(item.table, TimeSpan(dataset.time_column)).note(rows)
            if unpriced is not None:
                read.unpriced += pc.sum(unpriced.slice(segment.start, segment.length)
                                        .cast(pa.int64())).as_py() or 0


# --- commit ------------------------------------------------------------------------------


def _commit(settings: Settings, conn: psycopg.Connection, reads: list[_Read],
            conformed: list[_Conformed], run_id: str, log) -> dict[str, FileOutcome]:
    schema = settings.db_schema
    started = time.perf_counter()
    outcomes: dict[str, FileOutcome] = {}
    with conn.transaction():
        states = ledger.claim_group(conn, schema, [r.obj for r in reads], run_id)
        claimed = [r for r in reads if states[r.obj.key] == ledger.CLAIMED]
        for read in reads:
            obj = read.obj
            if states[obj.key] == ledger.CONFLICT:
                ledger.record_conflict(conn, schema, obj)
                log.warning(f"conflict {obj.key}: {CONFLICT_MESSAGE}")
                outcomes[obj.key] = FileOutcome(obj.key, obj.dataset, "conflict", 0, obj.size,
                                                read.seconds, CONFLICT_MESSAGE)
            elif states[obj.key] == ledger.SKIPPED:
                outcomes[obj.key] = FileOutcome(obj.key, obj.dataset, "skipped", 0, obj.size,
                                                read.seconds)
        _copy(settings, conn, conformed, {id(r) for r in claimed})
        share = (time.perf_counter() - started) / max(len(claimed), 1)
        loads = []
        for read in claimed:
            outcome = _loaded(read, read.seconds + share)
            outcomes[read.obj.key] = outcome
            low, high = _time_span(read)
            loads.append({"key": read.obj.key, "rows": outcome.rows,
                          "duration_ms": outcome.seconds * 1000, "min_time": low,
                          "max_time": high, "dataset": outcome.dataset,
                          "unpriced_rows": read.unpriced,
                          "per_dataset": dict(read.rows) if len(read.rows) > 1 else {}})
        if loads:
            ledger.mark_group_loaded(conn, schema, loads)
    if claimed:
        log.info(f"loaded {len(claimed)} file(s) in one transaction: "
                 f"{sum(sum(r.rows.values()) for r in claimed)} rows in "
                 f"{time.perf_counter() - started:.2f}s")
    return outcomes


def _copy(settings: Settings, conn: psycopg.Connection, conformed: list[_Conformed],
          claimed: set[int]) -> None:
    """One COPY per table of the claimed files' rows (runs of consecutive claimed files'
    rows are slices of the conformed batches: no copying)."""
    tables: dict[str, list[tuple[pa.RecordBatch, list[_Segment]]]] = {}
    for item in conformed:
        runs = tables.setdefault(item.table, [])
        run: list[_Segment] = []
        for segment in [*item.segments, None]:
            if segment is not None and id(segment.read) in claimed and (
                    not run or run[-1].start + run[-1].length == segment.start):
                run.append(segment)
                continue
            if run:
                start = run[0].start
                runs.append((item.batch.slice(start, run[-1].start + run[-1].length - start),
                             run))
            run = [segment] if segment is not None and id(segment.read) in claimed else []
    with conn.cursor() as cur:
        for table, runs in tables.items():
            if not runs:
                continue
            try:
                copy_batches(cur, get_dataset(table), (batch for batch, _ in runs),
                             schema=settings.db_schema, buffer_size=settings.copy_buffer_size,
                             flush_interval_ms=settings.copy_flush_interval)
            except psycopg.Error as exc:
                if not is_data_error(exc):
                    raise
                raise _Refused(*_refused_file([s for _, run in runs for s in run], exc)) \
                    from None


def _refused_file(segments: list[_Segment],
                  exc: psycopg.Error) -> tuple[_Read | None, BadFile | None]:
    """The file of a group's COPY that PostgreSQL refused (from the COPY's line number), and
    the refusal as a BadFile with the row counted within that file."""
    match = COPY_CONTEXT.search(exc.diag.context or "")
    if not match:
        return None, None
    line = int(match.group(1)) - 1  # 0-based row within this COPY
    offset = 0  # this COPY's row where the current segment begins
    before: dict[int, int] = {}  # a file's rows in earlier segments of this COPY
    for segment in segments:
        if line < offset + segment.length:
            bad = rejected(segment.read.obj.key, exc)
            bad.row = before.get(id(segment.read), 0) + line - offset
            return segment.read, bad
        offset += segment.length
        before[id(segment.read)] = before.get(id(segment.read), 0) + segment.length
    return None, None


def _time_span(read: _Read) -> tuple[object, object]:
    lows = [s.min for s in read.spans.values() if s.min is not None]
    highs = [s.max for s in read.spans.values() if s.max is not None]
    return (min(lows) if lows else None), (max(highs) if highs else None)


def _loaded(read: _Read, seconds: float) -> FileOutcome:
    obj = read.obj
    dataset = next(iter(read.rows)) if len(read.rows) == 1 else obj.dataset
    return FileOutcome(obj.key, dataset, "loaded", sum(read.rows.values()), obj.size, seconds,
                       None, 0, read.unpriced, read.unusable)
