"""Every maintenance job runs in process against a real database and leaves run metadata;
every schedule is in Definitions with a valid cron in UTC."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from dagster._utils.schedules import is_valid_cron_string

from observatory_storage.definitions import defs
from observatory_storage.defs.maintenance import JOBS
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.schedules import SCHEDULES
from observatory_storage.settings import get_settings
from tests.maintenance.data import db_now, load_spread

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


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_job_succeeds_with_metadata(environment, db, job):
    load_spread(db, db_now(db), days=45, every=timedelta(hours=12))
    result = job.execute_in_process(resources={"storage": StorageResource()})
    assert result.success
    op, number = EXPECTED[job.name]
    metadata = _output_metadata(result, op)
    assert number in metadata and "details" in metadata and "backend" in metadata
    assert environment.database_url not in str(metadata)
    if job.name == "retention":
        assert metadata["traces_slices_dropped"].value > 0
        assert "| table | dropped |" in metadata["details"].value


def test_retention_dry_run_through_config(environment, db):
    load_spread(db, db_now(db), days=45, every=timedelta(hours=12))
    before = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    job = next(j for j in JOBS if j.name == "retention")
    result = job.execute_in_process(
        resources={"storage": StorageResource()},
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
    }
    assert set(expected) <= names
    for schedule in SCHEDULES:
        assert is_valid_cron_string(schedule.cron_schedule), schedule.name
        assert schedule.execution_timezone == "UTC", schedule.name
        assert schedule.cron_schedule == expected[schedule.name]
        assert repo.has_job(schedule.job_name)
    running = {s.name for s in SCHEDULES if s.default_status == dg.DefaultScheduleStatus.RUNNING}
    assert running == set(expected) - {"compression_schedule"}
