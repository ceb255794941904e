"""CLI commands of the maintenance area."""

import typer


def register(app: typer.Typer) -> None:
    pass
