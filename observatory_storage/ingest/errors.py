"""Errors that make a file unloadable. They quarantine that file; other files keep flowing."""

from __future__ import annotations


class BadFile(Exception):
    """A landing file that cannot be loaded as it is; names file, column, row and reason.

    ``row`` is the 0-based index of the first offending row in the file (as pandas and
    polars number rows), or None when the problem is not in one row (schema, format).
    """

    def __init__(self, file: str, column: str | None, row: int | None, reason: str):
        self.file = file
        self.column = column
        self.row = row
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        location = f" ({', '.join(where)})" if where else ""
        return f"{self.file}{location}: {self.reason}"

    def __reduce__(self):  # picklable across processes (Dagster, multiprocessing)
        return (type(self), (self.file, self.column, self.row, self.reason))


class ReadError(BadFile):
    """The file is not a readable Parquet / Arrow IPC file."""


class ConformError(BadFile):
    """A value or column does not fit the dataset contract."""


class RejectedByDatabase(BadFile):
    """PostgreSQL refused the data (a data exception raised during COPY)."""
