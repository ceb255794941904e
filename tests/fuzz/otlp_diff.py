"""The same OTLP file through both decoders (the Python reference and the compiled one),
and what differs: used by tests/ingest/test_otlp_native.py and the fuzz harnesses.

An outcome is the tables per dataset (and the batch sizes, the unusable counts), or the
error: its column, row and where (the line or message, and the record). jsonb columns
compare by parsed JSON value, as PostgreSQL stores them (key order free, the last of
duplicate keys wins); every other column compares exactly.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from observatory_storage.ingest.errors import ReadError
from observatory_storage.ingest.otlp.framing import Message
from observatory_storage.ingest.otlp.native import COMPILED, PYTHON
from observatory_storage.ingest.otlp.reader import OtlpReader

JSONB = frozenset({"attributes", "input_payload", "output_payload", "buckets"})


@dataclass
class Outcome:
    rows: dict = field(default_factory=dict)  # dataset -> {column: values}
    batches: dict = field(default_factory=dict)  # dataset -> [rows per batch]
    unusable: dict = field(default_factory=dict)
    error: tuple | None = None  # (column, row, where, reason)
    crash: str | None = None  # anything else escaping the reader (a bug in either)


def _where(reason: str) -> str:
    head, sep, _ = reason.partition(": ")
    if sep and head.startswith(("line ", "message ", "document")):
        return head
    return ""


def _json(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return ("not JSON", text)


def _values(name: str, values: list) -> list:
    return [_json(v) for v in values] if name in JSONB else values


def outcome(data: bytes | None, decoder: str, root: str = "otlp", batch_size: int = 64,
            messages: list[Message] | None = None) -> Outcome:
    """The outcome of a file (``data``), or of ``messages`` as a file's (framing skipped:
    every fuzzed message reaches the decoders, whatever its first bytes)."""
    out = Outcome()
    try:
        reader = OtlpReader(io.BytesIO(b"{}" if data is None else data), "f", root, batch_size,
                            decoder=decoder)
        if messages is not None:
            reader._messages = iter(messages)
        for dataset, batch in reader.batches():
            batch.validate(full=True)
            out.batches.setdefault(dataset, []).append(batch.num_rows)
            table = out.rows.setdefault(dataset, {})
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                table.setdefault(name, []).extend(column.to_pylist())
        out.unusable = reader.unusable
    except ReadError as exc:
        out.error = (exc.column, exc.row, _where(exc.reason), exc.reason)
    except Exception as exc:  # noqa: BLE001 - reported as a difference, never swallowed
        out.crash = f"{type(exc).__name__}: {exc}"
    return out


def differences(data: bytes | None, root: str = "otlp", batch_size: int = 64,
                messages: list[Message] | None = None) -> list[str]:
    """What the compiled decoder does differently from the reference on this file."""
    ref = outcome(data, PYTHON, root, batch_size, messages)
    got = outcome(data, COMPILED, root, batch_size, messages)
    diffs = []
    if ref.crash or got.crash:
        return [f"crash: python {ref.crash}; compiled {got.crash}"]
    if (ref.error is None) != (got.error is None):
        return [f"python {ref.error or 'loads'}; compiled {got.error or 'loads'}"]
    if ref.error is not None:
        if ref.error[:3] != got.error[:3]:
            diffs.append(f"error (column, row, where): python {ref.error}; compiled {got.error}")
        return diffs
    if ref.batches != got.batches:
        diffs.append(f"batches: python {ref.batches}; compiled {got.batches}")
    if ref.unusable != got.unusable:
        diffs.append(f"unusable: python {ref.unusable}; compiled {got.unusable}")
    for dataset, table in ref.rows.items():
        other = got.rows.get(dataset, {})
        for name, values in table.items():
            a, b = _values(name, values), _values(name, other.get(name, []))
            if a != b:
                i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                diffs.append(f"{dataset}.{name} row {i}: python {a[i] if i < len(a) else '-'!r:.300}"
                             f"; compiled {b[i] if i < len(b) else '-'!r:.300}")
    return diffs
