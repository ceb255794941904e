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


def _float(v) -> float:
    return float(v)  # numbers, and "NaN" / "Infinity" / "-Infinity" as the spec writes them


_ANY = {
    "stringValue": lambda v: v,
    "intValue": int,
    "doubleValue": _float,
    "boolValue": bool,
    "bytesValue": lambda v: v,  # already base64 in OTLP/JSON
}


def any_value(v):
    if not v:
        return None
    for key, value in v.items():
        convert = _ANY.get(key)
        if convert is not None:
            return convert(value)
        if key == "arrayValue":
            return [any_value(x) for x in (value or {}).get("values") or ()]
        if key == "kvlistValue":
            return {kv.get("key", ""): any_value(kv.get("value"))
                    for kv in (value or {}).get("values") or ()}
    return None


def attrs(kvs) -> list[tuple[str, object]]:
    if not kvs:
        return []
    return [(kv["key"], any_value(kv.get("value"))) for kv in kvs]


def integer(value, key: str, where: Callable[[], str]) -> int:
    """A 64-bit integer field: a number or a string of digits; 0 when absent."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise OtlpError(f"{key} is {value!r}, not an integer", field=key, where=where())


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
            steps.append((i, lambda v, w: v or ""))
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
    try:
        return list(doc.get(signal.resources[1]) or ())
    except TypeError:
        raise OtlpError(f"malformed OTLP/JSON structure under {signal.resources[1]}") from None


def resource_attributes(res: dict) -> list[tuple[str, object]]:
    return attrs((res.get("resource") or {}).get("attributes"))


def schema_url(item: dict) -> str:
    return item.get("schemaUrl") or ""


def scopes(res: dict, signal: Signal):
    return res.get(signal.scopes[1]) or ()


def scope(scoped: dict) -> tuple[str, str, list[tuple[str, object]]]:
    s = scoped.get("scope") or {}
    return s.get("name") or "", s.get("version") or "", attrs(s.get("attributes"))


def records(scoped: dict, signal: Signal):
    return scoped.get(signal.records[1]) or ()


def attributes(record: dict):
    return record.get("attributes")


# --- nested record parts ----------------------------------------------------------------

def status(span: dict, where: Callable[[], str]) -> tuple[int, str]:
    found = span.get("status") or {}
    return enum(found.get("code"), "code", STATUS_NAMES, where), found.get("message") or ""


def events(span: dict, where: Callable[[], str]) -> list[tuple[str, int, list, int]]:
    if not span.get("events"):
        return []
    return [(ev.get("name") or "", field_int(ev, "timeUnixNano", where),
             attrs(ev.get("attributes")), field_int(ev, "droppedAttributesCount", where))
            for ev in span.get("events") or ()]


def links(span: dict, where: Callable[[], str]) -> list[tuple[str, str, str, list, int]]:
    if not span.get("links"):
        return []
    return [(hex_id(ln.get("traceId"), 16, "links.traceId", where),
             hex_id(ln.get("spanId"), 8, "links.spanId", where),
             ln.get("traceState") or "", attrs(ln.get("attributes")),
             field_int(ln, "flags", where))
            for ln in span.get("links") or ()]


def body(record: dict):
    """(present, value) of a log record's body."""
    return True, any_value(record.get("body"))


def metric_data(metric: dict) -> tuple[str | None, object]:
    """(kind, data) of a metric: kind gauge, sum, histogram, exponential_histogram, summary."""
    for kind, key in METRIC_KINDS:
        if key in metric:
            return kind, metric[key] or {}
    return None, None


def metric_metadata(metric: dict) -> list[tuple[str, object]]:
    return attrs(metric.get("metadata"))


def temporality(data: dict, where: Callable[[], str]) -> int:
    return enum(data.get("aggregationTemporality"), "aggregationTemporality",
                TEMPORALITY_NAMES, where)


def is_monotonic(data: dict) -> bool:
    return bool(data.get("isMonotonic"))


def data_points(data: dict):
    return data.get("dataPoints") or ()


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
            out["buckets"] = {"bounds": [_float(x) for x in p.get("explicitBounds") or ()],
                              "counts": [int(x) for x in p.get("bucketCounts") or ()]}
        elif kind == "exponential_histogram":
            def side(name):
                s = p.get(name) or {}
                return {"offset": int(s.get("offset", 0)),
                        "counts": [int(x) for x in s.get("bucketCounts") or ()]}

            out["buckets"] = {"scale": int(p.get("scale", 0)),
                              "zero_count": int(p.get("zeroCount", 0)),
                              "zero_threshold": _float(p.get("zeroThreshold", 0.0)),
                              "positive": side("positive"), "negative": side("negative")}
        else:
            out["buckets"] = {"quantiles": [{"quantile": _float(q.get("quantile", 0.0)),
                                             "value": _float(q.get("value", 0.0))}
                                            for q in p.get("quantileValues") or ()]}
    except (TypeError, ValueError) as exc:
        raise OtlpError(f"malformed {kind} data point: {exc}", field=kind, where=where()) from None
    return out


def exemplars(p: dict) -> list[dict]:
    out = []
    for e in p.get("exemplars") or ():
        item = {"time_unix_nano": int(e.get("timeUnixNano", 0)),
                "value": _float(e["asDouble"]) if "asDouble" in e else int(e.get("asInt", 0))}
        if e.get("traceId"):
            item["trace_id"] = str(e["traceId"]).lower()
        if e.get("spanId"):
            item["span_id"] = str(e["spanId"]).lower()
        if e.get("filteredAttributes"):
            item["attributes"] = dict(attrs(e["filteredAttributes"]))
        out.append(item)
    return out
