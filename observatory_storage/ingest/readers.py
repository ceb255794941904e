"""Read landing files as record batches of bounded size, each tagged with its dataset.

:func:`open_reader` is the one entry point of the loader: it detects the format from the
content and returns a :class:`SourceReader`, whose ``batches()`` yields ``(dataset, batch)``
pairs. Parquet and Arrow IPC files hold one dataset (the landing folder's); an OTLP file
(``ingest/otlp``) may hold spans, metric points and log records at once. Every batch then
goes through the same conform -> COPY -> ledger path.

The format is detected from the first bytes, not the file name: Parquet starts with
``PAR1``, an Arrow IPC file with ``ARROW1``, an Arrow IPC stream with the continuation
marker ``FF FF FF FF`` (streams from writers older than Arrow 0.15, 2019, are refused).
Memory stays bounded by one row group column chunk (Parquet, read without pre-buffering)
or one writer batch (Arrow IPC), plus one output batch of ``copy_batch_size`` rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from observatory_storage.ingest.errors import ReadError
from observatory_storage.ingest.plain import plain
from observatory_storage.landing.keys import OTLP_ROOT

PARQUET = "parquet"
ARROW_FILE = "arrow-file"
ARROW_STREAM = "arrow-stream"


class SourceReader(Protocol):
    """What the loader reads a landing file through."""

    name: str
    format: str

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        """``(dataset, batch)`` pairs; a batch holds at most the reader's batch size rows."""
        ...


def open_reader(handle: BinaryIO, name: str, root: str, batch_size: int,
                units: tuple[int, int] | None = None) -> SourceReader:
    """The reader for a landing file found under ``root`` (a dataset name or ``otlp``).

    ``units`` reads only row groups (Parquet) or record batches (Arrow IPC file)
    ``[first, last)``: one part of a split file (see :attr:`BatchReader.units`).
    Raises ReadError when the content is not a format this root accepts.
    """
    head = handle.read(8)
    handle.seek(0)
    if not head.startswith((b"PAR1", b"ARROW1", b"\xff\xff\xff\xff")):
        if units is not None:
            raise ValueError(f"{name}: only Parquet and Arrow IPC files are split into parts")
        return _open_otlp(handle, name, root, batch_size)
    if root == OTLP_ROOT:
        fmt = detect_format(handle, name)
        raise ReadError(
            name, None, None,
            f"{fmt} file under otlp/ (otlp/ holds OTLP files; put Parquet and Arrow IPC files "
            "under traces/, metrics/ or logs/)",
        )
    return TableReader(handle, name, root, batch_size, units)


def _open_otlp(handle: BinaryIO, name: str, root: str, batch_size: int) -> SourceReader:
    """OTLP files (protobuf, JSON, JSON Lines, gzip/zstd): ``ingest/otlp``.

    Under a dataset folder a file that is not OTLP either keeps the Parquet/Arrow error
    (empty, Feather v1, garbage) so the message says what the folder expects.
    """
    # lazy: the OTLP modules (protobuf classes, zstd) cost ~0.1 s, paid only by OTLP files
    from observatory_storage.ingest.otlp.reader import OtlpReader

    head = handle.read(8)
    handle.seek(0)
    if root != OTLP_ROOT and (not head or head[:4] == b"FEA1"):
        detect_format(handle, name)  # raises: empty file / Feather v1
    try:
        return OtlpReader(handle, name, root, batch_size)
    except ReadError as exc:
        if root != OTLP_ROOT and exc.reason.startswith("not an OTLP file"):
            raise ReadError(
                name, None, None,
                f"not a Parquet or Arrow IPC file, nor OTLP (starts with {plain(head[:8])})",
            ) from None
        raise


def detect_format(handle: BinaryIO, name: str) -> str:
    head = handle.read(8)
    handle.seek(0)
    if head[:4] == b"PAR1":
        return PARQUET
    if head[:6] == b"ARROW1":
        return ARROW_FILE
    if head[:4] == b"\xff\xff\xff\xff":
        return ARROW_STREAM
    if not head:
        raise ReadError(name, None, None, "empty file")
    if head[:4] == b"FEA1":
        raise ReadError(name, None, None, "Feather v1 is not supported; write Feather v2 (Arrow IPC)")
    raise ReadError(
        name, None, None, f"not a Parquet or Arrow IPC file (starts with {plain(head[:8])})"
    )


