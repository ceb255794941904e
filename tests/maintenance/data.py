"""Rows for maintenance tests, written straight into the real tables with COPY."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg import sql

PROVIDERS = ("openai", "anthropic")
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4"}
_ids = itertools.count(1)


def span(start: datetime, i: int, **overrides) -> dict:
    provider = PROVIDERS[i % 2]
    row = {
        "start_time": start,
        "trace_id": f"{next(_ids):032x}",
        "span_id": f"{i:016x}",
        "name": "chat",
        "service_name": "svc-a" if i % 3 else "svc-b",
        "environment": "prod",
        "provider": provider,
        "request_model": MODELS[provider],
        "input_tokens": 100 + i,
        "output_tokens": 10 + i % 7,
        "cost_usd": Decimal("0.000123457") * (i + 1),
        "duration_ms": float(50 + (i * 37) % 900),
        "status_code": "error" if i % 5 == 0 else "ok",
    }
    row.update(overrides)
    return row


def copy_rows(conn: psycopg.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def load_spread(conn: psycopg.Connection, now: datetime, days: int, every: timedelta) -> dict:
    """Traces, metrics and logs every ``every`` back from ``now`` over ``days``; their times."""
    times = []
    t = now - timedelta(minutes=1)
    while t > now - timedelta(days=days):
        times.append(t)
        t -= every
    copy_rows(conn, "traces", [span(t, i) for i, t in enumerate(times)])
    copy_rows(
        conn,
        "metrics",
        [
            {
                "time": t,
                "metric_name": "gen_ai.client.token.usage",
                "value": float(i),
                "provider": PROVIDERS[i % 2],
                "model": MODELS[PROVIDERS[i % 2]],
            }
            for i, t in enumerate(times)
        ],
    )
    copy_rows(conn, "logs", [{"time": t, "body": f"line {i}"} for i, t in enumerate(times)])
    return {"traces": times, "metrics": times, "logs": times}


def add_ledger(
    conn: psycopg.Connection,
    key: str,
    dataset: str,
    *,
    min_time: datetime | None = None,
    max_time: datetime | None = None,
    loaded_at: datetime | None = None,
    fingerprint: str = "f",
    size: int = 1,
    rows: int = 1,
    status: str = "loaded",
) -> None:
    conn.execute(
        "INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes, "
        "row_count, min_time, max_time, loaded_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
        (key, dataset, status, fingerprint, size, rows, min_time, max_time, loaded_at),
    )


def db_now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0].astimezone(UTC)


def day_floor(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)
