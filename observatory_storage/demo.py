"""``observatory-storage demo``: the product end to end in a few seconds, nothing to set up.

Database (the embedded PostgreSQL when DATABASE_URL is unset; schema ``observatory_demo``,
re-created at every run) -> migrations -> sample
files in a demo landing folder (traces as Parquet, Arrow IPC file and Arrow IPC stream,
metrics, logs, and one file broken on purpose) -> the Dagster ``ingest_job`` in process ->
the per-dataset summary, the quarantine reason and three example queries.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from psycopg import sql

from observatory_storage.db import embedded
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.defs.in_process import execute_ingest, first_failure, recorded_home
from observatory_storage.generate import build_table, encode, generate
from observatory_storage.landing import open_landing
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import PROJECT_ROOT, Settings

DEFAULT_LANDING = PROJECT_ROOT / ".cache" / "demo-landing"
# The demo's own schema, dropped and re-created at every run: its rows, ledger and broken
# file never show in the DB_SCHEMA that `dev`, `ingest` and `serve` use, and a re-run
# shows the same totals instead of doubling them.
DEMO_SCHEMA = "observatory_demo"
ROWS_PER_FILE = 2_000

# (dataset, files, format) written by the demo; one broken traces file is added.
SAMPLE_FILES = (
    ("traces", 4, "parquet"),
    ("traces", 1, "arrow"),
    ("traces", 1, "arrows"),
    ("metrics", 1, "parquet"),
    ("logs", 1, "arrows"),
    ("traces", 1, "otlp-jsonl"),  # OTLP made by the OpenTelemetry SDK, priced at ingest
)

QUERIES = (
    (
        "Cost per model",
        """SELECT provider, request_model AS model, count(*) AS calls,
                  sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens,
                  round(sum(cost_usd), 4) AS cost_usd
             FROM {schema}.traces
            WHERE cost_usd IS NOT NULL
            GROUP BY 1, 2 ORDER BY cost_usd DESC LIMIT 8""",
    ),
    (
        "Slowest LLM calls",
        """SELECT name, request_model AS model, round(duration_ms::numeric, 1) AS duration_ms,
                  status_code AS status
             FROM {schema}.traces
            WHERE duration_ms IS NOT NULL AND request_model IS NOT NULL
            ORDER BY duration_ms DESC LIMIT 5""",
    ),
    (
        "Error rate per provider",
        """SELECT provider, count(*) AS calls,
                  count(*) FILTER (WHERE status_code = 'error') AS errors,
                  round(100.0 * count(*) FILTER (WHERE status_code = 'error') / count(*), 2)
                      AS error_pct
             FROM {schema}.traces
            WHERE provider IS NOT NULL
            GROUP BY 1 ORDER BY error_pct DESC""",
    ),
    (
        "Who set the cost (OTLP spans are priced at ingest)",
        """SELECT coalesce(cost_source, 'unpriced') AS cost_source, count(*) AS llm_calls,
                  round(sum(cost_usd), 4) AS cost_usd
             FROM {schema}.traces
            WHERE request_model IS NOT NULL AND input_tokens IS NOT NULL
            GROUP BY 1 ORDER BY llm_calls DESC""",
    ),
)


class DemoFailed(RuntimeError):
    """The demo's ingest run failed; the message is redacted."""


@dataclass
class QueryResult:
    title: str
    columns: list[str]
    rows: list[tuple]

    def as_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns,
                "rows": [[_plain(v) for v in row] for row in self.rows]}


@dataclass
class DemoResult:
    database: str
    schema: str
    backend: str
    landing: str
    run_id: str
    seconds: float
    report: object  # IngestReport
    queries: list[QueryResult] = field(default_factory=list)
    dagster_home: str | None = None  # where the run is recorded (None: --ephemeral)

    def as_dict(self) -> dict:
        return {
            "database": self.database,
            "schema": self.schema,
            "backend": self.backend,
            "landing": self.landing,
            "run_id": self.run_id,
            "dagster_home": self.dagster_home,
            "seconds": round(self.seconds, 2),
            "ingest": self.report.as_dict(),
            "queries": [q.as_dict() for q in self.queries],
        }

    def format(self) -> str:
        out = [
            f"database  {self.database} ({self.backend})",
            f"schema    {self.schema}: the demo's own, emptied at every run (`dev` and "
            "`ingest` use DB_SCHEMA, public by default)",
            f"explore   DB_SCHEMA={self.schema} observatory-storage db psql",
            f"landing   {self.landing}",
            f"ingest    Dagster run {self.run_id} of ingest_job, in process",
            "",
            self.report.format_table(),
        ]
        for query in self.queries:
            out += ["", query.title, format_rows(query.columns, query.rows)]
        if self.dagster_home:
            out += [
                "",
                f"Dagster   run and materializations recorded in {self.dagster_home}; see them with",
                "          `observatory-storage dev` at "
                f"http://127.0.0.1:3000/runs/{self.run_id} (assets: /assets)",
            ]
        out += ["", f"done in {self.seconds:.1f} s"]
        return "\n".join(out)


