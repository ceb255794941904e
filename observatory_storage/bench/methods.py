"""One function per loading method; each loads the benchmark spans into a fresh database.

Every function receives the prepared :class:`BenchData` and the URL of an empty, migrated
database, loads rows into ``traces`` and returns how many rows it meant to load and how
long the load itself took (database creation and migration are outside the clock). The
runner then counts the rows actually in the table. Slow methods load a sample and are
reported at their measured rate, marked "sampled".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pgpq
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pgpq import encoders, schema
from psycopg import sql

from observatory_storage.bench.data import BenchData
from observatory_storage.datasets import TRACES
from observatory_storage.db.connection import connect
from observatory_storage.ingest.chunks import TimeSlots
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.settings import load_settings

TABLE = TRACES.name
COLUMNS = TRACES.column_names


class MethodSkipped(Exception):
    """The method cannot run here (a missing optional package); the message says why."""


@dataclass(frozen=True)
class Options:
    sample_rows: int = 100_000  # row-by-row COPY and executemany
    pandas_rows: int = 20_000
    dlt_rows: int = 100_000
    copy_batch_size: int | None = None  # COPY_BATCH_SIZE override for "ours"
    copy_buffer_size: int | None = None  # COPY_BUFFER_SIZE override for "ours"


@dataclass(frozen=True)
class Load:
    rows: int  # rows the method loaded (the whole data set, or its sample)
    seconds: float
    sampled: bool = False
    note: str = ""


Method = Callable[[BenchData, str, Options], Load]


class _Clock:
    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started


# --- 1. ours ----------------------------------------------------------------------------


def ours(data: BenchData, url: str, options: Options, workers: int | None = None) -> Load:
    """The product path: list the landing folder, skip what the ledger has, COPY the rest.

    ``workers`` sets COPY_WORKERS (None: the default, the client's CPU count capped at 4).
    """

    overrides = {
        "copy_batch_size": options.copy_batch_size,
        "copy_buffer_size": options.copy_buffer_size,
        "copy_workers": workers,
    }
    settings = load_settings(
        database_url=url,
        landing_url=str(data.landing),
        ingest_max_files_per_run=max(len(data.parquet_files), 1),
        **{k: v for k, v in overrides.items() if v is not None},
    )
    clock = _Clock()
    with clock.running():
        with connect(settings) as conn:
            objects = pending_objects(settings, conn, datasets=[TABLE])
        report = load_objects(settings, objects, run_id="bench")
    problems = [f"{f.key}: {f.status} {f.error or ''}" for f in report.files if f.status != "loaded"]
    if problems:
        raise RuntimeError("our path did not load every file: " + "; ".join(problems[:3]))
    note = (f"{len(report.files)} files, batch={settings.copy_batch_size}, "
            f"workers={settings.copy_workers_resolved}")
    return Load(report.rows, clock.seconds, note=note)


def ours_workers(workers: int) -> Method:
    def method(data: BenchData, url: str, options: Options) -> Load:
        return ours(data, url, options, workers)

    method.__doc__ = f"Our path with COPY_WORKERS={workers}."
    return method


# --- 2. raw pgpq ------------------------------------------------------------------------


def raw(data: BenchData, url: str, options: Options) -> Load:
    """Arrow batches -> pgpq binary COPY -> psycopg, one transaction per file, no framework.

    The Parquet files are already in the contract's Arrow types, so there is no conform
    step: this is the fastest a Python client can feed the server.
    """

    arrow_schema = TRACES.arrow_schema
    builders = {
        field.name: (
            encoders.StringEncoderBuilder.new_with_output(field, schema.Jsonb())
            if TRACES.column(field.name).pg_type == "jsonb"
            else pgpq.ArrowToPostgresBinaryEncoder.infer_encoder(field)
        )
        for field in arrow_schema
    }
    copy_sql = _copy_sql("FORMAT binary")
    batch_size = options.copy_batch_size or 50_000
    rows = 0
    clock = _Clock()
    with clock.running(), psycopg.connect(url) as conn:
        for path in data.parquet_files:
            parquet = pq.ParquetFile(path)
            encoder = pgpq.ArrowToPostgresBinaryEncoder.new_with_encoders(arrow_schema, builders)
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.write(encoder.write_header())
                for batch in parquet.iter_batches(batch_size=batch_size):
                    copy.write(encoder.write_batch(batch))
                    rows += batch.num_rows
                copy.write(encoder.finish())
    return Load(rows, clock.seconds)


# --- 3. psql \copy ----------------------------------------------------------------------


def psql(data: BenchData, url: str, options: Options) -> Load:
    """The server's own CSV loader, driven by ``psql \\copy`` from the same rows as CSV."""

    binary = shutil.which("psql")
    if binary is None:
        raise MethodSkipped("psql is not installed")
    columns = ", ".join(sql.Identifier(c).as_string(None) for c in COLUMNS)
    command = (
        f"\\copy {TABLE} ({columns}) FROM '{data.csv_path}' WITH (FORMAT csv, HEADER true)"
    )
    clock = _Clock()
    with clock.running():
        done = subprocess.run(
            [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command],
            capture_output=True,
            text=True,
            env=os.environ | {"PGAPPNAME": "observatory-storage-bench"},
        )
    if done.returncode != 0:
        raise RuntimeError(f"psql \\copy failed: {done.stderr.strip()}")
    return Load(data.rows, clock.seconds)


def psql2(data: BenchData, url: str, options: Options) -> Load:
    """Two ``psql \\copy`` streams at once, each half of the rows (the server's parallel
    ceiling with one connection per core). The chunks/partitions of the data's days are
    created before the clock starts, so neither stream waits behind the other's chunk
    creation (see ingest/chunks.py)."""

    binary = shutil.which("psql")
    if binary is None:
        raise MethodSkipped("psql is not installed")
    halves = _csv_halves(data)
    _make_slots(data, url)
    columns = ", ".join(sql.Identifier(c).as_string(None) for c in COLUMNS)
    clock = _Clock()
    with clock.running():
        streams = [
            subprocess.Popen(
                [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                 f"\\copy {TABLE} ({columns}) FROM '{half}' WITH (FORMAT csv, HEADER true)"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=os.environ | {"PGAPPNAME": "observatory-storage-bench"},
            )
            for half in halves
        ]
        errors = [p.communicate()[1] for p in streams]
    failed = [e.strip() for p, e in zip(streams, errors, strict=True) if p.returncode != 0]
    if failed:
        raise RuntimeError(f"psql \\copy failed: {failed[0]}")
    return Load(data.rows, clock.seconds, note="2 streams, chunks made ahead")


def _csv_halves(data: BenchData) -> list[str]:
    """The spans as two CSV files of about half the rows each (cached next to the data)."""

    paths = [data.root / f"spans-half-{index}.csv" for index in (0, 1)]
    if all(p.exists() for p in paths):
        return [str(p) for p in paths]
    table = pa.concat_tables(pq.read_table(f) for f in data.parquet_files)
    half = table.num_rows // 2
    for path, part in zip(paths, (table.slice(0, half), table.slice(half)), strict=True):
        tmp = path.with_suffix(".tmp")
        with pa_csv.CSVWriter(tmp, TRACES.arrow_schema) as out:
            out.write_table(part)
        tmp.rename(path)
    return [str(p) for p in paths]


def _make_slots(data: BenchData, url: str) -> None:
    """Create the chunks/partitions the data's days need (outside any clock)."""


    low = high = None
    for path in data.parquet_files:
        lo, hi = pc.min_max(pq.read_table(path, columns=[TRACES.time_column])
                            .column(0)).values()
        low = lo.as_py() if low is None else min(low, lo.as_py())
        high = hi.as_py() if high is None else max(high, hi.as_py())
    with TimeSlots(load_settings(database_url=url)) as slots:
        slots.ensure_days(TRACES, low.date(), high.date())


# --- 4. psycopg row by row --------------------------------------------------------------


def rowcopy(data: BenchData, url: str, options: Options) -> Load:
    """Python tuples through ``copy.write_row`` (text COPY): the usual hand-written loader."""
    sample = data.sample(options.sample_rows)
    clock = _Clock()
    with clock.running(), psycopg.connect(url) as conn:
        rows = _python_rows(sample)
        with conn.cursor() as cur, cur.copy(_copy_sql()) as copy:
            for row in rows:
                copy.write_row(row)
    return Load(len(rows), clock.seconds, sampled=sample.num_rows < data.rows)


def executemany(data: BenchData, url: str, options: Options) -> Load:
    """``cursor.executemany(INSERT ...)`` (psycopg 3 pipelines it): the ORM-free default."""
    sample = data.sample(options.sample_rows)
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(TABLE),
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    )
    clock = _Clock()
    with clock.running(), psycopg.connect(url) as conn:
        rows = _python_rows(sample)
        with conn.cursor() as cur:
            cur.executemany(insert, rows)
    return Load(len(rows), clock.seconds, sampled=sample.num_rows < data.rows)


def _python_rows(table: pa.Table) -> list[tuple]:
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    return list(zip(*columns, strict=True))


# --- 5. pandas --------------------------------------------------------------------------


def pandas(data: BenchData, url: str, options: Options) -> Load:
    """``DataFrame.to_sql`` through SQLAlchemy (pandas needs it for PostgreSQL)."""
    try:
        import sqlalchemy
        from sqlalchemy.dialects.postgresql import JSONB
    except ImportError as exc:
        raise MethodSkipped(f"SQLAlchemy is not installed ({exc})") from None

    sample = data.sample(options.pandas_rows)
    engine = sqlalchemy.create_engine(_sqlalchemy_url(url))
    jsonb = [c.name for c in TRACES.columns if c.pg_type == "jsonb"]
    clock = _Clock()
    try:
        with clock.running():
            frame = sample.to_pandas()
            for name in jsonb:  # to_sql serialises JSONB itself: hand it parsed values
                frame[name] = frame[name].map(lambda v: json.loads(v) if isinstance(v, str) else None)
            frame.to_sql(
                TABLE,
                engine,
                if_exists="append",
                index=False,
                chunksize=5_000,
                dtype=_sqlalchemy_types(sqlalchemy, JSONB),
            )
    finally:
        engine.dispose()
    return Load(sample.num_rows, clock.seconds, sampled=sample.num_rows < data.rows)


def _sqlalchemy_types(sqlalchemy, jsonb_type) -> dict:
    """Types pandas cannot infer from a DataFrame: exact numeric and jsonb (NULL, not 'null')."""
    types = {}
    for column in TRACES.columns:
        if column.pg_type == "jsonb":
            types[column.name] = jsonb_type(none_as_null=True)
        elif column.pg_type.startswith("numeric("):
            precision, scale = column.pg_type[8:-1].split(",")
            types[column.name] = sqlalchemy.Numeric(int(precision), int(scale))
    return types


def _sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


# --- 6. dlt -----------------------------------------------------------------------------


def dlt(data: BenchData, url: str, options: Options) -> Load:
    """dlt's postgres destination with Arrow input, appending to the shipped table."""
    try:
        import dlt as dlt_lib
    except ImportError:
        raise MethodSkipped(
            "dlt is not installed (pip install 'observatory-storage[bench]')"
        ) from None
    sample = data.sample(options.dlt_rows)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    with tempfile.TemporaryDirectory(prefix="obs-bench-dlt-") as workdir:
        pipeline = dlt_lib.pipeline(
            pipeline_name="obs_bench",
            pipelines_dir=workdir,
            destination=dlt_lib.destinations.postgres(credentials=_dlt_credentials(url)),
            dataset_name="public",
        )
        resource = dlt_lib.resource(
            [sample], name=TABLE, table_name=TABLE, write_disposition="append"
        )
        clock = _Clock()
        with clock.running():
            pipeline.run(resource)
    return Load(sample.num_rows, clock.seconds, sampled=sample.num_rows < data.rows)


def _dlt_credentials(url: str) -> str:
    """dlt refuses credentials without a password, even for a trust-auth server.

    When the URL has none, a placeholder is added: servers that do not ask for a password
    never see it, and those that do fail just as they would have.
    """
    parts = urlsplit(url)
    if parts.password is not None and parts.password != "" or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:unused@{host}"))


METHODS: dict[str, Method] = {
    "ours": ours,
    "ours1": ours_workers(1),
    "ours2": ours_workers(2),
    "ours4": ours_workers(4),
    "raw": raw,
    "psql": psql,
    "psql2": psql2,
    "rowcopy": rowcopy,
    "executemany": executemany,
    "pandas": pandas,
    "dlt": dlt,
}

DESCRIPTIONS = {
    "ours": "landing files -> ledger -> binary COPY (load_objects, default COPY_WORKERS)",
    "ours1": "ours with COPY_WORKERS=1",
    "ours2": "ours with COPY_WORKERS=2",
    "ours4": "ours with COPY_WORKERS=4",
    "raw": "pgpq Arrow -> binary COPY, no framework (client ceiling)",
    "psql": "psql \\copy CSV (server's own loader)",
    "psql2": "two psql \\copy streams at once (the server's parallel ceiling)",
    "rowcopy": "psycopg copy.write_row, text COPY",
    "executemany": "psycopg executemany INSERT",
    "pandas": "pandas DataFrame.to_sql (SQLAlchemy)",
    "dlt": "dlt pipeline, postgres destination",
}




def _copy_sql(options: str | None = None) -> sql.Composed:
    query = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(TABLE), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    if options:
        query += sql.SQL(" WITH ({})").format(sql.SQL(options))
    return query
