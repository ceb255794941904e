"""One landing file's load, in one transaction: claim, COPY, ledger row, commit; or set aside.

``load_one`` is the unit of exactly-once: in ONE transaction it claims the key in the ledger
(``ingest/ledger.py``), streams record batches -> conform -> binary COPY into the file's
table(s), records rows and event-time span, and commits. A bad file is rolled back and
quarantined (a ledger row with the reason, the file moved to ``_quarantine/``) while the
caller goes on with the other files; a file that vanished or changed between listing and
reading is reported ``gone`` and left for the next listing.

The pieces are shared with the part-by-part load of big files (``ingest/parts.py``): the
COPY of a file or of a range of its units (:func:`copy_file`), how a database refusal
becomes a reason naming row and column (:func:`rejected`), and moving a quarantined file
aside (:func:`set_aside`). Transient database errors propagate: the run is retried and the
ledger makes the retry skip what committed.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from observatory_storage.datasets import Dataset, get_dataset
from observatory_storage.ingest import ledger
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.conform import Conformer
from observatory_storage.ingest.copy import copy_batches
from observatory_storage.ingest.errors import BadFile, RejectedByDatabase
from observatory_storage.ingest.pricing import Pricer
from observatory_storage.ingest.readers import open_reader
from observatory_storage.ingest.summary import FileOutcome
from observatory_storage.landing import Landing, LandingError, LandingObject, ObjectGone
from observatory_storage.settings import Settings

logger = logging.getLogger(__name__)

# SQLSTATE classes that mean "this file's data is unacceptable", not "the database is
# unwell": 22 data exception, 23 integrity constraint violation, 54 program limit exceeded.
_DATA_ERROR_CLASSES = ("22", "23", "54")
DEDUPE_LOCK = "observatory_storage.dedupe"  # advisory lock serializing deduped trace loads
CONFLICT_MESSAGE = ("loaded before with other content; not reloaded "
                    "(write new content under a new key)")


def load_one(
    settings: Settings,
    conn: psycopg.Connection,
    landing: Landing,
    obj: LandingObject,
    *,
    run_id: str,
    log=logger,
    slots: TimeSlots | None = None,
) -> FileOutcome:
    """Load one whole file in one transaction (claim, COPY, ledger row, commit)."""
    schema = settings.db_schema
    started = time.perf_counter()

    def outcome(status: str, rows: int = 0, error: str | None = None, duplicates: int = 0,
                dataset: str | None = None, unpriced: int = 0, unusable: dict | None = None):
        return FileOutcome(obj.key, dataset or obj.dataset, status, rows, obj.size,
                           time.perf_counter() - started, error, duplicates, unpriced,
                           unusable or {})

    try:
        with conn.transaction():
            state = ledger.claim(conn, schema, obj, run_id)
            if state == ledger.SKIPPED:
                log.info(f"skipped {obj.key}: already in the ledger")
                return outcome("skipped")
            if state == ledger.CONFLICT:
                ledger.record_conflict(conn, schema, obj)
                log.warning(f"conflict {obj.key}: {CONFLICT_MESSAGE}")
                return outcome("conflict", error=CONFLICT_MESSAGE)
            with landing.open(obj) as handle:
                loaded = copy_file(settings, conn, handle, obj, slots=slots)
            ledger.mark_loaded(conn, schema, obj.key, loaded.rows,
                               (time.perf_counter() - started) * 1000,
                               min_time=loaded.min_time, max_time=loaded.max_time,
                               dataset=loaded.dataset, unpriced_rows=loaded.unpriced,
                               per_dataset=loaded.per_dataset)
    except ObjectGone as exc:
        log.warning(f"gone {obj.key}: {exc}")
        return outcome("gone", error=str(exc))
    except BadFile as bad:
        return quarantine(settings, conn, landing, obj, bad, run_id, log, outcome)
    except psycopg.Error as exc:
        if not is_data_error(exc):
            raise
        bad = rejected(obj.key, exc)
        return quarantine(settings, conn, landing, obj, bad, run_id, log, outcome)
    result = outcome("loaded", loaded.rows, duplicates=loaded.duplicates,
                     dataset=loaded.dataset, unpriced=loaded.unpriced, unusable=loaded.unusable)
    log.info(f"loaded {obj.key}: {loaded.rows} rows in {result.seconds:.2f}s")
    return result


class TimeSpan:
    """Earliest and latest event time of the batches that pass through ``observe``.

    Stored in the ledger (min_time/max_time) so the hourly rollups and VACUUM know which
    hours and chunks a file touched without scanning the tables.
    """

    def __init__(self, column: str):
        self.column = column
        self.min = None
        self.max = None

    def note(self, batch: pa.RecordBatch) -> None:
        low, high = pc.min_max(batch.column(self.column)).values()
        if low.is_valid:
            low, high = low.as_py(), high.as_py()
            self.min = low if self.min is None else min(self.min, low)
            self.max = high if self.max is None else max(self.max, high)


@dataclass
class LoadedFile:
    """What one file's COPYs put in the tables (inside its still open transaction)."""

    dataset: str  # the dataset loaded, or the landing root when none or several were
    rows: int = 0
    duplicates: int = 0
    min_time: object = None
    max_time: object = None
    unpriced: int = 0  # traces rows with a model and tokens the price table could not price
    unusable: dict = field(default_factory=dict)  # OTLP values kept in attributes, per column
    per_dataset: dict = field(default_factory=dict)  # rows per table, when several were loaded


