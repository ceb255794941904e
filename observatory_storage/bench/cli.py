"""The ``observatory-storage bench`` command: options, then one report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from observatory_storage.settings import PROJECT_ROOT

ALL_METHODS = "ours,otlp-proto,otlp-jsonl,raw,psql,rowcopy,executemany,pandas,dlt"
# --copy-suite (issue 13): our path at 1/2/4 workers against one and two psql streams
COPY_SUITE = "ours,ours1,ours2,ours4,raw,psql,psql2"
DEFAULT_DATA_DIR = PROJECT_ROOT / ".cache" / "bench"


def bench_command(
    rows: int = typer.Option(1_000_000, "--rows", min=1, help="Spans generated and loaded."),
    db_url: str | None = typer.Option(
        None,
        "--db-url",
        help="Server to create the benchmark databases on (a maintenance database URL). "
        "Default: TimescaleDB on 127.0.0.1:55432 when it answers, else the embedded PostgreSQL.",
    ),
    methods: str = typer.Option(ALL_METHODS, "--methods", help="Comma-separated methods."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the report here (.json: JSON, else Markdown)."),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where generated data is kept and reused between runs."),
    ] = DEFAULT_DATA_DIR,
    sample_rows: int = typer.Option(100_000, help="Rows for rowcopy and executemany."),
    pandas_rows: int = typer.Option(20_000, help="Rows for pandas to_sql."),
    dlt_rows: int = typer.Option(100_000, help="Rows for dlt."),
    copy_batch_size: int | None = typer.Option(None, help="COPY_BATCH_SIZE for our path."),
    copy_buffer_size: int | None = typer.Option(None, help="COPY_BUFFER_SIZE for our path."),
    parallel: str | None = typer.Option(
        None, "--parallel", help="Concurrent ingest processes to measure, e.g. 1,2,4."
    ),
    big_file_gb: float = typer.Option(
        0.0, "--big-file-gb", help="Peak RSS of ingesting one Parquet file of this size (0: off)."
    ),
    e2e: bool = typer.Option(False, "--e2e", help="Landing->committed latency through Dagster."),
    queries: bool = typer.Option(False, "--queries", help="Query latency at --query-rows spans."),
    query_rows: int = typer.Option(10_000_000, help="Spans loaded for --queries."),
    keep_databases: bool = typer.Option(False, help="Keep the benchmark databases."),
    indexes: bool = typer.Option(
        False, "--indexes", help="Raw COPY rows/s under different index sets (the trade-off)."
    ),
    copy_suite: bool = typer.Option(
        False, "--copy-suite",
        help="Parallel COPY: ours at 1/2/4 workers, one and two psql streams and raw pgpq (on "
        "this server and on the embedded plain PostgreSQL), plus whole `ingest` processes "
        "(one file; two processes into a new day).",
    ),
) -> None:
    """Benchmark our ingest path against the raw encoder, psql \\copy and the usual peers."""
    from observatory_storage.bench import data as bench_data
    from observatory_storage.bench import databases
    from observatory_storage.bench.methods import METHODS, Options
    from observatory_storage.bench.report import Report, machine, package_versions
    from observatory_storage.bench.runner import run_methods, say
    from observatory_storage.commands.common import EXIT_CONFIG, settings_or_exit

    if copy_suite and methods == ALL_METHODS:
        methods = COPY_SUITE
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        typer.echo(f"error: unknown method(s) {unknown}; choose from {ALL_METHODS}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    levels = _levels(parallel)
    settings = settings_or_exit()
    server = db_url or databases.default_server_url(settings)
    if not databases.reachable(server):
        typer.echo(f"error: cannot connect to {databases.shown(server)}", err=True)
        raise typer.Exit(3)

    report = Report(
        backend=databases.backend_kind(server),
        server=databases.shown(server),
        rows=rows,
        machine=machine() | {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
        versions=package_versions() | databases.server_versions(server),
    )
    say(f"bench: {rows:,} spans on {report.backend} ({report.server}); preparing data ...")
    data = bench_data.prepare(data_dir / f"spans-{rows}", rows)
    options = Options(
        sample_rows=sample_rows,
        pandas_rows=pandas_rows,
        dlt_rows=dlt_rows,
        copy_batch_size=copy_batch_size,
        copy_buffer_size=copy_buffer_size,
    )
    report.methods = run_methods(chosen, data, server, options, keep=keep_databases)
    report.score()

    if copy_suite:
        _copy_suite(report, data, server, options, settings, keep_databases)
    if levels:
        from observatory_storage.bench.parallel import run_parallel

        report.extras["parallelism"] = run_parallel(data, server, levels, options)
    if big_file_gb > 0:
        from observatory_storage.bench.memory import run_memory

        report.extras["memory"] = run_memory(data_dir, server, big_file_gb, options)
    if indexes:
        from observatory_storage.bench.indexes import run_indexes

        report.extras["indexes"] = run_indexes(data, server, options)
    if queries:
        from observatory_storage.bench.queries import run_queries

        report.extras["queries"] = run_queries(data_dir, server, query_rows, settings)
    if e2e:
        from observatory_storage.bench.e2e import run_e2e

        report.extras["e2e"] = run_e2e(data_dir, server, data)

    payload = report.as_dict()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".json":
            out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            out.write_text(_markdown(report) + "\n")
    if json_output:
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        typer.echo(_markdown(report))


def _copy_suite(report, data, server, options, settings, keep: bool) -> None:
    """Whole ingest processes on this server; the same methods on plain PostgreSQL."""
    import os

    from observatory_storage.bench import databases
    from observatory_storage.bench.processes import run_processes
    from observatory_storage.bench.report import Report
    from observatory_storage.bench.runner import run_methods, say

    psql = report.method("psql")
    say("bench: whole ingest processes ...")
    report.extras["processes"] = run_processes(data, server, psql and psql.rows_per_second)
    if report.backend != "timescaledb":
        return
    from observatory_storage.db import embedded

    plain = embedded.ensure_started(settings.embedded_pg_dir)
    say(f"bench: the same methods on plain PostgreSQL ({databases.shown(plain)}) ...")
    other = Report(backend="postgres", server=databases.shown(plain), rows=report.rows)
    other.methods = run_methods([m.method for m in report.methods], data, plain, options,
                                keep=keep)
    other.score()
    psql = other.method("psql")
    report.extras["plain_postgres"] = {
        "methods": [m.as_dict() for m in other.methods],
        "table": other.table(),
        "processes": run_processes(data, plain, psql and psql.rows_per_second),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def _levels(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter("--parallel takes numbers like 1,2,4") from None
    if any(level < 1 for level in levels):
        raise typer.BadParameter("--parallel levels must be >= 1")
    return levels


def _markdown(report) -> str:
    from observatory_storage.bench.extras_text import extras_markdown

    head = (
        f"{report.rows:,} spans, backend {report.backend}, "
        f"{report.machine.get('nproc')} CPUs, load {report.machine.get('load_average_at_start')}"
    )
    table = [report.table()] if report.methods else []
    return "\n\n".join([head, *table, *extras_markdown(report.extras)]).rstrip()
