"""Conform record batches to a dataset contract (``datasets.py``), vectorized with Arrow.

Rules (docs/ingest.md explains them for users):

- Columns are matched by name; a column whose lower-cased name is a contract column
  matches it too (``StartTime`` does not, ``START_TIME`` does). Two source columns for
  one contract column is an error.
- Timestamps of any unit, with or without a time zone (naive = UTC), dates and ISO-8601
  strings become UTC microseconds; nanoseconds are truncated to microseconds. Years must
  lie in 1..9999.
- Integers are range-checked into int2/int4/int8; whole floats and numeric strings are
  accepted, fractions are not. Floats, integers, decimals and numeric strings become
  ``numeric`` (rounded to the column's scale). NaN and +/-Infinity are refused in every
  numeric column: PostgreSQL's numeric has no Infinity before v14 and a NaN latency
  poisons every average.
- Text accepts plain, large, view and dictionary strings, integers, and binary ids
  (hex-encoded, as OpenTelemetry's 16/8-byte trace/span ids). NUL characters and invalid
  UTF-8 in string columns are left to PostgreSQL's own encoding check during the COPY,
  which refuses them (SQLSTATE 22021) with the row and column; the file is quarantined.
- jsonb accepts JSON text (validated by PostgreSQL's jsonb input during the COPY, which
  refuses malformed JSON, NaN, Infinity and ``\\u0000``; JSON arriving as bytes is checked
  here), structs, maps and lists (serialized), and scalars.
- Columns unknown to the contract are folded into ``attributes`` under their own name,
  merged with an ``attributes`` column when the file has one (which must hold JSON
  objects); a key present in both with different values is an error, never a silent
  choice.
- ``provider`` and ``operation`` are mapped to the OpenTelemetry GenAI values (stripped,
  looked up case-insensitively in ``vocabulary.py``'s alias tables, else lowercased; a
  blank value becomes null; invalid UTF-8 is left to PostgreSQL's refusal as above).
- traces: ``duration_ms`` is derived from ``end_time - start_time`` and ``total_tokens``
  from ``input_tokens + output_tokens`` where missing (output tokens already include
  reasoning tokens in the OpenTelemetry conventions, so those are not added again).

Every violation raises :class:`ConformError` naming the file, the column and the first
bad row (0-based index in the file).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import math
from collections.abc import Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from observatory_storage.datasets import Column, Dataset
from observatory_storage.ingest.errors import ConformError
from observatory_storage.ingest.normalize import normalize
from observatory_storage.ingest.plain import plain

_MIN_TS = pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))
_MAX_TS = pa.scalar(
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC")
)
_UTC_US = pa.timestamp("us", tz="UTC")
_HAS_ZONE = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"


class _Fail(Exception):
    """Raised inside a converter: a row (relative to the batch) and a reason."""

    def __init__(self, row: int | None, reason: str):
        self.row = row
        self.reason = reason


# --- small vectorized helpers ---------------------------------------------------------


def _first_true(mask: pa.Array) -> int | None:
    """Index of the first true value of a boolean array, or None."""
    index = pc.index(mask.fill_null(False), True).as_py()
    return None if index < 0 else index


def _first_failing(array: pa.Array, convert: Callable[[pa.Array], object]) -> int:
    """Index of the first element on which an element-wise ``convert`` raises.

    Binary search over prefixes: only runs after a whole-array conversion failed, so the
    good path stays a single vectorized call.
    """
    lo, hi = 0, len(array) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            convert(array.slice(0, mid + 1))
        except (pa.ArrowException, ValueError, _Fail):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _try(array: pa.Array, convert: Callable[[pa.Array], pa.Array], reason: str) -> pa.Array:
    try:
        return convert(array)
    except (pa.ArrowException, ValueError) as exc:
        row = _first_failing(array, convert)
        detail = str(exc).split("\n")[0]
        raise _Fail(row, f"{reason}: {_show(array, row)} ({detail})") from None


def _show(array: pa.Array, row: int) -> str:
    """One value as a person reads it (no Python repr), even one Python cannot hold (a
    timestamp in year 300000)."""
    try:
        return plain(array[row].as_py())
    except (OverflowError, ValueError):
        try:
            return f"{array.slice(row, 1).cast(pa.int64())[0].as_py()} ({array.type})"
        except (pa.ArrowException, ValueError):
            return f"<a {array.type} value>"


def _decode(array: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(array.type):
        return array.dictionary_decode()
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks()
    return array


def _is_stringish(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_binaryish(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _reject_non_finite(array: pa.Array) -> None:
    if pa.types.is_floating(array.type):
        row = _first_true(pc.invert(pc.is_finite(array)))
        if row is not None:
            raise _Fail(row, f"{plain(array[row].as_py())} is not a finite number")


def _utf8(array: pa.Array) -> pa.Array:
    """Validate UTF-8 and refuse NUL characters in a string array."""
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        as_binary = array.cast(pa.binary())
        for i, value in enumerate(as_binary.to_pylist()):
            if value is not None:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Fail(i, "invalid UTF-8") from None
        raise
    row = _first_true(pc.match_substring(array, "\x00"))
    if row is not None:
        raise _Fail(row, "NUL character (PostgreSQL text cannot store \\0)")
    return array


# --- converters: source array -> contract Arrow type -----------------------------------


def to_timestamp(array: pa.Array) -> pa.Array:
    t = array.type
    if pa.types.is_timestamp(t):
        if t.tz is None:  # naive timestamps are UTC by convention
            array = array.cast(pa.timestamp(t.unit, tz="UTC"))
        if t.unit == "ns":  # truncate: PostgreSQL keeps microseconds
            out = array.cast(_UTC_US, safe=False)
        else:
            out = _try(array, lambda a: a.cast(_UTC_US), "timestamp out of range")
    elif pa.types.is_date(t):
        out = _try(array, lambda a: a.cast(_UTC_US), "date out of range")
    elif _is_stringish(t):
        out = _try(array.cast(pa.string()), _parse_iso, "not an ISO-8601 timestamp")
    else:
        raise _Fail(None, f"expected a timestamp, date or ISO-8601 string, got {t}")
    row = _first_true(pc.or_(pc.less(out, _MIN_TS), pc.greater(out, _MAX_TS)))
    if row is not None:
        raise _Fail(row, f"timestamp {_show(out, row)} outside years 1..9999")
    return out


def _parse_iso(strings: pa.Array) -> pa.Array:
    strings = pc.utf8_trim_whitespace(strings)
    zoned = pc.match_substring_regex(strings, _HAS_ZONE)
    aware = pc.if_else(zoned, strings, None).cast(_UTC_US)
    naive = pc.if_else(zoned, None, strings).cast(pa.timestamp("us")).cast(_UTC_US)
    return pc.coalesce(aware, naive)


def to_text(array: pa.Array) -> pa.Array:
    t = array.type
    if _is_stringish(t):
        # Not re-validated here: PostgreSQL verifies every text value's encoding on input
        # and refuses invalid UTF-8 and NUL (SQLSTATE 22021); the loader quarantines the
        # file naming the row and column from COPY's context. Checking here as well cost
        # an eighth of the client's CPU.
        return array.cast(pa.string())
    if pa.types.is_integer(t):
        out = array.cast(pa.string())
    elif _is_binaryish(t):  # OpenTelemetry ids arrive as raw bytes: store them as hex
        out = pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
    else:
        raise _Fail(None, f"expected text, got {t}")
    return _utf8(out)


def to_integer(target: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    def convert(array: pa.Array) -> pa.Array:
        t = array.type
        if pa.types.is_boolean(t) or not (_is_numeric(t) or _is_stringish(t)):
            raise _Fail(None, f"expected an integer, got {t}")
        _reject_non_finite(array)
        if _is_stringish(t):
            array = pc.utf8_trim_whitespace(array.cast(pa.string()))
        return _try(array, lambda a: a.cast(target), f"not a whole number fitting {target}")

    return convert


def to_float(array: pa.Array) -> pa.Array:
    t = array.type
    if not (_is_numeric(t) or _is_stringish(t)):
        raise _Fail(None, f"expected a number, got {t}")
    source = array.cast(pa.string()) if _is_stringish(t) else array
    out = _try(source, lambda a: a.cast(pa.float64()), "not a number")
    _reject_non_finite(out)
    return out


def to_decimal(target: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    wide = pa.decimal128(38, max(target.scale, 18))

    def rounded(a: pa.Array) -> pa.Array:
        if pa.types.is_decimal(a.type):
            return pc.round(a, target.scale).cast(target)
        if _is_stringish(a.type):
            try:
                return a.cast(target)
            except pa.ArrowInvalid:  # more fractional digits than the column keeps
                return pc.round(a.cast(wide), target.scale).cast(target)
        if pa.types.is_integer(a.type):  # widen first: int64 needs 19 digits before the point
            return a.cast(pa.decimal128(38, target.scale)).cast(target)
        return a.cast(target)  # floats round to the scale

    def convert(array: pa.Array) -> pa.Array:
        t = array.type
        if not (_is_numeric(t) or _is_stringish(t)):
            raise _Fail(None, f"expected a number, got {t}")
        _reject_non_finite(array)
        source = pc.utf8_trim_whitespace(array.cast(pa.string())) if _is_stringish(t) else array
        return _try(source, rounded, f"not a number fitting {target}")

    return convert


def to_boolean(array: pa.Array) -> pa.Array:
    if not (pa.types.is_boolean(array.type) or _is_stringish(array.type)):
        raise _Fail(None, f"expected a boolean, got {array.type}")
    return _try(array, lambda a: a.cast(pa.bool_()), "not a boolean")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON for PostgreSQL")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _check_json_text(text: str) -> None:
    """Accept what PostgreSQL's jsonb input accepts (as far as it matters here).

    orjson (strict RFC 8259, ~10x faster) decides almost every value; what it refuses is
    re-checked by the standard library, which also accepts numbers beyond a double
    (PostgreSQL stores those as numeric) but not NaN or Infinity.
    """
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            _STRICT_DECODER.decode(text)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    if "\\u0000" in text:
        raise ValueError("\\u0000 is not allowed in PostgreSQL jsonb")


def to_json(array: pa.Array) -> pa.Array:
    t = array.type
    if _is_stringish(t) or _is_binaryish(t):
        if _is_stringish(t):
            # JSON text is parsed by PostgreSQL's jsonb input anyway, which refuses
            # malformed JSON, NaN/Infinity and \u0000 (SQLSTATE 22P02/22P05); the loader
            # turns that refusal into a quarantine naming the file, column and row from
            # COPY's context. Parsing every value here too doubled the client's CPU.
            return to_text(array)
        raw = array.cast(pa.binary())
        text = _utf8(_try(raw, lambda a: a.cast(pa.string()), "invalid UTF-8"))
        for i, value in enumerate(text.to_pylist()):
            if value is not None:
                try:
                    _check_json_text(value)
                except ValueError as exc:
                    raise _Fail(i, f"invalid JSON: {exc}") from None
        return text
    return json_texts(array)


def json_values(array: pa.Array) -> list:
    """Python values ready for json.dumps, guided by the Arrow type (maps -> objects)."""
    out = []
    for i, value in enumerate(array.to_pylist()):
        try:
            out.append(_jsonable(value, array.type))
        except ValueError as exc:
            raise _Fail(i, f"cannot be stored as JSON: {exc}") from None
    return out


def json_texts(array: pa.Array) -> pa.Array:
    out = []
    for i, value in enumerate(json_values(array)):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(_dumps(value))
        except ValueError as exc:
            raise _Fail(i, f"cannot be stored as JSON: {exc}") from None
    return _utf8(pa.array(out, pa.string()))


def _dumps(value) -> str:
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        raise ValueError("NUL character is not allowed in PostgreSQL jsonb")
    return text


def _jsonable(value, t: pa.DataType):
    if value is None:
        return None
    if pa.types.is_dictionary(t):
        return _jsonable(value, t.value_type)
    if pa.types.is_map(t):
        return {str(_jsonable(k, t.key_type)): _jsonable(v, t.item_type) for k, v in value}
    if pa.types.is_struct(t):
        return {f.name: _jsonable(value.get(f.name), f.type) for f in t}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or (
        pa.types.is_list_view(t) or pa.types.is_large_list_view(t)
    ):
        return [_jsonable(v, t.value_type) for v in value]
    if isinstance(value, decimal.Decimal):  # a JSON number when a float keeps it exactly
        number = float(value)
        return number if decimal.Decimal(repr(number)) == value else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not valid JSON")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def converter_for(column: Column) -> Callable[[pa.Array], pa.Array]:
    target = column.arrow_type
    if column.pg_type == "jsonb":
        return to_json
    if pa.types.is_timestamp(target):
        return to_timestamp
    if pa.types.is_string(target):
        return to_text
    if pa.types.is_integer(target):
        return to_integer(target)
    if pa.types.is_floating(target):
        return to_float
    if pa.types.is_decimal(target):
        return to_decimal(target)
    if pa.types.is_boolean(target):
        return to_boolean
    raise TypeError(f"no converter for {column.pg_type}")


def _normalized(column: Column) -> Callable[[pa.Array], pa.Array]:
    """The column's converter, then its vocabulary's spelling (provider, operation)."""
    convert = converter_for(column)
    if not column.vocabulary:
        return convert
    return lambda array: normalize(convert(array), column.vocabulary)


# --- the conformer ---------------------------------------------------------------------


class Conformer:
    """Conform every batch of one file: the column mapping is resolved once per file."""

    def __init__(self, dataset: Dataset, schema: pa.Schema, file: str):
        self.dataset = dataset
        self.file = file
        self.rows_seen = 0
        self.source: dict[str, int] = {}  # contract column -> source field index
        self.unknown: list[tuple[str, int]] = []  # folded into attributes
        contract = set(dataset.column_names)
        by_lower: dict[str, list[int]] = {}
        for index, field in enumerate(schema):
            if field.name in contract:
                if field.name in self.source:
                    self._schema_error(field.name, "appears twice in the file")
                self.source[field.name] = index
            else:
                by_lower.setdefault(field.name.lower(), []).append(index)
        for lower, indexes in by_lower.items():
            if lower in contract and lower not in self.source:
                if len(indexes) > 1:
                    names = ", ".join(schema[i].name for i in indexes)
                    self._schema_error(lower, f"matched by several columns ({names})")
                self.source[lower] = indexes[0]
            else:
                self.unknown.extend((schema[i].name, i) for i in indexes)
        self.unknown.sort(key=lambda item: item[1])
        for name in dataset.required:
            if name not in self.source:
                self._schema_error(name, "required column is missing")
        attributes = dataset.attributes_column
        if self.unknown and attributes not in contract:
            names = ", ".join(name for name, _ in self.unknown)
            self._schema_error(None, f"unknown columns and no attributes column: {names}")
        self.converters = {c.name: _normalized(c) for c in dataset.columns}

    def _schema_error(self, column: str | None, reason: str):
        raise ConformError(self.file, column, None, reason)

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch in exactly the contract's schema; raises ConformError."""
        offset, n = self.rows_seen, batch.num_rows
        columns: dict[str, pa.Array | None] = {}
        for column in self.dataset.columns:
            index = self.source.get(column.name)
            if index is None:
                columns[column.name] = None
                continue
            if pa.types.is_null(batch.column(index).type):  # an all-null column
                columns[column.name] = pa.nulls(n, column.arrow_type)
                continue
            with self._locate(column.name, offset):
                columns[column.name] = self.converters[column.name](_decode(batch.column(index)))
        if self.unknown:
            with self._locate(self.dataset.attributes_column, offset):
                columns[self.dataset.attributes_column] = self._fold_unknown(
                    batch, columns[self.dataset.attributes_column], offset
                )
        derive = _DERIVE.get(self.dataset.name)
        if derive is not None:
            derive(self, columns, offset)
        arrays = []
        for column in self.dataset.columns:
            array = columns[column.name]
            if array is None:
                array = pa.nulls(n, column.arrow_type)
            if column.required:
                row = _first_true(pc.is_null(array))
                if row is not None:
                    raise ConformError(self.file, column.name, offset + row, "required value is null")
            arrays.append(array)
        self.rows_seen += n
        return pa.RecordBatch.from_arrays(arrays, schema=self.dataset.arrow_schema)

    @contextlib.contextmanager
    def _locate(self, column: str, offset: int):
        """Turn a converter failure into a ConformError with the file's row number."""
        try:
            yield
        except _Fail as exc:
            row = None if exc.row is None else offset + exc.row
            raise ConformError(self.file, column, row, exc.reason) from None
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            reason = f"cannot convert: {str(exc).splitlines()[0]}"
            raise ConformError(self.file, column, None, reason) from None

    def _fold_unknown(self, batch: pa.RecordBatch, existing: pa.Array | None, offset: int):
        values = [(name, json_values(_decode(batch.column(i)))) for name, i in self.unknown]
        current = existing.to_pylist() if existing is not None else [None] * batch.num_rows
        out = []
        for row, text in enumerate(current):
            try:
                merged = {} if text is None else json.loads(text)
            except RecursionError:
                raise _Fail(row, "invalid JSON: nested too deeply") from None
            except ValueError as exc:
                raise _Fail(row, f"invalid JSON: {exc}") from None
            if not isinstance(merged, dict):
                raise _Fail(row, "attributes must be a JSON object to merge unknown columns into")
            for name, column_values in values:
                value = column_values[row]
                if value is None:
                    continue
                if name in merged and merged[name] != value:
                    raise _Fail(
                        row, f"column {name!r} and attributes key {name!r} hold different values"
                    )
                merged[name] = value
            try:
                out.append(_dumps(merged) if merged else None)
            except ValueError as exc:
                raise _Fail(row, f"cannot be stored as JSON: {exc}") from None
        return pa.array(out, pa.string())


