"""OTLP attributes -> contract columns, and rows -> Arrow batches in the contract's types.

The attribute table is data: every contract column's ``otel`` names (``datasets.py``),
current semantic-convention name first. A record's attribute (or, failing that, its
resource's) whose name is listed fills the column: the earliest listed name present wins;
every attribute not used for a column, and every other OTLP field without a column, goes
to ``attributes`` (JSON object) under a namespaced key so nothing collides and nothing is
dropped (docs/otlp.md):

- the record's own attributes: their own names (``gen_ai.prompt``, ``http.method``);
- resource attributes: ``resource.<name>``; scope: ``scope.name``, ``scope.version``,
  ``scope.<attribute>``; schema URLs ``resource.schema_url`` / ``scope.schema_url``;
- span fields: ``span.trace_state``, ``span.flags``, ``span.dropped_*``; ``events`` and
  ``links`` as lists; metric fields ``metric.description``, ``metric.flags``,
  ``exemplars``; log fields ``log.observed_time_unix_nano``, ``log.flags``.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
import pyarrow as pa

from observatory_storage.datasets import Column, Dataset
from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.plain import plain

SKIP = object()  # a value that does not fit its column: it stays in attributes

# Numbers written as text: ASCII digits only (Python's int()/float() also take "1_000",
# other scripts' digits and "inf"; a compiled decoder and the docs follow this one rule).
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPACE = " \t\r\n"
_INT_LIMITS = {"smallint": 1 << 15, "integer": 1 << 31, "bigint": 1 << 63}
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """A-Z lowered, nothing else (str.lower() also folds other scripts, by Unicode tables)."""
    return text.translate(_LOWER)


def _text(value):
    """Text columns: strings as they are; a list (finish_reasons ["stop"]) joined by commas;
    booleans and numbers as JSON writes them; anything else (kvlists, NaN) stays in
    attributes."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(v if isinstance(v, str) else dumps(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return SKIP
    if isinstance(value, bool | int | float):
        return dumps(value)
    return SKIP


def _integer(limit: int) -> Callable:
    """Integer columns: integers, integral floats and integer text within the column's
    range (smallint, integer, bigint); anything else stays in attributes."""

    def convert(value):
        if isinstance(value, bool):
            return SKIP
        if isinstance(value, float):
            if not value.is_integer():  # also NaN and infinities
                return SKIP
            value = int(value)
        elif isinstance(value, str):
            text = value.strip(_SPACE)
            if not _INT_TEXT.fullmatch(text):
                return SKIP
            value = int(text)
        elif not isinstance(value, int):
            return SKIP
        return value if -limit <= value < limit else SKIP

    return convert


def _number(scale: float) -> Callable:
    """double precision columns: finite numbers and number text, times the column's scale."""

    def convert(value):
        if isinstance(value, bool):
            return SKIP
        if isinstance(value, str):
            text = value.strip(_SPACE)
            if not _NUMBER_TEXT.fullmatch(text):
                return SKIP
            value = float(text)
        if isinstance(value, int | float):
            number = value * scale if scale != 1.0 else float(value)
            return number if math.isfinite(number) else SKIP  # NaN/Inf stay in attributes
        return SKIP

    return convert


def _decimal(precision: int, scale: int) -> Callable:
    """numeric(p, s) columns (cost_usd): the value rounded to the column's scale, half to
    even; a float from its exact binary value (OpenLIT's 0.00023099999999999998 is
    0.000231000), text as written; beyond the column's precision it stays in attributes."""
    quantum = decimal.Decimal(1).scaleb(-scale)
    limit = decimal.Decimal(10) ** (precision - scale)
    context = decimal.Context(prec=precision + 2, rounding=decimal.ROUND_HALF_EVEN)

    def convert(value):
        if isinstance(value, bool):
            return SKIP
        if isinstance(value, float):
            if not math.isfinite(value):
                return SKIP
            number = decimal.Decimal(value)  # exact: every binary digit
        elif isinstance(value, int):
            number = decimal.Decimal(value)
        elif isinstance(value, str):
            text = value.strip(_SPACE)
            if not _NUMBER_TEXT.fullmatch(text):
                return SKIP
            number = decimal.Decimal(text)
        else:
            return SKIP
        if number.adjusted() >= precision - scale:  # too many integer digits
            return SKIP
        number = number.quantize(quantum, context=context)
        return number if abs(number) < limit else SKIP

    return convert


