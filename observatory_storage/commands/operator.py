"""CLI commands of the operator area."""

import typer


def register(app: typer.Typer) -> None:
    pass
