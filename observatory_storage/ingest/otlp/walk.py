"""Walk decoded OTLP messages into rows of the contracts: one walker per signal, the same
for both encodings.

A walker gets an accessor (``proto_access`` or ``json_access``: the same functions over
protobuf messages or OTLP/JSON dicts), the message, a :class:`~.mapping.RowBuilder`, and
where the message sits in its file. Flat record fields go where the signal's table
(``signals.py``) says; attributes are mapped by the contracts' OpenTelemetry names
(``mapping.py``); what has no column goes to ``attributes`` (docs/otlp.md). A batch is
yielded whenever the builder is full, so a message of a million spans never becomes a
million rows at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator

import pyarrow as pa

from observatory_storage.ingest.otlp.mapping import (
    AttributeMap,
    RowBuilder,
    ascii_lower,
    dumps,
    finish,
    resource,
)
from observatory_storage.ingest.otlp.signals import (
    LOG_RECORDS,
    METRIC_POINTS,
    SPANS,
    STATUS,
    TEMPORALITY,
    TO_COLUMN,
    Signal,
)


@functools.cache
def _reader(access, signal: Signal) -> Callable:
    return access.reader(signal)


def _records(access, signal: Signal, msg, amap: AttributeMap, where: str):
    """``(context, record, loc)`` for every record of a message: the Resource context of its
    resource and scope, and ``loc()``, which names it in an error."""
    for i, res in enumerate(access.resources(msg, signal)):
        res_attrs = access.resource_attributes(res)
        res_url = access.schema_url(res)
        for j, scoped in enumerate(access.scopes(res, signal)):
            name, version, scope_attrs = access.scope(scoped)
            ctx = resource(amap, res_attrs, res_url, name, version, scope_attrs,
                           access.schema_url(scoped))
            for k, record in enumerate(access.records(scoped, signal)):
                def loc(i=i, j=j, k=k):
                    return f"{where}, {signal.where(i, j, k)}"

                yield ctx, record, loc


@functools.cache
def _placer(signal: Signal) -> Callable[[list, dict, list], None]:
    """``place(values, row, late)``, generated from the signal's table (as ``dataclasses``
    generates ``__init__``): straight-line code, one statement per field, is what keeps
    the table-driven walk as fast as the hand-written one it replaced. Each flat value goes
    into its column (None: left null), or is kept for after the attributes (which must not
    override it) under its ``attributes`` key, when set."""
    lines = ["def place(values, row, late):"]
    scope: dict = {}
    for i, f in enumerate(signal.fields):
        if f.column is not None:
            if f.to_column is not None:
                scope[f"convert_{i}"] = TO_COLUMN[f.to_column]
                lines.append(f"    v = convert_{i}(values[{i}])")
            else:
                lines.append(f"    v = values[{i}]")
            lines.append(f"    if v is not None: row[{f.column!r}] = v")
        elif f.extra is not None:
            lines += [f"    v = values[{i}]", f"    if v: late.append(({f.extra!r}, v))"]
    lines.append("    return None")
    exec("\n".join(lines), scope)  # noqa: S102 - source built from our own table only
    return scope["place"]


# --- traces -----------------------------------------------------------------------------------

def event(name: str, time_unix_nano: int, attributes: list, dropped: int = 0) -> dict:
    out: dict = {"name": name, "time_unix_nano": time_unix_nano}
    if attributes:
        out["attributes"] = dict(attributes)
    if dropped:
        out["dropped_attributes_count"] = dropped
    return out


def link(trace_id: str, span_id: str, trace_state: str, attributes: list, flags: int) -> dict:
    out: dict = {"trace_id": trace_id, "span_id": span_id}
    if trace_state:
        out["trace_state"] = trace_state
    if attributes:
        out["attributes"] = dict(attributes)
    if flags:
        out["flags"] = flags
    return out


def exception_type(row: dict, events: list[dict]) -> None:
    """error_type from an exception event when no error.type attribute gave it."""
    if "error_type" in row:
        return
    for ev in events:
        if ev["name"] == "exception":
            value = ev.get("attributes", {}).get("exception.type")
            if isinstance(value, str) and value:
                row["error_type"] = value
                return


def spans(access, msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size, rows = b.amap, b.batch_size, b.rows
    read, place = _reader(access, SPANS), _placer(SPANS)
    is_json = access.ENCODING == "json"
    for ctx, sp, loc in _records(access, SPANS, msg, amap, where):
        row: dict = {}
        late: list = []
        place(read(sp, loc), row, late)
        extra: dict = {}
        amap.split_kvs(access.attributes(sp), access.any_value, row, extra, json=is_json)
        code, message = access.status(sp, loc)
        if code or "status_code" not in row:
            row["status_code"] = STATUS.get(code)
        else:  # no OTLP status: an otel.status_code attribute said it
            row["status_code"] = ascii_lower(row["status_code"])
        if message:
            row["status_message"] = message
        extra.update(late)
        events = access.events(sp, loc)
        if events:
            extra["events"] = evs = [event(*ev) for ev in events]
            exception_type(row, evs)
        links = access.links(sp, loc)
        if links:
            extra["links"] = [link(*ln) for ln in links]
        finish(row, extra, ctx, "attributes")
        rows.append(row)
        if len(rows) >= size:
            yield b.flush()
            rows = b.rows


# --- metrics ---------------------------------------------------------------------------------

def metric_type(kind: str, monotonic: bool) -> str:
    if kind == "sum":
        return "counter" if monotonic else "updowncounter"
    return kind


def metrics(access, msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    read, place = _reader(access, METRIC_POINTS), _placer(METRIC_POINTS)
    is_json = access.ENCODING == "json"
    for ctx, metric, loc in _records(access, METRIC_POINTS, msg, amap, where):
        kind, data = access.metric_data(metric)
        if kind is None:
            continue
        base: dict = {}
        late: list = []
        place(read(metric, loc), base, late)
        base["metric_type"] = metric_type(kind, access.is_monotonic(data))
        base["temporality"] = TEMPORALITY.get(access.temporality(data, loc))
        base_extra = dict(late)
        metadata = access.metric_metadata(metric)
        if metadata:
            base_extra["metric.metadata"] = dict(metadata)
        for p in access.data_points(data):
            flags, start, time = access.point_times(p, loc)
            if flags & 1:  # no recorded value (a staleness marker)
                continue
            row = dict(base)
            row["time"] = time // 1000
            row["start_time"] = start // 1000 if start else None
            values = access.point_values(kind, p, loc)
            buckets = values.pop("buckets", None)
            row.update(values)
            if not all(math.isfinite(row.get(c, 0.0))
                       for c in ("value", "min_value", "max_value")):
                continue  # NaN/Inf measurement: PostgreSQL-side averages would be poisoned
            if buckets is not None:
                row["buckets"] = dumps(buckets)
            extra = dict(base_extra)
            amap.split_kvs(access.attributes(p), access.point_value, row, extra, json=is_json)
            if flags:
                extra["metric.flags"] = flags
            found = access.exemplars(p)
            if found:
                extra["exemplars"] = found
            finish(row, extra, ctx, "attributes")
            b.rows.append(row)
            if len(b.rows) >= size:
                yield b.flush()


# --- logs ------------------------------------------------------------------------------------

_LOG_TIME = LOG_RECORDS.index("time_unix_nano")
_LOG_OBSERVED = LOG_RECORDS.index("observed_time_unix_nano")
_LOG_EVENT_NAME = LOG_RECORDS.index("event_name")


def body(value) -> str:
    """A log body: strings as they are, structured values as JSON, absent as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)


