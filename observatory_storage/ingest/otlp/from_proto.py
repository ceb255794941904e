"""Rows from decoded OTLP protobuf messages (``opentelemetry-proto`` classes).

Each walker appends rows to its :class:`RowBuilder` and yields a batch whenever one is
full, so a message of a million spans never becomes a million rows at once.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator

import pyarrow as pa

from observatory_storage.ingest.otlp import records
from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.mapping import RowBuilder, dumps, finish, resource

_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


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


def attrs(kvs) -> list[tuple[str, object]]:
    return [(kv.key, any_value(kv.value)) for kv in kvs]


def _bad_id(value: bytes, size: int, name: str, where: str, path) -> OtlpError:
    shown = value.hex() or "empty"
    return OtlpError(f"{name} is {len(value)} bytes ({shown}); expected {size} bytes, not all zero",
                     field=name, where=f"{where}, {path()}")


def spans(msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    kinds, statuses, zero16, zero8 = records.KINDS, records.STATUS, bytes(16), bytes(8)
    for i, rs in enumerate(msg.resource_spans):
        res_attrs = attrs(rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            scope = ss.scope
            ctx = resource(amap, res_attrs, rs.schema_url, scope.name, scope.version,
                           attrs(scope.attributes), ss.schema_url)
            for k, sp in enumerate(ss.spans):
                def path(i=i, j=j, k=k):
                    return f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"

                tid, sid = sp.trace_id, sp.span_id
                if len(tid) != 16 or tid == zero16:
                    raise _bad_id(tid, 16, "traceId", where, path)
                if len(sid) != 8 or sid == zero8:
                    raise _bad_id(sid, 8, "spanId", where, path)
                end = sp.end_time_unix_nano
                row = {
                    "trace_id": tid.hex(), "span_id": sid.hex(), "name": sp.name,
                    "start_time": sp.start_time_unix_nano // 1000,
                    "end_time": end // 1000 if end else None, "kind": kinds.get(sp.kind),
                }
                parent = sp.parent_span_id
                if parent:
                    if len(parent) != 8:
                        raise _bad_id(parent, 8, "parentSpanId", where, path)
                    row["parent_span_id"] = parent.hex()
                extra: dict = {}
                amap.split_kvs(sp.attributes, any_value, row, extra, json=False)
                status = sp.status
                if status.code or "status_code" not in row:
                    row["status_code"] = statuses.get(status.code)
                else:
                    row["status_code"] = str(row["status_code"]).lower()
                if status.message:
                    row["status_message"] = status.message
                if sp.trace_state:
                    extra["span.trace_state"] = sp.trace_state
                if sp.flags:
                    extra["span.flags"] = sp.flags
                if sp.dropped_attributes_count:
                    extra["span.dropped_attributes_count"] = sp.dropped_attributes_count
                if sp.dropped_events_count:
                    extra["span.dropped_events_count"] = sp.dropped_events_count
                if sp.dropped_links_count:
                    extra["span.dropped_links_count"] = sp.dropped_links_count
                if sp.events:
                    events = [records.event(ev.name, ev.time_unix_nano, attrs(ev.attributes),
                                            ev.dropped_attributes_count) for ev in sp.events]
                    extra["events"] = events
                    records.exception_type(row, events)
                if sp.links:
                    extra["links"] = [
                        records.link(ln.trace_id.hex(), ln.span_id.hex(), ln.trace_state,
                                     attrs(ln.attributes), ln.flags)
                        for ln in sp.links
                    ]
                finish(row, extra, ctx, "attributes")
                b.rows.append(row)
                if len(b.rows) >= size:
                    yield b.flush()


def metrics(msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    for rm in msg.resource_metrics:
        res_attrs = attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            scope = sm.scope
            ctx = resource(amap, res_attrs, rm.schema_url, scope.name, scope.version,
                           attrs(scope.attributes), sm.schema_url)
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                metric_type = records.metric_type(kind, getattr(data, "is_monotonic", False))
                temporality = records.TEMPORALITY.get(
                    getattr(data, "aggregation_temporality", 0))
                base = {"metric_name": metric.name, "unit": metric.unit or None,
                        "metric_type": metric_type, "temporality": temporality}
                base_extra: dict = {}
                if metric.description:
                    base_extra["metric.description"] = metric.description
                if metric.metadata:
                    base_extra["metric.metadata"] = dict(attrs(metric.metadata))
                for p in data.data_points:
                    if p.flags & 1:  # no recorded value (a staleness marker)
                        continue
                    start = p.start_time_unix_nano
                    row = dict(base)
                    row["time"] = p.time_unix_nano // 1000
                    row["start_time"] = start // 1000 if start else None
                    if not _point(kind, p, row):
                        continue  # NaN/Inf measurement: PostgreSQL-side averages would be poisoned
                    extra = dict(base_extra)
                    amap.split_kvs(p.attributes, any_value, row, extra, json=False)
                    if p.flags:
                        extra["metric.flags"] = p.flags
                    exemplars = getattr(p, "exemplars", None)
                    if exemplars:
                        extra["exemplars"] = [_exemplar(e) for e in exemplars]
                    finish(row, extra, ctx, "attributes")
                    b.rows.append(row)
                    if len(b.rows) >= size:
                        yield b.flush()


def _point(kind: str, p, row: dict) -> bool:
    """Fill the point's columns; False when a measurement is NaN or infinite (skipped)."""
    if kind in ("gauge", "sum"):
        row["value"] = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
        return math.isfinite(row["value"])
    row["value"] = p.sum if (kind == "summary" or p.HasField("sum")) else 0.0
    row["sample_count"] = p.count
    if kind != "summary":
        if p.HasField("min"):
            row["min_value"] = p.min
        if p.HasField("max"):
            row["max_value"] = p.max
    if kind == "histogram":
        buckets = {"bounds": list(p.explicit_bounds), "counts": list(p.bucket_counts)}
    elif kind == "exponential_histogram":
        buckets = {
            "scale": p.scale, "zero_count": p.zero_count, "zero_threshold": p.zero_threshold,
            "positive": {"offset": p.positive.offset, "counts": list(p.positive.bucket_counts)},
            "negative": {"offset": p.negative.offset, "counts": list(p.negative.bucket_counts)},
        }
    else:
        buckets = {"quantiles": [{"quantile": q.quantile, "value": q.value}
                                 for q in p.quantile_values]}
    row["buckets"] = dumps(buckets)
    return all(math.isfinite(row.get(k, 0.0)) for k in ("value", "min_value", "max_value"))


