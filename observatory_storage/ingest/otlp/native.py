"""The compiled OTLP decoder (``_otlpdecode``, C in ``csrc/``): the same tables as the
Python walkers, and the same rows out.

The C code knows nothing of datasets, Dagster or settings: :func:`tables_blob` writes the
tables it reads once at start (the per-signal table of ``signals.py``, the attribute table
of ``mapping.rules``, the datasets' Arrow schemas, and the protobuf descriptors of
``opentelemetry-proto``), and its batches are Arrow arrays built straight from the buffers
it filled (``pa.Array.from_buffers``, no copy).

``OBS_OTLP_DECODER=python|compiled`` forces one decoder (default: compiled when built);
``reader.OtlpReader.decoder`` and :func:`decoder_name` say which runs. The Python decoder
(``sniff`` + ``walk``) stays the reference: ``tests/ingest/test_otlp_native.py`` decodes
the same files with both and compares the tables.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from observatory_storage.ingest.otlp.errors import OtlpError

if TYPE_CHECKING:
    import pyarrow as pa

    from observatory_storage.datasets import Dataset
    from observatory_storage.ingest.otlp.framing import Message

# (pyarrow, the datasets and the protobuf classes are imported where the decoding starts:
# `version` and `db status` only ask which decoder would run)

try:
    from observatory_storage.ingest.otlp import _otlpdecode
except ImportError as exc:  # not built (no C compiler at install time): the Python decoder
    _otlpdecode = None
    IMPORT_ERROR: str | None = str(exc)
else:
    IMPORT_ERROR = None

ENV = "OBS_OTLP_DECODER"
PYTHON, COMPILED = "python", "compiled"
available: bool = _otlpdecode is not None
VERSION = _otlpdecode.VERSION if available else None
SIGNAL_ORDER = ("traces", "metrics", "logs")  # as the C tables number them (signals.SIGNALS)


def sources_hash() -> str | None:
    """The hash setup.py compiles in, of the C sources as they are now (None: no sources)."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).resolve().parent
    paths = sorted([here / "_otlpdecode.c", *here.glob("csrc/od_*.c"), *here.glob("csrc/*.h")],
                   key=lambda p: p.name)
    if not all(p.exists() for p in paths):
        return None
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def choice() -> str:
    """The decoder OtlpReader uses now: OBS_OTLP_DECODER, else compiled when built."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted not in ("", PYTHON, COMPILED):
        raise ValueError(f"{ENV}={wanted!r}: expected {PYTHON} or {COMPILED}")
    if wanted == COMPILED and not available:
        raise RuntimeError(f"{ENV}=compiled but the compiled OTLP decoder is not built "
                           f"({IMPORT_ERROR}); reinstall with a C compiler (pip install -e .)")
    if wanted == PYTHON or not available:
        return PYTHON
    return COMPILED


def decoder_name(which: str | None = None) -> str:
    """``compiled (otlpdecode 1)`` or ``python``, for run metadata and ``version``."""
    which = which or choice()
    return f"compiled (otlpdecode {VERSION})" if which == COMPILED else PYTHON


def describe() -> str:
    """:func:`decoder_name`, or what is wrong with OBS_OTLP_DECODER (never raises)."""
    try:
        return decoder_name()
    except (ValueError, RuntimeError) as exc:
        return f"none ({exc})"


try:  # (at import; decoder_name() reads the variable again)
    NAME = decoder_name()
except (ValueError, RuntimeError):
    NAME = PYTHON

# --- the tables -----------------------------------------------------------------------------


def _arrow_type(t: pa.DataType) -> tuple[str, int, int]:
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.unit == "us":
        return "timestamp_us", 0, 0
    if pa.types.is_decimal(t):
        return "decimal128", t.precision, t.scale
    names = {pa.string(): "string", pa.int16(): "int16", pa.int32(): "int32",
             pa.int64(): "int64", pa.float64(): "float64", pa.bool_(): "bool"}
    if t in names:
        return names[t], 0, 0
    raise ValueError(f"the compiled decoder has no Arrow type {t}")


def _token(text: str) -> str:
    if not text or "\t" in text or "\n" in text:
        raise ValueError(f"table entry {text!r}: empty, or a tab or newline in it")
    return text


def _proto3(descriptor) -> bool:
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto()
    descriptor.file.CopyToProto(proto)
    return proto.syntax == "proto3"


def tables_blob() -> bytes:
    """The tables, as the text the C decoder parses (``csrc/od_tables.c``)."""
    from observatory_storage.datasets import DATASETS
    from observatory_storage.ingest.otlp import mapping, signals

    assert tuple(signals.SIGNALS) == SIGNAL_ORDER
    lines = ["otlpdecode-tables\t1"]
    messages: list = []
    index: dict[str, int] = {}

    def visit(d):
        if d.full_name in index:
            return
        if not _proto3(d):  # (upb checks UTF-8 in proto3 strings only; the C decoder always)
            raise ValueError(f"{d.full_name} is not proto3")
        index[d.full_name] = len(messages)
        messages.append(d)
        for f in d.fields:
            if f.message_type is not None:
                visit(f.message_type)

    for name in SIGNAL_ORDER:
        visit(signals.SIGNALS[name].message.DESCRIPTOR)
    for i, d in enumerate(messages):
        lines.append(f"pbmsg\t{i}\t{_token(d.full_name)}")
    for i, d in enumerate(messages):
        for f in d.fields:
            sub = index[f.message_type.full_name] if f.message_type is not None else -1
            oneof = f.containing_oneof.index if f.containing_oneof is not None else -1
            lines.append(f"pbfield\t{i}\t{f.number}\t{_token(f.name)}\t{_token(f.json_name)}\t"
                         f"{f.type}\t{int(f.is_repeated)}\t{sub}\t{oneof}")
    name_sets: list[dict] = []

    def names_index(names: dict | None) -> int:
        if names is None:
            return -1
        for i, known in enumerate(name_sets):
            if known is names:
                return i
        name_sets.append(names)
        return len(name_sets) - 1

    status_set = names_index(signals.STATUS_NAMES)
    temporality_set = names_index(signals.TEMPORALITY_NAMES)
    for s in SIGNAL_ORDER:
        for f in signals.SIGNALS[s].fields:
            names_index(f.names)
    for i, names in enumerate(name_sets):
        lines.append(f"enames\t{i}")
        lines += [f"ename\t{i}\t{_token(k)}\t{v}" for k, v in names.items()]
    lines += [f"statusnames\t{status_set}", f"temporalitynames\t{temporality_set}"]
    for table, mapped in (("status", signals.STATUS), ("temporality", signals.TEMPORALITY),
                          ("kinds", signals.KINDS)):
        lines += [f"map\t{table}\t{k}\t{_token(v)}" for k, v in mapped.items()]
    for i, name in enumerate(SIGNAL_ORDER):
        sig = signals.SIGNALS[name]
        lines.append(f"signal\t{i}\t{name}\t{index[sig.message.DESCRIPTOR.full_name]}\t"
                     f"{sig.resources[1]}\t{sig.scopes[1]}\t{sig.records[1]}")
        schema = DATASETS[name].arrow_schema
        columns = {f.name: j for j, f in enumerate(schema)}
        for j, field in enumerate(schema):
            kind, precision, scale = _arrow_type(field.type)
            lines.append(f"column\t{i}\t{j}\t{_token(field.name)}\t{kind}\t{int(field.nullable)}\t"
                         f"{precision}\t{scale}")
        for f in sig.fields:
            lines.append(
                f"field\t{i}\t{f.number}\t{_token(f.json)}\t{f.kind}\t"
                f"{columns[f.column] if f.column else -1}\t{_token(f.extra) if f.extra else '-'}\t"
                f"{int(f.required)}\t{names_index(f.names)}\t{f.to_column or '-'}")
        for r in mapping.rules(DATASETS[name]):
            lines.append(f"rule\t{i}\t{_token(r.name)}\t{columns[r.column]}\t{r.rank}\t{r.kind}\t"
                         f"{r.limit}\t{r.scale!r}\t{r.precision}\t{r.digits}")
    lines.append("end")
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def _tables():
    return _otlpdecode.Tables(tables_blob())


# --- decoding ---------------------------------------------------------------------------------


def _error(exc, where: str | None) -> OtlpError:
    reason, field, path, row = exc.args
    if path:
        where = f"{where}, {path}" if where else path
    return OtlpError(reason, field=field or None, where=where, row=row if row >= 0 else None)


def sniff(message: Message) -> tuple[str | None, object]:
    """``(signal, prepared)`` as ``sniff.decode``: the message validated (as upb or orjson
    would) and its signal told by the same rules; signal None: no records."""
    encoding = _otlpdecode.JSON if message.encoding == "json" else _otlpdecode.PROTO
    try:
        index, prepared = _tables().prepare(encoding, message.data)
    except _otlpdecode.DecodeError as exc:
        raise _error(exc, message.where) from None
    return (SIGNAL_ORDER[index] if index >= 0 else None), prepared


class Builder:
    """``mapping.RowBuilder``'s part for the compiled decoder: rows of one dataset in
    batches of ``batch_size``, accumulated across messages."""

    def __init__(self, dataset: Dataset, batch_size: int):
        self.dataset = dataset
        self.schema = dataset.arrow_schema
        self.batch_size = batch_size
        self._b = _tables().builder(SIGNAL_ORDER.index(dataset.name), batch_size)
        self._columns = [f.name for f in self.schema]

    def walk(self, prepared, where: str) -> Iterator[pa.RecordBatch]:
        """The batches filled while walking one prepared message."""
        self._b.start(prepared, where)
        while True:
            try:
                chunk = self._b.step()
            except _otlpdecode.DecodeError as exc:
                raise _error(exc, where) from None
            if chunk is None:
                return
            yield self._batch(chunk)

    def flush(self) -> pa.RecordBatch | None:
        try:
            chunk = self._b.flush()
        except _otlpdecode.DecodeError as exc:
            raise _error(exc, None) from None
        return None if chunk is None else self._batch(chunk)

    @property
    def unusable(self) -> dict[str, int]:
        return {c: n for c, n in zip(self._columns, self._b.unusable(), strict=True) if n}

    def _batch(self, chunk) -> pa.RecordBatch:
        import pyarrow as pa

        rows, columns = chunk
        arrays = []
        for field, (validity, offsets, data, nulls) in zip(self.schema, columns, strict=True):
            buffers = [pa.py_buffer(validity) if validity is not None else None]
            if offsets is not None:
                buffers.append(pa.py_buffer(offsets))
            buffers.append(pa.py_buffer(data if data is not None else b""))
            arrays.append(pa.Array.from_buffers(field.type, rows, buffers, null_count=nulls))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def json_valid(data: bytes) -> bool:
    """Whether orjson.loads accepts ``data`` (the C validator, no objects made)."""
    return _otlpdecode.json_valid(data)


def decode(message: Message, batch_size: int = 65536) -> tuple[str | None, list[pa.RecordBatch]]:
    """One message on its own: ``(signal, batches)`` (tests, fuzzing, benchmarks)."""
    from observatory_storage.datasets import DATASETS

    signal, prepared = sniff(message)
    if signal is None:
        return None, []
    builder = Builder(DATASETS[signal], batch_size)
    batches = list(builder.walk(prepared, message.where))
    last = builder.flush()
    return signal, batches + ([last] if last is not None else [])