class ConformedFile:
    """A landing file read as ``(dataset, batch)`` pairs, each batch conformed to its
    contract, priced (traces) and its chunk/partition made, as it is read; afterwards
    :meth:`loaded` says what the batches held (rows per table, event-time span)."""

    def __init__(self, settings: Settings, handle, obj: LandingObject, *,
                 slots: TimeSlots | None = None, units: tuple[int, int] | None = None):
        self.obj = obj
        self.slots = slots
        self.reader = open_reader(handle, obj.key, obj.dataset, settings.copy_batch_size,
                                  units=units)
        self.conformers: dict[tuple[str, pa.Schema], Conformer] = {}
        self.spans: dict[str, TimeSpan] = {}
        self.rows: dict[str, int] = {}  # per table, in read order
        self.pricer = Pricer(settings.price_missing_costs)

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        for name, batch in self.reader.batches():
            dataset = get_dataset(name)
            span = self.spans.setdefault(name, TimeSpan(dataset.time_column))
            conformer = self.conformers.get((name, batch.schema))
            if conformer is None:
                conformer = self.conformers[(name, batch.schema)] = Conformer(
                    dataset, batch.schema, self.obj.key)
            batch = conformer.conform(batch)
            if name == "traces":
                batch = self.pricer.apply(batch)
            if self.slots is not None:
                self.slots.ensure_batch(dataset, batch)
            span.note(batch)
            self.rows[name] = self.rows.get(name, 0) + batch.num_rows
            yield name, batch

    def loaded(self, rows: int, duplicates: int = 0) -> LoadedFile:
        names = list(self.spans)
        loaded = LoadedFile(names[0] if len(names) == 1 else self.obj.dataset, rows, duplicates,
                            unpriced=self.pricer.unpriced,
                            unusable=getattr(self.reader, "unusable", {}),
                            per_dataset=dict(self.rows) if len(names) > 1 else {})
        for span in self.spans.values():
            if span.min is not None:
                loaded.min_time = span.min if loaded.min_time is None else min(loaded.min_time,
                                                                               span.min)
                loaded.max_time = span.max if loaded.max_time is None else max(loaded.max_time,
                                                                               span.max)
        return loaded


def copy_file(settings: Settings, conn: psycopg.Connection, handle,
              obj: LandingObject, *, slots: TimeSlots | None = None,
              units: tuple[int, int] | None = None) -> LoadedFile:
    """Stream one file into its table(s) inside the open transaction.

    Each run of consecutive batches of one table is one COPY (an OTLP file may interleave
    spans, metric points and log records). ``units`` loads one part of a split file (row
    groups / record batches ``[first, last)``).
    """
    source = ConformedFile(settings, handle, obj, slots=slots, units=units)
    rows = duplicates = 0
    with conn.cursor() as cur:
        for name, group in itertools.groupby(source.batches(), key=lambda item: item[0]):
            dataset = get_dataset(name)
            batches = (batch for _, batch in group)
            if dataset.dedupe_key and settings.copy_dedupe_traces:
                inserted, skipped = copy_deduped(settings, cur, dataset, batches)
                rows, duplicates = rows + inserted, duplicates + skipped
            else:
                rows += copy_batches(cur, dataset, batches, schema=settings.db_schema,
                                     buffer_size=settings.copy_buffer_size,
                                     flush_interval_ms=settings.copy_flush_interval)
    return source.loaded(rows, duplicates)