def _json(value):
    """JSON text: a string holding JSON is kept as is, other strings become JSON strings,
    structured values (arrays, kvlists) are serialized."""
    if isinstance(value, str):
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            return orjson.dumps(value).decode()
        return value
    return dumps(value)


def dumps(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True)
class Rule:
    """How one OpenTelemetry attribute fills one column: the attribute table every decoder
    reads (this module's walkers, and a compiled decoder), built from the contracts'
    ``Column.otel`` names (``datasets.py``)."""

    name: str  # the attribute
    column: str
    rank: int  # 0 = the current semantic-convention name; a lower rank wins
    kind: str  # text, json, integer, number, decimal (see the converters above)
    limit: int = 0  # integer: values must lie in [-limit, limit)
    scale: float = 1.0  # number: attribute value x scale = column value (s -> ms: 1000)
    precision: int = 0  # decimal: numeric(precision, digits)
    digits: int = 0


def column_rule(column: Column) -> tuple[str, dict]:
    """(kind, parameters) of the conversion into a contract column."""
    base, _, args = column.pg_type.partition("(")
    if base == "jsonb":
        return "json", {}
    if base in _INT_LIMITS:
        return "integer", {"limit": _INT_LIMITS[base]}
    if base == "double precision":
        return "number", {"scale": column.otel_scale}
    if base == "numeric":
        precision, digits = (int(x) for x in args.rstrip(")").split(","))
        return "decimal", {"precision": precision, "digits": digits}
    return "text", {}


def rules(dataset: Dataset) -> list[Rule]:
    """The dataset's attribute table; a name listed by two columns fills the first."""
    out: dict[str, Rule] = {}
    for column in dataset.columns:
        kind, params = column_rule(column)
        for rank, name in enumerate(column.otel):
            out.setdefault(name, Rule(name, column.name, rank, kind, **params))
    return list(out.values())


def converter(rule: Rule) -> Callable:
    if rule.kind == "json":
        return _json
    if rule.kind == "integer":
        return _integer(rule.limit)
    if rule.kind == "number":
        return _number(rule.scale)
    if rule.kind == "decimal":
        return _decimal(rule.precision, rule.digits)
    return _text


class AttributeMap:
    """attribute name -> (column, rank, converter) for one dataset's contract."""

    def __init__(self, dataset: Dataset):
        # values of a mapped attribute that did not fit its column (kept in attributes),
        # per column: the run's metadata reports them
        self.unusable: dict[str, int] = {}
        self.rules = rules(dataset)
        converters: dict[str, Callable] = {}
        self.lookup: dict[str, tuple[str, int, Callable]] = {}
        for rule in self.rules:
            convert = converters.get(rule.column)
            if convert is None:
                convert = converters[rule.column] = converter(rule)
            self.lookup[rule.name] = (rule.column, rule.rank, convert)

    def split_kvs(self, kvs, value_of: Callable, row: dict, extra: dict, *, json: bool) -> None:
        """:meth:`split` straight over a record's KeyValue list (protobuf messages, or
        OTLP/JSON dicts when ``json``), decoding each value with ``value_of``: the hot path,
        no intermediate pairs."""
        if not kvs:
            return
        chosen: dict[str, tuple[int, str, object]] | None = None
        lookup = self.lookup
        for kv in kvs:
            if json:
                key, raw = kv["key"], kv.get("value")
                if key.__class__ is not str:
                    raise TypeError(f"attribute key {key!r} is not a string")
                value = raw["stringValue"] if raw and "stringValue" in raw else None
                if value.__class__ is not str:  # absent, null, or not a string (refused)
                    value = value_of(raw)
            else:
                key, raw = kv.key, kv.value
                kind = raw.WhichOneof("value")
                value = raw.string_value if kind == "string_value" else value_of(raw)
            hit = lookup.get(key)
            if hit is None:
                extra[key] = value
                continue
            column, rank, convert = hit
            # text attributes into text columns (most hits) need no conversion
            converted = value if (convert is _text and value.__class__ is str) else convert(value)
            if converted is SKIP or converted is None:
                extra[key] = value
                if value is not None:
                    self.unusable[column] = self.unusable.get(column, 0) + 1
                continue
            if chosen is None:
                chosen = {}
            held = chosen.get(column)
            if held is None or rank < held[0]:
                if held is not None:
                    extra[held[1]] = held[2]
                chosen[column] = (rank, key, value)
                row[column] = converted
            else:
                extra[key] = value

    def split(self, items: Iterable[tuple[str, object]], row: dict, extra: dict,
              prefix: str = "") -> dict[str, str]:
        """Put mapped attributes in ``row`` (best-ranked name wins), the rest in ``extra``
        (keys prefixed). Returns column -> attribute name used, for the columns filled."""
        chosen: dict[str, tuple[int, str, object]] = {}
        lookup = self.lookup
        for key, value in items:
            hit = lookup.get(key)
            if hit is None:
                extra[prefix + key] = value
                continue
            column, rank, convert = hit
            converted = convert(value)
            if converted is SKIP or converted is None:
                extra[prefix + key] = value
                if value is not None:
                    self.unusable[column] = self.unusable.get(column, 0) + 1
                continue
            held = chosen.get(column)
            if held is None or rank < held[0]:
                if held is not None:
                    extra[prefix + held[1]] = held[2]
                chosen[column] = (rank, key, value)
                row[column] = converted
            else:
                extra[prefix + key] = value
        return {column: key for column, (_, key, _) in chosen.items()}


