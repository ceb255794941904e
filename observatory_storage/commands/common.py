"""Helpers shared by CLI commands: settings loading and clean error exits."""

from __future__ import annotations

import contextlib
import json
import sys

import typer

from observatory_storage.db.connection import DatabaseUnavailable
from observatory_storage.settings import Settings, SettingsError, load_settings, redact_text

EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_FAILED = 1

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
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
