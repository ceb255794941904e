"""`observatory-storage bench` end to end on a small data set, against real servers.

No timing is asserted: the test proves every method really loads the same rows into its
own freshly migrated table and that the report carries the ratios the docs quote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

COMMAND = str(Path(sys.executable).parent / "observatory-storage")
METHODS = ["ours", "ours2", "otlp-proto", "otlp-jsonl", "raw", "psql", "psql2", "rowcopy",
           "executemany"]


def test_bench_loads_the_same_rows_with_every_method(backend, server_urls, tmp_path):
    done = subprocess.run(
        [
            COMMAND, "bench", "--rows", "2000", "--methods", ",".join(METHODS), "--json",
            "--db-url", server_urls[backend], "--data-dir", str(tmp_path / "data"),
            "--out", str(tmp_path / "report.md"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["backend"] == backend
    assert report["rows"] == 2000
    assert [m["method"] for m in report["methods"]] == METHODS
    for method in report["methods"]:
        assert method["skipped"] is None, method
        assert method["rows"] == 2000, method  # counted in the method's own table
        assert method["expected_rows"] == 2000, method
        assert method["rows_per_second"] > 0
        assert method["ratio"] > 0, method
    by_name = {m["method"]: m for m in report["methods"]}
    assert by_name["ours"]["ratio"] == 1.0
    assert by_name["raw"]["target"] == ">= 0.95x"
    assert by_name["psql"]["target"] == ">= 1.5x"
    assert isinstance(by_name["raw"]["met"], bool)

    markdown = (tmp_path / "report.md").read_text()
    assert "| method | rows | seconds | rows/s | ours is | target | met? |" in markdown
    for name in METHODS:
        assert f"| {name} | 2,000 |" in markdown

    # Each method had its own database, and every one was dropped afterwards.
    names = [m["database"] for m in report["methods"]]
    assert len(set(names)) == len(METHODS)
    with psycopg.connect(server_urls[backend], autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchone()[0]
    assert left == 0


def test_bench_refuses_an_unknown_method(server_urls, tmp_path):
    done = subprocess.run(
        [COMMAND, "bench", "--rows", "10", "--methods", "ours,nosuch",
         "--db-url", server_urls["timescaledb"], "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "nosuch" in done.stderr


def test_otlp_decode_measures_both_decoders_on_the_same_spans(tmp_path):
    """bench --otlp-decode: decode + map alone, each decoder in its own process."""
    from observatory_storage.bench.data import BenchData
    from observatory_storage.bench.extras_text import extras_markdown
    from observatory_storage.bench.otlp import run_decode
    from observatory_storage.ingest.otlp import native

    measured = run_decode(BenchData(tmp_path, 2000, ()))
    decoders = ["python"] + (["compiled"] if native.available else [])
    assert [(r["input"], r["decoder"]) for r in measured["results"]] == [
        (method, native.decoder_name(d)) for method in ("otlp-proto", "otlp-jsonl") for d in decoders]
    for r in measured["results"]:
        assert r["rows"] == 2000 and r["cpu_seconds"] > 0 and r["peak_rss_mb"] > r["baseline_rss_mb"] > 0
    assert "OTLP decode + map alone" in extras_markdown({"otlp_decode": measured})[0]
