"""Make real OpenTelemetry spans with a real LLM instrumentation package.

    <producer venv>/bin/python driver.py <producer> [outdir]

Run by ``build.py`` in the producer's own venv (``requirements/<producer>.txt``).
<producer> is a requirements file's name: openllmetry, openllmetry-2025, openinference,
openlit (and, with such a file, openinference-2025, openlit-2025, anthropic-native,
anthropic-native-content); the family is the part before the first "-";
anthropic-native-content runs with ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content.

Runs the real ``openai`` and ``anthropic`` SDKs against fake_llm_server (loopback only,
max_retries=0), with the producer's instrumentation on a TracerProvider that exports to an
InMemorySpanExporter through a SimpleSpanProcessor, then writes:

  <outdir>/<producer>.pb            one ExportTraceServiceRequest, serialized, no framing
                                    (what the Collector's awss3exporter writes with
                                    marshaler: otlp_proto)
  <outdir>/<producer>.otlp.json     the same request as OTLP/JSON (hex ids, int enums)
  <outdir>/<producer>.summary.json  per span: call, name, kind, status, scope, every
                                    attribute with value (strings cut to 200 chars) and
                                    Python type, events; plus package versions and the
                                    outcome of every call

Environment: FAKE_LLM_PORT=<n> serves the fake on a fixed loopback port (default: a free
one); trace/span ids come from a generator seeded with the producer name.
FAKE_LLM_REAL_HOSTS=1 (default): the clients keep base_url https://api.openai.com/v1 and
https://api.anthropic.com, and an httpx transport rewrites every request to the loopback
fake (so host-derived attributes look like production); =0: base_url is the fake's own
http://127.0.0.1:<port>.
"""

from __future__ import annotations

import base64
import importlib.metadata as md
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_llm_server  # noqa: E402

TRUNC = 200
PACKAGES = [
    "openai", "anthropic", "opentelemetry-api", "opentelemetry-sdk",
    "opentelemetry-semantic-conventions", "opentelemetry-semantic-conventions-ai",
    "opentelemetry-instrumentation", "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-proto", "protobuf", "opentelemetry-instrumentation-openai",
    "opentelemetry-instrumentation-anthropic", "openinference-instrumentation",
    "openinference-instrumentation-openai", "openinference-instrumentation-anthropic",
    "openinference-semantic-conventions", "openlit", "wrapt", "httpx", "pydantic",
]
CONTENT_ENV = [
    "TRACELOOP_TRACE_CONTENT", "OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_OUTPUTS",
    "OPENINFERENCE_HIDE_INPUT_MESSAGES", "OPENINFERENCE_HIDE_OUTPUT_MESSAGES",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "OPENLIT_CAPTURE_MESSAGE_CONTENT",
    "OTEL_SEMCONV_STABILITY_OPT_IN", "ANTHROPIC_OPEN_TELEMETRY",
    "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE",
]


def versions():
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def openlit_pricing_file(outdir):
    """A local pricing table in OpenLIT's format (its default is fetched from the web at
    init, which this machine cannot reach). Prices per 1k tokens, USD."""
    path = os.path.join(outdir, "openlit-pricing.json")
    table = {
        "chat": {
            "gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006},
            "gpt-4o-mini-2024-07-18": {"promptPrice": 0.00015, "completionPrice": 0.0006},
            "claude-sonnet-4-5": {"promptPrice": 0.003, "completionPrice": 0.015},
            "claude-sonnet-4-5-20250929": {"promptPrice": 0.003, "completionPrice": 0.015},
        },
        "embeddings": {"text-embedding-3-small": 0.00002},
        "images": {}, "audio": {},
    }
    with open(path, "w") as f:
        json.dump(table, f, indent=1)
    return path


def instrument(family, tp, outdir):
    """Turn the producer's instrumentation on; returns a note for the summary."""
    if family == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp)
        AnthropicInstrumentor().instrument(tracer_provider=tp)
        return "OpenAIInstrumentor().instrument(tracer_provider=tp); AnthropicInstrumentor() likewise"
    if family == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp)
        AnthropicInstrumentor().instrument(tracer_provider=tp)
        return "OpenAIInstrumentor().instrument(tracer_provider=tp); AnthropicInstrumentor() likewise"
    if family == "openlit":
        import inspect

        import openlit

        params = inspect.signature(openlit.init).parameters
        kwargs = {"application_name": "instr-openlit", "environment": "fixture"}
        if "tracer" in params:
            kwargs["tracer"] = tp.get_tracer("openlit")
        if "disable_metrics" in params:
            kwargs["disable_metrics"] = True
        if "pricing_json" in params:
            kwargs["pricing_json"] = openlit_pricing_file(outdir)
        if "disabled_instrumentors" in params:
            pass  # only openai and anthropic are installed; the rest skip themselves
        t0 = time.time()
        openlit.init(**kwargs)
        return f"openlit.init({', '.join(f'{k}=...' for k in kwargs)}) took {time.time() - t0:.1f}s"
    if family == "anthropic":
        return "no instrumentation: only what the anthropic/openai SDKs emit by themselves"
    raise SystemExit(f"unknown producer family {family!r}")


