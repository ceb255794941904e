"""Landing files built in the tests (nothing binary is committed) and the accounting
that turns a database into "rows lost" and "rows duplicated"."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

BASE_TIME = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def traces_table(rows: int, *, tag: str) -> pa.Table:
    """A valid traces batch; ``span_id`` values are ``<tag>-<n>``, unique across files."""
    start = [BASE_TIME + timedelta(milliseconds=i) for i in range(rows)]
    return pa.table(
        {
            "start_time": pa.array(start, pa.timestamp("us", tz="UTC")),
            "end_time": pa.array([t + timedelta(milliseconds=40) for t in start], pa.timestamp("us", tz="UTC")),
            "trace_id": pa.array([f"{tag}-t{i // 4}" for i in range(rows)]),
            "span_id": pa.array([f"{tag}-{i}" for i in range(rows)]),
            "name": pa.array(["chat gpt-4o"] * rows),
            "provider": pa.array(["openai"] * rows),
            "request_model": pa.array(["gpt-4o"] * rows),
            "input_tokens": pa.array([i % 500 for i in range(rows)], pa.int32()),
        }
    )


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def traces_file(rows: int, *, tag: str) -> bytes:
    return parquet_bytes(traces_table(rows, tag=tag))


# --- accounting --------------------------------------------------------------------------


def span_counts(conn: psycopg.Connection, schema: str = "public") -> tuple[int, int]:
    """(rows in traces, distinct span ids) of a database."""
    total, distinct = conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT span_id) FROM {}.traces").format(
            sql.Identifier(schema)
        )
    ).fetchone()
    return total, distinct


def ledger(conn: psycopg.Connection, schema: str = "public") -> dict[str, tuple[str, int]]:
    """object_key -> (status, row_count)."""
    rows = conn.execute(
        sql.SQL("SELECT object_key, status, row_count FROM {}.ingest_files").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return {key: (status, count) for key, status, count in rows}


def loss_and_duplicates(conn: psycopg.Connection, expected_rows: int) -> tuple[int, int, int]:
    """(rows stored, rows lost, rows duplicated) against the rows written to landing."""
    total, distinct = span_counts(conn)
    return total, expected_rows - distinct, total - distinct
