"""Small, valid landing files for Dagster tests (the ingest tests cover every format)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def traces_table(n: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "start_time": [T0 + dt.timedelta(seconds=offset + i) for i in range(n)],
            "trace_id": [f"{offset + i:032x}" for i in range(n)],
            "span_id": [f"{offset + i:016x}" for i in range(n)],
            "name": ["chat"] * n,
            "provider": ["openai"] * n,
            "request_model": ["gpt-4o-mini"] * n,
            "input_tokens": pa.array([100 + i for i in range(n)], pa.int64()),
        }
    )


def metrics_table(n: int) -> pa.Table:
    return pa.table(
        {
            "time": [T0 + dt.timedelta(seconds=i) for i in range(n)],
            "metric_name": ["gen_ai.client.token.usage"] * n,
            "value": [float(i) for i in range(n)],
        }
    )


def logs_table(n: int) -> pa.Table:
    return pa.table({"time": [T0 + dt.timedelta(seconds=i) for i in range(n)], "body": ["hi"] * n})


def write(landing: Path, key: str, table: pa.Table) -> Path:
    path = landing / key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name)
    pq.write_table(table, tmp)
    tmp.rename(path)
    return path


def write_sample(landing: Path, traces_files: int = 3, rows: int = 10) -> dict[str, int]:
    """Traces, metrics and logs files; returns the rows written per dataset."""
    for i in range(traces_files):
        write(landing, f"traces/2026/11/27/batch-{i}.parquet", traces_table(rows, i * rows))
    write(landing, "metrics/batch-0.parquet", metrics_table(rows))
    write(landing, "logs/batch-0.parquet", logs_table(rows))
    return {"traces": traces_files * rows, "metrics": rows, "logs": rows}


def write_broken(landing: Path, key: str = "traces/broken.parquet") -> Path:
    path = landing / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1 this is not really parquet PAR1")
    return path