def run_demo(settings: Settings, *, landing: Path | None = None,
             keep_running: bool = False, log_level: str = "WARNING",
             ephemeral: bool = False) -> DemoResult:
    """Run the demo; raises DatabaseUnavailable or DemoFailed."""
    started = time.perf_counter()
    stop_embedded = False
    database = settings.redacted_database_url
    if not settings.database_url:
        was_running = embedded.running_uri(settings.embedded_pg_dir) is not None
        url = embedded.ensure_started(settings.embedded_pg_dir)
        stop_embedded = not was_running and not keep_running
        settings = settings.model_copy(update={"database_url": url})
        database = f"embedded PostgreSQL in {_shown(settings.embedded_pg_dir)}"
    try:
        return _demo(settings, database, landing, started, log_level, ephemeral)
    finally:
        if stop_embedded:
            embedded.stop(settings.embedded_pg_dir)


def _demo(settings: Settings, database: str, landing: Path | None, started: float,
          log_level: str, ephemeral: bool = False) -> DemoResult:
    folder = _prepare_landing(landing)
    settings = settings.model_copy(update={"landing_url": str(folder), "db_schema": DEMO_SCHEMA})
    with connect(settings, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(DEMO_SCHEMA)))
        migrate(conn, settings)
        backend = detect(conn)
    write_sample_files(settings)

    report, result = execute_ingest(settings, tags={"observatory/trigger": "demo"},
                                    log_level=log_level, ephemeral=ephemeral)
    if report is None or not result.success:
        message = first_failure(result)[0] if report is None else report.format_table()
        raise DemoFailed(f"the ingest run failed: {message}")

    with connect(settings, autocommit=True) as conn:
        queries = [run_query(conn, settings.db_schema, title, text) for title, text in QUERIES]
    version = backend.server_version.split()[0]
    shown_backend = (
        f"TimescaleDB {backend.timescaledb_version} on PostgreSQL {version}"
        if backend.is_timescaledb else f"PostgreSQL {version}, daily partitions"
    )
    return DemoResult(
        database=database,
        schema=DEMO_SCHEMA,
        backend=shown_backend,
        landing=_shown(folder),
        run_id=result.run_id,
        seconds=time.perf_counter() - started,
        report=report,
        queries=queries,
        dagster_home=None if ephemeral else _shown(recorded_home(ephemeral=ephemeral)),
    )


def _prepare_landing(landing: Path | None) -> Path:
    """The demo's own folder is emptied first; a folder the user named is only added to."""
    if landing is None:
        shutil.rmtree(DEFAULT_LANDING, ignore_errors=True)
        landing = DEFAULT_LANDING
    landing = Path(landing).expanduser().resolve()
    landing.mkdir(parents=True, exist_ok=True)
    return landing


def write_sample_files(settings: Settings) -> list[str]:
    """The sample files, with fresh keys each run, plus one file missing ``trace_id``."""
    landing = open_landing(settings)
    seed = int(time.time()) % 1_000_000
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
    keys = []
    for offset, (dataset, files, fmt) in enumerate(SAMPLE_FILES):
        keys += generate(landing, dataset, files, ROWS_PER_FILE, fmt, seed=seed * 10 + offset,
                         start=start, spread_hours=6)
    broken = build_table("traces", 50, seed=seed, start=start, spread_hours=6).drop_columns(
        ["trace_id"])
    key = f"traces/{start:%Y/%m/%d}/demo-{seed}-missing-trace-id.parquet"
    landing.put(key, encode(broken, "parquet"))
    return [*keys, key]


def run_query(conn, schema: str, title: str, text: str) -> QueryResult:
    query = sql.SQL(text.replace("{schema}", "{schema_id}")).format(
        schema_id=sql.Identifier(schema))
    with conn.cursor() as cur:
        cur.execute(query)
        columns = [d.name for d in cur.description]
        return QueryResult(title, columns, cur.fetchall())


def format_rows(columns: list[str], rows: list[tuple]) -> str:
    """A small aligned text table: text left, numbers right."""
    shown = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows)
               for i in range(len(columns))]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric, strict=True)).rstrip()

    body = [line(columns), line(["-" * w for w in widths])]
    body += [line(r) for r in shown] or ["(no rows)"]
    return "\n".join("  " + b for b in body)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    return value


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
