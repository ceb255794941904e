"""OTLP files made by the real OpenTelemetry Python SDK, as Collectors write them.

Spans, metric points and log records are created with ``opentelemetry-sdk`` (GenAI
attributes set the way instrumentations set them, current and older spellings), collected
by its in-memory exporters/readers and encoded by its own OTLP encoders:
``opentelemetry-exporter-otlp-proto-common`` (protobuf) and
``opentelemetry-exporter-otlp-json-common`` (OTLP/JSON: hex ids, integer enums, 64-bit
integers as strings). :func:`file_bytes` then lays messages out like the Collector's
exporters: one message (awss3exporter), 4-byte length-prefixed messages or JSON Lines
(fileexporter), gzip or zstd around the file, or zstd per message (fileexporter with
``compression: zstd``). Used by ``generate --format otlp-*``, ``demo``, ``bench`` and tests.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Sequence

import zstandard
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs as json_logs
from opentelemetry.exporter.otlp.json.common.metrics_encoder import encode_metrics as json_metrics
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as json_spans
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as proto_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as proto_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as proto_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

LAYOUTS = ("single", "framed", "lines")  # lines: JSON only
COMPRESSIONS = ("none", "gzip", "zstd", "zstd-frames")  # zstd-frames: framed only
ENCODINGS = ("proto", "json")

SERVICE = {"service.name": "support-bot", "deployment.environment.name": "production"}
MODELS = (  # (provider, request model, response model)
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
)
UNKNOWN_MODEL = "acme-llm-1"  # not in any price table: its spans stay unpriced


class _SeededIds:
    """Deterministic trace/span ids (the SDK's IdGenerator interface)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def genai_spans(count: int, *, seed: int = 0, start: dt.datetime | None = None,
                service: dict | None = None, spread: dt.timedelta | None = None):
    """``count`` finished SDK spans: LLM calls (some with a tool child span), GenAI names
    current and older, an unknown model now and then, a producer cost now and then.

    Root spans start 1 s apart from ``start``, or evenly across ``spread`` when given."""

    rng = random.Random(seed)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(service or SERVICE),
                              id_generator=_SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2", "2.1b0")
    base = _ns(start or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    step = (spread.total_seconds() * 1e9 / max(count, 1)) if spread else 1_000_000_123
    made = i = 0
    while made < count:
        vendor, model, answered = MODELS[i % len(MODELS)]
        if i % 7 == 3:
            model = answered = UNKNOWN_MODEL
        t0 = base + int(made * step) + rng.randrange(1000)  # sub-microsecond digits too
        inputs, outputs = rng.randrange(50, 4000), rng.randrange(5, 800)
        cached = rng.randrange(0, inputs) if i % 3 == 0 else 0
        attributes: dict = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": answered,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.conversation.id": f"conv-{i // 4}",
            "user.id": f"user-{i % 13}",
            "gen_ai.response.time_to_first_chunk": round(rng.uniform(0.05, 1.5), 6),
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                {"type": "text", "content": f"question {i}"}]}]),
            "server.address": "api.example.com",
        }
        if i % 5 == 1:  # older spellings still emitted in the wild
            attributes |= {"gen_ai.system": vendor, "gen_ai.usage.prompt_tokens": inputs,
                           "gen_ai.usage.completion_tokens": outputs}
            if cached:
                attributes["gen_ai.usage.cache_read_input_tokens"] = cached
        else:
            attributes |= {"gen_ai.provider.name": vendor, "gen_ai.usage.input_tokens": inputs,
                           "gen_ai.usage.output_tokens": outputs}
            if cached:
                attributes["gen_ai.usage.cache_read.input_tokens"] = cached
        if i % 11 == 5:
            attributes["gen_ai.usage.cost"] = 0.0123
        root = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes,
                                 start_time=t0)
        made += 1
        if i % 2 == 0 and made < count:
            child = tracer.start_span("execute_tool get_weather", set_span_in_context(root),
                                      kind=SpanKind.INTERNAL, start_time=t0 + 10_000_500,
                                      attributes={"gen_ai.operation.name": "execute_tool",
                                                  "gen_ai.tool.name": "get_weather"})
            if i % 4 == 0:
                child.record_exception(TimeoutError("weather API timed out"),
                                       timestamp=t0 + 20_000_000)
                child.set_status(Status(StatusCode.ERROR, "tool timed out"))
            child.end(end_time=t0 + 30_000_999)
            made += 1
        root.end(end_time=t0 + rng.randrange(100_000_000, 900_000_000))
        i += 1
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return list(spans)


