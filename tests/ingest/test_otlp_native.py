"""The compiled OTLP decoder against the Python reference: the same files through both
(tests/fuzz/otlp_diff.py) must give identical tables — every row, every value (jsonb
columns by parsed JSON value), the same batches and unusable counts — or the same error
(column, row, and where: line or message, and record).

Inputs: files made by the OpenTelemetry SDK in every layout and compression, the corrupt
kinds the reader quarantines, SDK messages edited for each edge case of the reference
(ids, 64-bit integers, enum names, kvlists and arrays, bytes, NaN, surrogates and bad
UTF-8, NUL, member order, duplicates, unknown fields, the attribute conversions, resources
and scopes, events, links, exemplars, metric kinds, bodies), the fuzz corpus, and a short
fuzz run. Without the extension this module skips — or fails when
OBS_REQUIRE_NATIVE_DECODER=1 (scripts/test.sh sets it: CI has a C compiler).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from observatory_storage import generate_otlp as otlp
from observatory_storage.ingest.otlp import native
from observatory_storage.ingest.otlp.framing import JSON, PROTO, Message
from observatory_storage.ingest.otlp.reader import OtlpReader
from tests.fuzz import mutate
from tests.fuzz.otlp_diff import differences, outcome

if not native.available:
    if os.environ.get("OBS_REQUIRE_NATIVE_DECODER") == "1":
        pytest.fail(f"the compiled OTLP decoder is not built: {native.IMPORT_ERROR}",
                    pytrace=False)
    pytest.skip(f"the compiled OTLP decoder is not built ({native.IMPORT_ERROR})",
                allow_module_level=True)

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


def same(data: bytes | None = None, *, messages=None, root="otlp", batch_size=64,
         expect: str | None = None) -> None:
    """Both decoders agree; ``expect`` ("loads" / an error text) keeps the case meaningful."""
    assert differences(data, root, batch_size, messages) == []
    if expect is not None:
        got = outcome(data, native.COMPILED, root, batch_size, messages)
        assert got.crash is None, got.crash
        if expect == "loads":
            assert got.error is None, got.error
            assert got.rows, "nothing loaded"
        else:
            assert got.error is not None and expect in got.error[3], got.error


def msg(data: bytes, encoding: str = "json") -> list[Message]:
    return [Message("line 1" if encoding == "json" else "message 1",
                    JSON if encoding == "json" else PROTO, data)]


SPANS = otlp.genai_spans(24, seed=11)
METRICS = otlp.sdk_metrics(seed=11)
LOGS = otlp.sdk_logs(18, spans=SPANS, seed=11)
ITEMS = {"traces": SPANS, "metrics": METRICS, "logs": LOGS}


# --- SDK files in every layout and compression --------------------------------------------

@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
@pytest.mark.parametrize("encoding", otlp.ENCODINGS)
@pytest.mark.parametrize("layout,compression", [
    ("single", "none"), ("single", "gzip"), ("single", "zstd"), ("framed", "none"),
    ("framed", "gzip"), ("framed", "zstd-frames"), ("lines", "none"), ("lines", "gzip"),
    ("lines", "zstd")])
def test_sdk_files_read_the_same(signal, encoding, layout, compression):
    if layout == "lines" and encoding == "proto":
        pytest.skip("JSON Lines are JSON")
    items = ITEMS[signal]
    if signal == "metrics":
        parts = [otlp.encode("metrics", items, encoding), otlp.encode("metrics", otlp.sdk_metrics(seed=12),
                                                                       encoding)]
    else:
        parts = [otlp.encode(signal, items[:10], encoding), otlp.encode(signal, items[10:], encoding)]
    if layout == "single":
        parts = parts[:1]
    data = otlp.file_bytes(parts, layout, compression, pretty=encoding == "json" and layout == "single")
    for batch_size in (1, 7, 64):  # batches accumulate across messages, as RowBuilder's
        same(data, batch_size=batch_size, expect="loads")


def test_mixed_signals_in_one_file():
    for encoding, layout in (("proto", "framed"), ("json", "lines")):
        parts = [otlp.encode("traces", SPANS[:5], encoding), otlp.encode("metrics", METRICS, encoding),
                 otlp.encode("logs", LOGS, encoding), otlp.encode("traces", SPANS[5:], encoding)]
        same(otlp.file_bytes(parts, layout), batch_size=4, expect="loads")


def test_the_extension_is_built_from_these_sources():
    assert native._otlpdecode.SOURCE_HASH == native.sources_hash(), (
        "the compiled OTLP decoder is stale: python setup.py build_ext --inplace")


def test_the_reader_says_which_decoder_ran(monkeypatch):
    data = otlp.encode("traces", SPANS, "json")
    assert OtlpReader(io.BytesIO(data), "f", "otlp", 10).decoder == native.decoder_name("compiled")
    monkeypatch.setenv(native.ENV, "python")
    assert OtlpReader(io.BytesIO(data), "f", "otlp", 10).decoder == "python"
    monkeypatch.setenv(native.ENV, "compiled")
    assert native.choice() == "compiled"
    monkeypatch.setenv(native.ENV, "fast")
    with pytest.raises(ValueError, match=native.ENV):
        native.choice()


# --- what the reader quarantines -----------------------------------------------------------

def test_corrupt_files_are_refused_the_same_way():
    pb = otlp.encode("traces", SPANS, "proto")
    js = otlp.encode("traces", SPANS, "json")
    cases = {
        "truncated protobuf": (pb[: len(pb) // 2], "otlp", "not a decodable OTLP"),
        "every truncation": None,
        "bad length prefix": (len(pb).to_bytes(4, "big") + pb + (10_000).to_bytes(4, "big") + pb[:100],
                              "otlp", "length prefix says"),
        "garbage": (b"hello world", "otlp", "not an OTLP file"),
        "broken JSON line": (js + b"\n" + b'{"resourceSpans": [' + b"\n", "otlp", "invalid JSON"),
        "wrong signal folder": (js + b"\n", "metrics", "under metrics/"),
        "wrong signal folder (protobuf)": (pb, "logs", "under logs/"),
        "empty": (b"", "otlp", "empty file"),
        "empty gzip": (gzip.compress(b""), "otlp", "empty file"),
        "corrupt gzip": (gzip.compress(js)[:-20] + b"\0" * 20, "otlp", None),
        "no signal": (b'{"a": 1, "b": 2}\n', "otlp", "not an OTLP document"),
        "two signals": (b'{"resourceSpans": [], "resourceLogs": []}\n', "otlp", "several signals"),
    }
    for name, case in cases.items():
        if case is None:
            continue
        data, root, reason = case
        same(data, root=root, expect=reason), name
    same(messages=msg(b"[1, 2]"), expect="expected a JSON object, got list")
    same(messages=msg(b"5"), expect="expected a JSON object, got int")
    for cut in range(1, len(pb), 97):  # a protobuf message cut anywhere
        same(pb[:cut])
    for cut in range(1, len(js), 211):
        same(js[:cut])


def test_messages_without_records_yield_nothing():
    for data, encoding in ((b"{}", "json"), (b"", "proto"), (b"\x0a\x00", "proto"),
                           (b'{"resourceSpans": []}', "json"), (b'{"resourceLogs": null}', "json"),
                           (b'{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}', "json")):
        same(messages=msg(data, encoding))
        assert outcome(None, native.COMPILED, messages=msg(data, encoding)).rows == {}
    # ... but an empty JSON list of the wrong signal under a signal's folder is refused
    same(messages=msg(b'{"resourceSpans": []}'), root="logs", expect="under logs/")


# --- JSON edge cases, on SDK documents -------------------------------------------------------

def doc(signal: str = "traces", items=None):
    return json.loads(otlp.encode(signal, items if items is not None else ITEMS[signal][:3], "json"))


def first(d: dict, signal: str = "traces") -> dict:
    key = {"traces": ("resourceSpans", "scopeSpans", "spans"),
           "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
           "logs": ("resourceLogs", "scopeLogs", "logRecords")}[signal]
    return d[key[0]][0][key[1]][0][key[2]][0]


def same_json(d, expect="loads", text: str | None = None, **kw):
    same(messages=msg((text if text is not None else json.dumps(d)).encode()), expect=expect, **kw)


def test_json_ids():
    for value, expect in (("AB" * 16, "loads"), ("aB" * 16, "loads"), ("0" * 32, "not all zero"),
                          ("ab" * 15, "32 hex digits"), ("ASNFZ4mrze8BI0VniavN7w==", "not base64"),
                          ("", "expected 32"), (None, "expected 32"), (12, "expected 32"),
                          ("ab" * 16 + " ", "expected 32")):
        d = doc()
        first(d)["traceId"] = value
        same_json(d, expect)
    for value, expect in (("", "loads"), (None, "loads"), ("0" * 16, "not all zero"),
                          ("CD" * 8, "loads"), ("cd" * 9, "16 hex digits")):
        d = doc()
        first(d)["parentSpanId"] = value
        same_json(d, expect)
    d = doc("logs")
    first(d, "logs")["traceId"] = "AB" * 16
    first(d, "logs")["spanId"] = ""
    same_json(d)


def test_json_integers_as_text_and_beyond_2_53():
    for value, expect in ((1_700_000_000_123_456_789, "loads"), ("1700000000123456789", "loads"),
                          (" 1700000000123456789 ", "loads"), ("+17", "loads"), ("-1999", "loads"),
                          (2**64 - 1, "loads"), (str(2**64 - 1), "loads"), (str(2**64), "not an integer"),
                          (-(2**63), "loads"), ("5_000", "not an integer"), ("١٢", "not an integer"),
                          (1.0, "not an integer"), (True, "not an integer"), ("", "not an integer"),
                          ("0x10", "not an integer"), (2**70, "not an integer")):
        d = doc()
        first(d)["startTimeUnixNano"] = value
        first(d)["endTimeUnixNano"] = value
        same_json(d, expect)
    d = doc()
    first(d)["flags"] = "257"
    first(d)["droppedAttributesCount"] = 2**64 - 1
    same_json(d)


def test_json_enum_names():
    for kind in ("SPAN_KIND_CLIENT", "SPAN_KIND_UNSPECIFIED", 0, 9, "5", -1, "SPAN_KIND_NONE"):
        d = doc()
        first(d)["kind"] = kind
        same_json(d, "loads" if kind != "SPAN_KIND_NONE" else "not an integer")
    for code in ("STATUS_CODE_ERROR", "STATUS_CODE_OK", "STATUS_CODE_UNSET", 2, 7, "1"):
        d = doc()
        first(d)["status"] = {"code": code, "message": "boom"}
        same_json(d)
    for number in ("SEVERITY_NUMBER_WARN2", "SEVERITY_NUMBER_UNSPECIFIED", 24, 0):
        d = doc("logs")
        first(d, "logs")["severityNumber"] = number
        same_json(d)
    d = doc("metrics", METRICS)
    for rm in d["resourceMetrics"]:
        for sm in rm["scopeMetrics"]:
            for m in sm["metrics"]:
                for kind in ("sum", "histogram", "exponentialHistogram"):
                    if kind in m:
                        m[kind]["aggregationTemporality"] = "AGGREGATION_TEMPORALITY_DELTA"
    same_json(d)


def attr(key, value):
    return {"key": key, "value": value}


def with_attrs(*attrs, signal="traces", **fields):
    d = doc(signal)
    rec = first(d, signal)
    rec["attributes"] = list(rec.get("attributes", [])) + list(attrs)
    rec.update(fields)
    return d


def test_json_kvlists_arrays_and_bytes():
    kv = {"kvlistValue": {"values": [attr("a", {"intValue": "1"}), attr("b", {"doubleValue": 2.5}),
                                     attr("a", {"stringValue": "last wins"}),
                                     {"value": {"boolValue": True}},
                                     attr("n", {"arrayValue": {"values": [{"intValue": 3}, {}, None]}})]}}
    arr = {"arrayValue": {"values": [{"stringValue": "stop"}, {"intValue": "7"}, {"doubleValue": 0.5},
                                     {"boolValue": False}, {"bytesValue": "AAEC"}, kv, {}]}}
    same_json(with_attrs(attr("k", kv), attr("arr", arr), attr("gen_ai.response.finish_reasons", arr),
                         attr("gen_ai.input.messages", kv), attr("gen_ai.output.messages", arr),
                         attr("b", {"bytesValue": "AAECAwQ="}), attr("user.id", {"bytesValue": "MTIz"}),
                         attr("empty", {}), attr("none", None), attr("noval", {"arrayValue": {}})))
    for bad in ({"intValue": "x"}, {"doubleValue": "one"}, {"doubleValue": None}, {"stringValue": 5},
                {"bytesValue": 5}, {"arrayValue": {"values": {"a": 1}}}, {"arrayValue": [1]},
                {"kvlistValue": {"values": [attr(5, {"intValue": 1})]}},
                {"kvlistValue": {"values": [5]}}, [1], "text"):
        same_json(with_attrs(attr("k", bad)), "malformed OTLP structure")
    same_json(with_attrs({"key": 5, "value": {"stringValue": "x"}}), "malformed OTLP structure")
    same_json(with_attrs({"value": {"stringValue": "x"}}), "KeyError")


def test_json_anyvalue_members():
    # stringValue wins when present; else the first member in document order
    same_json(None, text=json.dumps(with_attrs(attr("a", {"intValue": 1, "stringValue": "s"}),
                                               attr("b", {"doubleValue": 1.5, "intValue": 3}),
                                               attr("c", {"stringValue": None, "intValue": 3}))))
    d = with_attrs(attr("gen_ai.usage.input_tokens", {"intValue": 5}))
    text = json.dumps(d).replace('{"intValue": 5}', '{"intValue": 5, "intValue": "9", "boolValue": true}')
    same_json(None, text=text)


def test_json_nesting_depth():
    for depth in (46, 47, 48, 60):
        same_json(with_attrs(attr("deep", mutate.plain(mutate.deep_any(depth, "array")))),
                  "loads" if depth <= 47 else "nested deeper")
    for depth in (30, 31, 32):
        same_json(with_attrs(attr("deep", mutate.plain(mutate.deep_any(depth, "kvlist")))),
                  "loads" if depth <= 31 else "nested deeper")
    text = json.dumps(doc())[:-1] + ', "x": ' + "[" * 1023 + "]" * 1023 + "}"  # 1024 deep
    same_json(None, text=text)
    text = json.dumps(doc())[:-1] + ', "x": ' + "[" * 1024 + "]" * 1024 + "}"
    same_json(None, "invalid JSON", text=text)


def test_json_numbers_nan_and_infinity():
    same_json(with_attrs(attr("gen_ai.response.time_to_first_chunk", {"doubleValue": "NaN"}),
                         attr("x", {"doubleValue": "Infinity"}), attr("y", {"doubleValue": "-infinity"}),
                         attr("z", {"doubleValue": 1e308}), attr("w", {"doubleValue": "1e999"}),
                         attr("v", {"doubleValue": 5e-324}), attr("u", {"doubleValue": 123456789012345680000.0})))
    d = doc("metrics", METRICS)
    rm = d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    for m in rm:
        for kind in ("gauge", "sum"):
            if kind in m:
                m[kind]["dataPoints"][0]["asDouble"] = "NaN"
                m[kind]["dataPoints"][-1]["asDouble"] = "Infinity"
        if "histogram" in m:
            m["histogram"]["dataPoints"][0]["min"] = "-Infinity"
            m["histogram"]["dataPoints"][0]["explicitBounds"] = [0, "NaN", 1.5, "Infinity"]
    same_json(d)
    for text in ("1e400", "-1e400", "NaN", "Infinity"):  # bare: not JSON
        same(messages=msg(json.dumps(doc()).replace('"flags": 256', f'"flags": {text}').encode()))


def test_json_strings_surrogates_utf8_and_nul():
    base = json.dumps(doc(), ensure_ascii=False)
    assert '"name": "chat' in base
    for replacement, expect in (('"name": "\\ud800chat', "invalid JSON"), ('"name": "\\udc00chat', "invalid JSON"),
                                ('"name": "\\ud83d\\ude00chat', "loads"), ('"name": "\\u0000chat', "loads"),
                                ('"name": "nul\\u0000 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t chat', "loads")):
        same_json(None, expect, text=base.replace('"name": "chat', replacement, 1))
    raw = base.encode()
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        same(messages=msg(raw.replace(b'"name": "chat', b'"name": "' + bad + b"chat", 1)),
             expect="invalid JSON")
    same(messages=msg(b"\xef\xbb\xbf" + raw), expect="invalid JSON")  # a BOM
    same(messages=msg(raw.replace(b'"name": "chat', b'"name": "tab\tchat', 1)), expect="invalid JSON")


def test_json_member_order_unknown_fields_and_duplicates():
    d = doc()
    text = json.dumps(d)
    rec = first(d)
    shuffled = dict(reversed(list(rec.items())))
    d2 = doc()
    d2["resourceSpans"][0]["scopeSpans"][0]["spans"][0] = shuffled
    d2["resourceSpans"][0] = dict(reversed(list(d2["resourceSpans"][0].items())))
    d2["unknown"] = {"deep": [1, {"x": None}]}
    first(d2)["futureField"] = [1, 2, {"a": "b"}]
    same_json(d2)
    # duplicate members: the last wins (name, attributes, a whole resource list)
    dup = text.replace('"name": "chat', '"name": "first", "name": "chat', 1)
    dup = dup.replace('"attributes": [', '"attributes": [], "attributes": [', 1)
    same_json(None, text=dup)
    same_json(None, text='{"resourceSpans": 5, "resourceSpans": ' + json.dumps(d["resourceSpans"]) + "}")


def test_json_wrong_types_are_refused_alike():
    for field, value in (("name", 5), ("name", ["a"]), ("traceState", {"a": 1}), ("attributes", "x"),
                         ("attributes", {"a": 1}), ("events", "x"), ("links", {}), ("status", [1]),
                         ("status", "error"), ("kind", 1.5), ("events", [5]), ("links", [None])):
        d = doc()
        first(d)[field] = value
        same_json(d, expect=None)
        assert outcome(None, native.COMPILED, messages=msg(json.dumps(d).encode())).error or value == {}
    for value in (5, "x", {"a": 1}, [5], [None], [{"scopeSpans": 5}]):
        same_json({"resourceSpans": value}, expect=None)


# --- the attribute conversions (mapping.py), both encodings ---------------------------------

CONVERSIONS = [
    ("gen_ai.usage.cost", v) for v in (
        {"doubleValue": 0.00023099999999999998}, {"doubleValue": 0.0123}, {"doubleValue": 1 / 1024},
        {"doubleValue": 2.5e-10}, {"doubleValue": 999999999.9999999}, {"doubleValue": 1e9},
        {"doubleValue": -0.0}, {"doubleValue": 5e-324}, {"intValue": "12"}, {"intValue": 10**9},
        {"stringValue": "0.0000000005"}, {"stringValue": "0.0000000015"}, {"stringValue": " 1.5e-3 "},
        {"stringValue": "999999999.9999999996"}, {"stringValue": "1e-999999999"}, {"stringValue": "+.5"},
        {"stringValue": "1."}, {"stringValue": "1e5"}, {"stringValue": "١"}, {"stringValue": "inf"},
        {"stringValue": "123456789012345678901234567890e-30"}, {"boolValue": True}, {"bytesValue": "MTIz"})
] + [
    ("gen_ai.usage.input_tokens", v) for v in (
        {"intValue": 2**31 - 1}, {"intValue": 2**31}, {"intValue": -(2**31)}, {"doubleValue": 5.0},
        {"doubleValue": 5.5}, {"doubleValue": 2147483648.0}, {"stringValue": " 7 "}, {"stringValue": "+7"},
        {"stringValue": "7.0"}, {"stringValue": "5_000"}, {"stringValue": "٣"}, {"boolValue": True},
        {"stringValue": "0000000000000000000000012"}, {"bytesValue": "MTIz"})
] + [
    ("gen_ai.response.time_to_first_chunk", v) for v in (
        {"doubleValue": 0.25}, {"intValue": 2}, {"stringValue": "0.5"}, {"stringValue": "1e308"},
        {"doubleValue": 1e306}, {"stringValue": "nan"}, {"intValue": str(2**64 - 1)})
] + [
    ("gen_ai.request.model", v) for v in (
        {"intValue": 5}, {"doubleValue": 1.5}, {"doubleValue": 1e16}, {"boolValue": True},
        {"doubleValue": "NaN"}, {"bytesValue": "AAEC"}, {"kvlistValue": {"values": []}}, None)
] + [
    ("gen_ai.input.messages", v) for v in (
        {"stringValue": '[{"role": "user"}]'}, {"stringValue": "plain text"}, {"stringValue": " 12 "},
        {"stringValue": "NaN"}, {"stringValue": '{"a": 1, "a": 2}'}, {"intValue": 3}, None,
        {"kvlistValue": {"values": [attr("role", {"stringValue": "user"})]}})
] + [
    ("otel.status_code", v) for v in ({"stringValue": "ERROR"}, {"stringValue": "ÉRROR"}, {"intValue": 2})
] + [
    ("session.id", {"stringValue": "s"}), ("gen_ai.conversation.id", {"stringValue": "conv"}),  # ranks
    ("deployment.environment", {"stringValue": "old"}), ("deployment.environment.name", {"intValue": 1}),
    ("error.type", {"stringValue": ""}), ("event.name", {"stringValue": "e"}),
]


@pytest.mark.parametrize("encoding", otlp.ENCODINGS)
def test_attribute_conversions(encoding):
    """Each value alone, and all at once (ranks, and values kept in attributes)."""
    kept = []
    for key, value in CONVERSIONS:
        d = with_attrs(attr(key, value))
        try:
            data = to_encoding(d, "traces", encoding)
        except ValueError:  # (protobuf's int64 holds no 2**64 - 1)
            continue
        kept.append((key, value))
        same(messages=msg(data, encoding), expect="loads")
    d = with_attrs(*(attr(k, v) for k, v in kept))
    same(messages=msg(to_encoding(d, "traces", encoding), encoding), expect="loads")


def to_encoding(d: dict, signal: str, encoding: str) -> bytes:
    """An OTLP/JSON document as itself, or as protobuf (the same message)."""
    if encoding == "json":
        return json.dumps(d).encode()
    from google.protobuf import json_format

    from observatory_storage.ingest.otlp.signals import SIGNALS

    def hex_to_b64(x):  # protobuf's JSON reads ids as base64
        if isinstance(x, dict):
            return {k: (_b64(v) if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                        else hex_to_b64(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [hex_to_b64(v) for v in x]
        return x

    message = SIGNALS[signal].message()
    try:
        json_format.ParseDict(hex_to_b64(d), message)
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None
    return message.SerializeToString()


def _b64(hexid: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hexid)).decode() if hexid else ""


def test_resources_scopes_and_record_attributes():
    d = doc()
    res = d["resourceSpans"][0]
    res["resource"]["attributes"] += [attr("service.name", {"stringValue": "again"}),
                                      attr("gen_ai.provider.name", {"stringValue": "from-resource"}),
                                      attr("gen_ai.usage.input_tokens", {"stringValue": "x"}),
                                      attr("schema_url", {"stringValue": "attr"})]
    res["schemaUrl"] = "https://opentelemetry.io/schemas/1.26.0"
    scope = res["scopeSpans"][0]
    scope["scope"]["attributes"] = [attr("name", {"stringValue": "shadowed"}),
                                    attr("k", {"intValue": 1}), attr("k", {"intValue": 2}),
                                    attr("schema_url", {"stringValue": "s"})]
    scope["schemaUrl"] = "https://scope"
    res["scopeSpans"].append(json.loads(json.dumps(scope)))
    res["scopeSpans"][1]["scope"] = {}
    first(d)["attributes"].append(attr("gen_ai.provider.name", {"stringValue": "own"}))
    first(d)["attributes"].append(attr("resource.service.name", {"stringValue": "literal"}))
    d["resourceSpans"].append({"resource": None, "scopeSpans": [{"spans": []}]})
    d["resourceSpans"].append({"resource": {"attributes": [attr("service.name", {"stringValue": "r2"})]}})
    for encoding in otlp.ENCODINGS:
        same(messages=msg(to_encoding(d, "traces", encoding), encoding), expect="loads")


def test_events_links_and_error_type():
    d = doc()
    span = first(d)
    span["events"] = [{"name": "exception", "timeUnixNano": "5",
                       "attributes": [attr("exception.type", {"stringValue": ""})]},
                      {"name": "other", "attributes": [attr("exception.type", {"stringValue": "no"})]},
                      {"name": "exception", "droppedAttributesCount": 2,
                       "attributes": [attr("exception.type", {"stringValue": "First"}),
                                      attr("exception.type", {"stringValue": "Last"})]},
                      {"name": "exception", "attributes": [attr("exception.type", {"stringValue": "Later"})]}]
    span["links"] = [{"traceId": "AB" * 16, "spanId": "CD" * 8, "traceState": "k=v", "flags": 1,
                      "attributes": [attr("a", {"intValue": 1})]},
                     {"traceId": "ab" * 16, "spanId": "cd" * 8}]
    for encoding in otlp.ENCODINGS:
        same(messages=msg(to_encoding(d, "traces", encoding), encoding), expect="loads")
    span["links"].append({"traceId": "", "spanId": "cd" * 8})
    same_json(d, "links.traceId")
    span["attributes"].append(attr("error.type", {"stringValue": "mine"}))
    span["links"].pop()
    same_json(d)


def test_metric_points_buckets_and_exemplars():
    d = doc("metrics", METRICS)
    metrics = d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    for m in metrics:
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram"):
            if kind not in m:
                continue
            p = m[kind]["dataPoints"][0]
            p["exemplars"] = [{"timeUnixNano": "7", "asDouble": 1.5, "traceId": "AB" * 16, "spanId": "CD" * 8,
                               "filteredAttributes": [attr("x", {"stringValue": "y"})]},
                              {"asInt": "-3"}]
            p["flags"] = 2
            m[kind]["dataPoints"].append(dict(p, flags=1))  # no recorded value: skipped
    metrics.append({"name": "quantiles", "summary": {"dataPoints": [
        {"timeUnixNano": "9", "count": "3", "sum": 2.5,
         "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 0.99, "value": "NaN"}]}]}})
    metrics.append({"name": "no data"})
    metrics.append({"name": "empty sum", "sum": {}})
    metrics.append({"name": "gauge of nothing", "gauge": {"dataPoints": [{}]}})
    for encoding in otlp.ENCODINGS:
        same(messages=msg(to_encoding(d, "metrics", encoding), encoding), expect="loads", batch_size=3)
    hist = next(m for m in metrics if "histogram" in m)
    hist["histogram"]["dataPoints"][0]["count"] = str(2**64 - 1)  # does not fit bigint
    same_json(d, "does not fit int64", batch_size=3)
    hist["histogram"]["dataPoints"][0]["count"] = "3"
    hist["histogram"]["dataPoints"][0]["bucketCounts"] = "123"
    same_json(d, "malformed histogram data point")


def test_log_bodies_and_event_names():
    d = doc("logs", LOGS[:6])
    recs = d["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    recs[0]["body"] = {"kvlistValue": {"values": [attr("a", {"doubleValue": 1e16}), attr("a", {"intValue": 2}),
                                                  attr("b", {"arrayValue": {"values": [{"doubleValue": 0.1}]}})]}}
    recs[1]["body"] = {"bytesValue": "AAEC"}
    recs[2]["body"] = {"doubleValue": 2.5}
    recs[3].pop("body", None)
    recs[3]["eventName"] = "field"
    recs[3]["attributes"].append(attr("event.name", {"stringValue": "attribute"}))
    recs[4]["eventName"] = "same"
    recs[4]["attributes"].append(attr("event.name", {"stringValue": "same"}))
    recs[5]["timeUnixNano"] = "0"
    recs[5]["observedTimeUnixNano"] = "1000"
    for encoding in otlp.ENCODINGS:
        same(messages=msg(to_encoding(d, "logs", encoding), encoding), expect="loads")
    recs[0]["severityNumber"] = 40000  # does not fit smallint: refused at the batch, naming the row
    same_json(d, "does not fit int16")


# --- protobuf edge cases ------------------------------------------------------------------------

def _tag(num: int, wt: int) -> bytes:
    return mutate._varint(num << 3 | wt)


def _ld(num: int, payload: bytes) -> bytes:
    return _tag(num, 2) + mutate._varint(len(payload)) + payload


def test_protobuf_merges_unknown_fields_and_wire_types():
    pb = otlp.encode("traces", SPANS[:3], "proto")
    tree = mutate.parse_pb(pb)
    span = tree[0][2][1][2][1][2]  # resource_spans[0].scope_spans[0].spans[0]
    span += [[5, 2, b"renamed"], [15, 2, [[2, 2, b"msg"]]], [15, 2, [[3, 0, 2]]],  # merged status
             [6, 0, 2**64 - 1], [10, 0, 2**40 + 3], [99, 0, 1], [100, 5, b"abcd"], [101, 3, [[1, 0, 1]]],
             [5, 0, 7], [9, 2, [[1, 2, b"k"], [2, 2, [[5, 2, [[1, 2, [[1, 2, b"a"]]]]]]],
                                [2, 2, [[1, 2, b"s"]]], [2, 2, [[5, 2, [[1, 2, [[3, 0, 5]]]]]]]]]]
    same(messages=msg(mutate.dump_pb(tree), "proto"), expect="loads")
    for payload in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80"):  # bad UTF-8 in a string field
        bad = mutate.parse_pb(pb)
        bad[0][2][1][2][1][2].append([5, 2, payload])
        same(messages=msg(mutate.dump_pb(bad), "proto"), expect="not a decodable OTLP")
    same(messages=msg(pb + _tag(0, 0) + b"\x01", "proto"), expect="not a decodable OTLP")
    same(messages=msg(pb + _tag(20, 4), "proto"), expect="not a decodable OTLP")
    same(messages=msg(pb + _tag(20, 3), "proto"), expect="not a decodable OTLP")
    same(messages=msg(pb + _tag(21, 0) + b"\xff" * 10 + b"\x01", "proto"), expect="not a decodable OTLP")
    same(messages=msg(pb + _tag(21, 0) + b"\xff" * 9 + b"\x7f", "proto"), expect="loads")


def test_protobuf_ids_and_sniffing():
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    for trace_id, expect in ((b"\x01" * 15, "15 bytes"), (b"\x00" * 16, "not all zero"), (b"", "0 bytes")):
        m = TracesData()
        m.ParseFromString(otlp.encode("traces", SPANS[:3], "proto"))
        m.resource_spans[0].scope_spans[0].spans[1].trace_id = trace_id
        same(messages=msg(m.SerializeToString(), "proto"), expect=expect)
    m.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01" * 16
    m.resource_spans[0].scope_spans[0].spans[1].parent_span_id = b"\x00" * 8  # allowed (optional)
    same(messages=msg(m.SerializeToString(), "proto"), expect="loads")
    # logs and metrics are told apart from traces by their first record
    for signal in ("metrics", "logs"):
        same(messages=msg(otlp.encode(signal, ITEMS[signal], "proto"), "proto"), expect="loads")
    # a first span without ids: not traces; parses as another signal or not at all
    m.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    same(messages=msg(m.SerializeToString(), "proto"))


def test_protobuf_nesting_depth():
    def nested(depth):
        v = _ld(1, b"x")
        for _ in range(depth):
            v = _ld(5, _ld(1, v))
        kv = _ld(1, b"deep") + _ld(2, v)
        span = _ld(1, b"\x01" * 16) + _ld(2, b"\x02" * 8) + _ld(9, kv)
        return _ld(1, _ld(2, _ld(2, span)))
    for depth, expect in ((47, "loads"), (48, "not a decodable OTLP")):
        same(messages=msg(nested(depth), "proto"), expect=expect)
    groups = _tag(20, 3) * 100 + _tag(20, 4) * 100
    same(messages=msg(otlp.encode("traces", SPANS[:2], "proto") + groups, "proto"), expect="loads")
    same(messages=msg(otlp.encode("traces", SPANS[:2], "proto") + _tag(20, 3) + groups + _tag(20, 4),
                      "proto"), expect="not a decodable OTLP")


def test_protobuf_doubles_and_packed_fields():
    pb = otlp.encode("metrics", METRICS, "proto")
    tree = mutate.parse_pb(pb)
    nan = struct.pack("<d", float("nan"))
    for node in mutate._pb_nodes(tree):
        f = node[2]
        if f[1] == 1 and f[0] == 4 and isinstance(f[2], bytes):  # as_double / count
            f[2] = nan
    same(messages=msg(mutate.dump_pb(tree), "proto"))
    same(messages=msg(pb + _ld(99, b"\x00" * 7), "proto"), expect="loads")


# --- the corpus, and a short fuzz run --------------------------------------------------------------

def test_corpus_reads_the_same():
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert files
    for path in files:
        data = path.read_bytes()
        if path.parent.name == "files":
            same(data, batch_size=3)
        else:
            encoding = "json" if path.parent.name == "json" else "proto"
            same(messages=msg(data, encoding), batch_size=3)


def test_random_mutations_read_the_same():
    """A fixed set of structure-aware mutations of SDK messages (tests/fuzz/mutate.py)."""
    import random

    seeds = mutate.seed_messages(3)
    for seed in range(400):
        rng = random.Random(seed)
        encoding, data = mutate.case(rng, seeds)
        diffs = differences(None, batch_size=rng.choice([1, 3, 64]), messages=msg(data, encoding))
        assert diffs == [], (seed, encoding, diffs)


def test_fuzz_smoke(tmp_path):
    """A few seconds of the atheris harness (coverage-guided, fixed seed), in a subprocess.
    (libFuzzer adds what it finds to its first corpus folder: a temporary one.)"""
    pytest.importorskip("atheris")
    harness = Path(__file__).resolve().parents[1] / "fuzz" / "atheris_diff.py"
    done = subprocess.run(
        [sys.executable, str(harness), str(tmp_path), str(CORPUS / "files"), str(CORPUS / "json"),
         str(CORPUS / "proto"),
         "-runs=1500", "-seed=1", "-max_len=16384", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 1500 runs" in done.stderr
