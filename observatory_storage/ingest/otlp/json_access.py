"""Reading OTLP/JSON documents (the specification's "JSON Protobuf Encoding"): the JSON
side of the accessor pair the walkers (``walk.py``) run on.

Read straight from the parsed dicts, never through protobuf's ``json_format`` (which would
read the hex ``traceId``/``spanId`` as base64 and silently store wrong ids). Per the spec:
lowerCamelCase field names, ids as hex strings, enums as integers (enum names are
accepted too), 64-bit integers as strings or numbers, unknown fields ignored. Values come
out normalized, the same as from ``proto_access.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.mapping import _INT_TEXT, _SPACE, ascii_lower
from observatory_storage.ingest.otlp.signals import (
    ENUM,
    ID8,
    ID16,
    METRIC_KINDS,
    NANOS,
    STATUS_NAMES,
    TEMPORALITY_NAMES,
    UINT,
    Signal,
)

ENCODING = "json"
_HEX = {16: re.compile(r"[0-9a-fA-F]{32}"), 8: re.compile(r"[0-9a-fA-F]{16}")}
_ZERO = {16: "0" * 32, 8: "0" * 16}
# Number text, the same one rule as the attribute conversions (mapping.py): ASCII digits,
# ASCII spaces around; doubles also as the spec's "NaN", "Infinity", "-Infinity" (any case)
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                         r"|[+-]?(?i:inf|infinity|nan)")
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1

# Nesting: an AnyValue deeper than protobuf's decoder allows (upb: 100 messages below the
# root *Data) is refused in OTLP/JSON too, counted the way protobuf counts: the depth of each
# attribute list's AnyValue, then +2 per array level, +3 per kvlist level.
MAX_DEPTH = 100
RESOURCE_VALUE = 4  # *Data > Resource* > Resource > KeyValue > AnyValue
SCOPE_VALUE = 5  # ... > Scope* > InstrumentationScope > KeyValue > AnyValue
RECORD_VALUE = 5  # ... > Scope* > Span / LogRecord / Metric (metadata) > KeyValue > AnyValue
BODY_VALUE = 4  # ... > LogRecord > AnyValue
EVENT_VALUE = 6  # ... > Span > Event / Link > KeyValue > AnyValue
POINT_VALUE = 7  # ... > Metric > Gauge/Sum/... > data point > KeyValue > AnyValue
EXEMPLAR_VALUE = 8  # ... > data point > Exemplar > KeyValue > AnyValue


class Malformed(TypeError):
    """A value of the wrong JSON type where OTLP/JSON has a fixed one (the reader reports
    it as a malformed structure; a data point's values as that point's problem)."""


def _int(v) -> int:
    """A 64-bit integer (int64 or uint64): a JSON integer, or its decimal text."""
    if v.__class__ is int:  # (never bool; orjson makes floats of integers beyond 64 bits)
        return v
    if v.__class__ is str:
        text = v.strip(_SPACE)
        if _INT_TEXT.fullmatch(text):
            n = int(text)
            if _INT64_MIN <= n <= _UINT64_MAX:
                return n
    raise Malformed(f"{v!r} is not a 64-bit integer")


def _float(v) -> float:
    """A double: a JSON number, or number text ("NaN" / "Infinity" as the spec writes them)."""
    if v.__class__ is float:
        return v
    if v.__class__ is int:
        return float(v)
    if v.__class__ is str:
        text = v.strip(_SPACE)
        if _FLOAT_TEXT.fullmatch(text):
            return float(text)
    raise Malformed(f"{v!r} is not a number")


def _text(v, key: str) -> str:
    """A string field: absent/null -> ''; anything but a string is malformed."""
    if v.__class__ is str:
        return v
    if v is None:
        return ""
    raise Malformed(f"{key} is {v!r}, not a string")


def _list(v, key: str):
    """A list field: absent/null (or any other false value) -> empty."""
    if v.__class__ is list:
        return v
    if not v:
        return ()
    raise Malformed(f"{key} is {v!r}, not a list")


_EMPTY: dict = {}


def _object(v, key: str) -> dict:
    """An object field: absent/null (or any other false value) -> empty."""
    if v.__class__ is dict:
        return v
    if not v:
        return _EMPTY
    raise Malformed(f"{key} is {v!r}, not an object")


def _key(v) -> str:
    if v.__class__ is str:
        return v
    raise Malformed(f"attribute key {v!r} is not a string")


def _bytes(v):
    if v.__class__ is str or v is None:
        return v  # already base64 in OTLP/JSON
    raise Malformed(f"bytesValue is {v!r}, not a string")


def any_value(v, depth: int = RECORD_VALUE):
    """An AnyValue as a Python value. ``stringValue`` wins when present (as in
    ``AttributeMap.split_kvs``' fast path), else the first value member in document order."""
    if not v:
        return None
    if v.__class__ is not dict:
        raise Malformed(f"an AnyValue is {v!r}, not an object")
    if depth > MAX_DEPTH:
        raise OtlpError(f"attribute values nested deeper than {MAX_DEPTH} messages (the "
                        "protobuf decoder's limit)")
    if "stringValue" in v:
        s = v["stringValue"]
        if s.__class__ is str or s is None:
            return s
        raise Malformed(f"stringValue is {s!r}, not a string")
    for key, value in v.items():
        if key == "intValue":
            return _int(value)
        if key == "doubleValue":
            return _float(value)
        if key == "boolValue":
            return bool(value)
        if key == "bytesValue":
            return _bytes(value)
        if key == "arrayValue":
            values = _list(_object(value, key).get("values"), "values")
            return [any_value(x, depth + 2) for x in values]
        if key == "kvlistValue":
            values = _list(_object(value, key).get("values"), "values")
            return {_key(kv.get("key", "")): any_value(kv.get("value"), depth + 3)
                    for kv in values}
    return None


def point_value(v):
    """A data point attribute's AnyValue (deeper in the message than a record's)."""
    return any_value(v, POINT_VALUE)


def attrs(kvs, depth: int = RECORD_VALUE) -> list[tuple[str, object]]:
    return [(_key(kv["key"]), any_value(kv.get("value"), depth))
            for kv in _list(kvs, "attributes")]


def integer(value, key: str, where: Callable[[], str]) -> int:
    """A 64-bit integer field: a number or a string of digits; 0 when absent."""
    if value is None:
        return 0
    try:
        return _int(value)
    except Malformed:
        raise OtlpError(f"{key} is {value!r}, not an integer", field=key,
                        where=where()) from None


def text(value, key: str, where: Callable[[], str]) -> str:
    """A record's string field: '' when absent."""
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    raise OtlpError(f"{key} is {value!r}, not a string", field=key, where=where())


def field_int(record: dict, key: str, where: Callable[[], str]) -> int:
    return integer(record.get(key), key, where)


def enum(value, key: str, names: dict, where: Callable[[], str]) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return integer(value, key, where)


def hex_id(value, size: int, key: str, where: Callable[[], str], required: bool = True) -> str | None:
    if value is None or value == "":
        if not required:
            return None
    elif isinstance(value, str) and _HEX[size].fullmatch(value) and value != _ZERO[size]:
        return value.lower()
    raise OtlpError(
        f"{key} is {value!r}; expected {size * 2} hex digits ({size} bytes), not all zero "
        "(OTLP/JSON ids are hex, not base64)", field=key, where=where(),
    )


def reader(signal: Signal) -> Callable:
    """``read(record, where) -> list``: the signal's flat field values in table order."""
    names = [f.json for f in signal.fields]
    steps = []
    for i, f in enumerate(signal.fields):
        if f.kind in (ID16, ID8):
            steps.append((i, lambda v, w, f=f: hex_id(v, 16 if f.kind == ID16 else 8, f.json, w,
                                                      f.required)))
        elif f.kind in (NANOS, UINT):
            steps.append((i, lambda v, w, f=f: integer(v, f.json, w)))
        elif f.kind == ENUM:
            steps.append((i, lambda v, w, f=f: enum(v, f.json, f.names, w)))
        else:  # TEXT
            steps.append((i, lambda v, w, f=f: text(v, f.json, w)))
    get = record_getter(names)

    def read(record: dict, where: Callable[[], str]) -> list:
        values = get(record)
        for i, convert in steps:
            values[i] = convert(values[i], where)
        return values

    return read


def record_getter(names: list[str]) -> Callable[[dict], list]:
    def get(record: dict) -> list:
        return [record.get(name) for name in names]

    return get


# --- containers ---------------------------------------------------------------------------

def resources(doc: dict, signal: Signal):
    return _list(doc.get(signal.resources[1]), signal.resources[1])


def resource_attributes(res: dict) -> list[tuple[str, object]]:
    return attrs(_object(res.get("resource"), "resource").get("attributes"), RESOURCE_VALUE)


def schema_url(item: dict) -> str:
    return _text(item.get("schemaUrl"), "schemaUrl")


def scopes(res: dict, signal: Signal):
    return _list(res.get(signal.scopes[1]), signal.scopes[1])


def scope(scoped: dict) -> tuple[str, str, list[tuple[str, object]]]:
    s = _object(scoped.get("scope"), "scope")
    return (_text(s.get("name"), "name"), _text(s.get("version"), "version"),
            attrs(s.get("attributes"), SCOPE_VALUE))


def records(scoped: dict, signal: Signal):
    return _list(scoped.get(signal.records[1]), signal.records[1])


def attributes(record: dict):
    return _list(record.get("attributes"), "attributes")


# --- nested record parts ----------------------------------------------------------------

def status(span: dict, where: Callable[[], str]) -> tuple[int, str]:
    found = _object(span.get("status"), "status")
    return (enum(found.get("code"), "code", STATUS_NAMES, where),
            text(found.get("message"), "message", where))


def events(span: dict, where: Callable[[], str]) -> list[tuple[str, int, list, int]]:
    found = _list(span.get("events"), "events")
    return [(text(ev.get("name"), "name", where), field_int(ev, "timeUnixNano", where),
             attrs(ev.get("attributes"), EVENT_VALUE),
             field_int(ev, "droppedAttributesCount", where))
            for ev in found]


def links(span: dict, where: Callable[[], str]) -> list[tuple[str, str, str, list, int]]:
    found = _list(span.get("links"), "links")
    return [(hex_id(ln.get("traceId"), 16, "links.traceId", where),
             hex_id(ln.get("spanId"), 8, "links.spanId", where),
             text(ln.get("traceState"), "traceState", where),
             attrs(ln.get("attributes"), EVENT_VALUE), field_int(ln, "flags", where))
            for ln in found]


def body(record: dict):
    """(present, value) of a log record's body."""
    return True, any_value(record.get("body"), BODY_VALUE)


def metric_data(metric: dict) -> tuple[str | None, object]:
    """(kind, data) of a metric: kind gauge, sum, histogram, exponential_histogram, summary."""
    if metric.__class__ is not dict:  # (`in` would test a list's items, a string's substrings)
        raise Malformed(f"a metric is {metric!r}, not an object")
    for kind, key in METRIC_KINDS:
        if key in metric:
            return kind, _object(metric[key], key)
    return None, None


def metric_metadata(metric: dict) -> list[tuple[str, object]]:
    return attrs(metric.get("metadata"), RECORD_VALUE)


def temporality(data: dict, where: Callable[[], str]) -> int:
    return enum(data.get("aggregationTemporality"), "aggregationTemporality",
                TEMPORALITY_NAMES, where)


def is_monotonic(data: dict) -> bool:
    return bool(data.get("isMonotonic"))


def data_points(data: dict):
    return _list(data.get("dataPoints"), "dataPoints")


def point_times(p: dict, where: Callable[[], str]) -> tuple[int, int, int]:
    """(flags, start_time_unix_nano, time_unix_nano) of a data point."""
    return (field_int(p, "flags", where), field_int(p, "startTimeUnixNano", where),
            field_int(p, "timeUnixNano", where))


def point_values(kind: str, p: dict, where: Callable[[], str]) -> dict:
    """A data point's measurement as the row's columns plus ``buckets`` (a dict)."""
    try:
        if kind in ("gauge", "sum"):
            if "asDouble" in p:
                return {"value": _float(p["asDouble"])}
            return {"value": float(field_int(p, "asInt", where))}
        out: dict = {"value": _float(p.get("sum", 0.0)),
                     "sample_count": field_int(p, "count", where)}
        if kind != "summary":
            if "min" in p:
                out["min_value"] = _float(p["min"])
            if "max" in p:
                out["max_value"] = _float(p["max"])
        if kind == "histogram":
            out["buckets"] = {
                "bounds": [_float(x) for x in _list(p.get("explicitBounds"), "explicitBounds")],
                "counts": [_int(x) for x in _list(p.get("bucketCounts"), "bucketCounts")]}
        elif kind == "exponential_histogram":
            def side(name):
                s = _object(p.get(name), name)
                return {"offset": _int(s.get("offset", 0)),
                        "counts": [_int(x) for x in _list(s.get("bucketCounts"), "bucketCounts")]}

            out["buckets"] = {"scale": _int(p.get("scale", 0)),
                              "zero_count": _int(p.get("zeroCount", 0)),
                              "zero_threshold": _float(p.get("zeroThreshold", 0.0)),
                              "positive": side("positive"), "negative": side("negative")}
        else:
            out["buckets"] = {"quantiles": [
                {"quantile": _float(q.get("quantile", 0.0)), "value": _float(q.get("value", 0.0))}
                for q in _list(p.get("quantileValues"), "quantileValues")]}
    except (TypeError, ValueError, AttributeError) as exc:
        raise OtlpError(f"malformed {kind} data point: {exc}", field=kind, where=where()) from None
    return out


def exemplars(p: dict) -> list[dict]:
    out = []
    for e in _list(p.get("exemplars"), "exemplars"):
        item = {"time_unix_nano": _int(e.get("timeUnixNano", 0)),
                "value": _float(e["asDouble"]) if "asDouble" in e else _int(e.get("asInt", 0))}
        if e.get("traceId"):
            item["trace_id"] = ascii_lower(_text(e["traceId"], "traceId"))
        if e.get("spanId"):
            item["span_id"] = ascii_lower(_text(e["spanId"], "spanId"))
        if e.get("filteredAttributes"):
            item["attributes"] = dict(attrs(e["filteredAttributes"], EXEMPLAR_VALUE))
        out.append(item)
    return out
