"""`observatory-storage serve`: the health and metrics service."""

from __future__ import annotations

import typer

from observatory_storage.commands.common import clean_errors, configure_logging, settings_or_exit


def serve_command(
    host: str = typer.Option(None, "--host", help="Bind address (default HEALTH_HOST)."),
    health_port: int = typer.Option(None, "--health-port", help="Port of /health (HEALTH_PORT)."),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Port of /metrics (METRICS_PORT)."
    ),
) -> None:
    """Serve /health (JSON) and Prometheus /metrics until SIGTERM or Ctrl-C."""
    # lazy: prometheus_client and the connection pool cost ~0.3 s of every command's start-up
    from observatory_storage.service.server import serve

    settings = settings_or_exit(
        health_host=host, health_port=health_port, metrics_port=metrics_port
    )
    configure_logging(settings, verbose=True,
                      fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with clean_errors(settings):
        try:
            code = serve(settings)
        except OSError as exc:  # a port in use, an address not on this host
            typer.echo(f"error: cannot listen on {settings.health_host}: {exc}", err=True)
            raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