def _exemplar(e) -> dict:
    out = {"time_unix_nano": e.time_unix_nano,
           "value": e.as_double if e.WhichOneof("value") == "as_double" else e.as_int}
    if e.trace_id:
        out["trace_id"] = e.trace_id.hex()
    if e.span_id:
        out["span_id"] = e.span_id.hex()
    if e.filtered_attributes:
        out["attributes"] = dict(attrs(e.filtered_attributes))
    return out


def logs(msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    for i, rl in enumerate(msg.resource_logs):
        res_attrs = attrs(rl.resource.attributes)
        for j, sl in enumerate(rl.scope_logs):
            scope = sl.scope
            ctx = resource(amap, res_attrs, rl.schema_url, scope.name, scope.version,
                           attrs(scope.attributes), sl.schema_url)
            for k, r in enumerate(sl.log_records):
                def path(i=i, j=j, k=k):
                    return f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"

                observed = r.observed_time_unix_nano
                t = r.time_unix_nano or observed
                row = {"time": t // 1000 if t else None,
                       "severity_number": r.severity_number or None,
                       "severity_text": r.severity_text or None,
                       "body": records.body(any_value(r.body)) if r.HasField("body") else ""}
                if r.trace_id:
                    if len(r.trace_id) != 16:
                        raise _bad_id(r.trace_id, 16, "traceId", where, path)
                    row["trace_id"] = r.trace_id.hex()
                if r.span_id:
                    if len(r.span_id) != 8:
                        raise _bad_id(r.span_id, 8, "spanId", where, path)
                    row["span_id"] = r.span_id.hex()
                extra: dict = {}
                amap.split_kvs(r.attributes, any_value, row, extra, json=False)
                records.event_name(row, extra, r.event_name)
                if r.time_unix_nano and observed:
                    extra["log.observed_time_unix_nano"] = observed
                if r.flags:
                    extra["log.flags"] = r.flags
                if r.dropped_attributes_count:
                    extra["log.dropped_attributes_count"] = r.dropped_attributes_count
                finish(row, extra, ctx, "attributes")
                b.rows.append(row)
                if len(b.rows) >= size:
                    yield b.flush()
