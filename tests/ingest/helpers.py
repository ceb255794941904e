"""Small helpers shared by the database-backed ingest tests."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pyarrow as pa
from psycopg import sql

from observatory_storage.datasets import get_dataset
from observatory_storage.generate import build_table, encode

START = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)


def table(dataset: str = "traces", rows: int = 50, seed: int = 1) -> pa.Table:
    return build_table(dataset, rows, seed=seed, start=START, spread_hours=1)


def put(landing, key: str, data: pa.Table | bytes, fmt: str = "parquet") -> str:
    landing.put(key, data if isinstance(data, bytes) else encode(data, fmt))
    return key


def stored(conn: psycopg.Connection, dataset: str, order: str) -> list[dict]:
    """Every row of a dataset table as dicts (jsonb parsed), ordered."""
    ds = get_dataset(dataset)
    cur = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in ds.column_names),
        sql.Identifier(dataset), sql.SQL(order)))
    return [dict(zip(ds.column_names, row, strict=True)) for row in cur.fetchall()]


def expected(table: pa.Table, dataset: str, order_key) -> list[dict]:
    ds = get_dataset(dataset)
    rows = table.to_pylist()
    for row in rows:
        for c in ds.columns:
            if c.pg_type == "jsonb" and row[c.name] is not None:
                row[c.name] = json.loads(row[c.name])
        if dataset == "traces" and row["cost_usd"] is not None and row["cost_source"] is None:
            row["cost_source"] = "producer"  # the loader says who set a cost (ingest/pricing.py)
    return sorted(rows, key=order_key)


def ledger(conn: psycopg.Connection) -> dict[str, dict]:
    cur = conn.execute("SELECT * FROM ingest_files ORDER BY object_key")
    names = [d.name for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def count(conn: psycopg.Connection, dataset: str) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(dataset))).fetchone()[0]


def load_all(settings, **kwargs):
    """pending_objects + load_objects: one ingest pass without Dagster."""
    from observatory_storage.ingest.discovery import pending_objects
    from observatory_storage.ingest.loader import load_objects
    from observatory_storage.landing import open_landing

    landing = open_landing(settings)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        todo = pending_objects(settings, conn, landing=landing, **kwargs)
    return load_objects(settings, todo, run_id="test-run", landing=landing)
