"""The unpriced-span count goes from a real OTLP load through the ledger to /metrics' facts."""

from __future__ import annotations

from observatory_storage import generate_otlp as otlp
from observatory_storage.landing import open_landing
from observatory_storage.service import facts
from tests.ingest.helpers import load_all


def test_unpriced_spans_are_counted_per_dataset(settings, db):
    spans = otlp.genai_spans(60, seed=11)
    unknown = sum(1 for s in spans if s.attributes.get("gen_ai.request.model") == otlp.UNKNOWN_MODEL
                  and "gen_ai.usage.cost" not in s.attributes)
    assert unknown > 0
    open_landing(settings).put("otlp/a.pb", otlp.file_bytes(
        [otlp.encode("traces", spans, "proto")], "framed"))
    assert load_all(settings).ok
    counters = facts.ingest_counters(db, "public")
    assert counters.unpriced == {"traces": unknown}
