"""`observatory-storage maintenance ...` runs the jobs and prints their reports."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
from typer.testing import CliRunner

from observatory_storage.cli import app
from tests.maintenance.data import db_now, load_spread


def test_retention_dry_run_then_all(settings, db, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
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
    assert jobs == ["partitions", "rollups", "retention", "dagster_retention", "compression",
                    "vacuum_analyze"]
    assert db.execute("SELECT sum(spans) FROM traces_hourly").fetchone()[0] == 80

    # every command ran its Dagster job, recorded where the UI reads (DAGSTER_HOME)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        runs = instance.get_runs()
        assert sorted(r.job_name for r in runs) == sorted(
            ["partitions", "retention", *jobs])  # the first two, then `all`
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert instance.get_latest_materialization_event(dg.AssetKey("traces_hourly"))
