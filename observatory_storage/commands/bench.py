"""`observatory-storage bench`: measure our ingest path against the peers (options here,
the runs in ``bench/suite.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from observatory_storage.commands.common import EXIT_CONFIG, EXIT_DATABASE, settings_or_exit
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
    scale: bool = typer.Option(
        False, "--scale",
        help="Tick, /health, /metrics and empty-ingest cost as the landing and the ledger grow "
        "(alone: no load methods unless --methods is given), and small files per second.",
    ),
    scale_files: str = typer.Option("10000,100000,1000000", help="--scale: local landing sizes."),
    scale_s3_files: str = typer.Option("10000,100000", help="--scale: S3 (moto) landing sizes."),
    scale_ledger: str = typer.Option("1000000,10000000", help="--scale: ledger row counts."),
    indexes: bool = typer.Option(
        False, "--indexes", help="Raw COPY rows/s under different index sets (the trade-off)."
    ),
    otlp_decode: bool = typer.Option(
        False, "--otlp-decode",
        help="OTLP decode + map alone (no database): the Python and compiled decoders side by side.",
    ),
    copy_suite: bool = typer.Option(
        False, "--copy-suite",
        help="Parallel COPY: ours at 1/2/4 workers, one and two psql streams and raw pgpq (on "
        "this server and on the embedded plain PostgreSQL), plus whole `ingest` processes "
        "(one file; two processes into a new day).",
    ),
) -> None:
    """Benchmark our ingest path against the raw encoder, psql \\copy and the usual peers."""
    # lazy: the benchmark's modules (pyarrow, pandas, pgpq, the SDK) cost ~1 s of start-up
    from observatory_storage.bench import suite

    if copy_suite and methods == ALL_METHODS:
        methods = COPY_SUITE
    if scale and methods == ALL_METHODS:
        methods = ""  # --scale alone measures scaling only
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(suite.METHODS))
    if unknown:
        typer.echo(f"error: unknown method(s) {unknown}; choose from {ALL_METHODS}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    levels = _levels(parallel)
    settings = settings_or_exit()
    server = db_url or suite.databases.default_server_url(settings)
    if not suite.databases.reachable(server):
        typer.echo(f"error: cannot connect to {suite.databases.shown(server)}", err=True)
        raise typer.Exit(EXIT_DATABASE)
    options = suite.Options(
        sample_rows=sample_rows,
        pandas_rows=pandas_rows,
        dlt_rows=dlt_rows,
        copy_batch_size=copy_batch_size,
        copy_buffer_size=copy_buffer_size,
    )
    report = suite.run(
        settings, server, rows=rows, methods=chosen, data_dir=data_dir, options=options,
        copy_suite=copy_suite, levels=levels, big_file_gb=big_file_gb, indexes=indexes,
        queries=queries, query_rows=query_rows, e2e=e2e, keep=keep_databases,
        scale={"sizes": _numbers(scale_files), "s3_sizes": _numbers(scale_s3_files),
               "ledger_rows": _numbers(scale_ledger)} if scale else None,
        otlp_decode=otlp_decode,
    )
    payload = report.as_dict()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".json":
            out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            out.write_text(suite.markdown(report) + "\n")
    if json_output:
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        typer.echo(suite.markdown(report))


def _numbers(text: str) -> list[int]:
    try:
        return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected numbers like 10000,100000") from None


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


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