class Resource:
    """A resource's (or a scope's) contribution to each of its records: columns filled from
    its attributes, and its other attributes under their namespace."""

    __slots__ = ("row", "extra", "used", "extra_json")

    def __init__(self, row: dict, extra: dict, used: dict[str, tuple[str, object]]):
        self.row = row
        self.extra = extra
        self.used = used  # column -> (attribute name, original value)
        # the extras as the inside of a JSON object, spliced before each record's own
        # (jsonb keeps the last of duplicate keys, so a record's attribute wins)
        self.extra_json = dumps(extra)[1:-1] if extra else ""


def resource(amap: AttributeMap, attributes: list[tuple[str, object]], schema_url: str,
             scope_name: str = "", scope_version: str = "",
             scope_attributes: list[tuple[str, object]] = (), scope_schema_url: str = ""
             ) -> Resource:
    row: dict = {}
    extra: dict = {}
    used = amap.split(attributes, row, extra, "resource.")
    values = dict(attributes)
    if schema_url:
        extra["resource.schema_url"] = schema_url
    if scope_name:
        extra["scope.name"] = scope_name
    if scope_version:
        extra["scope.version"] = scope_version
    for key, value in scope_attributes:
        extra.setdefault(f"scope.{key}", value)
    if scope_schema_url:
        extra["scope.schema_url"] = scope_schema_url
    return Resource(row, extra, {c: (k, values[k]) for c, k in used.items()})


def finish(row: dict, extra: dict, context: Resource, column: str) -> None:
    """Merge the resource's columns under the record's own (a record's attribute wins; the
    resource's value is then kept under ``resource.<name>``) and the extras into
    ``row[column]`` as JSON text (None when there is nothing)."""
    for name, value in context.row.items():
        if name in row:
            key, original = context.used[name]
            extra[f"resource.{key}"] = original
        else:
            row[name] = value
    shared = context.extra_json
    if extra:
        own = dumps(extra)
        row[column] = f"{{{shared},{own[1:]}" if shared else own
    else:
        row[column] = f"{{{shared}}}" if shared else None


class RowBuilder:
    """Rows (dicts keyed by contract column) of one dataset -> RecordBatches."""

    def __init__(self, dataset: Dataset, batch_size: int):
        self.dataset = dataset
        self.batch_size = batch_size
        self.schema = dataset.arrow_schema
        self.type = pa.struct(list(self.schema))
        self.rows: list[dict] = []
        self.flushed = 0  # rows of this dataset already turned into batches
        self.amap = AttributeMap(dataset)

    def full(self) -> bool:
        return len(self.rows) >= self.batch_size

    @property
    def unusable(self) -> dict[str, int]:
        """Attribute values that did not fit their column (kept in attributes), per column."""
        return self.amap.unusable

    def flush(self) -> pa.RecordBatch | None:
        rows, self.rows = self.rows, []
        if not rows:
            return None
        try:  # from_pylist: measured 5x faster than pa.array(rows, struct) here
            batch = pa.RecordBatch.from_pylist(rows, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            bad, column, reason = self._locate(rows)
            raise OtlpError(reason, field=column, row=self.flushed + bad) from None
        self.flushed += len(rows)
        return batch

    def _locate(self, rows: list[dict]) -> tuple[int, str | None, str]:
        for field in self.type:
            for i, row in enumerate(rows):
                value = row.get(field.name)
                if value is None:
                    continue
                try:
                    pa.array([value], field.type)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                    return i, field.name, f"{plain(value)} does not fit {field.type} ({exc})"
        return 0, None, "rows do not fit the contract"
