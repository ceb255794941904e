"""Realistic synthetic LLM telemetry for demos, tests and benchmarks.

Traces are agent runs: a root ``invoke_agent`` span with chat, tool and embedding child
spans, across OpenAI, Anthropic, AWS Bedrock, Google and Mistral models, with log-normal
token counts, list-price costs, prompt caching, reasoning tokens, ~3% failed LLM calls
(rate limits, timeouts...), users and sessions. Metrics and logs follow the same
services and models. Everything is vectorized with numpy and deterministic for a given
seed and start time.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from observatory_storage.datasets import get_dataset
from observatory_storage.generate_otlp import otlp_file
from observatory_storage.landing import open_landing
from observatory_storage.landing.base import Landing
from observatory_storage.settings import Settings

FORMATS = {"parquet": "parquet", "arrow": "arrow", "arrows": "arrows"}

# provider -> (model, USD per 1M input tokens, USD per 1M output tokens, reasoning model)
MODELS: dict[str, list[tuple[str, float, float, bool]]] = {
    "openai": [
        ("gpt-4o", 2.50, 10.00, False),
        ("gpt-4o-mini", 0.15, 0.60, False),
        ("gpt-4.1", 2.00, 8.00, False),
        ("o3-mini", 1.10, 4.40, True),
    ],
    "anthropic": [
        ("claude-sonnet-4-5", 3.00, 15.00, False),
        ("claude-haiku-4-5", 1.00, 5.00, False),
        ("claude-opus-4-1", 15.00, 75.00, True),
    ],
    "aws.bedrock": [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", 3.00, 15.00, False),
        ("amazon.nova-pro-v1:0", 0.80, 3.20, False),
        ("meta.llama3-1-70b-instruct-v1:0", 0.72, 0.72, False),
    ],
    "gcp.gemini": [
        ("gemini-2.5-pro", 1.25, 10.00, True),
        ("gemini-2.5-flash", 0.30, 2.50, False),
    ],
    "mistral_ai": [
        ("mistral-large-latest", 2.00, 6.00, False),
        ("mistral-small-latest", 0.20, 0.60, False),
    ],
}
PROVIDER_WEIGHTS = {"openai": 0.38, "anthropic": 0.27, "aws.bedrock": 0.12, "gcp.gemini": 0.15,
                    "mistral_ai": 0.08}
EMBEDDING_MODELS = [("openai", "text-embedding-3-small", 0.02), ("gcp.gemini", "text-embedding-004", 0.01)]
SERVICES = ["support-bot", "code-review-agent", "search-api", "sales-copilot", "doc-summarizer"]
ENVIRONMENTS = (["production", "staging", "development"], [0.85, 0.10, 0.05])
TOOLS = ["search_docs", "get_weather", "run_sql", "create_ticket", "fetch_url", "calculator"]
ERRORS = [
    ("rate_limit", "429 Too Many Requests: rate limit reached for requests"),
    ("timeout", "Request timed out after 60s"),
    ("server_error", "500 Internal Server Error from provider"),
    ("context_length_exceeded", "This model's maximum context length was exceeded"),
    ("content_filter", "The response was filtered by the provider's content policy"),
]
ERROR_RATE = 0.03


def _hex_ids(rng: np.random.Generator, count: int, nbytes: int) -> list[str]:
    raw = rng.bytes(count * nbytes)
    return [raw[i * nbytes:(i + 1) * nbytes].hex() for i in range(count)]


def _pick(rng: np.random.Generator, values: list, n: int, p=None) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _micros(start: dt.datetime) -> int:
    return int(start.timestamp() * 1_000_000)


def _start(start: dt.datetime | None, spread_hours: float) -> dt.datetime:
    if start is None:
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        return now - dt.timedelta(hours=spread_hours)
    return start if start.tzinfo else start.replace(tzinfo=dt.UTC)


def traces_table(rows: int, rng: np.random.Generator, start: dt.datetime,
                 spread_hours: float) -> pa.Table:
    sizes = rng.integers(1, 8, size=rows)  # spans per trace: a root plus 0-6 children
    cut = int(np.searchsorted(np.cumsum(sizes), rows)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - rows
    ntr = len(sizes)
    trace_of = np.repeat(np.arange(ntr), sizes)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(rows) - first
    root = position == 0

    trace_ids = np.asarray(_hex_ids(rng, ntr, 16), dtype=object)
    span_ids = np.asarray(_hex_ids(rng, rows, 8), dtype=object)
    parent = np.where(root, None, span_ids[first])

    users = rng.zipf(1.6, size=ntr) % 5000
    sessions = rng.integers(0, max(ntr // 3, 1), size=ntr)
    t0 = _micros(start) + (rng.random(ntr) * spread_hours * 3600e6).astype(np.int64)
    service = _pick(rng, SERVICES, ntr, [0.35, 0.2, 0.2, 0.15, 0.1])[trace_of]
    environment = _pick(rng, ENVIRONMENTS[0], ntr, ENVIRONMENTS[1])[trace_of]

    # children: chat 70%, tool 20%, embeddings 10%; roots are the agent invocation
    role = np.where(root, "invoke_agent", _pick(rng, ["chat", "execute_tool", "embeddings"],
                                                 rows, [0.7, 0.2, 0.1]))
    chat, tool, embed = role == "chat", role == "execute_tool", role == "embeddings"

    provider = _pick(rng, list(PROVIDER_WEIGHTS), rows, list(PROVIDER_WEIGHTS.values()))
    model = np.empty(rows, dtype=object)
    price_in, price_out = np.zeros(rows), np.zeros(rows)
    reasoning_model = np.zeros(rows, dtype=bool)
    for name, models in MODELS.items():
        mask = provider == name
        pick = rng.integers(0, len(models), size=int(mask.sum()))
        table = np.asarray(models, dtype=object)
        model[mask] = table[pick, 0]
        price_in[mask] = table[pick, 1].astype(float)
        price_out[mask] = table[pick, 2].astype(float)
        reasoning_model[mask] = table[pick, 3].astype(bool)
    emb_pick = rng.integers(0, len(EMBEDDING_MODELS), size=rows)
    emb = np.asarray(EMBEDDING_MODELS, dtype=object)[emb_pick]
    provider = np.where(embed, emb[:, 0], provider)
    model = np.where(embed, emb[:, 1], model)
    price_in = np.where(embed, emb[:, 2].astype(float), price_in)
    price_out = np.where(embed, 0.0, price_out)
    llm = chat | embed

    failed = chat & (rng.random(rows) < ERROR_RATE)
    error_pick = rng.integers(0, len(ERRORS), size=rows)
    errors = np.asarray(ERRORS, dtype=object)[error_pick]

    input_tokens = np.clip(rng.lognormal(6.8, 1.1, rows), 1, 180_000).astype(np.int64)
    input_tokens = np.where(embed, np.clip(input_tokens // 4, 1, 8000), input_tokens)
    output_tokens = np.clip(rng.lognormal(5.2, 0.9, rows), 1, 16_000).astype(np.int64)
    output_tokens = np.where(embed | failed, 0, output_tokens)
    reasoning = np.where(chat & reasoning_model & ~failed,
                         (output_tokens * rng.uniform(0.3, 0.8, rows)).astype(np.int64), 0)
    cached = chat & np.isin(provider, ["openai", "anthropic"]) & (rng.random(rows) < 0.35)
    cache_read = np.where(cached, (input_tokens * rng.uniform(0.2, 0.9, rows)).astype(np.int64), 0)
    cache_write = np.where(chat & (provider == "anthropic") & (rng.random(rows) < 0.1),
                           (input_tokens * 0.5).astype(np.int64), 0)
    cost = (np.maximum(input_tokens - cache_read, 0) * price_in + cache_read * price_in * 0.1
            + output_tokens * price_out) / 1e6
    cost = np.where(failed, 0.0, cost)

    ttft = np.where(chat & ~failed, rng.gamma(2.0, 220.0, rows) + 80, np.nan)
    llm_ms = np.where(chat, ttft + output_tokens * rng.uniform(8, 35, rows),
                      rng.gamma(2.0, 40.0, rows) + 20)
    llm_ms = np.where(failed, np.where(errors[:, 0] == "timeout", 60_000.0,
                                       rng.gamma(2.0, 150.0, rows)), llm_ms)
    tool_ms = rng.gamma(1.5, 120.0, rows) + 5
    child_ms = np.where(tool, tool_ms, np.nan_to_num(llm_ms, nan=50.0))
    # children run one after the other, 2 ms apart; the root spans them all
    child_ms_masked = np.where(root, 0.0, child_ms)
    before = np.cumsum(child_ms_masked) - child_ms_masked  # exclusive running sum
    begin_ms = before - before[first] + 2.0 * position
    total_ms = np.add.reduceat(child_ms_masked, np.flatnonzero(root)) + 2.0 * sizes + 3.0
    duration_ms = np.where(root, np.repeat(total_ms, sizes), child_ms)
    start_us = t0[trace_of] + (begin_ms * 1000).astype(np.int64)
    end_us = start_us + (duration_ms * 1000).astype(np.int64)

    tool_names = _pick(rng, TOOLS, rows)
    name = np.where(root, "invoke_agent " + service.astype(str), "")
    name = np.where(chat, "chat " + model.astype(str), name)
    name = np.where(embed, "embeddings " + model.astype(str), name)
    name = np.where(tool, "execute_tool " + tool_names.astype(str), name)
    kind = np.where(llm, "client", "internal")

    finish = _pick(rng, ["stop", "length", "tool_calls"], rows, [0.86, 0.04, 0.10])
    status = np.where(failed, "error", np.where(llm, "ok", "unset"))
    payload_mask = chat & ~failed & (rng.random(rows) < 0.2)
    temps = rng.choice([0.0, 0.2, 0.7, 1.0], size=rows)
    attributes = []
    inputs, outputs = [], []
    for i in range(rows):
        if chat[i]:
            attrs = {"gen_ai.request.temperature": float(temps[i]),
                     "gen_ai.request.max_tokens": 4096, "server.address": f"api.{provider[i]}.com"}
            if failed[i]:
                attrs["http.response.status_code"] = 429 if errors[i, 0] == "rate_limit" else 500
        elif tool[i]:
            attrs = {"gen_ai.tool.name": tool_names[i], "gen_ai.tool.type": "function"}
        elif embed[i]:
            attrs = {"gen_ai.embeddings.dimension.count": 1536}
        else:
            attrs = {"gen_ai.agent.name": service[i]}
        attributes.append(json.dumps(attrs))
        if payload_mask[i]:
            inputs.append(json.dumps([{"role": "user", "content": f"question {trace_of[i]}"}]))
            outputs.append(json.dumps([{"role": "assistant", "content": "answer",
                                        "finish_reason": finish[i]}]))
        else:
            inputs.append(None)
            outputs.append(None)

    def nullable_int(values, mask):
        return pa.array(values.astype(np.int32), pa.int32(), mask=~mask)

    ts = pa.timestamp("us", tz="UTC")
    return pa.table({
        "start_time": pa.array(start_us, ts),
        "end_time": pa.array(end_us, ts),
        "duration_ms": pa.array(np.round(duration_ms, 3)),
        "trace_id": pa.array(trace_ids[trace_of], pa.string()),
        "span_id": pa.array(span_ids, pa.string()),
        "parent_span_id": pa.array(parent, pa.string()),
        "name": pa.array(name, pa.string()),
        "kind": pa.array(kind, pa.string()),
        "service_name": pa.array(service, pa.string()),
        "environment": pa.array(environment, pa.string()),
        "operation": pa.array(role, pa.string()),
        "provider": pa.array(np.where(llm, provider, None), pa.string()),
        "request_model": pa.array(np.where(llm, model, None), pa.string()),
        "response_model": pa.array(np.where(llm & ~failed, model, None), pa.string()),
        "input_tokens": nullable_int(input_tokens, llm),
        "output_tokens": nullable_int(output_tokens, llm),
        "total_tokens": nullable_int(input_tokens + output_tokens, llm),
        "cache_read_tokens": nullable_int(cache_read, chat),
        "cache_creation_tokens": nullable_int(cache_write, chat),
        "reasoning_tokens": nullable_int(reasoning, chat & reasoning_model),
        "time_to_first_token_ms": pa.array(np.round(ttft, 3), mask=~(chat & ~failed)),
        "cost_usd": pa.array(np.round(cost, 9), mask=~llm).cast(pa.decimal128(18, 9)),
        "status_code": pa.array(status, pa.string()),
        "status_message": pa.array(np.where(failed, errors[:, 1], None), pa.string()),
        "error_type": pa.array(np.where(failed, errors[:, 0], None), pa.string()),
        "finish_reason": pa.array(np.where(chat & ~failed, finish, None), pa.string()),
        "user_id": pa.array([f"user-{u:05d}" for u in users[trace_of]], pa.string()),
        "session_id": pa.array([f"sess-{s:07d}" for s in sessions[trace_of]], pa.string()),
        "input_payload": pa.array(inputs, pa.string()),
        "output_payload": pa.array(outputs, pa.string()),
        "attributes": pa.array(attributes, pa.string()),
    })


METRICS = [  # name, type, unit, value generator
    ("gen_ai.client.token.usage", "histogram", "{token}", lambda r, n: r.lognormal(6.5, 1.2, n)),
    ("gen_ai.client.operation.duration", "histogram", "s", lambda r, n: r.gamma(2.0, 0.6, n)),
    ("gen_ai.server.time_to_first_token", "histogram", "s", lambda r, n: r.gamma(2.0, 0.2, n)),
    ("llm.requests", "counter", "{request}", lambda r, n: r.poisson(40, n).astype(float)),
    ("llm.errors", "counter", "{request}", lambda r, n: r.poisson(1.2, n).astype(float)),
    ("llm.cost", "counter", "USD", lambda r, n: r.gamma(1.5, 0.02, n)),
]


def metrics_table(rows: int, rng: np.random.Generator, start: dt.datetime,
                  spread_hours: float) -> pa.Table:
    which = rng.integers(0, len(METRICS), size=rows)
    values = np.zeros(rows)
    for i, (_, _, _, make) in enumerate(METRICS):
        mask = which == i
        values[mask] = make(rng, int(mask.sum()))
    spec = np.asarray([m[:3] for m in METRICS], dtype=object)[which]
    provider = _pick(rng, list(PROVIDER_WEIGHTS), rows, list(PROVIDER_WEIGHTS.values()))
    model = np.asarray([MODELS[p][k % len(MODELS[p])][0]
                        for p, k in zip(provider, rng.integers(0, 4, rows), strict=True)], dtype=object)
    times = _micros(start) + np.sort((rng.random(rows) * spread_hours * 3600e6).astype(np.int64))
    service = _pick(rng, SERVICES, rows)
    attributes = [json.dumps({"gen_ai.token.type": "input" if v % 2 else "output"})
                  if s == "gen_ai.client.token.usage" else None
                  for s, v in zip(spec[:, 0], rng.integers(0, 2, rows), strict=True)]
    return pa.table({
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "metric_name": pa.array(spec[:, 0], pa.string()),
        "value": pa.array(np.round(values, 6)),
        "metric_type": pa.array(spec[:, 1], pa.string()),
        "unit": pa.array(spec[:, 2], pa.string()),
        "service_name": pa.array(service, pa.string()),
        "provider": pa.array(provider, pa.string()),
        "model": pa.array(model, pa.string()),
        "environment": pa.array(_pick(rng, ENVIRONMENTS[0], rows, ENVIRONMENTS[1]), pa.string()),
        "attributes": pa.array(attributes, pa.string()),
    })


LOG_LINES = [
    ("INFO", 9, "request completed", 0.55),
    ("INFO", 9, "tool call finished", 0.15),
    ("DEBUG", 5, "prompt rendered from template", 0.05),
    ("WARN", 13, "retrying after rate limit", 0.12),
    ("WARN", 13, "response truncated at max_tokens", 0.05),
    ("ERROR", 17, "provider call failed", 0.06),
    ("ERROR", 17, "tool raised an exception", 0.02),
]


def logs_table(rows: int, rng: np.random.Generator, start: dt.datetime,
               spread_hours: float) -> pa.Table:
    which = rng.choice(len(LOG_LINES), size=rows, p=[line[3] for line in LOG_LINES])
    lines = np.asarray([line[:3] for line in LOG_LINES], dtype=object)[which]
    traced = rng.random(rows) < 0.4
    trace_ids = np.asarray(_hex_ids(rng, rows, 16), dtype=object)
    span_ids = np.asarray(_hex_ids(rng, rows, 8), dtype=object)
    times = _micros(start) + np.sort((rng.random(rows) * spread_hours * 3600e6).astype(np.int64))
    service = _pick(rng, SERVICES, rows)
    provider = _pick(rng, list(PROVIDER_WEIGHTS), rows, list(PROVIDER_WEIGHTS.values()))
    bodies = [f"{msg} (provider={p})" for msg, p in zip(lines[:, 2], provider, strict=True)]
    attributes = [json.dumps({"gen_ai.provider.name": p, "code.function": "handle"})
                  for p in provider]
    return pa.table({
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "body": pa.array(bodies, pa.string()),
        "severity_text": pa.array(lines[:, 0], pa.string()),
        "severity_number": pa.array(lines[:, 1].astype(np.int16), pa.int16()),
        "trace_id": pa.array(np.where(traced, trace_ids, None), pa.string()),
        "span_id": pa.array(np.where(traced, span_ids, None), pa.string()),
        "service_name": pa.array(service, pa.string()),
        "environment": pa.array(_pick(rng, ENVIRONMENTS[0], rows, ENVIRONMENTS[1]), pa.string()),
        "attributes": pa.array(attributes, pa.string()),
    })


BUILDERS = {"traces": traces_table, "metrics": metrics_table, "logs": logs_table}


def build_table(dataset: str, rows: int, *, seed: int = 0, start: dt.datetime | None = None,
                spread_hours: float = 24.0) -> pa.Table:
    """One table of ``rows`` generated rows in the dataset's contract schema."""
    get_dataset(dataset)
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    table = BUILDERS[dataset](rows, rng, _start(start, spread_hours), spread_hours)
    return get_dataset(dataset).complete(table)


