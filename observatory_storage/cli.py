"""The ``observatory-storage`` command line (typer). Each area registers its own commands."""

from __future__ import annotations

import typer

from observatory_storage import __version__

app = typer.Typer(
    name="observatory-storage",
    help="Storage and maintenance plane of an LLM observability stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    from observatory_storage.commands.common import stop_embedded_when_done

    stop_embedded_when_done(ctx)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _register_all() -> None:
    from observatory_storage.commands import register_all

    register_all(app)


_register_all()


def main() -> None:
    app()
