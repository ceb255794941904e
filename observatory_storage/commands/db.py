"""`observatory-storage db ...` and `migrate`: the database itself."""

from __future__ import annotations

import typer

from observatory_storage.commands.common import (
    EXIT_FAILED,
    clean_errors,
    print_json,
    settings_or_exit,
)

db_app = typer.Typer(help="The embedded PostgreSQL (used when DATABASE_URL is unset).")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (or report the configured DATABASE_URL)."""
    from observatory_storage.db import embedded

    settings = settings_or_exit()
    if settings.database_url:
        typer.echo(f"DATABASE_URL is set ({settings.redacted_database_url}); nothing to start")
        return
    uri = embedded.ensure_started(settings.embedded_pg_dir)
    typer.echo(f"embedded PostgreSQL running: {uri}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from observatory_storage.db import embedded

    settings = settings_or_exit()
    stopped = embedded.stop(settings.embedded_pg_dir)
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status(json_output: bool = typer.Option(False, "--json")) -> None:
    """Backend, versions and license of the configured database."""
    from observatory_storage.db.backend import detect
    from observatory_storage.db.connection import connect

    settings = settings_or_exit()
    with clean_errors(settings), connect(settings) as conn:
        info = detect(conn).as_dict() | {"database": settings.redacted_database_url}
    if json_output:
        print_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k}: {v}")


def migrate_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, change nothing."),
    show_status: bool = typer.Option(False, "--status", help="List applied and pending files."),
    json_output: bool = typer.Option(False, "--json"),
) -> None:
    """Apply pending SQL migrations (numbered files in sql/migrations/)."""
    from observatory_storage.db.connection import connect
    from observatory_storage.maintenance.migrate import MigrationError, migrate, status

    settings = settings_or_exit()
    with clean_errors(settings), connect(settings, autocommit=True) as conn:
        try:
            if show_status:
                states = [s.as_dict() for s in status(conn, settings)]
                if json_output:
                    print_json(states)
                else:
                    for s in states:
                        mark = "applied" if s["applied"] else "pending"
                        if not s["checksum_ok"]:
                            mark = "EDITED AFTER APPLY"
                        typer.echo(f"{s['file']:40} {mark}")
                return
            done = migrate(conn, settings, dry_run=dry_run)
        except MigrationError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
    verb = "would apply" if dry_run else "applied"
    if json_output:
        print_json({verb.replace(" ", "_"): [m.filename for m in done]})
    elif not done:
        typer.echo("database is up to date")
    else:
        for m in done:
            typer.echo(f"{verb} {m.filename}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("migrate")(migrate_command)
