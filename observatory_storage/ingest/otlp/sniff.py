"""A message's signal (traces, metrics or logs), told from its content: the one place that
decides it, for both encodings.

JSON: the top-level key says it (``resourceSpans``, ``resourceMetrics``, ``resourceLogs``).
Protobuf: ``TracesData``, ``MetricsData`` and ``LogsData`` all start with field 1, so the
bytes alone do not say which; the message is parsed as each signal in turn and the first
whose first record is well-formed for it wins (a span has a 16-byte trace id and an 8-byte
span id; a metric a name and a data kind; a log record a time, an observed time or a body).
Reading one signal's bytes as another leaves those fields empty (mismatched wire types are
unknown fields), or fails.
"""

from __future__ import annotations

import orjson
from google.protobuf.message import DecodeError

from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.otlp.framing import JSON, Message, gc_paused
from observatory_storage.ingest.otlp.signals import JSON_KEYS, LOGS, METRICS, SIGNALS, TRACES


def _first_record(msg, signal):
    for res in getattr(msg, signal.resources[0]):
        for scoped in getattr(res, signal.scopes[0]):
            for record in getattr(scoped, signal.records[0]):
                return record
    return None


_WELL_FORMED = {
    TRACES: lambda span: len(span.trace_id) == 16 and len(span.span_id) == 8,
    METRICS: lambda metric: bool(metric.name) and metric.WhichOneof("data") is not None,
    LOGS: lambda record: bool(record.time_unix_nano or record.observed_time_unix_nano
                              or record.HasField("body")),
}


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
    return signal_of_document(doc, message.where), doc


def signal_of_document(doc, where: str | None = None) -> str | None:
    """The signal of a parsed OTLP/JSON document; None for ``{}`` (nothing to load)."""
    if not isinstance(doc, dict):
        raise OtlpError(f"expected a JSON object, got {type(doc).__name__}", where=where)
    found = [key for key in JSON_KEYS if key in doc]
    if len(found) > 1:
        raise OtlpError(f"holds several signals at once ({', '.join(found)})", where=where)
    if not found:
        if not doc:
            return None
        keys = ", ".join(sorted(doc)[:5])
        raise OtlpError(
            f"not an OTLP document: no resourceSpans, resourceMetrics or resourceLogs "
            f"(keys: {keys})", where=where,
        )
    return JSON_KEYS[found[0]]


def _decode_proto(message: Message) -> tuple[str | None, object]:
    errors = []
    empty = None
    for signal in SIGNALS.values():
        msg = signal.message()
        try:
            msg.ParseFromString(message.data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            errors.append(f"{signal.message.__name__}: {exc}")
            continue
        record = _first_record(msg, signal)
        if record is None:
            empty = msg
            continue
        if _WELL_FORMED[signal.name](record):
            return signal.name, msg
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
