"""dagster_retention prunes Dagster's own run and event storage, on SQLite (the local
instance) and PostgreSQL (the production dagster.yaml), keeping what the UI needs."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from observatory_storage.definitions import defs
from observatory_storage.defs.dagster_retention import prune
from observatory_storage.settings import PROJECT_ROOT


@dg.asset(name="traces")  # the key of the product's asset, materialized by a stand-in job
def traces_stand_in():
    return None


@dg.asset
def broken():
    raise RuntimeError("fails on purpose")


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, tmp_path, server_urls, monkeypatch):
    if request.param == "sqlite":
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(tmp_path)) as found:
            yield found
        return
    admin_url = server_urls["timescaledb"]
    name = f"obs_test_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    for var, value in {"HOST": parts.hostname, "PORT": str(parts.port or 5432), "DB": name,
                       "USERNAME": parts.username or "postgres",
                       "PASSWORD": parts.password or "unused-with-trust-auth"}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{var}", value)
    shutil.copyfile(PROJECT_ROOT / "docker" / "dagster.yaml", tmp_path / "dagster.yaml")
    try:
        with dg.DagsterInstance.from_config(str(tmp_path)) as found:
            yield found
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def test_old_runs_go_with_their_events_but_never_the_latest_or_a_running_one(instance):
    older = dg.materialize([traces_stand_in], instance=instance).run_id
    latest = dg.materialize([traces_stand_in], instance=instance).run_id
    failed = dg.materialize([broken], instance=instance, raise_on_error=False).run_id
    job = defs.resolve_job_def("migrate")
    running = instance.create_run_for_job(job, run_config={}, status=dg.DagsterRunStatus.STARTED)
    assert instance.all_logs(older)  # events to delete

    later = datetime.now(UTC) + timedelta(days=31)  # every run is older than 30 days then
    dry = prune(instance, 30, dry_run=True, now=later)
    assert dry.totals["runs_deleted"] == 2 and instance.get_run_by_id(older) is not None

    report = prune(instance, 30, now=later)
    assert report.totals == {"runs_deleted": 2, "runs_kept_latest": 1, "cutoff_days": 30}
    assert instance.get_run_by_id(older) is None and instance.all_logs(older) == []
    assert instance.get_run_by_id(failed) is None
    assert instance.get_run_by_id(latest) is not None  # the asset's latest materialization
    assert instance.get_run_by_id(running.run_id) is not None  # still in progress
    event = instance.get_latest_materialization_event(dg.AssetKey("traces"))
    assert event is not None and event.run_id == latest

    # nothing older than 30 days today: a run from now keeps everything
    assert prune(instance, 30).totals["runs_deleted"] == 0
