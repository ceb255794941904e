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

from observatory_storage import vocabulary
from observatory_storage.generated import sync

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def arrow_types() -> dict[str, pa.DataType]:
    """PostgreSQL type -> the Arrow type a batch is conformed to before binary COPY.

    Built on first use: pyarrow is imported lazily, so commands that never touch a batch
    (``ingest`` on an empty landing, ``db``, ``maintenance``) start without it."""
    import pyarrow as pa  # lazy: ~0.3 s of start-up (see above)

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
    # OpenTelemetry attributes this column carries, current semantic-convention name first,
    # then older spellings and other instrumentations' names (OpenLLMetry, OpenInference):
    # the OTLP reader fills the column from the first one present (ingest/otlp/mapping.py).
    otel: tuple[str, ...] = ()
    otel_scale: float = 1.0  # OTLP value x scale = column value (seconds -> ms: 1000)
    # a table of vocabulary.py: other spellings are mapped to its values at conform
    vocabulary: str = ""
    added_in: str = "0002"  # the migration that created the column (0002: the tables)

    @functools.cached_property  # (frozen: the cache goes straight into the instance dict)
    def arrow_type(self) -> pa.DataType:
        base, _, args = self.pg_type.partition("(")
        if base == "numeric":  # exact: decimal128 is COPYed as PostgreSQL numeric
            import pyarrow as pa  # lazy, as in arrow_types()

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

    @functools.cached_property
    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa  # lazy, as in arrow_types()

        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns]
        )

    def complete(self, table: pa.Table) -> pa.Table:
        """``table`` in exactly the contract's schema: contract columns it lacks (e.g. ones
        added by a later migration) become nulls; other columns are dropped."""
        import pyarrow as pa  # lazy, as in arrow_types()

        for c in self.columns:
            if c.name not in table.column_names:
                table = table.append_column(c.name, pa.nulls(table.num_rows, c.arrow_type))
        return table.select(self.column_names).cast(self.arrow_schema)


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
        C("service_name", "text", "Emitting service.", otel=("service.name",)),
        C("environment", "text", "Deployment environment.", otel=("deployment.environment.name", "deployment.environment")),
        C("operation", "text", "chat, text_completion, embeddings, execute_tool, ... (gen_ai.operation.name values; other producers' spellings mapped, docs/otlp.md).", otel=("gen_ai.operation.name", "llm.request.type", "openinference.span.kind"), vocabulary="operations"),
        C("provider", "text", "openai, anthropic, aws.bedrock, ... (gen_ai.provider.name values; other spellings mapped, docs/otlp.md).", otel=("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"), vocabulary="providers"),
        C("request_model", "text", "Model asked for.", otel=("gen_ai.request.model", "llm.request.model_name")),
        C("response_model", "text", "Model that answered.", otel=("gen_ai.response.model", "llm.response.model_name", "llm.model_name", "embedding.model_name")),
        C("input_tokens", "integer", "Prompt tokens, cached ones included.", otel=("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")),
        C("output_tokens", "integer", "Completion tokens.", otel=("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")),
        C("total_tokens", "integer", "input + output tokens (output includes reasoning); derived when absent.", otel=("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total", "gen_ai.client.token.usage")),
        C("cache_read_tokens", "integer", "Input tokens served from the provider's prompt cache.", otel=("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read")),
        C("cache_creation_tokens", "integer", "Input tokens written to the prompt cache.", otel=("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write")),
        C("reasoning_tokens", "integer", "Reasoning tokens (o-series, extended thinking).", otel=("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")),
        C("time_to_first_token_ms", "double precision", "Streaming: ms until the first token.", otel=("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token"), otel_scale=1000.0),
        C("cost_usd", "numeric(18,9)", "Cost in US dollars (exact numeric); the producer's, else priced at ingest (see cost_source).", otel=("gen_ai.usage.cost",)),
        C("status_code", "text", "unset, ok or error (OTLP: the span status).", otel=("otel.status_code",)),
        C("status_message", "text", "Error description (OTLP: the span status message).", otel=("otel.status_description",)),
        C("error_type", "text", "Error class (rate_limit, timeout, ...); OTLP: else the exception event's exception.type.", otel=("error.type",)),
        C("finish_reason", "text", "Why generation stopped (several reasons comma-separated).", otel=("gen_ai.response.finish_reasons", "llm.finish_reason", "gen_ai.completion.0.finish_reason")),
        C("user_id", "text", "End user.", otel=("user.id", "enduser.id")),
        C("session_id", "text", "Conversation/session.", otel=("session.id", "gen_ai.conversation.id")),
        C("input_payload", "jsonb", "Input messages, when captured.", otel=("gen_ai.input.messages", "input.value", "gen_ai.prompt")),
        C("output_payload", "jsonb", "Output messages, when captured.", otel=("gen_ai.output.messages", "output.value", "gen_ai.completion")),
        C("attributes", "jsonb", "Every other attribute, and columns unknown to this contract."),
        C("cost_source", "text", "Who set cost_usd: producer, or the price table and version that priced the row at ingest (e.g. genai-prices 0.2.3).", added_in="0006"),
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
    description="Metric points (counters, gauges, distributions: one row per data point) from LLM applications.",
    segment_by=("metric_name",),
    columns=(
        C("time", "timestamptz", "Observation time (UTC).", required=True),
        C("metric_name", "text", "Metric name, e.g. gen_ai.client.token.usage.", required=True),
        C("value", "double precision", "Observed value; the sum of a distribution point (0 when the producer sent no sum).", required=True),
        C("metric_type", "text", "gauge, counter, updowncounter, histogram, exponential_histogram, summary."),
        C("unit", "text", "UCUM unit."),
        C("service_name", "text", "Emitting service.", otel=("service.name",)),
        C("provider", "text", "Model provider (as traces.provider).", otel=("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"), vocabulary="providers"),
        C("model", "text", "Model.", otel=("gen_ai.request.model", "gen_ai.response.model")),
        C("environment", "text", "Deployment environment.", otel=("deployment.environment.name", "deployment.environment")),
        C("attributes", "jsonb", "Other labels, and columns unknown to this contract."),
        C("start_time", "timestamptz", "Start of the aggregation interval (OTLP start_time_unix_nano), for sums and distributions.", added_in="0006"),
        C("temporality", "text", "delta or cumulative (sums and distributions).", added_in="0006"),
        C("sample_count", "bigint", "Distributions (histogram, exponential_histogram, summary): number of measurements.", added_in="0006"),
        C("min_value", "double precision", "Distributions: smallest measurement, when reported.", added_in="0006"),
        C("max_value", "double precision", "Distributions: largest measurement, when reported.", added_in="0006"),
        C("buckets", "jsonb", "Distributions: buckets with their bounds (docs/otlp.md); value holds the sum.", added_in="0006"),
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
        C("service_name", "text", "Emitting service.", otel=("service.name",)),
        C("environment", "text", "Deployment environment.", otel=("deployment.environment.name", "deployment.environment")),
        C("attributes", "jsonb", "Other attributes, and columns unknown to this contract."),
        C("event_name", "text", "Event name of an event record (OTLP event_name).", otel=("event.name",), added_in="0006"),
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
        raise KeyError(f"unknown dataset {name}; expected {', '.join(DATASETS)}") from None


# --- rendering --------------------------------------------------------------------------

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
MIGRATION_PATH = MIGRATIONS_DIR / "0002_datasets.sql"
# Columns added after 0002 (applied files are never edited): version -> generated file.
ADDED_COLUMNS_PATHS = {"0006": MIGRATIONS_DIR / "0006_otlp_columns.sql"}
# Statements a column migration carries besides the dataset columns (the ledger is not a
# dataset, but its new column ships with the same release).
ADDED_COLUMNS_EXTRA = {
    "0006": (
        "-- Rows of a loaded file left without a cost because the price table knew no price\n"
        "-- for their model (traces with a model and tokens but no cost_usd).\n"
        "ALTER TABLE {{schema}}.ingest_files ADD COLUMN IF NOT EXISTS unpriced_rows bigint;\n"
    ),
}
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
            f"    {c.name} {c.pg_type}{' NOT NULL' if c.required else ''}"
            for c in ds.columns if c.added_in == "0002"
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


def render_added_columns_sql(version: str) -> str:
    """The migration adding the contract's columns of ``version`` to existing tables.

    New columns are nullable and appended (``ADD COLUMN IF NOT EXISTS``); partitions of a
    plain-PostgreSQL parent and TimescaleDB chunks inherit them.
    """
    out = [
        "-- Generated by `python -m observatory_storage.datasets` from observatory_storage/datasets.py.",
        "-- Do not edit by hand: change the contract and regenerate (tests compare the two).",
        "",
    ]
    for ds in DATASETS.values():
        for c in ds.columns:
            if c.added_in == version:
                out.append(f"ALTER TABLE {{{{schema}}}}.{ds.name} ADD COLUMN IF NOT EXISTS "
                           f"{c.name} {c.pg_type};")
    out.append("")
    extra = ADDED_COLUMNS_EXTRA.get(version)
    if extra:
        out.append(extra)
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
                f"{otel_cell(c)} | {c.description}"
                f"{'' if c.added_in == '0002' else f' (added by migration {c.added_in})'} |"
            )
        lines += ["", "Indexes:", ""]
        for ix in ds.indexes:
            lines.append(f"- `{ix.name}` {ix.definition}: {ix.why}")
        lines.append("")
    lines += ["## Normalized values", "", vocabulary.RULE, ""]
    return "\n".join(lines)


