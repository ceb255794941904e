"""Spans made by the instrumentations people run load whole, with every column right.

Each producer (``requirements/<name>.txt``) ran the real openai and anthropic SDKs against
the loopback fake (``driver.py``): chat with usage (cached and reasoning tokens), chat
without usage, embeddings, a 429, a stream; Anthropic messages with cache tokens, a 429,
a stream. Its ``.pb`` (awss3exporter ``otlp_proto``) and ``.otlp.json`` load on both
backends with the columns below, which are what docs/otlp.md's producers table promises;
the other encoding of the same spans then adds nothing (trace dedupe), and a second ingest
skips both files.

Quirks asserted as they are (docs/otlp.md, "Producers tested"):
- anthropic >= 1.14 emits its own span per call (scope ``com.anthropic.sdk.python``) next
  to the instrumentation's: two rows per Anthropic call, each with tokens and a cost;
- OpenLIT reports its own cost (kept, ``cost_source = 'producer'``; a double, rounded to
  the column's 9 digits), leaves cache tokens out of Anthropic's ``input_tokens``, marks a
  chat answer without usage as an error (its own AttributeError), adds an httpx span per
  call and records no Anthropic attribute on a 429;
- OpenInference's OpenAI spans carry no request model; its Anthropic 429 names the request
  model as ``llm.model_name`` (so ``response_model``);
- OpenLLMetry 0.49.6 (with anthropic 0.75) calls Anthropic messages ``completion``
  (``text_completion``), emits no Anthropic cache tokens (priced at the input rate), no
  span for an Anthropic 429, nothing on the Anthropic stream span but models and finish.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.ingest.helpers import load_all, stored
from tests.producers.build import PRODUCERS

PRICED = "priced"  # genai-prices priced the row at ingest
GPT, GPT_DATED = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
EMB = "text-embedding-3-small"
CLAUDE, CLAUDE_DATED = "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"
COLUMNS = ("operation", "provider", "request_model", "response_model", "input_tokens",
           "output_tokens", "total_tokens", "cache_read_tokens", "cache_creation_tokens",
           "reasoning_tokens", "status_code", "error_type")
NONE6 = (None,) * 6


def row(op, provider, request, response, tokens=NONE6, status="unset", error=None, cost=None):
    return dict(zip(COLUMNS, (op, provider, request, response, *tokens, status, error),
                    strict=True)) | {"cost": cost}


# the anthropic SDK's own spans (anthropic 2.17, in the OpenLLMetry and OpenInference venvs)
SDK = {
    "anthropic.messages.cache": row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                    (6194, 120, 6314, 4096, 2048, None), "ok", cost=PRICED),
    "anthropic.messages.429": row("chat", "anthropic", CLAUDE, None, status="error",
                                  error="rate_limit_error"),
    "anthropic.messages.stream": row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                     (1049, 15, 1064, 1024, 0, None), "ok", cost=PRICED),
}
OPENAI_CHAT = (1200, 300, 1500, 1024, None, 256)

# OpenLLMetry's OpenAI spans, 0.62.4 and 0.49.6 alike (but for 0.49.6's reasoning 0 there)
OPENLLMETRY_OPENAI = {
    ("openai.chat.usage", "span"): row("chat", "openai", GPT, GPT_DATED, OPENAI_CHAT,
                                       cost=PRICED),
    ("openai.chat.no_usage", "span"): row("chat", "openai", GPT, GPT_DATED),
    ("openai.embeddings", "span"): row("embeddings", "openai", EMB, EMB,
                                       (16, None, 16, 0, None, None), cost=PRICED),
    ("openai.chat.429", "span"): row("chat", "openai", GPT, None, status="error",
                                     error="RateLimitError"),
    ("openai.chat.stream", "span"): row("chat", "openai", GPT, GPT_DATED,
                                        (20, 8, 28, 0, None, None), "ok", cost=PRICED),
}

# producer -> (call, "span" | "sdk" | "httpx") -> expected columns
EXPECTED: dict[str, dict[tuple[str, str], dict]] = {
    "openllmetry": {
        **OPENLLMETRY_OPENAI,
        ("anthropic.messages.cache", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                  (6194, 120, 6314, 4096, 2048, None), "ok",
                                                  cost=PRICED),
        ("anthropic.messages.429", "span"): row("chat", "anthropic", CLAUDE, None,
                                                status="error", error="RateLimitError"),
        ("anthropic.messages.stream", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                   (1049, 16, 1065, 1024, 0, None), "ok",
                                                   cost=PRICED),
        **{(call, "sdk"): value for call, value in SDK.items()},
    },
    "openllmetry-2025": {
        **OPENLLMETRY_OPENAI,
        ("openai.chat.no_usage", "span"): row("chat", "openai", GPT, GPT_DATED,
                                              (None, None, None, None, None, 0)),
        # gen_ai.system 'Anthropic', llm.request.type 'completion'
        ("anthropic.messages.cache", "span"): row("text_completion", "anthropic", CLAUDE,
                                                  CLAUDE_DATED, (6194, 120, 6314, None, None,
                                                                 None), "ok", cost=PRICED),
        ("anthropic.messages.stream", "span"): row("text_completion", "anthropic", CLAUDE,
                                                   None, status="ok"),
    },
    "openinference": {
        ("openai.chat.usage", "span"): row("chat", "openai", None, GPT_DATED, OPENAI_CHAT, "ok",
                                           cost=PRICED),
        ("openai.chat.no_usage", "span"): row("chat", "openai", None, GPT_DATED, status="ok"),
        ("openai.embeddings", "span"): row("embeddings", "openai", None, EMB,
                                           (16, None, 16, None, None, None), "ok", cost=PRICED),
        ("openai.chat.429", "span"): row("chat", "openai", None, None, status="error",
                                         error="openai.RateLimitError"),
        ("openai.chat.stream", "span"): row("chat", "openai", None, GPT_DATED,
                                            (20, 8, 28, 0, None, 0), "ok", cost=PRICED),
        ("anthropic.messages.cache", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                  (6194, 120, 6314, 4096, 2048, None), "ok",
                                                  cost=PRICED),
        ("anthropic.messages.429", "span"): row("chat", "anthropic", CLAUDE, CLAUDE,
                                                status="error",
                                                error="anthropic.RateLimitError"),
        ("anthropic.messages.stream", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                   (1049, 15, 1064, 1024, None, None), "ok",
                                                   cost=PRICED),
        **{(call, "sdk"): value for call, value in SDK.items()},
    },
    "openlit": {
        ("openai.chat.usage", "span"): row("chat", "openai", GPT, GPT_DATED,
                                           (1200, 300, 1500, 1024, 0, None), "ok",
                                           cost=Decimal("0.000360000")),
        ("openai.chat.no_usage", "span"): row("chat", "openai", GPT, None, status="error",
                                              error="AttributeError"),
        ("openai.embeddings", "span"): row("embeddings", "openai", EMB, EMB,
                                           (16, None, 16, None, None, None), "ok",
                                           cost=Decimal("0.000000320")),
        ("openai.chat.429", "span"): row("chat", "openai", GPT, None, status="error",
                                         error="RateLimitError"),
        ("openai.chat.stream", "span"): row("chat", "openai", GPT, GPT_DATED,
                                            (20, 8, 28, 0, 0, None), "ok",
                                            cost=Decimal("0.000007800")),
        # input_tokens leaves the cache out (50 + 4096 + 2048 were sent)
        ("anthropic.messages.cache", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                  (50, 120, 170, 4096, 2048, None), "ok",
                                                  cost=Decimal("0.001950000")),
        ("anthropic.messages.429", "span"): row(None, None, None, None, status="error",
                                                error="anthropic.RateLimitError"),
        ("anthropic.messages.stream", "span"): row("chat", "anthropic", CLAUDE, CLAUDE_DATED,
                                                   (25, 15, 40, 0, 0, None), "ok",
                                                   cost=Decimal("0.000300000")),
    },
}
CALLS = ("openai.chat.usage", "openai.chat.no_usage", "openai.embeddings", "openai.chat.429",
         "openai.chat.stream", "anthropic.messages.cache", "anthropic.messages.429",
         "anthropic.messages.stream")
for _call in CALLS:  # OpenLIT instruments httpx too: one bare POST span per call
    EXPECTED["openlit"][(_call, "httpx")] = row(
        None, None, None, None, status="error" if _call.endswith("429") else "unset")


def test_every_producer_has_expectations():
    assert set(PRODUCERS) == set(EXPECTED)


def _kind(scope: str | None) -> str:
    if scope == "com.anthropic.sdk.python":
        return "sdk"
    return "httpx" if scope == "opentelemetry.instrumentation.httpx" else "span"


def _actual(span: dict) -> dict:
    got = {c: span[c] for c in COLUMNS}
    cost, source = span["cost_usd"], span["cost_source"]
    if source is None:
        got["cost"] = cost
    elif source.startswith("genai-prices"):
        got["cost"] = PRICED if cost and cost > 0 else f"{source}: {cost}"
    else:
        got["cost"] = cost if source == "producer" else f"{source}: {cost}"
    return got


@pytest.mark.parametrize("fmt", ["pb", "json"])
@pytest.mark.parametrize("producer", PRODUCERS)
def test_producer_files_load_whole_with_every_column(produced, settings, db, producer, fmt):
    files = produced[producer]
    summary = json.loads(files.summary.read_text())
    spans = {s["span_id"]: (s["call"], _kind(s["scope"]["name"])) for s in summary["spans"]}
    first, other = (files.pb, files.json) if fmt == "pb" else (files.json, files.pb)
    landing = open_landing(settings)
    landing.put(f"otlp/{producer}/{first.name}", first.read_bytes())

    report = load_all(settings)
    assert report.ok and [f.status for f in report.files] == ["loaded"], report.files
    assert report.files[0].rows == len(spans) == summary["span_count"]
    rows = stored(db, "traces", "span_id")
    got = {spans[r["span_id"]]: _actual(r) for r in rows}
    assert len(got) == len(rows)  # one row per (call, kind): no call doubled in one scope
    assert got == EXPECTED[producer]

    # the same spans in the other encoding add nothing (with COPY_DEDUPE_TRACES: the spans
    # are known by trace and span id); a second ingest skips both files
    landing.put(f"otlp/{producer}/{other.name}", other.read_bytes())
    again = load_all(settings.model_copy(update={"copy_dedupe_traces": True}))
    assert [(f.status, f.rows, f.duplicates) for f in again.files] == [
        ("loaded", 0, len(spans))]
    assert load_all(settings).files == []
    rerun = load_objects(settings, list(landing.list()), run_id="again", landing=landing)
    assert [f.status for f in rerun.files] == ["skipped", "skipped"]
    assert stored(db, "traces", "span_id") == rows
