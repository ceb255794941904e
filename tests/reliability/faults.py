"""Helpers of the fault tests: files in flight, waiting for a COPY, counting what survived."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import psycopg
import pyarrow as pa
from psycopg import sql

from observatory_storage.landing.base import Landing
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import load_settings
from tests.reliability.corpus import BASE_TIME, parquet_bytes, traces_table

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(os.path.dirname(sys.executable), "observatory-storage")


def metrics_table(rows: int, *, tag: str) -> pa.Table:
    """Metric points whose (metric_name, value) pairs are unique across files."""
    return pa.table(
        {
            "time": pa.array([BASE_TIME] * rows, pa.timestamp("us", tz="UTC")),
            "metric_name": pa.array([f"m.{tag}"] * rows),
            "value": pa.array([float(i) for i in range(rows)]),
        }
    )


@dataclass
class Burst:
    """Files written to landing: how many rows each dataset should end up with."""

    keys: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: {"traces": 0, "metrics": 0})

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def write_burst(landing: Landing, *, traces: int, metrics: int = 0, rows: int = 2000,
                prefix: str = "f") -> Burst:
    """Metrics files first (older), then traces: the loader takes them oldest first."""
    burst = Burst()
    for n in range(metrics):
        key = f"metrics/{prefix}-{n:03d}.parquet"
        landing.put(key, parquet_bytes(metrics_table(rows, tag=f"{prefix}{n}")))
        burst.keys.append(key)
        burst.rows["metrics"] += rows
    if metrics:
        time.sleep(0.02)  # distinct mtimes: every metrics file sorts before every traces file
    for n in range(traces):
        key = f"traces/{prefix}-{n:03d}.parquet"
        landing.put(key, parquet_bytes(traces_table(rows, tag=f"{prefix}{n}")))
        burst.keys.append(key)
        burst.rows["traces"] += rows
    return burst


@dataclass(frozen=True)
class Tally:
    rows: int
    lost: int
    duplicated: int
    ledger_loaded: int
    ledger_other: int

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0


def tally(url: str, burst: Burst) -> Tally:
    """Rows stored, lost and duplicated against the burst, and the ledger's view of it."""
    with psycopg.connect(url, autocommit=True) as conn:
        t_total, t_distinct = conn.execute(
            "SELECT count(*), count(DISTINCT span_id) FROM traces"
        ).fetchone()
        m_total, m_distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (metric_name, value)) FROM metrics"
        ).fetchone()
        statuses = dict(
            conn.execute(
                "SELECT status = 'loaded', count(*) FROM ingest_files WHERE object_key = ANY(%s) "
                "GROUP BY 1",
                (burst.keys,),
            ).fetchall()
        )
        ledger_rows = conn.execute(
            "SELECT coalesce(sum(row_count), 0) FROM ingest_files WHERE status = 'loaded'"
        ).fetchone()[0]
    stored = t_total + m_total
    distinct = t_distinct + m_distinct
    assert ledger_rows == stored, f"ledger says {ledger_rows} rows, tables hold {stored}"
    return Tally(
        rows=stored,
        lost=burst.total_rows - distinct,
        duplicated=stored - distinct,
        ledger_loaded=statuses.get(True, 0),
        ledger_other=statuses.get(False, 0),
    )


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def blocked_copy_pid(admin: psycopg.Connection, dbname: str) -> int | None:
    """pid of a COPY into ``dbname`` waiting on a lock, if one is."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query LIKE 'COPY %%' "
        "AND state = 'active' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        (dbname,),
    ).fetchone()
    return row[0] if row else None


class TableLock:
    """Hold a SHARE lock on a table, so the next COPY into it blocks at its start.

    That is how a fault lands deterministically *during* a COPY statement: the file's
    ledger claim and COPY are in flight, uncommitted, when the fault strikes.
    """

    def __init__(self, url: str, table: str):
        self.conn = psycopg.connect(url)
        self.conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(table)))

    def release(self) -> None:
        if not self.conn.closed:
            with contextlib.suppress(psycopg.Error):  # the server may have ended it already
                self.conn.rollback()
            self.conn.close()


class Background:
    """Run a callable in a thread; ``join`` returns its result or re-raises its error."""

    def __init__(self, target: Callable[[], object]):
        self.result: object = None
        self.error: BaseException | None = None

        def run():
            try:
                self.result = target()
            except BaseException as exc:  # noqa: BLE001 - handed to join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> object:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"background run still going after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


def cli_env(database_url: str, landing: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME",)}
    env.update(DATABASE_URL=database_url, LANDING_URL=landing, **extra)
    return env


def new_private_database(server, name: str, tablespace: str | None = None) -> str:
    """A migrated database on the private server (optionally in a tablespace)."""
    with server.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if tablespace:
            statement += sql.SQL(" TABLESPACE {}").format(sql.Identifier(tablespace))
        admin.execute(statement)
    url = server.db_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_settings(database_url=url))
    return url


def drop_private_database(server, name: str) -> None:
    with server.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def dbname(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def step_retries(instance: dg.DagsterInstance) -> int:
    """STEP_UP_FOR_RETRY events across every run of an instance.

    Read while a run in another thread writes to the same (ephemeral, in-memory SQLite)
    instance: SQLite then refuses the read now and then with "database table is locked";
    that read is simply taken again."""
    for attempt in range(50):
        try:
            return sum(
                1
                for run in instance.get_runs()
                for entry in instance.all_logs(run.run_id)
                if entry.dagster_event
                and entry.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
            )
        except Exception as exc:  # sqlalchemy wraps sqlite3.OperationalError
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.05)
    return 0
