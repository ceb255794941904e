"""`observatory-storage maintenance ...` runs the jobs and prints their reports."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from observatory_storage.cli import app
from tests.maintenance.data import db_now, load_spread


def test_retention_dry_run_then_all(settings, db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LANDING_URL", settings.landing_url)
    load_spread(db, db_now(db), days=40, every=timedelta(hours=12))
    runner = CliRunner()
    assert runner.invoke(app, ["maintenance", "partitions"]).exit_code == 0  # DEFAULT -> days

    dry = runner.invoke(app, ["maintenance", "retention", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True and plan["totals"]["traces_slices_dropped"] > 0
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == 80

    everything = runner.invoke(app, ["maintenance", "all", "--json"])
    assert everything.exit_code == 0, everything.output
    jobs = [r["job"] for r in json.loads(everything.stdout)]
    assert jobs == ["partitions", "rollups", "retention", "compression", "vacuum_analyze"]
    assert db.execute("SELECT sum(spans) FROM traces_hourly").fetchone()[0] == 80
