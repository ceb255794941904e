"""Binary COPY of conformed Arrow batches into a table, encoded by pgpq.

pgpq turns Arrow arrays into PostgreSQL's binary COPY format in Rust, so no row ever
becomes a Python object on the hot path. jsonb columns are Arrow strings that pgpq is
told to send as jsonb (the server still parses and validates them).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pgpq
import psycopg
import pyarrow as pa
from pgpq import encoders
from pgpq import schema as pg_schema
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from observatory_storage.datasets import Dataset


def make_encoder(dataset: Dataset) -> pgpq.ArrowToPostgresBinaryEncoder:
    schema = dataset.arrow_schema
    builders = {}
    for column in dataset.columns:
        field = schema.field(column.name)
        if column.pg_type == "jsonb":
            builders[column.name] = encoders.StringEncoderBuilder.new_with_output(
                field, pg_schema.Jsonb()
            )
        else:
            builders[column.name] = pgpq.ArrowToPostgresBinaryEncoder.infer_encoder(field)
    return pgpq.ArrowToPostgresBinaryEncoder.new_with_encoders(schema, builders)


def copy_statement(dataset: Dataset, schema: str, table: str | None = None) -> sql.Composed:
    target = (
        sql.Identifier(table) if schema == "" else sql.Identifier(schema, table or dataset.name)
    )
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        target, sql.SQL(", ").join(sql.Identifier(c) for c in dataset.column_names)
    )


def copy_batches(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    batches: Iterable[pa.RecordBatch],
    *,
    schema: str,
    table: str | None = None,
    buffer_size: int = 1 << 20,
    flush_interval_ms: int = 1000,
) -> int:
    """COPY every batch (already in ``dataset.arrow_schema``); returns the rows sent.

    ``schema=""`` targets an unqualified (temporary) ``table``. Encoded bytes are sent
    once ``buffer_size`` accumulate or ``flush_interval_ms`` passed since the last send,
    so memory holds one batch plus one buffer and a slow reader still streams.
    """
    encoder = make_encoder(dataset)
    rows = 0
    buffer = bytearray()
    last_flush = time.monotonic()
    # QueuedLibpqWriter sends from a worker thread, so encoding the next batch overlaps
    # with the network write of the previous one.
    with cursor.copy(copy_statement(dataset, schema, table),
                     writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(encoder.write_header())
        for batch in batches:
            data = encoder.write_batch(batch)
            rows += batch.num_rows
            now = time.monotonic()
            if not buffer and len(data) >= buffer_size:
                copy.write(data)  # a big encoded batch goes out as is, never copied
                last_flush = now
                continue
            buffer += data
            if len(buffer) >= buffer_size or (now - last_flush) * 1000 >= flush_interval_ms:
                copy.write(buffer)
                buffer = bytearray()
                last_flush = now
        buffer += encoder.finish()
        copy.write(buffer)
    return rows
