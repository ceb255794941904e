"""OTLP methods: the benchmark's span count as OTLP files, through the product's ingest path.

``otlp-proto`` writes length-prefixed protobuf files (the fileexporter's ``format: proto``),
``otlp-jsonl`` gzip JSON Lines (``format: json`` + gzip): spans made by the OpenTelemetry
SDK and encoded by its own OTLP encoders (``generate_otlp``), 5,000 spans a message,
100,000 a file. Files are made once per row count and kept under the bench data folder
(outside the clock); the clock covers listing, ledger, decoding, mapping, pricing, conform
and COPY into the shipped ``traces`` table, exactly as ``ingest`` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from observatory_storage import generate_otlp
from observatory_storage.bench.console import say
from observatory_storage.bench.data import BenchData
from observatory_storage.bench.methods import Load
from observatory_storage.bench.rss import peak_rss_mb
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


# --- decode + map alone: both decoders side by side (bench --otlp-decode) -------------------

DECODE_TARGETS = {"otlp-proto": 200_000, "otlp-jsonl": 100_000}  # spans/s, compiled decoder
DECODE_RSS_TARGET_MB = 250  # peak RSS of a process decoding the benchmark's spans


def run_decode(data: BenchData) -> dict:
    """Decode + map of the same OTLP files (``prepare``) by each decoder, nothing else: no
    database, no conform or pricing. One child process per decoder and input (its own CPU
    time and peak RSS), one after the other on one thread."""
    from observatory_storage.ingest.otlp import native

    decoders = ["python"] + (["compiled"] if native.available else [])
    results = []
    for method in LAYOUTS:
        landing = prepare(data, method)
        files = sorted(str(p) for p in (landing / "otlp" / "bench").glob("spans-*"))
        python_rate = None
        for decoder in decoders:
            say(f"bench: decode {method} with the {decoder} decoder ...")
            done = subprocess.run([sys.executable, "-m", __name__, decoder, *files],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"decode child failed: {done.stderr.strip()[-500:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            rate = measured["rows"] / measured["cpu_seconds"]
            python_rate = rate if decoder == "python" else python_rate
            target = DECODE_TARGETS[method] if decoder == "compiled" else None
            results.append(measured | {
                "input": method, "decoder": native.decoder_name(decoder),
                "spans_per_second": round(rate), "vs_python": round(rate / python_rate, 2),
                "target": target, "met": (rate >= target and measured["peak_rss_mb"]
                                          <= DECODE_RSS_TARGET_MB) if target else None,
                "load_average_after": round(os.getloadavg()[0], 2)})
    return {"spans": data.rows, "spans_per_message": SPANS_PER_MESSAGE, "results": results,
            "rss_target_mb": DECODE_RSS_TARGET_MB}


def _decode(decoder: str, files: list[str]) -> dict:
    from observatory_storage.ingest.otlp.reader import OtlpReader

    batch_size = load_settings().copy_batch_size
    baseline = peak_rss_mb()
    rows, cpu, wall = 0, time.process_time(), time.perf_counter()
    for path in files:
        with open(path, "rb") as handle:
            for _, batch in OtlpReader(handle, path, "otlp", batch_size, decoder=decoder).batches():
                rows += batch.num_rows
    return {"rows": rows, "cpu_seconds": round(time.process_time() - cpu, 3),
            "wall_seconds": round(time.perf_counter() - wall, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "baseline_rss_mb": round(baseline, 1), "batch_size": batch_size}


METHODS = {name: _load(name) for name in LAYOUTS}
DESCRIPTIONS = {
    "otlp-proto": "OTLP protobuf files (length-prefixed) -> ingest (decode, map, price, COPY)",
    "otlp-jsonl": "OTLP/JSON Lines, gzip -> ingest (decode, map, price, COPY)",
}


if __name__ == "__main__":  # the child of run_decode: python -m ... <decoder> <files>
    print(json.dumps(_decode(sys.argv[1], sys.argv[2:])))
