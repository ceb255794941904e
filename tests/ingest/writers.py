"""Bytes of one table as written by the writers users have: pyarrow, pandas, polars, DuckDB."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq


def parquet(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def arrow_file(table: pa.Table, compression: str | None = None) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=7)
    return sink.getvalue()


def arrow_stream(table: pa.Table, compression: str | None = None) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=7)
    return sink.getvalue()


def feather_v2(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    feather.write_feather(table, sink, compression="lz4")
    return sink.getvalue()


def pandas_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    table.to_pandas().to_parquet(sink, engine="pyarrow")
    return sink.getvalue()


def polars_parquet(table: pa.Table, compression: str = "zstd") -> bytes:
    import polars as pl

    sink = io.BytesIO()
    pl.from_arrow(table).write_parquet(sink, compression=compression)
    return sink.getvalue()


def polars_ipc(table: pa.Table, stream: bool = False) -> bytes:
    import polars as pl

    sink = io.BytesIO()
    frame = pl.from_arrow(table)
    (frame.write_ipc_stream if stream else frame.write_ipc)(sink)
    return sink.getvalue()


def duckdb_parquet(table: pa.Table, tmp: Path, codec: str = "zstd") -> bytes:
    import duckdb

    path = tmp / "duck.parquet"
    con = duckdb.connect()
    con.register("t", table)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet, COMPRESSION {codec})")
    con.close()
    return path.read_bytes()
