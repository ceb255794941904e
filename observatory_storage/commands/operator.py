"""`observatory-storage demo` and `dev`: how people first meet the product."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from observatory_storage.commands.common import (
    EPHEMERAL,
    EXIT_CONFIG,
    EXIT_FAILED,
    VERBOSE_HELP,
    clean_errors,
    configure_logging,
    keep_embedded_running,
    print_json,
    settings_or_exit,
)


def demo_command(
    landing: Annotated[
        Path | None,
        typer.Option("--landing", help="Folder the sample files are written to [.cache/demo-landing]."),
    ] = None,
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave the embedded PostgreSQL running afterwards."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
    ephemeral: bool = EPHEMERAL,
) -> None:
    """Main job: sample files -> Dagster ingest_job -> database, then example queries.

    With no DATABASE_URL an embedded PostgreSQL is started (and stopped at the end).
    One sample file is broken on purpose, to show quarantine.
    """
    # lazy: Dagster costs ~1.5 s of start-up, paid only by the demo
    from observatory_storage.demo import DemoFailed, run_demo

    keep_embedded_running()  # the demo stops what it started itself, unless --keep-running
    settings = settings_or_exit()
    configure_logging(settings, verbose=verbose)
    with clean_errors(settings):
        try:
            result = run_demo(settings, landing=landing, keep_running=keep_running,
                              log_level=settings.log_level if verbose else "CRITICAL",
                              ephemeral=ephemeral)
        except DemoFailed as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
    if json_output:
        print_json(result.as_dict())
    else:
        typer.echo(result.format())


def dev_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address of the Dagster UI."),
    port: int = typer.Option(3000, "--port", "-p", help="Port of the Dagster UI."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Do not start the health service."),
    keep_db: bool = typer.Option(
        False, "--keep-db", help="Leave the embedded PostgreSQL running on exit."
    ),
) -> None:
    """Run the stack: database, migrations, Dagster UI + daemon, health service.

    Ctrl-C or SIGTERM stops every process it started.
    """
    # lazy: psutil and dotenv cost ~70 ms of every command's start-up, paid only by dev
    from observatory_storage.dev import DevOptions, DevRefused, run_dev

    keep_embedded_running()  # dev stops what it started itself, unless --keep-db
    settings = settings_or_exit()
    with clean_errors(settings):
        try:
            code = run_dev(settings, DevOptions(host=host, port=port, serve=not no_serve,
                                                keep_db=keep_db))
        except DevRefused as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_CONFIG) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
    app.command("dev")(dev_command)
