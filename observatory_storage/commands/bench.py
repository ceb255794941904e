"""`observatory-storage bench`: measure our ingest path against the peers."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from observatory_storage.bench.cli import bench_command

    app.command("bench")(bench_command)
