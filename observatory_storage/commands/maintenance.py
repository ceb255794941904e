"""`observatory-storage maintenance ...`: the maintenance jobs, run once from a shell.

The same functions the Dagster jobs run; useful on deploy, in cron without Dagster, and to
see what retention would drop (``retention --dry-run``).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import typer

from observatory_storage.commands.common import (
    EXIT_FAILED,
    clean_errors,
    print_json,
    settings_or_exit,
)

maintenance_app = typer.Typer(
    help="Database upkeep: vacuum, retention, partitions, compression, rollups.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print the report as JSON.")


def _run(work: Callable, json_output: bool) -> None:
    """Run one job function with settings; print its report; exit non-zero on failure."""
    from observatory_storage.maintenance.common import JobBusy
    from observatory_storage.settings import redact_text

    settings = settings_or_exit()
    reports = []
    with clean_errors(settings):
        try:
            for report in work(settings):
                reports.append(report)
                if not json_output:
                    typer.echo(report.text())
        except JobBusy as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except psycopg.Error as exc:  # one redacted line, not a traceback
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
) -> None:
    """VACUUM (ANALYZE) what changed since the last run."""
    from observatory_storage.maintenance.vacuum import run_vacuum

    _run(lambda s: [run_vacuum(s, all_tables=all_tables)], json_output)


@maintenance_app.command("retention")
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
    json_output: bool = JSON,
) -> None:
    """Drop raw chunks/partitions, rollups, ledger rows and landing files past retention."""
    from observatory_storage.maintenance.retention import run_retention

    _run(lambda s: [run_retention(s, dry_run=dry_run)], json_output)


@maintenance_app.command("partitions")
def partitions(json_output: bool = JSON) -> None:
    """Create daily partitions ahead and adopt rows from DEFAULT (plain PostgreSQL)."""
    from observatory_storage.maintenance.partitions import run_partitions

    _run(lambda s: [run_partitions(s)], json_output)


@maintenance_app.command("compression")
def compression(
    dry_run: bool = typer.Option(False, "--dry-run", help="List chunks; compress nothing."),
    json_output: bool = JSON,
) -> None:
    """Compress old chunks (licensed TimescaleDB); elsewhere report "not available"."""
    from observatory_storage.maintenance.compression import run_compression

    _run(lambda s: [run_compression(s, dry_run=dry_run)], json_output)


@maintenance_app.command("rollups")
def rollups(
    backfill: bool = typer.Option(False, "--backfill", help="Recompute every hour of raw data."),
    reconcile: bool = typer.Option(
        False, "--reconcile", help="Also recompute hours whose counts disagree."
    ),
    json_output: bool = JSON,
) -> None:
    """Recompute hourly rollups of the hours touched since the last run."""
    from observatory_storage.maintenance.rollups import run_rollups

    _run(lambda s: [run_rollups(s, backfill=backfill, reconcile=reconcile)], json_output)


@maintenance_app.command("all")
def run_all(json_output: bool = JSON) -> None:
    """Every job in schedule order: partitions, rollups, retention, compression, vacuum."""
    from observatory_storage.maintenance.compression import run_compression
    from observatory_storage.maintenance.partitions import run_partitions
    from observatory_storage.maintenance.retention import run_retention
    from observatory_storage.maintenance.rollups import run_rollups
    from observatory_storage.maintenance.vacuum import run_vacuum

    def every(settings):
        for job in (run_partitions, run_rollups, run_retention, run_compression, run_vacuum):
            yield job(settings)

    _run(every, json_output)


def register(app: typer.Typer) -> None:
    app.add_typer(maintenance_app, name="maintenance")