def sdk_metrics(*, seed: int = 0):
    """A MetricsData from the SDK: a GenAI token-usage histogram, an exponential histogram,
    a counter, an up-down counter and a gauge, with GenAI point attributes."""

    rng = random.Random(seed)
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create(SERVICE),
        views=[View(instrument_name="gen_ai.client.operation.duration",
                    aggregation=ExponentialBucketHistogramAggregation())])
    meter = provider.get_meter("opentelemetry.instrumentation.openai_v2", "2.1b0")
    usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}",
                                   description="Measures number of input and output tokens used")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    calls = meter.create_counter("llm.calls", unit="{call}")
    inflight = meter.create_up_down_counter("llm.inflight")
    gauge = meter.create_gauge("llm.queue.depth")
    for vendor, model, _ in MODELS:
        point = {"gen_ai.provider.name": vendor, "gen_ai.request.model": model,
                 "gen_ai.operation.name": "chat"}
        for _ in range(20):
            usage.record(rng.randrange(10, 5000), point | {"gen_ai.token.type": "input"})
            duration.record(rng.uniform(0.1, 4.0), point)
        calls.add(20, point)
        inflight.add(3, point)
        inflight.add(-1, point)
        gauge.set(rng.randrange(0, 50), point)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def sdk_logs(count: int, *, seed: int = 0, spans: Sequence = (),
             start: dt.datetime | None = None, spread: dt.timedelta | None = None):
    """``count`` SDK log records: string and structured bodies, severities, an event name,
    some inside a span's context (trace and span ids), most without."""

    rng = random.Random(seed)
    exporter = InMemoryLogExporter()
    provider = LoggerProvider(resource=Resource.create(SERVICE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("support_bot.handlers", "1.0")
    base = _ns(start or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    step = (spread.total_seconds() * 1e9 / max(count, 1)) if spread else 1_000_000_007
    levels = ((SeverityNumber.INFO, "INFO"), (SeverityNumber.WARN, "WARN"),
              (SeverityNumber.ERROR, "ERROR"))
    for i in range(count):
        number, text = levels[i % 3]
        context = spans[i].get_span_context() if i % 4 == 0 and i < len(spans) else None
        body = ({"message": f"tool result {i}", "ok": i % 2 == 0} if i % 5 == 0
                else f"handled request {i}")
        record = LogRecord(
            timestamp=base + int(i * step), observed_timestamp=base + int(i * step) + 5,
            severity_number=number, severity_text=text, body=body,
            trace_id=context.trace_id if context else 0, span_id=context.span_id if context else 0,
            trace_flags=context.trace_flags if context else None,
            attributes={"code.function": "handle", "gen_ai.provider.name": "openai",
                        "request.number": i, "latency": rng.random()},
            event_name="gen_ai.client.inference.operation.details" if i % 6 == 0 else None,
        )
        logger.emit(record)
    logs = exporter.get_finished_logs()
    provider.shutdown()
    return list(logs)


_PROTO_ENCODERS = {"traces": proto_spans, "metrics": proto_metrics, "logs": proto_logs}
_JSON_ENCODERS = {"traces": json_spans, "metrics": json_metrics, "logs": json_logs}


def encode(signal: str, items, encoding: str) -> bytes:
    """One OTLP message (Export*ServiceRequest, the wire shape of *Data) of SDK items."""
    if encoding == "proto":
        return _PROTO_ENCODERS[signal](items).SerializeToString()
    return _JSON_ENCODERS[signal](items).to_json().encode()


def file_bytes(messages: Sequence[bytes], layout: str, compression: str = "none",
               *, pretty: bool = False) -> bytes:
    """Messages laid out as a Collector exporter writes them.

    ``single``: one message (awss3exporter; ``pretty`` re-indents a JSON document over many
    lines); ``framed``: each message after its 4-byte big-endian length (fileexporter
    ``format: proto``, or any format with ``compression: zstd``); ``lines``: JSON Lines
    (fileexporter ``format: json``). Compression ``gzip``/``zstd`` wraps the whole file,
    ``zstd-frames`` compresses each framed message on its own (the fileexporter's way).
    """
    if layout not in LAYOUTS or compression not in COMPRESSIONS:
        raise ValueError(f"layout {layout!r} / compression {compression!r}")
    if layout == "single":
        if len(messages) != 1:
            raise ValueError("a single-message file holds exactly one message")
        body = messages[0]
        if pretty:
            body = json.dumps(json.loads(body), indent=2).encode()
    elif layout == "lines":
        body = b"".join(m + b"\n" for m in messages)
    else:
        if compression == "zstd-frames":
            messages = [zstandard.ZstdCompressor().compress(m) for m in messages]
        body = b"".join(len(m).to_bytes(4, "big") + m for m in messages)
    if compression == "gzip":
        return gzip.compress(body, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    if compression == "zstd-frames" and layout != "framed":
        raise ValueError("zstd-frames compresses framed messages one by one")
    return body


# --- files for `generate --format otlp-*` --------------------------------------------

# format -> (encoding, layout, extension): otlp-proto as the fileexporter writes it
# (length-prefixed messages), otlp-json as the awss3exporter does (one document),
# otlp-jsonl as the fileexporter's format: json (one document a line).
FORMATS = {
    "otlp-proto": ("proto", "framed", "pb"),
    "otlp-json": ("json", "single", "json"),
    "otlp-jsonl": ("json", "lines", "jsonl"),
}
FILE_COMPRESSIONS = {"none": "", "gzip": ".gz", "zstd": ".zst"}
RECORDS_PER_MESSAGE = 1000


def messages_for(dataset: str, records: int, encoding: str, *, seed: int = 0,
                 start: dt.datetime | None = None,
                 spread: dt.timedelta | None = None) -> list[bytes]:
    """OTLP messages of about ``records`` spans, log records or metric points; spans and
    log records spread evenly over ``spread`` from ``start`` when it is given."""
    out = []
    if dataset == "metrics":  # every SDK collection is 15 points
        n = 0
        while n * 15 < records:
            out.append(encode("metrics", sdk_metrics(seed=seed + n), encoding))
            n += 1
        return out
    for i, first in enumerate(range(0, records, RECORDS_PER_MESSAGE)):
        count = min(RECORDS_PER_MESSAGE, records - first)
        origin = start or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        if spread:  # this message's share of the window
            at, part = origin + spread * (first / records), spread * (count / records)
        else:
            at, part = origin + dt.timedelta(seconds=first), None
        if dataset == "traces":
            items = genai_spans(count, seed=seed * 7919 + i, start=at, spread=part)
        else:
            items = sdk_logs(count, seed=seed * 7919 + i, start=at if spread else start,
                             spread=part)
        out.append(encode(dataset, items, encoding))
    return out


def otlp_file(dataset: str, records: int, fmt: str, compression: str = "none", *,
              seed: int = 0, start: dt.datetime | None = None,
              spread: dt.timedelta | None = None) -> tuple[bytes, str]:
    """``(bytes, extension)`` of one OTLP file in a ``generate`` format."""
    if fmt not in FORMATS or compression not in FILE_COMPRESSIONS:
        raise ValueError(f"OTLP format {fmt!r} with compression {compression!r}: expected one "
                         f"of {sorted(FORMATS)} with {sorted(FILE_COMPRESSIONS)}")
    encoding, layout, ext = FORMATS[fmt]
    messages = messages_for(dataset, records, encoding, seed=seed, start=start, spread=spread)
    if layout == "single" and len(messages) > 1:  # one document: merge the resource lists
        key = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
        merged = {key[dataset]: [r for m in messages for r in json.loads(m)[key[dataset]]]}
        messages = [json.dumps(merged, separators=(",", ":")).encode()]
    # the fileexporter compresses each framed message on its own
    how = "zstd-frames" if (layout == "framed" and compression == "zstd") else compression
    return file_bytes(messages, layout, how), ext + FILE_COMPRESSIONS[compression]
