"""The benchmark data set: generated once, reused by every method and every run.

``<root>/landing/traces/bench-NNNN.parquet`` holds the spans as a product landing bucket
would (Parquet in the contract's Arrow types); ``<root>/spans.csv`` holds exactly the same
rows for ``psql \\copy``. A manifest records what was generated, so a second run with the
same size reuses the files instead of spending minutes regenerating them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from observatory_storage.datasets import TRACES
from observatory_storage.generate import traces_table

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_ROWS_PER_FILE = 100_000


@dataclass(frozen=True)
class BenchData:
    root: Path
    rows: int
    parquet_files: tuple[Path, ...]

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def csv_path(self) -> Path:
        return self.root / "spans.csv"

    @property
    def parquet_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.parquet_files)

    def sample(self, rows: int) -> pa.Table:
        """The first ``rows`` spans (the whole set when it is smaller)."""
        tables, wanted = [], min(rows, self.rows)
        for path in self.parquet_files:
            if wanted <= 0:
                break
            table = pq.read_table(path)
            tables.append(table.slice(0, wanted))
            wanted -= min(wanted, table.num_rows)
        return pa.concat_tables(tables)


def spans(rows: int, seed: int, start: dt.datetime | None = None) -> pa.Table:
    """Realistic spans (the product's generator) over the 24 h before ``start`` or now."""


    end = start or dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    table = traces_table(rows, np.random.default_rng(seed), end - dt.timedelta(hours=24), 24)
    return TRACES.complete(table)


def prepare(root: Path, rows: int, rows_per_file: int = DEFAULT_ROWS_PER_FILE) -> BenchData:
    """Generate (or reuse) ``rows`` spans under ``root``."""
    root = Path(root)
    wanted = {"format": FORMAT_VERSION, "rows": rows, "rows_per_file": rows_per_file}
    manifest = root / MANIFEST
    if manifest.exists():
        found = json.loads(manifest.read_text())
        files = tuple(root / f for f in found.get("files", []))
        if {k: found.get(k) for k in wanted} == wanted and all(f.exists() for f in files):
            return BenchData(root, rows, files)
    if root.exists():
        shutil.rmtree(root)
    folder = root / "landing" / TRACES.name
    folder.mkdir(parents=True)
    files: list[Path] = []
    count = max(1, math.ceil(rows / rows_per_file))
    with pa_csv.CSVWriter(root / "spans.csv", TRACES.arrow_schema) as csv_out:
        for index in range(count):
            size = min(rows_per_file, rows - index * rows_per_file)
            table = spans(size, seed=index)
            path = folder / f"bench-{index:04d}.parquet"
            pq.write_table(table, path, row_group_size=size)
            csv_out.write_table(table)
            files.append(path)
    manifest.write_text(
        json.dumps(wanted | {"files": [str(f.relative_to(root)) for f in files]}, indent=2)
    )
    return BenchData(root, rows, tuple(files))
