"""`observatory-storage maintenance ...`: the maintenance jobs, run once from a shell.

Each command executes the same Dagster job the schedules run, in this process, and
records the run where the UI reads it (DAGSTER_HOME, else the project-local home `dev`
uses; ``--ephemeral`` records nothing): useful on deploy, in cron without a Dagster
daemon, and to see what retention would drop (``retention --dry-run``).
"""

from __future__ import annotations

import typer

from observatory_storage.commands.common import (
    EPHEMERAL,
    EXIT_FAILED,
    VERBOSE_HELP,
    clean_errors,
    configure_logging,
    print_json,
    settings_or_exit,
)
from observatory_storage.maintenance.common import JobBusy
from observatory_storage.settings import redact_text

maintenance_app = typer.Typer(
    help="Database upkeep: vacuum, retention, partitions, compression, rollups.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print the report as JSON.")
VERBOSE = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)


def _run(jobs: list[tuple[str, dict | None]], json_output: bool, ephemeral: bool,
         verbose: bool) -> None:
    """Run jobs (name, op config) in order; print each report; exit non-zero on failure."""
    # lazy: Dagster costs ~1.5 s of start-up, paid only when a job runs
    from observatory_storage.defs.in_process import RunFailed, run_maintenance

    settings = settings_or_exit()
    configure_logging(settings, verbose=verbose)
    reports = []
    with clean_errors(settings):
        try:
            for name, config in jobs:
                report = run_maintenance(
                    settings, name, config, ephemeral=ephemeral,
                    log_level=settings.log_level if verbose else "CRITICAL")
                reports.append(report)
                if not json_output:
                    typer.echo(report.text())
        except JobBusy as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except RunFailed as exc:  # one redacted line, not a traceback
            typer.echo(f"error: {redact_text(str(exc).strip(), settings)}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            if json_output and reports:
                data = [r.as_dict() for r in reports]
                print_json(data[0] if len(data) == 1 else data)


@maintenance_app.command("vacuum")
def vacuum(
    all_tables: bool = typer.Option(
        False, "--all-tables", help="Every chunk/partition, not only those changed."
    ),
    json_output: bool = JSON,
    verbose: bool = VERBOSE,
    ephemeral: bool = EPHEMERAL,
) -> None:
    """VACUUM (ANALYZE) what changed since the last run."""
    _run([("vacuum_analyze", {"all_tables": all_tables})], json_output, ephemeral, verbose)


@maintenance_app.command("retention")
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
    json_output: bool = JSON,
    verbose: bool = VERBOSE,
    ephemeral: bool = EPHEMERAL,
) -> None:
    """Drop raw chunks/partitions, rollups, ledger rows and landing files past retention."""
    _run([("retention", {"dry_run": dry_run})], json_output, ephemeral, verbose)


@maintenance_app.command("dagster-runs")
def dagster_runs(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    json_output: bool = JSON,
    verbose: bool = VERBOSE,
    ephemeral: bool = EPHEMERAL,
) -> None:
    """Delete Dagster runs and their events past DAGSTER_RUN_RETENTION_DAYS (never a run in
    progress, nor one holding an asset's latest materialization or check result)."""
    _run([("dagster_retention", {"dry_run": dry_run})], json_output, ephemeral, verbose)


@maintenance_app.command("partitions")
def partitions(json_output: bool = JSON, verbose: bool = VERBOSE,
               ephemeral: bool = EPHEMERAL) -> None:
    """Create daily partitions ahead and adopt rows from DEFAULT (plain PostgreSQL)."""
    _run([("partitions", None)], json_output, ephemeral, verbose)


@maintenance_app.command("compression")
def compression(
    dry_run: bool = typer.Option(False, "--dry-run", help="List chunks; compress nothing."),
    json_output: bool = JSON,
    verbose: bool = VERBOSE,
    ephemeral: bool = EPHEMERAL,
) -> None:
    """Compress old chunks (licensed TimescaleDB); elsewhere report "not available"."""
    _run([("compression", {"dry_run": dry_run})], json_output, ephemeral, verbose)


@maintenance_app.command("rollups")
def rollups(
    backfill: bool = typer.Option(False, "--backfill", help="Recompute every hour of raw data."),
    reconcile: bool = typer.Option(
        False, "--reconcile", help="Also recompute hours whose counts disagree."
    ),
    json_output: bool = JSON,
    verbose: bool = VERBOSE,
    ephemeral: bool = EPHEMERAL,
) -> None:
    """Recompute hourly rollups of the hours touched since the last run."""
    _run([("rollups", {"backfill": backfill, "reconcile": reconcile})], json_output, ephemeral, verbose)


@maintenance_app.command("checks")
def checks(json_output: bool = JSON, verbose: bool = VERBOSE,
           ephemeral: bool = EPHEMERAL) -> None:
    """Asset checks now: schema drift of every table, the newest rollup hour against raw.

    Exit 1 when a check failed (as the asset_checks schedule would show it in the UI)."""
    # lazy: Dagster costs ~1.5 s of start-up, paid only when a job runs
    from observatory_storage.defs.in_process import RunFailed, run_checks

    settings = settings_or_exit()
    configure_logging(settings, verbose=verbose)
    with clean_errors(settings):
        try:
            outcomes = run_checks(settings, ephemeral=ephemeral,
                                  log_level=settings.log_level if verbose else "CRITICAL")
        except RunFailed as exc:
            typer.echo(f"error: {redact_text(str(exc).strip(), settings)}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
    if json_output:
        print_json([o.as_dict() for o in outcomes])
    else:
        for o in outcomes:
            verdict = "passed" if o.passed else f"FAILED ({o.severity})"
            typer.echo(f"{o.asset:16} {o.check:24} {verdict}"
                       + (f": {o.description}" if o.description and not o.passed else ""))
    if not all(o.passed for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


@maintenance_app.command("all")
def run_all(json_output: bool = JSON, verbose: bool = VERBOSE, ephemeral: bool = EPHEMERAL) -> None:
    """Every job in schedule order: partitions, rollups, retention, Dagster runs,
    compression, vacuum."""
    names = ("partitions", "rollups", "retention", "dagster_retention", "compression",
             "vacuum_analyze")
    _run([(name, None) for name in names], json_output, ephemeral, verbose)


def register(app: typer.Typer) -> None:
    app.add_typer(maintenance_app, name="maintenance")