def copy_deduped(settings: Settings, cur: psycopg.Cursor, dataset: Dataset, batches):
    """COPY into a temporary staging table, then insert only rows not stored yet.

    The key is the dataset's dedupe key plus its time column (the time column lets the
    lookup use chunk exclusion). An advisory lock serializes deduped loads so two files
    carrying the same spans cannot both insert them.
    """
    stage = f"obs_stage_{dataset.name}"
    target = sql.Identifier(settings.db_schema, dataset.name)
    cur.execute(sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    ).format(sql.Identifier(stage), target))
    rows = copy_batches(cur, dataset, batches, schema="", table=stage,
                        buffer_size=settings.copy_buffer_size,
                            flush_interval_ms=settings.copy_flush_interval)
    key = [*dataset.dedupe_key, dataset.time_column]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.column_names)
    key_list = sql.SQL(", ").join(sql.Identifier(c) for c in key)
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in key
    )
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DEDUPE_LOCK,))
    cur.execute(sql.SQL(
        "INSERT INTO {target} ({columns}) "
        "SELECT DISTINCT ON ({key}) {columns} FROM {stage} s "
        "WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})"
    ).format(target=target, columns=columns, key=key_list, stage=sql.Identifier(stage),
             match=match))
    inserted = cur.rowcount
    return inserted, rows - inserted


def is_data_error(exc: psycopg.Error) -> bool:
    state = exc.sqlstate or ""
    return state[:2] in _DATA_ERROR_CLASSES


COPY_CONTEXT = re.compile(r"COPY [^\n]*?, line (\d+)(?:, column ([^:\n]+))?")


def rejected(key: str, exc: psycopg.Error) -> RejectedByDatabase:
    """PostgreSQL's refusal as a BadFile; COPY's context names the row ("line N") and
    column. The context may start with other lines ("JSON data, line 1: ...")."""
    diag = exc.diag
    row = None
    column = diag.column_name
    match = COPY_CONTEXT.search(diag.context or "")
    if match:
        row = int(match.group(1)) - 1  # COPY counts lines from 1; we report rows from 0
        if column is None and match.group(2):
            column = match.group(2).strip()
    reason = f"rejected by PostgreSQL ({exc.sqlstate}): {diag.message_primary or exc}"
    return RejectedByDatabase(key, column, row, reason)


def quarantine(settings: Settings, conn: psycopg.Connection, landing: Landing, obj: LandingObject,
               bad: BadFile, run_id: str, log, outcome) -> FileOutcome:
    """Record the reason (after the rollback), then set the file aside."""
    target = landing.quarantine_key(obj.key) if settings.landing_quarantine_move else None
    with conn.transaction():
        recorded = ledger.record_quarantine(
            conn, settings.db_schema, obj, bad, run_id=run_id, quarantine_key=target,
            duration_ms=outcome("quarantined").seconds * 1000,
        )
    if not recorded:  # a racing run loaded this key meanwhile: its data wins
        log.info(f"skipped {obj.key}: loaded by another run")
        return outcome("skipped")
    set_aside(settings, conn, landing, obj.key, target, log)
    log.warning(f"quarantined {bad}")  # the reason names the file
    return outcome("quarantined", error=str(bad))


def set_aside(settings: Settings, conn: psycopg.Connection, landing: Landing, key: str,
              target: str | None, log) -> None:
    """Move a quarantined file to ``target``; if it cannot be moved, the ledger says so."""
    if target is None:
        return
    try:
        landing.move(key, target)
    except (ObjectGone, LandingError) as exc:
        log.warning(f"could not move {key} to {target}: {exc}")
        with conn.transaction():
            ledger.set_quarantine_key(conn, settings.db_schema, key, None)