class BatchReader:
    """Iterate a landing file as record batches of at most ``batch_size`` rows."""

    def __init__(self, handle: BinaryIO, name: str, batch_size: int,
                 units: tuple[int, int] | None = None):
        self.name = name
        self.batch_size = batch_size
        self.part = units
        self.format = detect_format(handle, name)
        self._handle = handle
        try:
            if self.format == PARQUET:
                self._parquet = pq.ParquetFile(
                    handle,
                    pre_buffer=False,
                    buffer_size=1 << 20,
                    coerce_int96_timestamp_unit="us",  # Spark/Impala INT96: keep years > 2262
                )
                self.schema = self._parquet.schema_arrow
                self.num_rows: int | None = self._parquet.metadata.num_rows
            elif self.format == ARROW_FILE:
                self._ipc_file = pa.ipc.open_file(handle)
                self.schema = self._ipc_file.schema
                self.num_rows = None
            else:
                self._ipc_stream = pa.ipc.open_stream(handle)
                self.schema = self._ipc_stream.schema
                self.num_rows = None
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ReadError(name, None, None, f"cannot read {self.format} file: {exc}") from None
        for index in range(len(self.schema)):
            try:
                self.schema.field(index).name  # noqa: B018 - decoding is the check
            except UnicodeDecodeError:
                raise ReadError(
                    name, None, None, f"the name of column #{index} is not valid UTF-8"
                ) from None

    @property
    def units(self) -> int | None:
        """How many parts the file could be split into at most: row groups (Parquet) or
        record batches (Arrow IPC file); None for an Arrow IPC stream (read in one go)."""
        if self.format == PARQUET:
            return self._parquet.metadata.num_row_groups
        if self.format == ARROW_FILE:
            return self._ipc_file.num_record_batches
        return None

    def _raw_batches(self) -> Iterator[pa.RecordBatch]:
        first, last = self.part if self.part is not None else (0, self.units or 0)
        if self.format == PARQUET:
            if first >= last:
                return
            yield from self._parquet.iter_batches(batch_size=self.batch_size, use_threads=False,
                                                  row_groups=range(first, last))
        elif self.format == ARROW_FILE:
            for i in range(first, last):
                yield self._ipc_file.get_batch(i)
        else:
            if self.part is not None:
                raise ValueError(f"{self.name}: an Arrow IPC stream is not split into parts")
            yield from self._ipc_stream

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Batches of at most batch_size rows; empty batches are skipped."""
        try:
            for batch in self._raw_batches():
                self._check_structure(batch)
                for start in range(0, batch.num_rows, self.batch_size):
                    yield batch.slice(start, self.batch_size)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ReadError(self.name, None, None, f"corrupt {self.format} file: {exc}") from None

    def _check_structure(self, batch: pa.RecordBatch) -> None:
        """Refuse corrupt offsets before any kernel reads through them.

        Arrow IPC readers do not validate offsets, and computing on an array whose offsets
        point outside its data crashes the process (SystemError or SIGSEGV). Invalid UTF-8
        alone is structurally safe: it is left to conform, which names its row.
        """
        for field, column in zip(batch.schema, batch.columns, strict=True):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid as exc:
                if not _only_bad_utf8(column):
                    raise ReadError(
                        self.name, field.name, None, f"corrupt {self.format} file: {exc}"
                    ) from None


class TableReader:
    """A Parquet or Arrow IPC file of one dataset (the folder it was found in)."""

    def __init__(self, handle: BinaryIO, name: str, dataset: str, batch_size: int,
                 units: tuple[int, int] | None = None):
        self.name = name
        self.dataset = dataset
        self.reader = BatchReader(handle, name, batch_size, units)
        self.format = self.reader.format

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        for batch in self.reader:
            yield self.dataset, batch


def _only_bad_utf8(column: pa.Array) -> bool:
    """True when a string column's structure is sound and only its UTF-8 is not."""
    as_binary = {pa.string(): pa.binary(), pa.large_string(): pa.large_binary()}.get(column.type)
    if as_binary is None:
        return False
    try:
        column.view(as_binary).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
