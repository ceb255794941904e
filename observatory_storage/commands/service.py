"""`observatory-storage serve`: the health and metrics service."""

from __future__ import annotations

import logging
import sys

import typer

from observatory_storage.commands.common import clean_errors, settings_or_exit
from observatory_storage.settings import Settings, redact_text


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


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def serve_command(
    host: str = typer.Option(None, "--host", help="Bind address (default HEALTH_HOST)."),
    health_port: int = typer.Option(None, "--health-port", help="Port of /health (HEALTH_PORT)."),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Port of /metrics (METRICS_PORT)."
    ),
) -> None:
    """Serve /health (JSON) and Prometheus /metrics until SIGTERM or Ctrl-C."""
    from observatory_storage.service.server import serve

    settings = settings_or_exit(
        health_host=host, health_port=health_port, metrics_port=metrics_port
    )
    _configure_logging(settings)
    with clean_errors(settings):
        try:
            code = serve(settings)
        except OSError as exc:  # a port in use, an address not on this host
            typer.echo(f"error: cannot listen on {settings.health_host}: {exc}", err=True)
            raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
