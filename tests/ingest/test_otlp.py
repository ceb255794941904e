"""OTLP files from the real OpenTelemetry SDK (its own OTLP encoders), in every layout and
compression the Collector's exporters write, through the real loader into both backends."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import pyarrow as pa
import pytest
from genai_prices import Usage, calc_price

from observatory_storage import generate_otlp as otlp
from observatory_storage.generate import encode as encode_table
from observatory_storage.ingest.pricing import PROVIDER_IDS, source_name
from observatory_storage.ingest.readers import open_reader
from observatory_storage.landing import open_landing
from tests.ingest.helpers import ledger, load_all

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SPANS_PER_FILE = 120

# (key, encoding, layout, compression): the awss3exporter writes one message per object
# (marshaler otlp_proto / otlp_json), the fileexporter length-prefixed protobuf or JSON
# Lines, and with compression: zstd every message framed and compressed on its own.
FILES = [
    ("otlp/year=2026/month=12/day=03/hour=10/minute=05/traces_1.binpb", "proto", "single", "none"),
    ("otlp/s3/traces_2.binpb.gz", "proto", "single", "gzip"),
    ("otlp/s3/traces_3.binpb.zst", "proto", "single", "zstd"),
    ("otlp/file/traces_4.pb", "proto", "framed", "none"),
    ("otlp/file/traces_5.pb.gz", "proto", "framed", "gzip"),
    ("otlp/file/traces_6.pb.zst", "proto", "framed", "zstd-frames"),
    ("otlp/s3/traces_7.json", "json", "single", "none"),  # pretty-printed over many lines
    ("otlp/s3/traces_8.json.gz", "json", "single", "gzip"),
    ("otlp/file/traces_9.jsonl", "json", "lines", "none"),
    ("otlp/file/traces_10.jsonl.gz", "json", "lines", "gzip"),
    ("otlp/file/traces_11.jsonl.zst", "json", "lines", "zstd"),
    ("otlp/file/traces_12.json.zst", "json", "framed", "zstd-frames"),
    ("traces/sdk/traces_13.jsonl", "json", "lines", "none"),  # OTLP under its own folder
]


def _micros(ns: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


def _expected_span(span) -> dict:
    a = dict(span.attributes)
    provider = a.get("gen_ai.provider.name", a.get("gen_ai.system"))
    row = {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": span.kind.name.lower(),
        "start_time": _micros(span.start_time),
        "end_time": _micros(span.end_time),
        "status_code": span.status.status_code.name.lower(),
        "status_message": span.status.description,
        "service_name": "support-bot",
        "environment": "production",
        "operation": a.get("gen_ai.operation.name"),
        "provider": provider,
        "request_model": a.get("gen_ai.request.model"),
        "response_model": a.get("gen_ai.response.model"),
        "input_tokens": a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens")),
        "output_tokens": a.get("gen_ai.usage.output_tokens",
                               a.get("gen_ai.usage.completion_tokens")),
        "cache_read_tokens": a.get("gen_ai.usage.cache_read.input_tokens",
                                   a.get("gen_ai.usage.cache_read_input_tokens")),
        "session_id": a.get("gen_ai.conversation.id"),
        "user_id": a.get("user.id"),
        "finish_reason": ",".join(a["gen_ai.response.finish_reasons"])
        if "gen_ai.response.finish_reasons" in a else None,
        "input_payload": json.loads(a["gen_ai.input.messages"])
        if "gen_ai.input.messages" in a else None,
        "error_type": next((e.attributes["exception.type"] for e in span.events
                            if e.name == "exception"), None),
    }
    ttft = a.get("gen_ai.response.time_to_first_chunk")
    row["time_to_first_token_ms"] = ttft * 1000.0 if ttft is not None else None
    if "gen_ai.usage.cost" in a:
        row["cost_usd"], row["cost_source"] = decimal.Decimal("0.012300000"), "producer"
    elif row["response_model"] == otlp.UNKNOWN_MODEL or row["input_tokens"] is None:
        row["cost_usd"], row["cost_source"] = None, None
    else:
        price = calc_price(
            Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                  cache_read_tokens=row["cache_read_tokens"] or 0),
            row["response_model"], provider_id=PROVIDER_IDS.get(provider, provider),
        ).total_price
        row["cost_usd"] = price.quantize(decimal.Decimal("1e-9"))
        row["cost_source"] = source_name()
    return row


def _traces_file(seed: int, encoding: str, layout: str, compression: str):
    spans = otlp.genai_spans(SPANS_PER_FILE, seed=seed)
    parts = [spans] if layout == "single" else [spans[:50], spans[50:90], spans[90:]]
    data = otlp.file_bytes([otlp.encode("traces", part, encoding) for part in parts], layout,
                           compression, pretty=encoding == "json" and compression == "none")
    return spans, data


def _stored(db, table: str, key: str) -> dict:
    cur = db.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed test table names
    names = [d.name for d in cur.description]
    return {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in cur}


def test_sdk_spans_round_trip_in_every_format_priced_exactly_once(settings, db):
    landing = open_landing(settings)
    expected: dict[str, list] = {}
    for seed, (key, encoding, layout, compression) in enumerate(FILES, start=1):
        spans, data = _traces_file(seed, encoding, layout, compression)
        landing.put(key, data)
        expected[key] = spans
    # a Parquet file with tokens and a model but no cost is priced too
    parquet = pa.table({
        "start_time": pa.array([dt.datetime(2026, 12, 3, tzinfo=dt.UTC)] * 2),
        "trace_id": ["ab" * 16] * 2, "span_id": ["cd" * 8, "ef" * 8], "name": ["chat", "chat"],
        "provider": ["openai", "openai"], "request_model": ["gpt-4o", otlp.UNKNOWN_MODEL],
        "input_tokens": pa.array([1000, 10], pa.int32()),
        "output_tokens": pa.array([100, 10], pa.int32()),
    })
    landing.put("traces/priced.parquet", encode_table(parquet, "parquet"))

    report = load_all(settings)
    assert report.ok and report.count("loaded") == len(FILES) + 1, report.format_table()
    rows = _stored(db, "traces", "span_id")
    assert len(rows) == len(FILES) * SPANS_PER_FILE + 2
    files = ledger(db)
    for key, spans in expected.items():
        assert files[key]["status"] == "loaded" and files[key]["dataset"] == "traces", key
        assert files[key]["row_count"] == SPANS_PER_FILE, key
        unpriced = 0
        for span in spans:
            want = _expected_span(span)
            got = rows[want["span_id"]]
            assert {k: got[k] for k in want} == want, (key, want["span_id"])
            attributes = got["attributes"]
            assert attributes["server.address" if span.parent is None else "gen_ai.tool.name"]
            assert attributes["resource.telemetry.sdk.language"] == "python"
            assert attributes["scope.name"] == "opentelemetry.instrumentation.openai_v2"
            assert "resource.service.name" not in attributes  # it is a column
            if want["error_type"]:
                assert attributes["events"][0]["name"] == "exception"
            unpriced += want["response_model"] == otlp.UNKNOWN_MODEL and want["cost_usd"] is None
        assert (files[key]["unpriced_rows"] or 0) == unpriced > 0, key
    priced = rows["cd" * 8]
    assert priced["cost_usd"] == decimal.Decimal("0.003500000")  # 1000 x $2.5/M + 100 x $10/M
    assert priced["cost_source"] == source_name()
    assert rows["ef" * 8]["cost_usd"] is None and files["traces/priced.parquet"]["unpriced_rows"] == 1
    assert report.as_dict()["unpriced_rows"] == sum(
        f["unpriced_rows"] or 0 for f in files.values())

    again = load_all(settings)  # exactly once: nothing is loaded twice
    assert again.rows == 0 and len(_stored(db, "traces", "span_id")) == len(rows)


def _points(metrics_data) -> list[tuple]:
    out = []
    for rm in metrics_data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    count = getattr(p, "count", None)
                    out.append((metric.name, type(metric.data).__name__, count,
                                p.attributes.get("gen_ai.request.model")))
    return sorted(out, key=repr)


def test_mixed_signal_files_fill_traces_metrics_and_logs(settings, db):
    """One fileexporter in several pipelines writes spans, metric points and log records
    into one file: every signal lands in its table, the ledger keeps the root (otlp)."""
    landing = open_landing(settings)
    metrics = otlp.sdk_metrics(seed=3)
    logs = otlp.sdk_logs(30, spans=otlp.genai_spans(40, seed=5))
    keys = []
    for seed, (encoding, layout, key) in enumerate((("proto", "framed", "otlp/file/all.pb"),
                                                    ("json", "lines", "otlp/file/all.jsonl"))):
        spans = otlp.genai_spans(40, seed=seed)
        messages = [otlp.encode("traces", spans[:20], encoding),
                    otlp.encode("metrics", metrics, encoding),
                    otlp.encode("logs", logs, encoding),
                    otlp.encode("traces", spans[20:], encoding)]
        landing.put(key, otlp.file_bytes(messages, layout))
        keys.append(key)
    report = load_all(settings)
    assert report.ok and report.count("loaded") == 2, report.format_table()
    files = ledger(db)
    points = _points(metrics)
    for key in keys:
        assert files[key]["dataset"] == "otlp"
        assert files[key]["row_count"] == 40 + len(points) + 30
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 80
    stored = db.execute(
        "SELECT metric_name, metric_type, temporality, sample_count, model, value, min_value, "
        "max_value, buckets, start_time FROM metrics").fetchall()
    assert len(stored) == 2 * len(points)
    by_type = {}
    for row in stored:
        by_type.setdefault(row[1], []).append(row)
    assert set(by_type) == {"histogram", "exponential_histogram", "counter", "updowncounter",
                            "gauge"}
    assert {r[2] for r in by_type["counter"]} == {"cumulative"}
    assert {r[2] for r in by_type["gauge"]} == {None}
    # histograms: count, sum, min, max and buckets with their bounds are all recoverable
    sdk_hist = {p.attributes["gen_ai.request.model"]: p
                for rm in metrics.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == "gen_ai.client.token.usage"
                for p in m.data.data_points}
    for name, _, _, count, model, value, lo, hi, buckets, start in by_type["histogram"]:
        p = sdk_hist[model]
        assert (name, count, value, lo, hi) == ("gen_ai.client.token.usage", p.count, p.sum,
                                                p.min, p.max)
        assert buckets == {"bounds": list(p.explicit_bounds), "counts": list(p.bucket_counts)}
        assert start == _micros(p.start_time_unix_nano)
    for row in by_type["exponential_histogram"]:
        assert set(row[8]) == {"scale", "zero_count", "zero_threshold", "positive", "negative"}
        assert sum(row[8]["positive"]["counts"]) + row[8]["zero_count"] == row[3] == 20
    log_rows = db.execute(
        "SELECT time, body, severity_number, severity_text, trace_id, span_id, event_name, "
        "attributes FROM logs ORDER BY time").fetchall()
    assert len(log_rows) == 60
    sdk = {_micros(r.log_record.timestamp): r.log_record for r in logs}
    for time, body, number, text, trace_id, span_id, event_name, attributes in log_rows:
        record = sdk[time]  # both files hold the same records (protobuf and JSON)
        want_body = record.body if isinstance(record.body, str) else json.dumps(
            record.body, separators=(",", ":"))
        assert (body, number, text) == (want_body, record.severity_number.value,
                                        record.severity_text)
        assert trace_id == (format(record.trace_id, "032x") if record.trace_id else None)
        assert span_id == (format(record.span_id, "016x") if record.span_id else None)
        assert event_name == record.event_name
        assert attributes["request.number"] == record.attributes["request.number"]


def _with_trace_id(data: bytes, trace_id: bytes) -> bytes:
    """A protobuf message whose first span's trace id is replaced (corrupt on purpose)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    msg = TracesData()
    msg.ParseFromString(data)
    msg.resource_spans[0].scope_spans[0].spans[3].trace_id = trace_id
    return msg.SerializeToString()


