"""Rows from OTLP/JSON documents (the specification's "JSON Protobuf Encoding").

Read straight from the parsed dicts, never through protobuf's ``json_format`` (which would
read the hex ``traceId``/``spanId`` as base64 and silently store wrong ids). Per the spec:
lowerCamelCase field names, ids as hex strings, enums as integers (enum names are
accepted too), 64-bit integers as strings or numbers, unknown fields ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pyarrow as pa

from observatory_storage.ingest.otlp import records
from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.mapping import RowBuilder, dumps, finish, resource

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


def _int(record: dict, key: str, where: str, path) -> int:
    value = record.get(key)
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise OtlpError(f"{key} is {value!r}, not an integer", field=key, where=f"{where}, {path()}")


def _enum(record: dict, key: str, names: dict, where: str, path) -> int:
    value = record.get(key)
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(record, key, where, path)


def _hex_id(value, size: int, key: str, where: str, path, required: bool = True) -> str | None:
    if value is None or value == "":
        if not required:
            return None
    elif isinstance(value, str) and _HEX[size].fullmatch(value) and value != _ZERO[size]:
        return value.lower()
    raise OtlpError(
        f"{key} is {value!r}; expected {size * 2} hex digits ({size} bytes), not all zero "
        "(OTLP/JSON ids are hex, not base64)", field=key, where=f"{where}, {path()}",
    )


def _scope_ctx(amap, res: dict, res_attrs, scoped: dict):
    scope = scoped.get("scope") or {}
    return resource(amap, res_attrs, res.get("schemaUrl") or "", scope.get("name") or "",
                    scope.get("version") or "", attrs(scope.get("attributes")),
                    scoped.get("schemaUrl") or "")


def _wrap(where: str, fields: tuple) -> OtlpError:
    return OtlpError(f"malformed OTLP/JSON structure under {'.'.join(fields)}", where=where)


def spans(doc: dict, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    kinds, statuses = records.KINDS, records.STATUS
    try:
        resource_spans = list(doc.get("resourceSpans") or ())
    except TypeError:
        raise _wrap(where, ("resourceSpans",)) from None
    for i, rs in enumerate(resource_spans):
        res_attrs = attrs((rs.get("resource") or {}).get("attributes"))
        for j, ss in enumerate(rs.get("scopeSpans") or ()):
            ctx = _scope_ctx(amap, rs, res_attrs, ss)
            for k, sp in enumerate(ss.get("spans") or ()):
                def path(i=i, j=j, k=k):
                    return f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"

                end = _int(sp, "endTimeUnixNano", where, path)
                row = {
                    "trace_id": _hex_id(sp.get("traceId"), 16, "traceId", where, path),
                    "span_id": _hex_id(sp.get("spanId"), 8, "spanId", where, path),
                    "name": sp.get("name") or "",
                    "start_time": _int(sp, "startTimeUnixNano", where, path) // 1000,
                    "end_time": end // 1000 if end else None,
                    "kind": kinds.get(_enum(sp, "kind", records.KIND_NAMES, where, path)),
                }
                parent = _hex_id(sp.get("parentSpanId"), 8, "parentSpanId", where, path,
                                 required=False)
                if parent:
                    row["parent_span_id"] = parent
                extra: dict = {}
                amap.split_kvs(sp.get("attributes"), any_value, row, extra, json=True)
                status = sp.get("status") or {}
                code = _enum(status, "code", records.STATUS_NAMES, where, path)
                if code or "status_code" not in row:
                    row["status_code"] = statuses.get(code)
                else:
                    row["status_code"] = str(row["status_code"]).lower()
                if status.get("message"):
                    row["status_message"] = status["message"]
                if sp.get("traceState"):
                    extra["span.trace_state"] = sp["traceState"]
                for key, name in (("flags", "span.flags"),
                                  ("droppedAttributesCount", "span.dropped_attributes_count"),
                                  ("droppedEventsCount", "span.dropped_events_count"),
                                  ("droppedLinksCount", "span.dropped_links_count")):
                    if sp.get(key):
                        extra[name] = _int(sp, key, where, path)
                if sp.get("events"):
                    events = [records.event(ev.get("name") or "",
                                            _int(ev, "timeUnixNano", where, path),
                                            attrs(ev.get("attributes")),
                                            _int(ev, "droppedAttributesCount", where, path))
                              for ev in sp["events"]]
                    extra["events"] = events
                    records.exception_type(row, events)
                if sp.get("links"):
                    extra["links"] = [
                        records.link(_hex_id(ln.get("traceId"), 16, "links.traceId", where, path),
                                     _hex_id(ln.get("spanId"), 8, "links.spanId", where, path),
                                     ln.get("traceState") or "", attrs(ln.get("attributes")),
                                     _int(ln, "flags", where, path))
                        for ln in sp["links"]
                    ]
                finish(row, extra, ctx, "attributes")
                b.rows.append(row)
                if len(b.rows) >= size:
                    yield b.flush()


_DATA_KINDS = (("gauge", "gauge"), ("sum", "sum"), ("histogram", "histogram"),
               ("exponentialHistogram", "exponential_histogram"), ("summary", "summary"))


def metrics(doc: dict, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    for i, rm in enumerate(doc.get("resourceMetrics") or ()):
        res_attrs = attrs((rm.get("resource") or {}).get("attributes"))
        for j, sm in enumerate(rm.get("scopeMetrics") or ()):
            ctx = _scope_ctx(amap, rm, res_attrs, sm)
            for k, metric in enumerate(sm.get("metrics") or ()):
                def path(i=i, j=j, k=k):
                    return f"resourceMetrics[{i}].scopeMetrics[{j}].metrics[{k}]"

                found = next(((key, kind) for key, kind in _DATA_KINDS if key in metric), None)
                if found is None:
                    continue
                key, kind = found
                data = metric[key] or {}
                temporality = records.TEMPORALITY.get(
                    _enum(data, "aggregationTemporality", records.TEMPORALITY_NAMES, where, path))
                base = {"metric_name": metric.get("name") or "", "unit": metric.get("unit") or None,
                        "metric_type": records.metric_type(kind, bool(data.get("isMonotonic"))),
                        "temporality": temporality}
                base_extra: dict = {}
                if metric.get("description"):
                    base_extra["metric.description"] = metric["description"]
                if metric.get("metadata"):
                    base_extra["metric.metadata"] = dict(attrs(metric["metadata"]))
                for p in data.get("dataPoints") or ():
                    flags = _int(p, "flags", where, path)
                    if flags & 1:  # no recorded value (a staleness marker)
                        continue
                    start = _int(p, "startTimeUnixNano", where, path)
                    row = dict(base)
                    row["time"] = _int(p, "timeUnixNano", where, path) // 1000
                    row["start_time"] = start // 1000 if start else None
                    if not _point(kind, p, row, where, path):
                        continue  # NaN/Inf measurement: PostgreSQL-side averages would be poisoned
                    extra = dict(base_extra)
                    amap.split_kvs(p.get("attributes"), any_value, row, extra, json=True)
                    if flags:
                        extra["metric.flags"] = flags
                    if p.get("exemplars"):
                        extra["exemplars"] = [_exemplar(e) for e in p["exemplars"]]
                    finish(row, extra, ctx, "attributes")
                    b.rows.append(row)
                    if len(b.rows) >= size:
                        yield b.flush()


def _point(kind: str, p: dict, row: dict, where: str, path) -> bool:
    """Fill the point's columns; False when a measurement is NaN or infinite (skipped)."""
    try:
        if kind in ("gauge", "sum"):
            if "asDouble" in p:
                row["value"] = _float(p["asDouble"])
            else:
                row["value"] = float(_int(p, "asInt", where, path))
            return math.isfinite(row["value"])
        row["value"] = _float(p.get("sum", 0.0))
        row["sample_count"] = _int(p, "count", where, path)
        if kind != "summary":
            if "min" in p:
                row["min_value"] = _float(p["min"])
            if "max" in p:
                row["max_value"] = _float(p["max"])
        if kind == "histogram":
            buckets = {"bounds": [_float(x) for x in p.get("explicitBounds") or ()],
                       "counts": [int(x) for x in p.get("bucketCounts") or ()]}
        elif kind == "exponential_histogram":
            def side(name):
                s = p.get(name) or {}
                return {"offset": int(s.get("offset", 0)),
                        "counts": [int(x) for x in s.get("bucketCounts") or ()]}

            buckets = {"scale": int(p.get("scale", 0)), "zero_count": int(p.get("zeroCount", 0)),
                       "zero_threshold": _float(p.get("zeroThreshold", 0.0)),
                       "positive": side("positive"), "negative": side("negative")}
        else:
            buckets = {"quantiles": [{"quantile": _float(q.get("quantile", 0.0)),
                                      "value": _float(q.get("value", 0.0))}
                                     for q in p.get("quantileValues") or ()]}
    except (TypeError, ValueError) as exc:
        raise OtlpError(f"malformed {kind} data point: {exc}", field=kind,
                        where=f"{where}, {path()}") from None
    row["buckets"] = dumps(buckets)
    return all(math.isfinite(row.get(k, 0.0)) for k in ("value", "min_value", "max_value"))


