"""Peak memory of ingesting one large Parquet file, measured in a child process.

The child imports the product, records its resident set, loads the file with
``load_objects`` and reports its own peak RSS (``getrusage``), so nothing the benchmark
itself holds (generated tables, other methods) is counted. The file is written in row
groups of 250k spans (about 19 MB compressed, 100 MB in memory), four distinct groups
repeated until the file reaches the size asked for (1 GB is about 14M spans).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from observatory_storage.bench import databases
from observatory_storage.bench.console import say
from observatory_storage.bench.data import spans
from observatory_storage.bench.methods import Options
from observatory_storage.bench.rss import peak_rss_mb
from observatory_storage.datasets import TRACES
from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.settings import load_settings

TARGET_MB = 300
ROWS_PER_GROUP = 250_000
DISTINCT_GROUPS = 4  # row groups repeat: generating 14M distinct spans costs 10 minutes


def big_file(folder: Path, gigabytes: float) -> tuple[Path, int]:
    """A Parquet file of at least ``gigabytes`` (reused when it already exists)."""
    path = folder / "landing" / TRACES.name / f"big-{gigabytes:g}gb.parquet"
    done = folder / f"{path.stem}.rows"  # outside the landing: it would be ingested
    if path.exists() and done.exists():
        return path, int(done.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    limit, rows, groups = int(gigabytes * 2**30), 0, []
    partial = path.with_name("_" + path.name)  # not visible to the landing listing
    with open(partial, "wb") as sink, pq.ParquetWriter(sink, TRACES.arrow_schema) as writer:
        while sink.tell() < limit:
            if len(groups) < DISTINCT_GROUPS:
                groups.append(spans(ROWS_PER_GROUP, seed=1_000 + len(groups)))
            table = groups[rows // ROWS_PER_GROUP % DISTINCT_GROUPS]
            writer.write_table(table, row_group_size=ROWS_PER_GROUP)
            rows += table.num_rows
    partial.rename(path)
    done.write_text(str(rows))
    return path, rows


def run_memory(data_dir: Path, server_url: str, gigabytes: float, options: Options) -> dict:
    folder = Path(data_dir) / f"big-{gigabytes:g}gb"
    say(f"bench: memory: preparing a {gigabytes:g} GB Parquet file ...")
    path, rows = big_file(folder, gigabytes)
    with databases.fresh_database(server_url, "memory") as url:
        say(f"bench: memory: loading {path.name} ({rows:,} spans) in a child process ...")
        args = [sys.executable, "-m", __name__, url, str(folder / "landing")]
        for name in ("copy_batch_size", "copy_buffer_size"):
            value = getattr(options, name)
            args.append(str(value) if value is not None else "")
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"memory child failed: {done.stderr.strip()[-500:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        loaded = databases.count_rows(url)
    return measured | {
        "file_mb": path.stat().st_size / 2**20,
        "rows": loaded,
        "expected_rows": rows,
        "target_mb": TARGET_MB,
        "met": measured["peak_rss_mb"] <= TARGET_MB,
    }


def _child(url: str, landing: str, batch_size: str, buffer_size: str) -> None:

    overrides = {"copy_batch_size": batch_size, "copy_buffer_size": buffer_size}
    settings = load_settings(
        database_url=url, landing_url=landing, **{k: int(v) for k, v in overrides.items() if v}
    )
    with connect(settings) as conn:
        objects = pending_objects(settings, conn, datasets=[TRACES.name])
    baseline = peak_rss_mb()
    started = time.perf_counter()
    report = load_objects(settings, objects, run_id="bench-memory")
    seconds = time.perf_counter() - started
    if report.count("loaded") != len(objects):
        raise SystemExit(f"not every file loaded: {report.as_dict()['problems']}")
    print(json.dumps({
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "seconds": seconds,
        "copy_batch_size": settings.copy_batch_size,
    }))


if __name__ == "__main__":
    _child(*sys.argv[1:5])
