"""OTLP methods: the benchmark's span count as OTLP files, through the product's ingest path.

``otlp-proto`` writes length-prefixed protobuf files (the fileexporter's ``format: proto``),
``otlp-jsonl`` gzip JSON Lines (``format: json`` + gzip): spans made by the OpenTelemetry
SDK and encoded by its own OTLP encoders (``generate_otlp``), 5,000 spans a message,
100,000 a file. Files are made once per row count and kept under the bench data folder
(outside the clock); the clock covers listing, ledger, decoding, mapping, pricing, conform
and COPY into the shipped ``traces`` table, exactly as ``ingest`` runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

from observatory_storage import generate_otlp
from observatory_storage.bench.data import BenchData
from observatory_storage.bench.methods import Load
from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.settings import load_settings

SPANS_PER_MESSAGE = 5_000
SPANS_PER_FILE = 100_000
LAYOUTS = {"otlp-proto": ("proto", "framed", "none", "pb"),
           "otlp-jsonl": ("json", "lines", "gzip", "jsonl.gz")}


def prepare(data: BenchData, method: str) -> Path:
    """The landing folder holding ``data.rows`` spans as OTLP files of ``method``."""

    encoding, layout, compression, ext = LAYOUTS[method]
    landing = data.root / f"{method}-{data.rows}"
    folder = landing / "otlp" / "bench"
    done = landing / ".complete"
    if done.exists():
        return landing
    folder.mkdir(parents=True, exist_ok=True)
    for n, first in enumerate(range(0, data.rows, SPANS_PER_FILE)):
        count = min(SPANS_PER_FILE, data.rows - first)
        messages = []
        for m, offset in enumerate(range(0, count, SPANS_PER_MESSAGE)):
            spans = generate_otlp.genai_spans(min(SPANS_PER_MESSAGE, count - offset),
                                              seed=n * 1000 + m)
            messages.append(generate_otlp.encode("traces", spans, encoding))
        body = generate_otlp.file_bytes(messages, layout, compression)
        (folder / f"spans-{n:04d}.{ext}").write_bytes(body)
    done.write_text("ok\n")
    return landing


def _load(method: str):
    def run(data: BenchData, url: str, options):
        landing = prepare(data, method)
        settings = load_settings(database_url=url, landing_url=str(landing),
                                 ingest_max_files_per_run=10_000)
        started = time.perf_counter()
        with connect(settings) as conn:
            objects = pending_objects(settings, conn, datasets=["otlp"])
        report = load_objects(settings, objects, run_id="bench")
        seconds = time.perf_counter() - started
        problems = [f"{f.key}: {f.status} {f.error or ''}" for f in report.files
                    if f.status != "loaded"]
        if problems:
            raise RuntimeError("OTLP files did not all load: " + "; ".join(problems[:3]))
        size = sum(p.stat().st_size for p in landing.rglob("spans-*"))
        return Load(report.rows, seconds,
                    note=f"{len(report.files)} files, {size / 1e6:.0f} MB, SDK-made spans")

    return run


METHODS = {name: _load(name) for name in LAYOUTS}
DESCRIPTIONS = {
    "otlp-proto": "OTLP protobuf files (length-prefixed) -> ingest (decode, map, price, COPY)",
    "otlp-jsonl": "OTLP/JSON Lines, gzip -> ingest (decode, map, price, COPY)",
}