def loopback_client(sdk, base_url):
    """sdk.DefaultHttpxClient whose transport sends every request to base_url (the fake),
    keeping the request's own URL otherwise (Host header, path). Works with the httpx that
    the SDK uses (httpx, or httpx2 for the newest SDKs)."""
    import importlib
    from urllib.parse import urlsplit

    client_cls = next(c for c in sdk.DefaultHttpxClient.__mro__ if c.__name__ == "Client"
                      and c.__module__.split(".")[0] in ("httpx", "httpx2"))
    hx = importlib.import_module(client_cls.__module__.split(".")[0])
    target = urlsplit(base_url)

    class LoopbackTransport(hx.HTTPTransport):
        def handle_request(self, request):
            request.url = request.url.copy_with(scheme="http", host=target.hostname, port=target.port)
            assert request.url.host in ("127.0.0.1", "localhost", "::1")
            return super().handle_request(request)

    return sdk.DefaultHttpxClient(transport=LoopbackTransport())


def calls(base_url):
    import anthropic
    import openai

    if os.environ.get("FAKE_LLM_REAL_HOSTS", "1") != "0":
        # The SDKs keep their real base URLs (so server.address, url.full, api_base and the
        # provider that OpenInference infers from the host are what production shows); a
        # transport sends every request to the loopback fake instead. Nothing leaves the
        # machine: the transport rewrites each request before it is sent.
        oa_http, an_http = loopback_client(openai, base_url), loopback_client(anthropic, base_url)
        oa = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="sk-fake-openai",
                           max_retries=0, timeout=10, http_client=oa_http)
        an = anthropic.Anthropic(base_url="https://api.anthropic.com", api_key="sk-ant-fake",
                                 max_retries=0, timeout=10, http_client=an_http)
        assert oa._client is oa_http and an._client is an_http, "SDK ignored http_client"
    else:
        oa = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-fake-openai", max_retries=0, timeout=10)
        an = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-fake", max_retries=0, timeout=10)
    msgs = [
        {"role": "system", "content": "You are a terse geography assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]

    def chat_usage():
        r = oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0.2,
                                       max_tokens=512, top_p=0.9, user="user-123")
        return {"model": r.model, "usage": r.usage.model_dump() if r.usage else None}

    def chat_no_usage():
        r = oa.chat.completions.create(model="gpt-4o-mini", messages=msgs,
                                       extra_headers={"X-Fake-Scenario": "no-usage"})
        return {"model": r.model, "usage": None if r.usage is None else r.usage.model_dump()}

    def embeddings():
        r = oa.embeddings.create(model="text-embedding-3-small", input=["hello world", "bonjour le monde"])
        return {"model": r.model, "n": len(r.data), "dim": len(r.data[0].embedding),
                "usage": r.usage.model_dump() if r.usage else None}

    def chat_429():
        oa.chat.completions.create(model="gpt-4o-mini", messages=msgs,
                                   extra_headers={"X-Fake-Scenario": "rate-limit"})

    def chat_stream():
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                            stream_options={"include_usage": True})
        text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
        return {"text": text}

    def anthropic_cache():
        r = an.messages.create(
            model="claude-sonnet-4-5", max_tokens=1024,  # no temperature: anthropic 2.x dropped it
            system="You are a terse geography assistant.",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
        return {"model": r.model, "usage": r.usage.model_dump()}

    def anthropic_429():
        an.messages.create(model="claude-sonnet-4-5", max_tokens=256,
                           messages=[{"role": "user", "content": "Hi"}],
                           extra_headers={"X-Fake-Scenario": "rate-limit"})

    def anthropic_stream():
        stream = an.messages.create(model="claude-sonnet-4-5", max_tokens=256, stream=True,
                                    messages=[{"role": "user", "content": "Say hello in French."}])
        text = "".join(getattr(e.delta, "text", "") for e in stream if e.type == "content_block_delta")
        return {"text": text}

    return [
        ("openai.chat.usage", chat_usage, None),
        ("openai.chat.no_usage", chat_no_usage, None),
        ("openai.embeddings", embeddings, None),
        ("openai.chat.429", chat_429, "RateLimitError"),
        ("openai.chat.stream", chat_stream, None),
        ("anthropic.messages.cache", anthropic_cache, None),
        ("anthropic.messages.429", anthropic_429, "RateLimitError"),
        ("anthropic.messages.stream", anthropic_stream, None),
    ]


def describe(value):
    if isinstance(value, str):
        return (value if len(value) <= TRUNC else value[:TRUNC] + f"...[{len(value)} chars]"), "str"
    if isinstance(value, (tuple, list)):
        items = [describe(v)[0] for v in value]
        inner = sorted({type(v).__name__ for v in value}) or ["?"]
        return items, f"{type(value).__name__}[{'|'.join(inner)}]"
    return value, type(value).__name__


def span_summary(span, call):
    attrs = {}
    for k, v in (span.attributes or {}).items():
        val, typ = describe(v)
        attrs[k] = {"value": val, "type": typ}
    events = []
    for ev in span.events:
        events.append({"name": ev.name,
                       "offset_ms": round((ev.timestamp - span.start_time) / 1e6, 3),
                       "attributes": {k: {"value": describe(v)[0], "type": describe(v)[1]}
                                      for k, v in (ev.attributes or {}).items()}})
    scope = span.instrumentation_scope
    return {
        "call": call,
        "name": span.name,
        "kind": span.kind.name,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "scope": {"name": scope.name if scope else None, "version": scope.version if scope else None,
                  "schema_url": getattr(scope, "schema_url", None) if scope else None},
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "duration_ms": round((span.end_time - span.start_time) / 1e6, 3),
        "attributes": attrs,
        "events": events,
    }


def otlp_json(request):
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(request, use_integers_for_enums=True)

    def fix(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)
    fix(doc)
    return doc


def main():
    producer = sys.argv[1]
    outdir = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "out"))
    os.makedirs(outdir, exist_ok=True)
    family = producer.split("-")[0]
    if producer == "anthropic-native-content":  # the SDK's own spans, with content recorded
        os.environ["ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"] = "content"

    import random

    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class SeededIds(IdGenerator):
        """Random-looking but repeatable ids (seeded by the producer name), so that
        regenerated fixtures diff cleanly. Timestamps still vary run to run."""

        def __init__(self, seed):
            self._rng = random.Random(seed)

        def generate_span_id(self):
            return self._rng.getrandbits(64) or 1

        def generate_trace_id(self):
            return self._rng.getrandbits(128) or 1

    exporter = InMemorySpanExporter()
    tp = TracerProvider(id_generator=SeededIds(producer), resource=Resource.create({"service.name": f"instr-{producer}",
                                                  "deployment.environment": "fixture"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)  # global too, for anything that ignores tracer_provider=

    note = instrument(family, tp, outdir)
    if family == "openlit":  # openlit may install its own provider/processors; keep ours
        pass

    # FAKE_LLM_PORT fixes the port (it shows in server.port / url.full / api_base attributes)
    base_url, stop = fake_llm_server.start(port=int(os.environ.get("FAKE_LLM_PORT", "0")))
    results = []
    span_calls = []  # call label per finished span, by order
    try:
        for label, fn, expected_error in calls(base_url):
            before = len(exporter.get_finished_spans())
            t0 = time.time()
            outcome = {"call": label}
            try:
                outcome["result"] = fn()
                outcome["ok"] = expected_error is None
            except Exception as exc:  # noqa: BLE001
                outcome["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                outcome["ok"] = expected_error is not None and type(exc).__name__ == expected_error
                if not outcome["ok"]:
                    outcome["traceback"] = traceback.format_exc()[-2000:]
            outcome["seconds"] = round(time.time() - t0, 3)
            time.sleep(0.05)  # let span-ending callbacks (stream wrappers) finish
            after = len(exporter.get_finished_spans())
            outcome["spans"] = after - before
            span_calls.extend([label] * (after - before))
            results.append(outcome)
            print(f"{label}: ok={outcome['ok']} spans={outcome['spans']} {outcome.get('error', '')}",
                  flush=True)
    finally:
        stop()
    tp.force_flush()
    spans = list(exporter.get_finished_spans())
    span_calls.extend(["(after calls)"] * (len(spans) - len(span_calls)))

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = encode_spans(spans)
    data = request.SerializeToString()
    with open(os.path.join(outdir, f"{producer}.pb"), "wb") as f:
        f.write(data)
    with open(os.path.join(outdir, f"{producer}.otlp.json"), "w") as f:
        json.dump(otlp_json(request), f, indent=1)

    summary = {
        "producer": producer,
        "instrumentation": note,
        "versions": versions(),
        "content_env_set": {k: os.environ[k] for k in CONTENT_ENV if k in os.environ},
        "calls": results,
        "span_count": len(spans),
        "pb_bytes": len(data),
        "spans": [span_summary(s, c) for s, c in zip(spans, span_calls, strict=True)],
    }
    with open(os.path.join(outdir, f"{producer}.summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=repr)
    bad = [r["call"] for r in results if not r["ok"]]
    print(f"{producer}: {len(spans)} spans, {len(data)} bytes .pb; calls not as expected: {bad or 'none'}")


if __name__ == "__main__":
    main()
