"""Query latency at scale: the four questions users ask of traces, p50/p99 per backend.

The data set is ``rows`` spans built from a tenth of them (at most 1M) generated once and
repeated day by day into the past (each copy gets its own trace, span and session ids), loaded with the raw
binary COPY, then ANALYZEd. The database is kept (``obs_bench_queries_<rows>``) and
reused by the next run when it holds the right number of rows, because loading 10M
spans takes minutes. Every query runs once through ``EXPLAIN`` to record which index
served it.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from observatory_storage.bench import databases
from observatory_storage.bench.console import say
from observatory_storage.bench.data import prepare
from observatory_storage.datasets import TRACES
from observatory_storage.db import embedded
from observatory_storage.ingest.copy import copy_batches
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import Settings, load_settings

BASE_ROWS = 1_000_000
RUNS = 200
TRACE_P99_TARGET_MS = 5.0

QUERIES: dict[str, str] = {
    "trace by id": "SELECT * FROM traces WHERE trace_id = %(trace_id)s",
    "session's spans": (
        "SELECT * FROM traces WHERE session_id = %(session_id)s ORDER BY start_time"
    ),
    "last hour's errors": (
        "SELECT start_time, trace_id, span_id, request_model, error_type, status_message "
        "FROM traces WHERE status_code = 'error' "
        "AND start_time > %(now)s - interval '1 hour' ORDER BY start_time DESC"
    ),
    "cost per model per hour, 24 h": (
        "SELECT date_trunc('hour', start_time) AS hour, request_model, sum(cost_usd) AS cost "
        "FROM traces WHERE start_time > %(now)s - interval '24 hours' "
        "AND request_model IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
    ),
}


# The same statement with plan_cache_mode = force_generic_plan: without a time predicate a
# custom plan re-plans every chunk on each call (TimescaleDB: most of the latency), while
# the generic plan is planned once per connection. What a trace-lookup API should use.
GENERIC_PLAN = {"trace by id, generic plan": "trace by id"}


def _copy(table: pa.Table, day: int) -> pa.Table:
    """The base spans moved ``day`` days into the past, with ids unique to that copy."""
    if day == 0:
        return table
    shift = pa.scalar(day * 86_400_000_000, pa.duration("us"))
    tag = f"{day:04x}"
    columns = {
        "start_time": pc.subtract(table["start_time"], shift),
        "end_time": pc.subtract(table["end_time"], shift),
        "trace_id": pc.binary_join_element_wise(
            tag, pc.utf8_slice_codeunits(table["trace_id"], 4), ""
        ),
        "span_id": pc.binary_join_element_wise(tag, pc.utf8_slice_codeunits(table["span_id"], 4), ""),
        "parent_span_id": pc.binary_join_element_wise(
            tag, pc.utf8_slice_codeunits(table["parent_span_id"], 4), ""
        ),
        "session_id": pc.binary_join_element_wise(table["session_id"], f"-{tag}", ""),
    }
    arrays = [columns.get(name, table[name]) for name in TRACES.column_names]
    return pa.Table.from_arrays(arrays, schema=TRACES.arrow_schema)


def _load(url: str, base: pa.Table, rows: int) -> None:

    copies = -(-rows // base.num_rows)
    with psycopg.connect(url) as conn:
        for day in range(copies):
            part = _copy(base, day).slice(0, rows - day * base.num_rows)
            with conn.transaction(), conn.cursor() as cur:
                copy_batches(cur, TRACES, part.to_batches(50_000), schema="public")
            say(f"bench: queries: {min(rows, (day + 1) * base.num_rows):,} spans loaded")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE traces")


def query_database(server_url: str, rows: int, data_dir: Path) -> str:
    """The URL of a database holding ``rows`` spans (built once, then reused)."""
    name = f"obs_bench_queries_{rows}"
    url = databases.with_dbname(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        try:
            if databases.count_rows(url) == rows:
                return url
        except psycopg.Error:
            pass
        databases.drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_settings(database_url=url))
    base_rows = min(BASE_ROWS, max(rows // 10, 1_000))  # about ten days of spans
    data = prepare(data_dir / f"spans-{base_rows}", base_rows)
    base = pa.concat_tables(pq.read_table(p) for p in data.parquet_files)
    _load(url, base, rows)
    return url


_CHUNK_PREFIX = re.compile(r"^_hyper_\d+_\d+_chunk_")
_PARENT_INDEXES = """
    SELECT child.relname, parent.relname
    FROM pg_inherits i
    JOIN pg_class child ON child.oid = i.inhrelid AND child.relkind = 'i'
    JOIN pg_class parent ON parent.oid = i.inhparent
"""


def _shipped_index(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Chunk and partition index names mapped to the shipped index they were made from."""
    parents = dict(conn.execute(_PARENT_INDEXES).fetchall())
    shipped: list[str] = []
    for name in names:
        name = _CHUNK_PREFIX.sub("", parents.get(name, name))
        if name not in shipped:
            shipped.append(name)
    return shipped


def _index_names(plan) -> list[str]:
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "Index Name" in node and node["Index Name"] not in found:
                found.append(node["Index Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def measure(url: str, backend: str, runs: int = RUNS) -> list[dict]:
    rng = random.Random(7)
    with psycopg.connect(url, autocommit=True) as conn:
        now = conn.execute("SELECT max(start_time) FROM traces").fetchone()[0]
        sample = conn.execute(
            "SELECT trace_id, session_id FROM traces "
            "WHERE session_id IS NOT NULL ORDER BY random() LIMIT %s",
            (runs,),
        ).fetchall()
        params = [
            {"trace_id": t, "session_id": s, "now": now}
            for t, s in (rng.choice(sample) for _ in range(runs))
        ]
        results = []
        cases = [(name, query, False) for name, query in QUERIES.items()]
        cases += [(name, QUERIES[base], True) for name, base in GENERIC_PLAN.items()]
        for name, query, generic in cases:
            # checked at each execution, so it applies to already prepared statements too
            conn.execute(
                "SET plan_cache_mode = force_generic_plan" if generic
                else "SET plan_cache_mode = auto"
            )
            plan = conn.execute(
                sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(query), params[0]  # noqa: S608
            ).fetchone()[0]
            for p in params[:5]:  # warm the cache and the prepared statement
                conn.execute(query, p, prepare=True).fetchall()
            timings = []
            for p in params:
                started = time.perf_counter()
                conn.execute(query, p, prepare=True).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            result = {
                "backend": backend,
                "query": name,
                "p50_ms": statistics.median(timings),
                "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
                "index": ", ".join(_shipped_index(conn, _index_names(plan))) or None,
            }
            if name.startswith("trace by id"):
                result["target"] = f"p99 <= {TRACE_P99_TARGET_MS:g} ms"
                result["met"] = result["p99_ms"] <= TRACE_P99_TARGET_MS
            results.append(result)
    return results


def run_queries(data_dir: Path, server_url: str, rows: int, settings: Settings) -> dict:
    """Both backends: the given server, and the embedded PostgreSQL when they differ."""

    servers = {databases.backend_kind(server_url): server_url}
    if "postgres" not in servers:
        servers["postgres"] = embedded.ensure_started(settings.embedded_pg_dir)
    results = []
    for backend, url in servers.items():
        say(f"bench: queries: preparing {rows:,} spans on {backend} ...")
        database = query_database(url, rows, Path(data_dir))
        say(f"bench: queries: measuring on {backend} ...")
        results += measure(database, backend)
    return {"rows": rows, "runs": RUNS, "results": results}
