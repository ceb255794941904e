"""Record-level pieces shared by the protobuf and JSON walkers: enum names and the JSON
shapes of events, links, log bodies (docs/otlp.md)."""

from __future__ import annotations

from observatory_storage.ingest.otlp.mapping import dumps

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}
TEMPORALITY = {1: "delta", 2: "cumulative"}
# JSON producers that write enum names instead of the integers the spec asks for
KIND_NAMES = {f"SPAN_KIND_{v.upper()}": k for k, v in KINDS.items()}
STATUS_NAMES = {f"STATUS_CODE_{v.upper()}": k for k, v in STATUS.items()}
TEMPORALITY_NAMES = {f"AGGREGATION_TEMPORALITY_{v.upper()}": k for k, v in TEMPORALITY.items()}


def metric_type(kind: str, monotonic: bool) -> str:
    if kind == "sum":
        return "counter" if monotonic else "updowncounter"
    return kind


def event(name: str, time_unix_nano: int, attributes: list, dropped: int = 0) -> dict:
    out: dict = {"name": name, "time_unix_nano": time_unix_nano}
    if attributes:
        out["attributes"] = dict(attributes)
    if dropped:
        out["dropped_attributes_count"] = dropped
    return out


def link(trace_id: str, span_id: str, trace_state: str, attributes: list, flags: int) -> dict:
    out: dict = {"trace_id": trace_id, "span_id": span_id}
    if trace_state:
        out["trace_state"] = trace_state
    if attributes:
        out["attributes"] = dict(attributes)
    if flags:
        out["flags"] = flags
    return out


def exception_type(row: dict, events: list[dict]) -> None:
    """error_type from an exception event when no error.type attribute gave it."""
    if "error_type" in row:
        return
    for ev in events:
        if ev["name"] == "exception":
            value = ev.get("attributes", {}).get("exception.type")
            if isinstance(value, str) and value:
                row["error_type"] = value
                return


def body(value) -> str:
    """A log body: strings as they are, structured values as JSON, absent as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)


def event_name(row: dict, extra: dict, field: str) -> None:
    """The record's event_name field wins over an ``event.name`` attribute (kept then)."""
    if not field:
        return
    held = row.get("event_name")
    if held is not None and held != field:
        extra["event.name"] = held
    row["event_name"] = field
