"""Reading decoded OTLP protobuf messages (``opentelemetry-proto`` classes): the protobuf
side of the accessor pair the walkers (``walk.py``) run on.

Values come out normalized, the same as from ``json_access.py``: ids as lower-case hex
(None when absent), integers as ``int`` (0 when absent), text as ``str``, AnyValues as
Python values (bytes as base64 text, as OTLP/JSON writes them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from operator import attrgetter

from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.signals import ID8, ID16, Signal

ENCODING = "proto"
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_ZERO = {16: bytes(16), 8: bytes(8)}


def any_value(v):
    kind = v.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(v, kind)
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None


point_value = any_value  # (JSON counts nesting depth; protobuf's decoder did already)


def attrs(kvs) -> list[tuple[str, object]]:
    return [(kv.key, any_value(kv.value)) for kv in kvs]


def hex_id(value: bytes, size: int, name: str, where: str, required: bool) -> str | None:
    """An id's hex; None when absent and optional; an OtlpError when malformed."""
    if not value and not required:
        return None
    if len(value) != size or (required and value == _ZERO[size]):
        shown = value.hex() or "empty"
        raise OtlpError(f"{name} is {len(value)} bytes ({shown}); expected {size} bytes, not "
                        "all zero", field=name, where=where)
    return value.hex()


def reader(signal: Signal) -> Callable:
    """``read(record, where) -> list``: the signal's flat field values in table order, in one
    ``attrgetter`` call; ids checked and turned into hex (``where()`` names the record in
    an error)."""
    get = attrgetter(*(f.proto for f in signal.fields))
    ids = [(i, 16 if f.kind == ID16 else 8, f.json, f.required)
           for i, f in enumerate(signal.fields) if f.kind in (ID16, ID8)]

    def read(record, where: Callable[[], str]) -> list:
        values = list(get(record))
        for i, size, name, required in ids:
            value = values[i]
            if value and len(value) == size and (not required or value != _ZERO[size]):
                values[i] = value.hex()  # the common case, without a call
            else:
                values[i] = hex_id(value, size, name, where(), required)
        return values

    return read


# --- containers ---------------------------------------------------------------------------

def resources(msg, signal: Signal):
    return getattr(msg, signal.resources[0])


def resource_attributes(res) -> list[tuple[str, object]]:
    return attrs(res.resource.attributes)


def schema_url(item) -> str:
    return item.schema_url


def scopes(res, signal: Signal):
    return getattr(res, signal.scopes[0])


def scope(scoped) -> tuple[str, str, list[tuple[str, object]]]:
    s = scoped.scope
    return s.name, s.version, attrs(s.attributes)


def records(scoped, signal: Signal):
    return getattr(scoped, signal.records[0])


def attributes(record):
    """The record's KeyValue list, walked by ``AttributeMap.split_kvs``."""
    return record.attributes


# --- nested record parts ----------------------------------------------------------------

def status(span, where: Callable[[], str]) -> tuple[int, str]:
    return span.status.code, span.status.message


def events(span, where: Callable[[], str]) -> list[tuple[str, int, list, int]]:
    if not span.events:
        return []
    return [(ev.name, ev.time_unix_nano, attrs(ev.attributes), ev.dropped_attributes_count)
            for ev in span.events]


def links(span, where: Callable[[], str]) -> list[tuple[str, str, str, list, int]]:
    if not span.links:
        return []
    return [(ln.trace_id.hex(), ln.span_id.hex(), ln.trace_state, attrs(ln.attributes), ln.flags)
            for ln in span.links]


def body(record):
    """(present, value) of a log record's body."""
    if not record.HasField("body"):
        return False, None
    return True, any_value(record.body)


def metric_data(metric) -> tuple[str | None, object]:
    """(kind, data) of a metric: kind gauge, sum, histogram, exponential_histogram, summary."""
    kind = metric.WhichOneof("data")
    return kind, (getattr(metric, kind) if kind else None)


def metric_metadata(metric) -> list[tuple[str, object]]:
    return attrs(metric.metadata)


def temporality(data, where: Callable[[], str]) -> int:
    return getattr(data, "aggregation_temporality", 0)


def is_monotonic(data) -> bool:
    return bool(getattr(data, "is_monotonic", False))


def data_points(data):
    return data.data_points


def point_times(p, where) -> tuple[int, int, int]:
    """(flags, start_time_unix_nano, time_unix_nano) of a data point."""
    return p.flags, p.start_time_unix_nano, p.time_unix_nano


def point_values(kind: str, p, where) -> dict:
    """A data point's measurement as the row's columns plus ``buckets`` (a dict)."""
    if kind in ("gauge", "sum"):
        value = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
        return {"value": value}
    out: dict = {"value": p.sum if (kind == "summary" or p.HasField("sum")) else 0.0,
                 "sample_count": p.count}
    if kind != "summary":
        if p.HasField("min"):
            out["min_value"] = p.min
        if p.HasField("max"):
            out["max_value"] = p.max
    if kind == "histogram":
        out["buckets"] = {"bounds": list(p.explicit_bounds), "counts": list(p.bucket_counts)}
    elif kind == "exponential_histogram":
        out["buckets"] = {
            "scale": p.scale, "zero_count": p.zero_count, "zero_threshold": p.zero_threshold,
            "positive": {"offset": p.positive.offset, "counts": list(p.positive.bucket_counts)},
            "negative": {"offset": p.negative.offset, "counts": list(p.negative.bucket_counts)},
        }
    else:
        out["buckets"] = {"quantiles": [{"quantile": q.quantile, "value": q.value}
                                        for q in p.quantile_values]}
    return out


def exemplars(p) -> list[dict]:
    out = []
    for e in getattr(p, "exemplars", ()):
        item = {"time_unix_nano": e.time_unix_nano,
                "value": e.as_double if e.WhichOneof("value") == "as_double" else e.as_int}
        if e.trace_id:
            item["trace_id"] = e.trace_id.hex()
        if e.span_id:
            item["span_id"] = e.span_id.hex()
        if e.filtered_attributes:
            item["attributes"] = dict(attrs(e.filtered_attributes))
        out.append(item)
    return out
