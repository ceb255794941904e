"""Every maintenance job runs in process against a real database and leaves run metadata;
every schedule is in Definitions with a valid cron in UTC."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from dagster._utils.schedules import is_valid_cron_string

from observatory_storage.definitions import defs
from observatory_storage.settings import get_settings
from tests.maintenance.data import db_now, load_spread

JOBS = [defs.resolve_job_def(name) for name in
        ("migrate", "vacuum_analyze", "retention", "partitions", "compression", "rollups")]
SCHEDULES = [s for s in defs.schedules if s.name != "asset_checks_schedule"]  # maintenance

# the op of each job, and a number its metadata must carry
EXPECTED = {
    "migrate": ("apply_migrations", "pending_before"),
    "vacuum_analyze": ("vacuum_analyze_tables", "tables_vacuumed"),
    "retention": ("apply_retention", "bytes_freed"),
    "partitions": ("maintain_partitions", "duration_ms"),
    "compression": ("compress_chunks", "chunks_compressed"),
    "rollups": ("refresh_rollups", "hours_recomputed"),
}


@pytest.fixture
def environment(settings, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LANDING_URL", settings.landing_url)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def _output_metadata(result: dg.ExecuteInProcessResult, op: str) -> dict:
    [event] = [e for e in result.all_events if e.is_successful_output and e.node_name == op]
    return event.step_output_data.metadata


@pytest.mark.parametrize("name", [j.name for j in JOBS if j.name != "rollups"])
def test_job_succeeds_with_metadata(environment, db, name):
    load_spread(db, db_now(db), days=45, every=timedelta(hours=12))
    result = defs.resolve_job_def(name).execute_in_process()
    assert result.success
    op, number = EXPECTED[name]
    metadata = _output_metadata(result, op)
    assert number in metadata and "details" in metadata and "backend" in metadata
    assert environment.database_url not in str(metadata)
    if name == "retention":
        assert metadata["traces_slices_dropped"].value > 0
        assert "| table | dropped |" in metadata["details"].value
        # what it did is on the assets' pages too, as observations
        observed = {
            e.asset_observation_data.asset_observation.asset_key.to_user_string():
            e.asset_observation_data.asset_observation.metadata
            for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
        }
        assert observed["traces"]["slices"].value > 0 and observed["traces"]["bytes"].value > 0


def test_rollups_materialize_the_hourly_assets_and_check_them(environment, db):
    load_spread(db, db_now(db), days=3, every=timedelta(hours=12))
    result = defs.resolve_job_def("rollups").execute_in_process()
    assert result.success
    materialized = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("refresh_rollups")
    }
    assert set(materialized) == {"traces_hourly", "metrics_hourly"}
    traces = materialized["traces_hourly"]
    assert traces["hours_recomputed"].value > 0
    stored = db.execute("SELECT count(*) FROM traces_hourly").fetchone()[0]
    assert traces["dagster/row_count"].value == stored > 0
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed
                   for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        ("traces_hourly", "hourly_matches_raw"): True,
        ("metrics_hourly", "hourly_matches_raw"): True,
        ("traces_hourly", "columns_match_contract"): True,
        ("metrics_hourly", "columns_match_contract"): True,
    }

    # A lost hour (raw rows deleted behind the rollup's back) fails the check.
    newest = db.execute("SELECT max(bucket) FROM traces_hourly").fetchone()[0]
    db.execute("DELETE FROM traces WHERE start_time >= %s", (newest,))
    checked = defs.resolve_job_def("asset_checks").execute_in_process()
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed
                   for e in checked.get_asset_check_evaluations()}
    assert evaluations[("traces_hourly", "hourly_matches_raw")] is False
    assert evaluations[("metrics_hourly", "hourly_matches_raw")] is True
    assert all(passed for (_, check), passed in evaluations.items()
               if check == "columns_match_contract")
    assert {asset for asset, _ in evaluations} == {
        "traces", "metrics", "logs", "traces_hourly", "metrics_hourly"}


def test_retention_dry_run_through_config(environment, db):
    load_spread(db, db_now(db), days=45, every=timedelta(hours=12))
    before = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    result = defs.resolve_job_def("retention").execute_in_process(
        run_config={"ops": {"apply_retention": {"config": {"dry_run": True}}}},
    )
    assert result.success
    assert _output_metadata(result, "apply_retention")["dry_run"].value is True
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == before


def test_every_schedule_is_defined_with_a_valid_cron_in_utc():
    repo = defs.get_repository_def()
    names = {s.name for s in repo.schedule_defs}
    expected = {
        "rollups_schedule": "5 * * * *",
        "vacuum_analyze_schedule": "17 3 * * *",
        "retention_schedule": "30 2 * * *",
        "partitions_schedule": "15 0 * * *",
        "compression_schedule": "0 4 * * *",
        "migrate_schedule": "0 1 * * *",
        "dagster_retention_schedule": "45 2 * * *",
    }
    assert set(expected) <= names
    for schedule in SCHEDULES:
        assert is_valid_cron_string(schedule.cron_schedule), schedule.name
        assert schedule.execution_timezone == "UTC", schedule.name
        assert schedule.cron_schedule == expected[schedule.name]
        assert repo.has_job(schedule.job_name)
    running = {s.name for s in SCHEDULES if s.default_status == dg.DefaultScheduleStatus.RUNNING}
    assert running == set(expected) - {"compression_schedule"}
