"""The loader's reader for OTLP files: messages -> signal -> rows -> (dataset, batch).

Under ``otlp/`` every signal loads (a fileexporter used by several pipelines writes
spans, metric points and log records into one file). Under ``traces/``, ``metrics/`` or
``logs/`` the content must be that folder's signal. Every problem is a ReadError naming
the file, the OTLP field, and the line or message and record; the file is quarantined.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from observatory_storage.datasets import get_dataset
from observatory_storage.ingest.errors import ReadError
from observatory_storage.ingest.otlp import framing, json_access, native, proto_access, sniff
from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.mapping import RowBuilder
from observatory_storage.ingest.otlp.signals import SIGNALS
from observatory_storage.ingest.otlp.walk import WALKERS
from observatory_storage.landing.keys import OTLP_ROOT

ACCESS = {framing.JSON: json_access, framing.PROTO: proto_access}


class OtlpReader:
    """``batches()`` yields ``(dataset, batch)`` in the contract's column names and types.

    ``decoder``: which decoder reads the file, the compiled one (``native``) or the Python
    reference (``sniff`` + ``walk``); OBS_OTLP_DECODER forces one (docs/otlp.md)."""

    def __init__(self, handle: BinaryIO, name: str, root: str, batch_size: int,
                 decoder: str | None = None):
        self.name = name
        self.root = root
        self.batch_size = batch_size
        self.signals: set[str] = set()
        self._builders: dict[str, RowBuilder | native.Builder] = {}
        self._compiled = (decoder or native.choice()) == native.COMPILED
        self.decoder = native.decoder_name(native.COMPILED if self._compiled else native.PYTHON)
        try:
            self.format, self._messages = framing.messages(
                handle, native.json_valid if self._compiled else None)
        except OtlpError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OtlpError) -> ReadError:
        reason = f"{exc.where}: {exc.reason}" if exc.where else exc.reason
        return ReadError(self.name, exc.field, exc.row, reason)

    @property
    def unusable(self) -> dict[str, int]:
        """Attribute values that did not fit their column, per column (see mapping.py)."""
        out: dict[str, int] = {}
        for builder in self._builders.values():
            for column, n in builder.unusable.items():
                out[column] = out.get(column, 0) + n
        return out

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        builders = self._builders
        compiled = self._compiled
        where = None
        try:
            for message in self._messages:
                where = message.where
                signal, decoded = native.sniff(message) if compiled else sniff.decode(message)
                if signal is None:
                    continue
                if self.root != OTLP_ROOT and signal != self.root:
                    raise OtlpError(
                        f"holds {signal} ({SIGNALS[signal].resources[1]}), but the file is "
                        f"under {self.root}/ (put OTLP files under otlp/, where the signal is "
                        f"read from the content, or under {signal}/)", where=where,
                    )
                self.signals.add(signal)
                builder = builders.get(signal)
                if builder is None:
                    make = native.Builder if compiled else RowBuilder
                    builder = builders[signal] = make(get_dataset(signal), self.batch_size)
                if compiled:  # the same rows, from C (the Python walk below is the reference)
                    yield from ((signal, batch) for batch in builder.walk(decoded, where))
                    continue
                # A parsed JSON document is millions of objects that hold no cycles: frozen,
                # the collector stops re-scanning them at every collection while the rows
                # are mapped (measured 2x on a 100 MB document); unfrozen right after.
                frozen = message.encoding == framing.JSON
                if frozen:
                    gc.freeze()
                try:
                    walk = WALKERS[signal](ACCESS[message.encoding], decoded, builder, where)
                    yield from ((signal, batch) for batch in walk)
                except (AttributeError, TypeError, KeyError) as exc:
                    kind = "" if isinstance(exc, json_access.Malformed) else f"{type(exc).__name__} "
                    raise OtlpError(f"malformed OTLP structure: {kind}{exc}",
                                    where=where) from None
                finally:
                    if frozen:
                        gc.unfreeze()
                    decoded = None
            where = None
            for signal, builder in builders.items():
                batch = builder.flush()
                if batch is not None:
                    yield signal, batch
        except OtlpError as exc:
            if exc.where is None and where is not None:
                exc.where = where
            raise self._error(exc) from None