def _exemplar(e: dict) -> dict:
    out = {"time_unix_nano": int(e.get("timeUnixNano", 0)),
           "value": _float(e["asDouble"]) if "asDouble" in e else int(e.get("asInt", 0))}
    if e.get("traceId"):
        out["trace_id"] = str(e["traceId"]).lower()
    if e.get("spanId"):
        out["span_id"] = str(e["spanId"]).lower()
    if e.get("filteredAttributes"):
        out["attributes"] = dict(attrs(e["filteredAttributes"]))
    return out


_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{name}{n if n > 1 else ''}": base + n - 1
    for base, name in ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"),
                       (21, "FATAL"))
    for n in range(1, 5)
}


def logs(doc: dict, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    for i, rl in enumerate(doc.get("resourceLogs") or ()):
        res_attrs = attrs((rl.get("resource") or {}).get("attributes"))
        for j, sl in enumerate(rl.get("scopeLogs") or ()):
            ctx = _scope_ctx(amap, rl, res_attrs, sl)
            for k, r in enumerate(sl.get("logRecords") or ()):
                def path(i=i, j=j, k=k):
                    return f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"

                time = _int(r, "timeUnixNano", where, path)
                observed = _int(r, "observedTimeUnixNano", where, path)
                t = time or observed
                severity = _enum(r, "severityNumber", _SEVERITY_NAMES, where, path)
                row = {"time": t // 1000 if t else None,
                       "severity_number": severity or None,
                       "severity_text": r.get("severityText") or None,
                       "body": records.body(any_value(r.get("body")))}
                trace_id = _hex_id(r.get("traceId"), 16, "traceId", where, path, required=False)
                if trace_id:
                    row["trace_id"] = trace_id
                span_id = _hex_id(r.get("spanId"), 8, "spanId", where, path, required=False)
                if span_id:
                    row["span_id"] = span_id
                extra: dict = {}
                amap.split_kvs(r.get("attributes"), any_value, row, extra, json=True)
                records.event_name(row, extra, r.get("eventName") or "")
                if time and observed:
                    extra["log.observed_time_unix_nano"] = observed
                for key, name in (("flags", "log.flags"),
                                  ("droppedAttributesCount", "log.dropped_attributes_count")):
                    if r.get(key):
                        extra[name] = _int(r, key, where, path)
                finish(row, extra, ctx, "attributes")
                b.rows.append(row)
                if len(b.rows) >= size:
                    yield b.flush()
