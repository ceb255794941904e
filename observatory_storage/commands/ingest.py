"""`observatory-storage ingest`, `replay` and `generate`: the landing-to-table path."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from observatory_storage.commands.common import (
    EPHEMERAL,
    EXIT_ATTENTION,
    EXIT_CONFIG,
    EXIT_FAILED,
    VERBOSE_HELP,
    clean_errors,
    configure_logging,
    print_json,
    settings_or_exit,
)
from observatory_storage.datasets import DATASETS
from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.ingest import discovery
from observatory_storage.ingest.replay import replay
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.landing import LandingMissing
from observatory_storage.settings import Settings, one_of, redact_text


def _check_dataset(dataset: str | None) -> None:
    if dataset is not None and dataset not in DATASETS:
        typer.echo(f"error: --dataset {dataset}: unknown dataset; expected {one_of(DATASETS)}",
                   err=True)
        raise typer.Exit(EXIT_CONFIG)


def ingest_pass(settings: Settings, datasets: list[str] | None = None, *,
                log_level: str = "CRITICAL", ephemeral: bool = False,
                sweep: bool = False) -> IngestReport:
    """The body of ``ingest``: with nothing pending, one discovery pass (no Dagster import,
    no run); else ``ingest_job`` in this process (``defs/in_process.py``). ``sweep``: the
    pass lists every key of the landing (a backfill into old folders), not just what is new.

    Raises DatabaseUnavailable at once when the database cannot be reached."""
    with connect(settings) as conn:
        pending = discovery.pending_roots(settings, conn, datasets, sweep=sweep)
    if pending is not None and not pending:
        return discovery.idle_report(settings)
    # lazy: Dagster costs ~1.5 s of start-up, paid only when a run starts
    from observatory_storage.defs.in_process import run_ingest

    return run_ingest(settings, datasets, pending=pending, log_level=log_level,
                      ephemeral=ephemeral)


def ingest_command(
    landing: str | None = typer.Option(None, "--landing", help="Landing URL (default LANDING_URL)."),
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    strict: bool = typer.Option(
        False, "--strict",
        help="Exit 4 when a file was quarantined or lies in no dataset folder (scripts, CI).",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
    ephemeral: bool = EPHEMERAL,
    sweep: bool = typer.Option(
        False, "--sweep",
        help="List every key of the landing now, not only the recent folders and the rolling "
        "sweep's next keys (for files written into old folders: a backfill).",
    ),
) -> None:
    """Load every pending landing file once, in this process, and print a summary.

    Exit codes: 0 every file was loaded or quarantined (or nothing was pending); 1 a file
    vanished while it was read or came back with other content, or the run failed; 2 bad
    arguments or configuration; 3 database unreachable; 4 with --strict only: at least one
    file was quarantined or lies in no dataset folder.

    The run is recorded in DAGSTER_HOME (else the project-local home `dev` uses), so it
    shows in the Dagster UI's Runs and the assets' materializations; --ephemeral does not.

    Files in no dataset folder (e.g. landing/foo/x.parquet) are never loaded: the summary
    names them.
    """
    _check_dataset(dataset)
    settings = settings_or_exit(landing_url=landing)
    configure_logging(settings, verbose=verbose)
    with clean_errors(settings):
        try:
            report = ingest_pass(settings, [dataset] if dataset else None,
                                 log_level=settings.log_level if verbose else "CRITICAL",
                                 ephemeral=ephemeral, sweep=sweep)
        except (DatabaseUnavailable, LandingMissing):
            raise  # exit 3 / exit 2, by clean_errors
        except RuntimeError as exc:  # landing unreadable, or the run failed
            typer.echo(f"error: {redact_text(str(exc), settings)}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
    if json_output:
        print_json(report.as_dict())
    else:
        typer.echo(report.format_table())
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
    if strict and (report.count("quarantined") or report.misplaced):
        raise typer.Exit(EXIT_ATTENTION)


def replay_command(
    keys: Annotated[
        list[str] | None, typer.Argument(help="Landing keys (or _quarantine/ keys) to re-queue.")
    ] = None,
    all_quarantined: bool = typer.Option(False, "--all", help="Every quarantined file."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Re-queue quarantined files (after fixing them): the next ingest loads them."""
    if not keys and not all_quarantined:
        typer.echo("error: give KEY... or --all", err=True)
        raise typer.Exit(EXIT_CONFIG)
    settings = settings_or_exit()
    with clean_errors(settings):
        results = replay(settings, keys or [], all_quarantined=all_quarantined)
    if json_output:
        print_json([r.as_dict() for r in results])
    else:
        if not results:
            typer.echo("nothing quarantined")
        for r in results:
            typer.echo(f"{r.action:9} {r.key}: {r.detail}")
    if any(r.action != "requeued" for r in results):
        raise typer.Exit(EXIT_FAILED)


def generate_command(
    landing: str | None = typer.Option(None, "--landing", help="Landing URL (default LANDING_URL)."),
    dataset: str = typer.Option("traces", "--dataset", help="traces, metrics or logs."),
    files: int = typer.Option(10, "--files", min=1, help="Files to write."),
    rows: int = typer.Option(1000, "--rows", min=1, help="Rows per file."),
    fmt: str = typer.Option("parquet", "--format", help="parquet, arrow (IPC file), arrows (IPC stream), or OTLP made by the OpenTelemetry SDK: otlp-proto (length-prefixed), otlp-json (one document), otlp-jsonl (JSON Lines), written under otlp/."),
    compression: str = typer.Option("zstd", "--compression", help="zstd, snappy, lz4, gzip, none (OTLP: zstd, gzip, none)."),
    seed: int | None = typer.Option(None, "--seed", help="Same seed and --start: same files."),
    start: Annotated[
        dt.datetime | None,
        typer.Option("--start", help="First timestamp (UTC); default now - spread."),
    ] = None,
    spread_hours: float = typer.Option(24.0, "--spread-hours", min=0.0, help="Hours the rows span."),
) -> None:
    """Write realistic LLM traces, metrics or logs into the landing bucket."""
    # lazy: pyarrow, the OpenTelemetry SDK and rich's progress bar cost ~0.6 s of every
    # command's start-up (rich.progress alone ~60 ms), paid only here
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from observatory_storage.generate import FORMATS, generate
    from observatory_storage.generate_otlp import FILE_COMPRESSIONS
    from observatory_storage.generate_otlp import FORMATS as OTLP_FORMATS

    _check_dataset(dataset)
    if fmt not in FORMATS and fmt not in OTLP_FORMATS:
        typer.echo(f"error: --format {fmt}: unknown format; expected "
                   f"{one_of([*FORMATS, *OTLP_FORMATS])}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    if fmt in OTLP_FORMATS and compression not in FILE_COMPRESSIONS:
        typer.echo(f"error: --compression {compression}: {fmt} takes "
                   f"{one_of(FILE_COMPRESSIONS)}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    settings = settings_or_exit(landing_url=landing)
    total = files * rows
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=total < 100_000) as progress:
        task = progress.add_task(f"{dataset} rows", total=total)
        keys = generate(settings, dataset, files, rows, fmt, seed, start, spread_hours,
                        compression=compression,
                        progress=lambda n: progress.advance(task, n))
    typer.echo(f"wrote {len(keys)} {fmt} files ({total:,} {dataset} rows) to {settings.landing_url}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
    app.command("replay")(replay_command)
    app.command("generate")(generate_command)
