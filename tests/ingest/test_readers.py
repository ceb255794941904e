"""Every format, codec and common writer reads back to the same rows, in bounded batches."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest

from observatory_storage.datasets import get_dataset
from observatory_storage.generate import build_table
from observatory_storage.ingest.conform import Conformer
from observatory_storage.ingest.errors import ReadError
from observatory_storage.ingest.readers import ARROW_FILE, ARROW_STREAM, PARQUET, BatchReader
from tests.ingest import writers

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return build_table("traces", 60, seed=11, start=START)


def read(data: bytes, batch_size: int = 1000, name: str = "f") -> tuple[BatchReader, pa.Table]:
    reader = BatchReader(io.BytesIO(data), name, batch_size)
    batches = list(reader)
    return reader, pa.Table.from_batches(batches, schema=reader.schema)


def conformed(table: pa.Table) -> pa.Table:
    conformer = Conformer(get_dataset("traces"), table.schema, "f")
    return pa.Table.from_batches([conformer.conform(b) for b in table.to_batches()])


@pytest.mark.parametrize("codec", ["none", "snappy", "zstd", "gzip", "brotli", "lz4"])
def test_parquet_every_codec(table, codec):
    reader, back = read(writers.parquet(table, compression=codec))
    assert reader.format == PARQUET
    assert back.equals(table)


def test_parquet_int96_timestamps_keep_microseconds(table):
    reader, back = read(writers.parquet(table, use_deprecated_int96_timestamps=True))
    assert pa.types.is_timestamp(back.schema.field("start_time").type)
    assert conformed(back).column("start_time").equals(table.column("start_time"))


def test_int96_beyond_year_2262_is_read_not_overflowed():
    far = pa.table({"t": pa.array([dt.datetime(3000, 1, 1)], pa.timestamp("us"))})
    _, back = read(writers.parquet(far, use_deprecated_int96_timestamps=True))
    assert back.column("t")[0].as_py().year == 3000


@pytest.mark.parametrize(
    "write",
    [
        writers.pandas_parquet,
        writers.polars_parquet,
        lambda t: writers.polars_parquet(t, "snappy"),
        lambda t: writers.polars_ipc(t),
        lambda t: writers.polars_ipc(t, stream=True),
        writers.feather_v2,
    ],
    ids=["pandas", "polars-zstd", "polars-snappy", "polars-ipc", "polars-ipc-stream", "feather"],
)
def test_common_writers_conform_to_the_same_rows(table, write):
    _, back = read(write(table))
    assert conformed(back).equals(conformed(table))


@pytest.mark.parametrize("codec", ["zstd", "snappy", "gzip", "uncompressed"])
def test_duckdb_parquet(table, tmp_path, codec):
    _, back = read(writers.duckdb_parquet(table, tmp_path, codec))
    assert conformed(back).equals(conformed(table))


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_arrow_ipc_file_and_stream(table, compression):
    reader, back = read(writers.arrow_file(table, compression))
    assert reader.format == ARROW_FILE and back.equals(table)
    reader, back = read(writers.arrow_stream(table, compression))
    assert reader.format == ARROW_STREAM and back.equals(table)


@pytest.mark.parametrize("data_of", [
    lambda t: writers.parquet(t, row_group_size=25),
    lambda t: writers.arrow_file(t),
    lambda t: writers.arrow_stream(t),
])
def test_batches_never_exceed_batch_size(table, data_of):
    reader = BatchReader(io.BytesIO(data_of(table)), "f", 10)
    sizes = [b.num_rows for b in reader]
    assert max(sizes) <= 10 and sum(sizes) == table.num_rows


def test_format_comes_from_bytes_not_name(table):
    reader = BatchReader(io.BytesIO(writers.arrow_stream(table)), "traces/x.parquet", 100)
    assert reader.format == ARROW_STREAM


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"hello world, not parquet", "not a Parquet or Arrow IPC file"),
        (b"FEA1" + b"\0" * 20, "Feather v1"),
        (b"PAR1" + b"\0" * 40 + b"PAR1", "cannot read parquet"),
    ],
)
def test_unreadable_files_raise_read_error(data, reason):
    with pytest.raises(ReadError) as info:
        list(BatchReader(io.BytesIO(data), "traces/bad.parquet", 10))
    assert reason in str(info.value) and info.value.file == "traces/bad.parquet"


def test_truncated_files_raise_read_error(table):
    for data in (writers.parquet(table), writers.arrow_file(table), writers.arrow_stream(table)):
        with pytest.raises(ReadError):
            list(BatchReader(io.BytesIO(data[: len(data) // 2]), "cut", 10))


def test_a_column_name_that_is_not_utf8_is_a_read_error(tmp_path):
    """Found by hypothesis: a bit flip in an Arrow IPC schema made a name undecodable."""
    import io

    import pyarrow as pa
    import pytest

    from observatory_storage.ingest.errors import ReadError
    from observatory_storage.ingest.readers import BatchReader

    sink = io.BytesIO()
    with pa.ipc.new_file(sink, pa.schema([("trace_id", pa.string())])) as writer:
        writer.write_table(pa.table({"trace_id": ["a"]}))
    data = sink.getvalue().replace(b"trace_id", b"\xf4race_id")
    with pytest.raises(ReadError, match="column #0 is not valid UTF-8"):
        BatchReader(io.BytesIO(data), "traces/x.arrow", 100)