OTLP_DOCS_PATH = DOCS_PATH.parent / "otlp.md"
MAPPING_START = "<!-- mapping:start (generated by python -m observatory_storage.datasets) -->"
MAPPING_END = "<!-- mapping:end -->"


def render_otel_mapping() -> str:
    """The attribute -> column table of docs/otlp.md: every column with OpenTelemetry names."""
    lines = [MAPPING_START, "",
             "| dataset | column | attributes, first present wins (current name first) |",
             "|---|---|---|"]
    for ds in DATASETS.values():
        for c in ds.columns:
            if c.otel:
                lines.append(f"| {ds.name} | `{c.name}` | {otel_cell(c)} |")
    lines += ["", MAPPING_END]
    return "\n".join(lines)


def render_otlp_docs(current: str) -> str:
    """docs/otlp.md with its generated blocks (attribute table, alias tables) replaced."""
    for start, end, render in ((MAPPING_START, MAPPING_END, render_otel_mapping),
                               (vocabulary.START, vocabulary.END, vocabulary.render_table)):
        head, found, rest = current.partition(start)
        if found:
            _, _, tail = rest.partition(end)
            current = head + render() + tail
    return current


def otel_cell(column: Column, mark: str = "`") -> str:
    """The OpenTelemetry attribute names of a column, first (current) name first, each
    between ``mark`` (Markdown code by default; plain text with ``mark=""``)."""
    names = ", ".join(f"{mark}{name}{mark}" for name in column.otel)
    if column.otel_scale != 1.0:
        names += f" (x {column.otel_scale:g})"
    return names


def main(argv: list[str] | None = None) -> int:

    argv = sys.argv[1:] if argv is None else argv
    command = "python -m observatory_storage.datasets"
    check = "--check" in argv
    results = [sync(MIGRATION_PATH, render_tables_sql(), check=check, command=command),
               sync(DOCS_PATH, render_docs(), check=check, command=command)]
    for version, path in ADDED_COLUMNS_PATHS.items():
        results.append(sync(path, render_added_columns_sql(version), check=check,
                            command=command))
    if OTLP_DOCS_PATH.exists():
        results.append(sync(OTLP_DOCS_PATH, render_otlp_docs(OTLP_DOCS_PATH.read_text()),
                            check=check, command=command))
    return max(results)


if __name__ == "__main__":
    raise SystemExit(main())
