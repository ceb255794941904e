"""Whole ``observatory-storage ingest`` processes, timed from spawn to exit.

Two measurements (issue 13), each into a fresh database, compared with one ``psql \\copy``
stream of the same run:

- one process loading ONE file holding every span (row groups of 100,000 spans, so it is
  split into parts and loaded on COPY_WORKERS connections);
- two processes at once, each loading half of the spans from its own landing folder, with
  every timestamp moved 30 days ahead: a day without chunk or partition, so both processes
  need the same new chunk at the same time.

The wall clock includes interpreter start-up, imports, the Dagster run and the load, which
is what a user (or a run worker) pays.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from observatory_storage.bench import databases
from observatory_storage.bench.data import BenchData
from observatory_storage.datasets import TRACES

CLI = str(Path(sys.executable).parent / "observatory-storage")
ROW_GROUP = 100_000
NEW_DAY_OFFSET = dt.timedelta(days=30)
TARGET = 1.3  # x one psql stream


def _write(table: pa.Table, path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd")
    tmp.rename(path)


def _spans(data: BenchData) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in data.parquet_files)


def one_file_landing(data: BenchData) -> Path:
    root = data.root / "one-file" / "landing"
    path = root / TRACES.name / "all.parquet"
    if not path.exists():
        _write(_spans(data), path)
    return root


def new_day_landings(data: BenchData) -> list[Path]:
    roots = [data.root / f"new-day-{i}" / "landing" for i in (0, 1)]
    paths = [root / TRACES.name / f"half-{i}.parquet" for i, root in enumerate(roots)]
    if not all(p.exists() for p in paths):
        table = _spans(data)
        for name in ("start_time", "end_time"):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.add(table.column(name),
                                                         pa.scalar(NEW_DAY_OFFSET)))
        half = table.num_rows // 2
        for path, part in zip(paths, (table.slice(0, half), table.slice(half)), strict=True):
            _write(part, path)
    return roots


def timed_ingest(landings: list[Path], url: str) -> float:
    """Spawn one ``ingest`` per landing folder at once; seconds until the last exits."""
    env = os.environ | {"DATABASE_URL": url}
    started = time.perf_counter()
    processes = [subprocess.Popen([CLI, "ingest", "--landing", str(landing)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for landing in landings]
    errors = [p.communicate(timeout=3600)[1] for p in processes]
    seconds = time.perf_counter() - started
    failed = [[line for line in e.splitlines() if line.startswith(("error", "conflict", "gone"))
               or "Failure:" in line][-3:]
              for p, e in zip(processes, errors, strict=True) if p.returncode != 0]
    if failed:
        raise RuntimeError(f"observatory-storage ingest failed: {failed[0]}")
    return seconds


def run_processes(data: BenchData, server_url: str, psql_rate: float | None) -> list[dict]:
    cases = [
        ("one ingest process, one file", "proc1", one_file_landing(data)),
        ("two ingest processes into a new day", "proc2", None),
    ]
    results = []
    for name, label, landing in cases:
        landings = [landing] if landing is not None else new_day_landings(data)
        with databases.fresh_database(server_url, label) as url:
            seconds = timed_ingest(landings, url)
            rows = databases.count_rows(url)
        rate = rows / seconds
        ratio = rate / psql_rate if psql_rate else None
        results.append({
            "name": name, "rows": rows, "seconds": seconds, "rows_per_second": rate,
            "vs_psql": ratio, "target": f">= {TARGET}x psql", "met":
            None if ratio is None else ratio >= TARGET,
            "load_average_after": round(os.getloadavg()[0], 2),
        })
    return results