def test_corrupt_otlp_is_quarantined_naming_message_and_field(settings, db):
    landing = open_landing(settings)
    spans = otlp.genai_spans(20, seed=7)
    pb = otlp.encode("traces", spans, "proto")
    js = otlp.encode("traces", spans, "json")
    doc = json.loads(js)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["traceId"] = "ASNFZ4mrze8BI0VniavN7w=="
    lines = otlp.file_bytes([otlp.encode("traces", spans[:5], "json"), b'{"resourceSpans": [',
                             otlp.encode("traces", spans[5:], "json")], "lines")
    bad = {
        "otlp/file/broken_line.jsonl": (lines, "line 2: invalid JSON", None),
        "otlp/s3/truncated.binpb": (pb[: len(pb) // 2], "message 1: not a decodable OTLP", None),
        "otlp/file/past_eof.pb": (len(pb).to_bytes(4, "big") + pb + (10_000).to_bytes(4, "big")
                                  + pb[:100], "message 2: length prefix says 10000 bytes", None),
        "otlp/s3/base64_ids.json": (json.dumps(doc).encode(), "not base64", "traceId"),
        "otlp/s3/short_id.binpb": (_with_trace_id(pb, b"\x01" * 15), "spans[3]: traceId is 15 bytes",
                                   "traceId"),
        "metrics/wrong_signal.jsonl": (js + b"\n", "holds traces (resourceSpans), but the file "
                                       "is under metrics/", None),
        "otlp/garbage.bin": (b"hello world", "not an OTLP file", None),
        "otlp/empty.json": (b"", "empty file", None),
        "otlp/gz/empty.json.gz": (otlp.file_bytes([b""], "single", "gzip"),
                                  "empty file after decompression", None),
        "otlp/table.parquet": (encode_table(pa.table({"a": [1]}), "parquet"), "under otlp/", None),
    }
    for key, (data, _, _) in bad.items():
        landing.put(key, data)
    landing.put("otlp/good.jsonl", js + b"\n")
    report = load_all(settings)
    assert report.ok, report.format_table()
    files = ledger(db)
    assert files["otlp/good.jsonl"]["status"] == "loaded"
    assert files["otlp/good.jsonl"]["row_count"] == 20
    for key, (_, reason, column) in bad.items():
        assert files[key]["status"] == "quarantined", key
        assert reason in files[key]["error"], (key, files[key]["error"])
        assert files[key]["error_column"] == column, key
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 20  # nothing half-loaded


def _read(data: bytes, root: str = "otlp") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for dataset, batch in open_reader(io.BytesIO(data), "f", root, 64).batches():
        out.setdefault(dataset, []).extend(batch.to_pylist())
    return out


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_protobuf_and_json_of_the_same_records_read_the_same(signal):
    """The two walkers (protobuf classes, OTLP/JSON dicts) agree row for row on SDK data."""
    spans = otlp.genai_spans(150, seed=9)
    items = {"traces": spans, "metrics": otlp.sdk_metrics(seed=9),
             "logs": otlp.sdk_logs(70, spans=spans)}[signal]
    from_proto = _read(otlp.encode(signal, items, "proto"))
    from_json = _read(otlp.encode(signal, items, "json"))
    assert list(from_proto) == [signal] and from_proto == from_json


def test_current_names_win_and_nothing_is_dropped():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "from-resource"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {
        "gen_ai.system": "old-vendor", "gen_ai.provider.name": "anthropic",  # current wins
        "llm.model_name": "claude-sonnet-4-5",  # OpenInference: the model that answered
        "llm.token_count.prompt": 7, "gen_ai.usage.completion_tokens": "3",
        "gen_ai.response.time_to_first_chunk": float("nan"),  # not a column value
        "service.name": "from-span", "gen_ai.output.messages": "plain text, not JSON",
    }
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes):
        pass
    for encoding in ("proto", "json"):
        (row,) = _read(otlp.encode("traces", exporter.get_finished_spans(), encoding))["traces"]
        assert (row["provider"], row["request_model"], row["response_model"],
                row["input_tokens"], row["output_tokens"]) == (
            "anthropic", None, "claude-sonnet-4-5", 7, 3)
        assert row["time_to_first_token_ms"] is None
        assert row["service_name"] == "from-span"
        assert json.loads(row["output_payload"]) == "plain text, not JSON"
        kept = json.loads(row["attributes"])
        assert kept["gen_ai.system"] == "old-vendor"
        assert kept["resource.service.name"] == "from-resource"
        assert "gen_ai.response.time_to_first_chunk" in kept
