"""`observatory-storage db ...` and `migrate`: the database itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import typer

from observatory_storage.commands.common import (
    EMBEDDED_RULE,
    EXIT_FAILED,
    clean_errors,
    keep_embedded_running,
    print_json,
    settings_or_exit,
)
from observatory_storage.db import embedded
from observatory_storage.db.backend import detect
from observatory_storage.db.connection import connect
from observatory_storage.maintenance.migrate import MigrationError, migrate, status
from observatory_storage.settings import Settings, redact_url

db_app = typer.Typer(
    help="The database: the embedded PostgreSQL (used when DATABASE_URL is unset) or "
    "DATABASE_URL. " + EMBEDDED_RULE
)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL; it keeps running until `db stop`."""
    keep_embedded_running()
    settings = settings_or_exit()
    if settings.database_url:
        typer.echo(f"DATABASE_URL is set ({settings.redacted_database_url}); nothing to start")
        return
    uri = embedded.ensure_started(settings.embedded_pg_dir)
    typer.echo("embedded PostgreSQL running until `observatory-storage db stop`: "
               f"{embedded.psql_url(uri)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    settings = settings_or_exit()
    stopped = embedded.stop(settings.embedded_pg_dir)
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


def client_url(settings: Settings, url: str) -> str:
    """``url`` with DB_SSLMODE and, for a DB_SCHEMA other than public, its search_path."""
    extra = {}
    if settings.db_sslmode:
        extra["sslmode"] = settings.db_sslmode
    if settings.db_schema != "public":
        extra["options"] = f"-csearch_path={settings.db_schema}"
    if not extra:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | extra
    encoded = urlencode(query, quote_via=lambda text, *_: quote(text, safe="/"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, encoded, parts.fragment))


def _database_url(settings: Settings) -> tuple[str, bool]:
    """(URL psql accepts, True when this call started the embedded server)."""
    if settings.database_url:
        return client_url(settings, settings.database_url), False
    was_running = embedded.running_uri(settings.embedded_pg_dir) is not None
    uri = embedded.ensure_started(settings.embedded_pg_dir)
    return client_url(settings, embedded.psql_url(uri)), not was_running


@db_app.command("url")
def db_url(
    show_password: bool = typer.Option(
        False, "--show-password", help="Print DATABASE_URL's password instead of ***."
    ),
) -> None:
    """Print a URL psql accepts: psql "$(observatory-storage db url)".

    The embedded server's URL needs no password (unix socket in its data folder); it is
    started if needed and keeps running until `observatory-storage db stop`. A configured
    DATABASE_URL is printed with its password as *** unless --show-password.
    """
    keep_embedded_running()
    settings = settings_or_exit()
    with clean_errors(settings):
        url, started = _database_url(settings)
    if started:
        typer.echo("embedded PostgreSQL started; it keeps running until "
                   "`observatory-storage db stop`", err=True)
    typer.echo(url if show_password else redact_url(url))


@db_app.command(
    "psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the database; other arguments go to psql (db psql -c 'SELECT 1').

    The embedded server is reached with the wheel's own psql; a configured DATABASE_URL
    with the psql on PATH (else the wheel's), its password passed in PGPASSWORD, not argv.
    """
    settings = settings_or_exit()
    with clean_errors(settings):
        url, _ = _database_url(settings)
    env = dict(os.environ)
    parts = urlsplit(url)
    if parts.password is not None:  # keep it out of argv (visible to ps)
        env["PGPASSWORD"] = parts.password
        netloc = parts.netloc.rsplit("@", 1)
        url = urlunsplit(parts._replace(netloc=netloc[0].split(":", 1)[0] + "@" + netloc[1]))
    program = shutil.which("psql") if settings.database_url else None
    program = program or str(embedded.psql_program())
    code = subprocess.call([program, url, *ctx.args], env=env)
    raise typer.Exit(code)


@db_app.command("status")
def db_status(json_output: bool = typer.Option(False, "--json")) -> None:
    """Backend, versions and license of the configured database (never starts the embedded
    server: one that is not running is reported as such)."""
    from observatory_storage.ingest.otlp.native import describe  # lazy: light, no pyarrow

    settings = settings_or_exit()
    running = settings.database_url or embedded.running_uri(settings.embedded_pg_dir)
    if not running:
        info = {"database": "embedded PostgreSQL", "running": False,
                "data_dir": str(settings.embedded_pg_dir),
                "hint": "not running: `observatory-storage db start` starts it (or any command "
                        "that needs it, for its own duration)",
                "otlp_decoder": describe()}
    else:
        with clean_errors(settings), connect(settings) as conn:
            info = detect(conn).as_dict() | {"database": settings.redacted_database_url,
                                             "otlp_decoder": describe()}
            if not settings.database_url:
                info |= {"running": True, "url": _database_url(settings)[0]}
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