def encode(table: pa.Table, fmt: str, compression: str = "zstd") -> bytes:
    """The table as Parquet, Arrow IPC file (``arrow``) or Arrow IPC stream (``arrows``)."""
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink, compression=compression, row_group_size=100_000)
    elif fmt in ("arrow", "arrows"):
        codec = None if compression in ("none", "snappy") else compression
        options = pa.ipc.IpcWriteOptions(compression=codec)
        opener = pa.ipc.new_file if fmt == "arrow" else pa.ipc.new_stream
        with opener(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=65_536)
    else:
        raise ValueError(f"unknown format {fmt}; expected {', '.join(FORMATS)}")
    return sink.getvalue()


def generate(
    settings_or_landing: Settings | Landing,
    dataset: str,
    files: int,
    rows_per_file: int,
    fmt: str = "parquet",
    seed: int | None = None,
    start: dt.datetime | None = None,
    spread_hours: float = 24.0,
    *,
    compression: str = "zstd",
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Write ``files`` files of ``rows_per_file`` rows into the landing; returns their keys.

    Keys are ``<dataset>/YYYY/MM/DD/gen-<seed>-<n>.<ext>``: the same seed writes the same
    keys (and, with the same ``start``, the same bytes). Without a seed, one is drawn.
    ``progress`` is called with the rows written after each file.
    """
    landing = (settings_or_landing if isinstance(settings_or_landing, Landing)
               else open_landing(settings_or_landing))
    if fmt.startswith("otlp-"):
        return _generate_otlp(landing, dataset, files, rows_per_file, fmt, seed, start,
                              spread_hours, compression, progress)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt}; expected {', '.join(FORMATS)}")
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    first = _start(start, spread_hours)
    keys = []
    for n in range(files):
        table = build_table(dataset, rows_per_file, seed=seed * 1_000_003 + n, start=first,
                            spread_hours=spread_hours)
        key = f"{dataset}/{first:%Y/%m/%d}/gen-{seed}-{n:05d}.{FORMATS[fmt]}"
        landing.put(key, encode(table, fmt, compression))
        keys.append(key)
        if progress is not None:
            progress(rows_per_file)
    return keys


def _generate_otlp(landing, dataset, files, rows_per_file, fmt, seed, start, spread_hours,
                   compression, progress) -> list[str]:
    """OTLP files made by the OpenTelemetry SDK (generate_otlp), under ``otlp/``."""

    get_dataset(dataset)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    first = _start(start, spread_hours)
    keys = []
    for n in range(files):
        data, ext = otlp_file(dataset, rows_per_file, fmt, compression,
                              seed=seed * 1_000_003 + n, start=first,
                              spread=dt.timedelta(hours=spread_hours) if spread_hours else None)
        key = f"otlp/{first:%Y/%m/%d}/{dataset}-gen-{seed}-{n:05d}.{ext}"
        landing.put(key, data)
        keys.append(key)
        if progress is not None:
            progress(rows_per_file)
    return keys
