"""CLI commands of the ingest area."""

import typer


def register(app: typer.Typer) -> None:
    pass
