"""Dataset contracts: the one place that says what traces, metrics and logs look like.

The table migration (``sql/migrations/0002_datasets.sql``), the ingest conform step and
``docs/datasets.md`` are all derived from :data:`DATASETS`; tests check that the committed
files equal what this module renders (``python -m observatory_storage.datasets``).
Column names follow the OpenTelemetry GenAI semantic conventions where they apply.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def arrow_types() -> dict[str, pa.DataType]:
    """PostgreSQL type -> the Arrow type a batch is conformed to before binary COPY.

    Built on first use: pyarrow is imported lazily, so commands that never touch a batch
    (``ingest`` on an empty landing, ``db``, ``maintenance``) start without it."""
    import pyarrow as pa

    return {
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "text": pa.string(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "smallint": pa.int16(),
        "double precision": pa.float64(),
        "jsonb": pa.string(),
        "boolean": pa.bool_(),
    }


def __getattr__(name: str):
    if name == "ARROW_TYPES":
        return arrow_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    description: str
    required: bool = False
    otel: str | None = None  # the OpenTelemetry attribute this column carries

    @property
    def arrow_type(self) -> pa.DataType:
        base, _, args = self.pg_type.partition("(")
        if base == "numeric":  # exact: decimal128 is COPYed as PostgreSQL numeric
            import pyarrow as pa

            precision, scale = (int(x) for x in args.rstrip(")").split(","))
            return pa.decimal128(precision, scale)
        return arrow_types()[base]


@dataclass(frozen=True)
class Index:
    name: str
    definition: str  # after "ON <table>"
    why: str


@dataclass(frozen=True)
class Dataset:
    name: str
    time_column: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    description: str
    dedupe_key: tuple[str, ...] = ()
    attributes_column: str = "attributes"
    segment_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns]
        )


C = Column

TRACES = Dataset(
    name="traces",
    time_column="start_time",
    description="One row per span of an LLM application (OpenTelemetry GenAI spans).",
    dedupe_key=("trace_id", "span_id"),
    segment_by=("provider", "request_model"),
    columns=(
        C("start_time", "timestamptz", "Span start (UTC).", required=True),
        C("end_time", "timestamptz", "Span end (UTC)."),
        C("duration_ms", "double precision", "Latency in ms; derived from end_time - start_time when absent."),
        C("trace_id", "text", "Trace id (hex).", required=True),
        C("span_id", "text", "Span id (hex).", required=True),
        C("parent_span_id", "text", "Parent span id; null for a root span."),
        C("name", "text", "Span name.", required=True),
        C("kind", "text", "Span kind (client, server, internal, ...)."),
        C("service_name", "text", "Emitting service.", otel="service.name"),
        C("environment", "text", "Deployment environment.", otel="deployment.environment"),
        C("operation", "text", "chat, text_completion, embeddings, execute_tool, ...", otel="gen_ai.operation.name"),
        C("provider", "text", "openai, anthropic, aws.bedrock, ...", otel="gen_ai.provider.name"),
        C("request_model", "text", "Model asked for.", otel="gen_ai.request.model"),
        C("response_model", "text", "Model that answered.", otel="gen_ai.response.model"),
        C("input_tokens", "integer", "Prompt tokens.", otel="gen_ai.usage.input_tokens"),
        C("output_tokens", "integer", "Completion tokens.", otel="gen_ai.usage.output_tokens"),
        C("total_tokens", "integer", "input + output (+ reasoning) tokens."),
        C("cache_read_tokens", "integer", "Input tokens served from the provider's prompt cache.", otel="gen_ai.usage.cache_read_input_tokens"),
        C("cache_creation_tokens", "integer", "Input tokens written to the prompt cache.", otel="gen_ai.usage.cache_creation_input_tokens"),
        C("reasoning_tokens", "integer", "Reasoning tokens (o-series, extended thinking).", otel="gen_ai.usage.reasoning_tokens"),
        C("time_to_first_token_ms", "double precision", "Streaming: ms until the first token.", otel="gen_ai.server.time_to_first_token"),
        C("cost_usd", "numeric(18,9)", "Cost in US dollars (exact numeric)."),
        C("status_code", "text", "unset, ok or error.", otel="otel.status_code"),
        C("status_message", "text", "Error description.", otel="otel.status_description"),
        C("error_type", "text", "Error class (rate_limit, timeout, ...).", otel="error.type"),
        C("finish_reason", "text", "Why generation stopped.", otel="gen_ai.response.finish_reasons"),
        C("user_id", "text", "End user.", otel="user.id"),
        C("session_id", "text", "Conversation/session.", otel="session.id"),
        C("input_payload", "jsonb", "Input messages, when captured.", otel="gen_ai.input.messages"),
        C("output_payload", "jsonb", "Output messages, when captured.", otel="gen_ai.output.messages"),
        C("attributes", "jsonb", "Every other attribute, and columns unknown to this contract."),
    ),
    indexes=(
        Index("traces_start_time_idx", "(start_time DESC)", "time-range scans (also the hypertable's own)"),
        Index("traces_trace_id_idx", "USING hash (trace_id)", "trace by id; a hash index costs far less ingest than a btree"),
        Index("traces_session_id_idx", "USING hash (session_id) WHERE session_id IS NOT NULL", "a session's spans"),
        Index("traces_errors_idx", "(start_time DESC) WHERE status_code = 'error'", "recent errors (tiny: errors only)"),
    ),
)

METRICS = Dataset(
    name="metrics",
    time_column="time",
    description="Metric points (counters, gauges, histogram sums) from LLM applications.",
    segment_by=("metric_name",),
    columns=(
        C("time", "timestamptz", "Observation time (UTC).", required=True),
        C("metric_name", "text", "Metric name, e.g. gen_ai.client.token.usage.", required=True),
        C("value", "double precision", "Observed value.", required=True),
        C("metric_type", "text", "counter, gauge, histogram, ..."),
        C("unit", "text", "UCUM unit."),
        C("service_name", "text", "Emitting service.", otel="service.name"),
        C("provider", "text", "Model provider.", otel="gen_ai.provider.name"),
        C("model", "text", "Model.", otel="gen_ai.request.model"),
        C("environment", "text", "Deployment environment.", otel="deployment.environment"),
        C("attributes", "jsonb", "Other labels, and columns unknown to this contract."),
    ),
    indexes=(
        Index("metrics_time_idx", "(time DESC)", "time-range scans (also the hypertable's own)"),
        Index("metrics_name_time_idx", "(metric_name, time DESC)", "one metric over time"),
    ),
)

LOGS = Dataset(
    name="logs",
    time_column="time",
    description="Log records; most have no trace (trace ids are optional, never a key).",
    segment_by=("service_name",),
    columns=(
        C("time", "timestamptz", "Record time (UTC).", required=True),
        C("body", "text", "Log message.", required=True),
        C("severity_text", "text", "INFO, WARN, ERROR, ..."),
        C("severity_number", "smallint", "OpenTelemetry severity number 1-24."),
        C("trace_id", "text", "Trace the record belongs to, if any."),
        C("span_id", "text", "Span the record belongs to, if any."),
        C("service_name", "text", "Emitting service.", otel="service.name"),
        C("environment", "text", "Deployment environment.", otel="deployment.environment"),
        C("attributes", "jsonb", "Other attributes, and columns unknown to this contract."),
    ),
    indexes=(
        Index("logs_time_idx", "(time DESC)", "time-range scans (also the hypertable's own)"),
        Index("logs_trace_id_idx", "USING hash (trace_id) WHERE trace_id IS NOT NULL", "a trace's logs"),
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (TRACES, METRICS, LOGS)}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}") from None


# --- rendering --------------------------------------------------------------------------

MIGRATION_PATH = Path(__file__).resolve().parent.parent / "sql" / "migrations" / "0002_datasets.sql"
DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"


def render_tables_sql() -> str:
    """The dataset tables migration. ``{{schema}}`` is substituted by the migration runner."""
    out = [
        "-- Generated by `python -m observatory_storage.datasets` from observatory_storage/datasets.py.",
        "-- Do not edit by hand: change the contract and regenerate (tests compare the two).",
        "",
    ]
    for ds in DATASETS.values():
        cols = ",\n".join(
            f"    {c.name} {c.pg_type}{' NOT NULL' if c.required else ''}" for c in ds.columns
        )
        out.append(f"CREATE TABLE IF NOT EXISTS {{{{schema}}}}.{ds.name} (\n{cols}\n)")
        out.append(f"    {{{{partition_clause:{ds.name}:{ds.time_column}}}}};")
        out.append(
            f"SELECT {{{{schema}}}}.obs_make_time_partitioned('{{{{schema_name}}}}', '{ds.name}', "
            f"'{ds.time_column}', '{{{{chunk_interval:{ds.name}}}}}', {{{{partitions_ahead}}}});"
        )
        for ix in ds.indexes:
            out.append(
                f"CREATE INDEX IF NOT EXISTS {ix.name} ON {{{{schema}}}}.{ds.name} {ix.definition};"
            )
        out.append("")
    return "\n".join(out)


def render_docs() -> str:
    lines = [
        "# Dataset contracts",
        "",
        "Generated from `observatory_storage/datasets.py` by `python -m observatory_storage.datasets`.",
        "Landing files use the same column names as the tables. Columns are matched by name;",
        "unknown columns are folded into `attributes` (never dropped); a missing required column,",
        "a null time or an uncastable value quarantines the file with a reason.",
        "",
    ]
    for ds in DATASETS.values():
        lines += [
            f"## `{ds.name}`",
            "",
            ds.description,
            "",
            f"Time column: `{ds.time_column}`. Partitioned/chunked by day.",
            "",
            "| column | type | required | OpenTelemetry | description |",
            "|---|---|---|---|---|",
        ]
        for c in ds.columns:
            lines.append(
                f"| `{c.name}` | {c.pg_type} | {'yes' if c.required else ''} | "
                f"{f'`{c.otel}`' if c.otel else ''} | {c.description} |"
            )
        lines += ["", "Indexes:", ""]
        for ix in ds.indexes:
            lines.append(f"- `{ix.name}` {ix.definition}: {ix.why}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from observatory_storage.generated import sync

    argv = sys.argv[1:] if argv is None else argv
    command = "python -m observatory_storage.datasets"
    check = "--check" in argv
    return max(sync(MIGRATION_PATH, render_tables_sql(), check=check, command=command),
               sync(DOCS_PATH, render_docs(), check=check, command=command))


if __name__ == "__main__":
    raise SystemExit(main())
