"""CLI commands of the service area."""

import typer


def register(app: typer.Typer) -> None:
    pass
