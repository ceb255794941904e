"""Decode one OTLP message and tell its signal (traces, metrics or logs) from its content.

JSON: the top-level key says it (``resourceSpans``, ``resourceMetrics``, ``resourceLogs``).
Protobuf: ``TracesData``, ``MetricsData`` and ``LogsData`` all start with field 1, so the
bytes alone do not say which; the message is parsed with the ``opentelemetry-proto``
classes as each signal in turn and the first whose first record is well-formed for it
wins (a span has a 16-byte trace id and an 8-byte span id; a metric a name and a data
kind; a log record a time, an observed time or a body). Reading one signal's bytes as
another leaves those fields empty (mismatched wire types are unknown fields), or fails.
"""

from __future__ import annotations

import contextlib
import gc

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.framing import JSON, Message

TRACES, METRICS, LOGS = "traces", "metrics", "logs"
JSON_KEYS = {"resourceSpans": TRACES, "resourceMetrics": METRICS, "resourceLogs": LOGS}
SIGNAL_KEY = {signal: key for key, signal in JSON_KEYS.items()}


def _first_span(msg: TracesData):
    for rs in msg.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                return span
    return None


def _first_metric(msg: MetricsData):
    for rm in msg.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                return metric
    return None


def _first_record(msg: LogsData):
    for rl in msg.resource_logs:
        for sl in rl.scope_logs:
            for record in sl.log_records:
                return record
    return None


def _is_span(span) -> bool:
    return len(span.trace_id) == 16 and len(span.span_id) == 8


def _is_metric(metric) -> bool:
    return bool(metric.name) and metric.WhichOneof("data") is not None


def _is_record(record) -> bool:
    return bool(record.time_unix_nano or record.observed_time_unix_nano
                or record.HasField("body"))


_CANDIDATES = (
    (TRACES, TracesData, _first_span, _is_span),
    (METRICS, MetricsData, _first_metric, _is_metric),
    (LOGS, LogsData, _first_record, _is_record),
)


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while a document becomes objects.

    Parsing creates no reference cycles, but a big document allocates millions of
    containers, and every allocation threshold crossed starts a collection that walks all
    of them again: pausing made OTLP/JSON decoding ~4x faster (docs/otlp.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode(message: Message) -> tuple[str | None, object]:
    """``(signal, decoded)``; signal None for a message without records (nothing to load)."""
    if message.encoding == JSON:
        return _decode_json(message)
    return _decode_proto(message)


def _decode_json(message: Message) -> tuple[str | None, object]:
    doc = message.parsed
    if doc is None:
        try:
            with gc_paused():
                doc = orjson.loads(message.data)
        except orjson.JSONDecodeError as exc:
            raise OtlpError(f"invalid JSON: {exc}", where=message.where) from None
    if not isinstance(doc, dict):
        raise OtlpError(f"expected a JSON object, got {type(doc).__name__}", where=message.where)
    found = [key for key in JSON_KEYS if key in doc]
    if len(found) > 1:
        raise OtlpError(f"holds several signals at once ({', '.join(found)})",
                        where=message.where)
    if not found:
        if not doc:
            return None, doc
        keys = ", ".join(sorted(doc)[:5])
        raise OtlpError(
            f"not an OTLP document: no resourceSpans, resourceMetrics or resourceLogs "
            f"(keys: {keys})", where=message.where,
        )
    return JSON_KEYS[found[0]], doc


def _decode_proto(message: Message) -> tuple[str | None, object]:
    errors = []
    empty = None
    for signal, cls, first, valid in _CANDIDATES:
        msg = cls()
        try:
            msg.ParseFromString(message.data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            errors.append(f"{cls.__name__}: {exc}")
            continue
        record = first(msg)
        if record is None:
            empty = msg
            continue
        if valid(record):
            return signal, msg
    if empty is not None and not errors:
        return None, empty
    detail = "; ".join(errors) if errors else (
        "no span with 16-byte trace id and 8-byte span id, no metric with a name and data, "
        "no log record with a time or body"
    )
    raise OtlpError(
        f"not a decodable OTLP protobuf message ({len(message.data)} bytes; truncated or "
        f"corrupt?): {detail}", where=message.where,
    )
