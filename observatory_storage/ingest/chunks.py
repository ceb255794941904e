"""Chunks (TimescaleDB) and daily partitions (plain PostgreSQL) exist before rows are COPYed.

Why: on TimescaleDB a transaction whose INSERT/COPY creates a chunk holds a lock on the
hypertable until it commits, and every other load that needs that same new chunk waits
for it (``pg_locks``: ``granted = f`` for the whole load), so concurrent loads into a new
day ran one after the other. :class:`TimeSlots` therefore looks at each conformed batch
before it is sent, and creates the chunk/partition of any row whose slot does not exist
yet in a short transaction of its own, on a side connection, then lets the COPY go on.
The partitions job (``maintenance/partitions.py``) does the same ahead of time for the
coming days.

How a chunk is created without leaving rows: TimescaleDB's ``create_chunk`` is not
available under the Apache license (``not supported under the current "apache"
license``), so the side connection inserts one probe row (time column of a real row of the
batch, empty/zero values for the other required columns) and deletes it by ``ctid`` in
the same transaction. No other transaction ever sees the probe; what remains is the empty
chunk plus one dead tuple that the next vacuum (or page pruning) removes. On plain
PostgreSQL ``obs_ensure_partitions`` (migration 0001) creates the day's partition.

Only rows from the retention cutoff to a year ahead get their slot made: garbage
timestamps (year 1, year 9999) must not turn into DDL; they go to DEFAULT (plain
PostgreSQL) or create their chunk at insert, as before.

The side connection uses a short ``lock_timeout``: if the slot is being created by a
transaction that does not commit soon (an older loader creating it inside its COPY), the
probe gives up and the row creates its chunk inside the COPY as before (correct, only not
concurrent). A table whose probe is refused (e.g. a CHECK constraint added by the operator)
is left to insert-time creation too, with one warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from observatory_storage.datasets import Dataset
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.settings import Settings

logger = logging.getLogger(__name__)

DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AHEAD_DAYS = 366  # slots are made for rows up to this far in the future
MAX_SLOTS_PER_BATCH = 32  # more distinct days in one batch: the rest create at insert time
LOCK_TIMEOUT = "2s"
_DUMMY = {  # values of required non-time columns in a probe row (deleted in its transaction)
    "text": "", "jsonb": "{}", "double precision": 0.0, "integer": 0, "bigint": 0,
    "smallint": 0, "boolean": False,
}


def _us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def _time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


class TimeSlots:
    """Creates the missing chunks/partitions of the batches a load is about to COPY.

    Thread-safe: one instance serves every worker of a run. The connection is opened on
    first need and closed by :meth:`close`.
    """

    def __init__(self, settings: Settings, log=logger):
        self.settings = settings
        self.log = log
        self.created = 0  # chunks/partitions this instance created
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._timescale: bool | None = None
        self._covered: dict[str, list[tuple[int, int]]] = {}  # dataset -> [start, end) in us
        self._width: dict[str, int] = {}
        self._given_up: set[tuple[str, int]] = set()
        self._disabled: set[str] = set()

    # --- public -----------------------------------------------------------------------

    def ensure_batch(self, dataset: Dataset, batch: pa.RecordBatch) -> None:
        """Make the slot of every row of a conformed batch exist (returns quickly when all do).

        Never fails a load: anything but a lost connection disables creation ahead for the
        table (its rows then create their chunk/partition at insert time, as without this).
        """
        if dataset.name in self._disabled or batch.num_rows == 0:
            return
        try:
            self._ensure_batch(dataset, batch)
        except psycopg.OperationalError:
            raise
        except (psycopg.Error, ValueError, OverflowError) as exc:
            self._disabled.add(dataset.name)
            self.log.warning(f"{dataset.name}: cannot create chunks/partitions ahead ({exc}); "
                             "rows create them at insert time")

    def _ensure_batch(self, dataset: Dataset, batch: pa.RecordBatch) -> None:
        column = batch.column(dataset.time_column)
        low, high = pc.min_max(column).values()
        if not low.is_valid:
            return
        low_us, high_us = _us(low.as_py()), _us(high.as_py())
        covered = self._covered.get(dataset.name)
        if covered is not None and any(s <= low_us and high_us < e for s, e in covered):
            return  # the common case: one existing chunk holds the whole batch
        with self._lock:
            self._setup(dataset)
            width = self._width[dataset.name]
            values = column.drop_null().cast(pa.int64())
            first, last = self._window(dataset)
            values = values.filter(pc.and_(pc.greater_equal(values, first),
                                           pc.less(values, last)))
            if len(values) == 0:
                return
            # the window starts after 1970, so integer division is floor division here
            slots = pa.table({"slot": pc.divide(values, width), "value": values})
            firsts = slots.group_by("slot").aggregate([("value", "min")])
            reps = firsts.column("value_min").to_pylist()[:MAX_SLOTS_PER_BATCH]
            self._ensure_values(dataset, reps)

    def ensure_days(self, dataset: Dataset, first: date, last: date) -> int:
        """Slots for every day in [first, last] (the partitions job's look-ahead)."""
        with self._lock:
            self._setup(dataset)
            before = self.created
            day = first
            values = []
            while day <= last:
                values.append(_us(datetime(day.year, day.month, day.day, tzinfo=UTC)))
                day += timedelta(days=1)
            self._ensure_values(dataset, values)
            return self.created - before

    def _window(self, dataset: Dataset) -> tuple[int, int]:
        """Times slots are made for: from the retention cutoff to a year ahead. Rows
        outside (late beyond retention, garbage far-future or year-1 timestamps) go where
        they went before: DEFAULT, or a chunk created at insert."""
        now = _us(datetime.now(UTC))
        ahead = max(AHEAD_DAYS, self.settings.partitions_ahead_days + 1)
        return (max(0, now - (self.settings.retention_days(dataset.name) + 1) * DAY_US),
                now + ahead * DAY_US)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> TimeSlots:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals (called with the lock held) ----------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings, autocommit=True)
            self._conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            self._timescale = detect(self._conn).is_timescaledb
        return self._conn

    def _setup(self, dataset: Dataset) -> None:
        if dataset.name in self._width:
            return
        conn = self._connection()
        width = DAY_US
        if self._timescale:
            row = conn.execute(
                "SELECT time_interval FROM timescaledb_information.dimensions "
                "WHERE hypertable_schema = %s AND hypertable_name = %s AND column_name = %s",
                (self.settings.db_schema, dataset.name, dataset.time_column),
            ).fetchone()
            if row is None or row[0] is None:
                self._disabled.add(dataset.name)  # not a hypertable: nothing to create
                width = DAY_US
            else:
                width = row[0] // timedelta(microseconds=1)
        self._width[dataset.name] = width
        self._refresh(dataset)

    def _refresh(self, dataset: Dataset) -> None:
        conn = self._connection()
        schema = self.settings.db_schema
        if self._timescale:
            rows = conn.execute(  # as integers: a range may end in year 10000
                "SELECT (extract(epoch FROM range_start) * 1000000)::bigint, "
                "(extract(epoch FROM range_end) * 1000000)::bigint "
                "FROM timescaledb_information.chunks "
                "WHERE hypertable_schema = %s AND hypertable_name = %s",
                (schema, dataset.name),
            ).fetchall()
            ranges = [(lo, hi) for lo, hi in rows if lo is not None and hi is not None]
        else:
            rows = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(%s)",
                (sql.Identifier(schema, dataset.name).as_string(conn),),
            ).fetchall()
            ranges = []
            prefix = f"{dataset.name}_p"
            for (name,) in rows:
                suffix = name[len(prefix):]
                if name.startswith(prefix) and len(suffix) == 8 and suffix.isdigit():
                    day = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC)
                    ranges.append((_us(day), _us(day) + DAY_US))
        self._covered[dataset.name] = ranges

    def _is_covered(self, dataset: Dataset, value: int) -> bool:
        return any(s <= value < e for s, e in self._covered.get(dataset.name, ()))

    def _ensure_values(self, dataset: Dataset, values: Iterable[int]) -> None:
        if dataset.name in self._disabled:
            return
        width = self._width[dataset.name]
        missing = [v for v in values if not self._is_covered(dataset, v)
                   and (dataset.name, v // width) not in self._given_up]
        if not missing:
            return
        self._refresh(dataset)  # another process may have created them meanwhile
        for value in missing:
            if self._is_covered(dataset, value):
                continue
            try:
                self._create(dataset, value)
            except psycopg.errors.LockNotAvailable:
                self._given_up.add((dataset.name, value // width))
                self.log.info(f"{dataset.name}: slot of {_time(value)} busy in another "
                              "transaction; its rows create it at insert time")
                continue
            except psycopg.errors.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    raise
                self._disabled.add(dataset.name)
                self.log.warning(f"{dataset.name}: cannot create chunks/partitions ahead "
                                 f"({exc.sqlstate}: {exc}); rows create them at insert time")
                return
            self.created += 1
            self._refresh(dataset)

    def _create(self, dataset: Dataset, value: int) -> None:
        conn = self._connection()
        schema = self.settings.db_schema
        when = _time(value)
        if not self._timescale:
            day = when.date()
            conn.execute(
                sql.SQL("SELECT {}.obs_ensure_partitions(%s, %s, %s, %s, %s)").format(
                    sql.Identifier(schema)),
                (schema, dataset.name, dataset.time_column, day, day),
            )
            return
        columns = [dataset.time_column]
        params: list[object] = [when]
        for column in dataset.columns:
            if column.required and column.name != dataset.time_column:
                columns.append(column.name)
                params.append(when if column.pg_type == "timestamptz" else _DUMMY[column.pg_type])
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING tableoid::regclass::text, ctid"
                         ).format(sql.Identifier(schema, dataset.name),
                                  sql.SQL(", ").join(map(sql.Identifier, columns)),
                                  sql.SQL(", ").join([sql.Placeholder()] * len(columns)))
        with conn.transaction():
            chunk, ctid = conn.execute(insert, params).fetchone()
            conn.execute(sql.SQL("DELETE FROM ONLY {} WHERE ctid = %s::tid").format(
                sql.SQL(chunk)), (str(ctid),))