# --- dataset-specific derived columns --------------------------------------------------


def _derive_traces(conformer: Conformer, columns: dict, offset: int) -> None:
    start, end = columns["start_time"], columns["end_time"]
    if end is not None and start is not None:
        micros = pc.subtract(end, start).cast(pa.int64())
        # safe=False: spans longer than 2**53 us (285 years) only lose sub-ms precision
        derived = pc.divide(micros.cast(pa.float64(), safe=False), 1000.0)
        duration = columns["duration_ms"]
        columns["duration_ms"] = derived if duration is None else pc.coalesce(duration, derived)
    inputs, outputs = columns["input_tokens"], columns["output_tokens"]
    if inputs is not None or outputs is not None:
        n = len(start) if start is not None else len(inputs if inputs is not None else outputs)
        a = (inputs if inputs is not None else pa.nulls(n, pa.int32())).cast(pa.int64())
        b = (outputs if outputs is not None else pa.nulls(n, pa.int32())).cast(pa.int64())
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        total = pc.if_else(both_null, None, pc.add(a.fill_null(0), b.fill_null(0)))
        given = columns["total_tokens"]
        total = total if given is None else pc.coalesce(given.cast(pa.int64()), total)
        row = _first_true(pc.greater(total, 2**31 - 1))
        if row is not None:
            raise ConformError(
                conformer.file, "total_tokens", offset + row, "input + output tokens exceed int4"
            )
        columns["total_tokens"] = total.cast(pa.int32())


_DERIVE = {"traces": _derive_traces}