def event_name(row: dict, extra: dict, field: str) -> None:
    """The record's event_name field wins over an ``event.name`` attribute (kept then)."""
    if not field:
        return
    held = row.get("event_name")
    if held is not None and held != field:
        extra["event.name"] = held
    row["event_name"] = field


def logs(access, msg, b: RowBuilder, where: str) -> Iterator[pa.RecordBatch]:
    amap, size = b.amap, b.batch_size
    read, place = _reader(access, LOG_RECORDS), _placer(LOG_RECORDS)
    is_json = access.ENCODING == "json"
    for ctx, r, loc in _records(access, LOG_RECORDS, msg, amap, where):
        values = read(r, loc)
        time, observed = values[_LOG_TIME], values[_LOG_OBSERVED]
        t = time or observed
        row: dict = {"time": t // 1000 if t else None}
        late: list = []
        place(values, row, late)
        present, value = access.body(r)
        row["body"] = body(value) if present else ""
        extra: dict = {}
        amap.split_kvs(access.attributes(r), access.any_value, row, extra, json=is_json)
        event_name(row, extra, values[_LOG_EVENT_NAME])
        if time and observed:
            extra["log.observed_time_unix_nano"] = observed
        extra.update(late)
        finish(row, extra, ctx, "attributes")
        b.rows.append(row)
        if len(b.rows) >= size:
            yield b.flush()


WALKERS = {SPANS.name: spans, METRIC_POINTS.name: metrics, LOG_RECORDS.name: logs}
