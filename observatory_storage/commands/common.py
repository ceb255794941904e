"""Helpers shared by CLI commands: settings loading and clean error exits."""

from __future__ import annotations

import contextlib
import json
import sys

import typer

from observatory_storage.db.connection import DatabaseUnavailable
from observatory_storage.settings import Settings, SettingsError, load_settings, redact_text

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_ATTENTION = 4

# Every exit code of every command; README's table and `ingest --help` say the same
# (tests/test_cli.py checks both).
EXIT_CODES = {
    0: "success; for `ingest`, every file was loaded or quarantined (or nothing was pending)",
    1: "a run, job or file failed; for `ingest`, a file vanished while it was read or came "
       "back with other content",
    EXIT_CONFIG: "bad arguments or configuration (the message names the option or variable)",
    EXIT_DATABASE: "database unreachable",
    EXIT_ATTENTION: "`ingest --strict` only: every file was handled, but at least one was "
                    "quarantined",
}


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
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
