"""The ``observatory-storage`` command line (typer). Each area registers its own commands."""

from __future__ import annotations

import typer

from observatory_storage import __version__
from observatory_storage.commands import register_all
from observatory_storage.commands.common import stop_embedded_when_done

app = typer.Typer(
    name="observatory-storage",
    help="Storage and maintenance plane of an LLM observability stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    stop_embedded_when_done(ctx)


@app.command()
def version() -> None:
    """Print the version (and which OTLP decoder ingest uses)."""
    from observatory_storage.ingest.otlp import native  # lazy, light: no pyarrow

    typer.echo(__version__)
    typer.echo(f"otlp decoder: {native.describe()}")


register_all(app)


def main() -> None:
    app()
