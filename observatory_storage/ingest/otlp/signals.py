"""The OTLP signals as data: where each record's fields sit in the protobuf messages and in
OTLP/JSON, and which column or ``attributes`` key each one becomes.

One table drives every decoder: the walkers of ``walk.py`` read the record fields listed
here through an encoding's accessor (``proto_access.py``, ``json_access.py``), signal
sniffing (``sniff.py``) reads the container names, and a compiled decoder reads the same
rows (protobuf field numbers, JSON names, kinds). What is not flat (span status, events,
links, metric data points, log bodies) is spelled out in ``walk.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

TRACES, METRICS, LOGS = "traces", "metrics", "logs"

# Value kinds of a record field (how each encoding spells it, what the row gets):
ID16 = "id16"  # 16-byte id: protobuf bytes, OTLP/JSON 32 hex digits -> lower-case hex
ID8 = "id8"  # 8-byte id
NANOS = "nanos"  # uint64 nanoseconds since the epoch (JSON: number or string) -> µs
UINT = "uint"  # integer (JSON: number or string)
TEXT = "text"
ENUM = "enum"  # integer (JSON: the integer, or the enum's name)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}
TEMPORALITY = {1: "delta", 2: "cumulative"}
# JSON producers that write enum names instead of the integers the spec asks for (every
# name of the proto enum, UNSPECIFIED = 0 included)
KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0} | {f"SPAN_KIND_{v.upper()}": k for k, v in KINDS.items()}
STATUS_NAMES = {f"STATUS_CODE_{v.upper()}": k for k, v in STATUS.items()}
TEMPORALITY_NAMES = {"AGGREGATION_TEMPORALITY_UNSPECIFIED": 0} | {
    f"AGGREGATION_TEMPORALITY_{v.upper()}": k for k, v in TEMPORALITY.items()}
SEVERITY_NAMES = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {
    f"SEVERITY_NUMBER_{name}{n if n > 1 else ''}": base + n - 1
    for base, name in ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"),
                       (21, "FATAL"))
    for n in range(1, 5)
}


@dataclass(frozen=True)
class Field:
    """One flat field of an OTLP record and where its value goes.

    ``column``: the contract column it fills; ``extra``: else the ``attributes`` key it is
    kept under (only when set: zero/empty values are left out); ``names``: JSON enum names.
    """

    proto: str  # field name in the opentelemetry-proto message
    number: int  # protobuf field number (the wire format)
    json: str  # OTLP/JSON name (lowerCamelCase)
    kind: str
    column: str | None = None
    extra: str | None = None
    required: bool = False
    names: dict | None = None  # ENUM: JSON names -> numbers
    to_column: str | None = None  # a TO_COLUMN name: value -> column value (None: as read)


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per signal
class Signal:
    """A signal's containers (resource -> scope -> records) and its records' flat fields."""

    name: str  # the dataset its records load into
    message: type  # TracesData, MetricsData, LogsData
    resources: tuple[str, str]  # (protobuf, JSON) name of the resource list
    scopes: tuple[str, str]  # ... of the scope list in a resource
    records: tuple[str, str]  # ... of the record list in a scope
    fields: tuple[Field, ...]

    def where(self, i: int, j: int, k: int) -> str:
        """How errors name a record: ``resourceSpans[0].scopeSpans[1].spans[2]``."""
        return f"{self.resources[1]}[{i}].{self.scopes[1]}[{j}].{self.records[1]}[{k}]"

    def index(self, proto_name: str) -> int:
        """Position of a field in :attr:`fields` (and in what a reader returns)."""
        return next(i for i, f in enumerate(self.fields) if f.proto == proto_name)


def _micros(nanos: int) -> int | None:
    """OTLP nanoseconds -> the µs a timestamptz column takes; 0 (unset) -> null."""
    return nanos // 1000 if nanos else None


def _or_null(value):
    return value or None


# How a flat value becomes its column value, by name (a None result: the column stays null):
# data, so that a compiled decoder reads the same table.
TO_COLUMN = {
    "micros": lambda nanos: nanos // 1000,  # OTLP nanoseconds -> µs, 0 kept (the epoch)
    "micros_or_null": _micros,
    "or_null": _or_null,  # 0 / "" -> null
    "span_kind": KINDS.get,  # 1..5 -> internal ... consumer, other numbers -> null
}

F = Field

SPAN_FIELDS = (
    F("trace_id", 1, "traceId", ID16, "trace_id", required=True),
    F("span_id", 2, "spanId", ID8, "span_id", required=True),
    F("trace_state", 3, "traceState", TEXT, extra="span.trace_state"),
    F("parent_span_id", 4, "parentSpanId", ID8, "parent_span_id"),
    F("flags", 16, "flags", UINT, extra="span.flags"),
    F("name", 5, "name", TEXT, "name"),
    F("kind", 6, "kind", ENUM, "kind", names=KIND_NAMES, to_column="span_kind"),
    F("start_time_unix_nano", 7, "startTimeUnixNano", NANOS, "start_time",
      to_column="micros"),
    F("end_time_unix_nano", 8, "endTimeUnixNano", NANOS, "end_time", to_column="micros_or_null"),
    F("dropped_attributes_count", 10, "droppedAttributesCount", UINT,
      extra="span.dropped_attributes_count"),
    F("dropped_events_count", 12, "droppedEventsCount", UINT, extra="span.dropped_events_count"),
    F("dropped_links_count", 14, "droppedLinksCount", UINT, extra="span.dropped_links_count"),
)

LOG_FIELDS = (
    F("time_unix_nano", 1, "timeUnixNano", NANOS),
    F("observed_time_unix_nano", 11, "observedTimeUnixNano", NANOS),
    F("severity_number", 2, "severityNumber", ENUM, "severity_number", names=SEVERITY_NAMES,
      to_column="or_null"),
    F("severity_text", 3, "severityText", TEXT, "severity_text", to_column="or_null"),
    F("trace_id", 9, "traceId", ID16, "trace_id"),
    F("span_id", 10, "spanId", ID8, "span_id"),
    F("event_name", 12, "eventName", TEXT),
    F("flags", 8, "flags", UINT, extra="log.flags"),
    F("dropped_attributes_count", 7, "droppedAttributesCount", UINT,
      extra="log.dropped_attributes_count"),
)

METRIC_FIELDS = (
    F("name", 1, "name", TEXT, "metric_name"),
    F("unit", 3, "unit", TEXT, "unit", to_column="or_null"),
    F("description", 2, "description", TEXT, extra="metric.description"),
)

# Data kinds of a metric: (protobuf oneof name, JSON name)
METRIC_KINDS = (("gauge", "gauge"), ("sum", "sum"), ("histogram", "histogram"),
                ("exponential_histogram", "exponentialHistogram"), ("summary", "summary"))

SPANS = Signal(TRACES, TracesData, ("resource_spans", "resourceSpans"),
               ("scope_spans", "scopeSpans"), ("spans", "spans"), SPAN_FIELDS)
METRIC_POINTS = Signal(METRICS, MetricsData, ("resource_metrics", "resourceMetrics"),
                       ("scope_metrics", "scopeMetrics"), ("metrics", "metrics"), METRIC_FIELDS)
LOG_RECORDS = Signal(LOGS, LogsData, ("resource_logs", "resourceLogs"),
                     ("scope_logs", "scopeLogs"), ("log_records", "logRecords"), LOG_FIELDS)

SIGNALS: dict[str, Signal] = {s.name: s for s in (SPANS, METRIC_POINTS, LOG_RECORDS)}
JSON_KEYS = {s.resources[1]: s.name for s in SIGNALS.values()}  # resourceSpans -> traces
