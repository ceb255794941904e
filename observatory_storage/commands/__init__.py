"""CLI command groups, one module per area; ``register_all`` adds them to the root app."""

from __future__ import annotations

import typer

from observatory_storage.commands import bench, db, ingest, maintenance, operator, service


def register_all(app: typer.Typer) -> None:
    for module in (db, ingest, maintenance, service, operator, bench):
        module.register(app)
