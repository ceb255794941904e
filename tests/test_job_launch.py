"""`dagster job launch` queues ingest_job; the real daemon dequeues it and the rows land.
Then a file dropped into the landing gets a sensor-launched run that materializes `traces`
with the rows it loaded and evaluates the run's checks."""

import os
import shutil
import subprocess
import time

import dagster as dg
import pytest

from observatory_storage.settings import PROJECT_ROOT
from tests.defs.files import traces_table, write, write_sample
from tests.process_utils import VENV_BIN, running

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_launched_run_succeeds_under_the_daemon(backend, database_url, landing_dir, tmp_path, db):
    expected = write_sample(landing_dir, traces_files=2, rows=5)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"DAGSTER_HOME": str(home), "DATABASE_URL": database_url,
            "LANDING_URL": str(landing_dir)}
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass  # create the SQLite storage once: two processes racing to create it collide

    log = tmp_path / "daemon.log"
    with running([str(VENV_BIN / "dagster-daemon"), "run", "-w", workspace],
                 env=env, cwd=PROJECT_ROOT, log=log) as daemon:
        launched = subprocess.run(
            [str(VENV_BIN / "dagster"), "job", "launch", "-w", workspace, "-j", "ingest_job"],
            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180,
        )
        assert launched.returncode == 0, launched.stderr

        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 240
            while True:
                runs = [r for r in instance.get_runs(dg.RunsFilter(job_name="ingest_job"))
                        if "dagster/sensor_name" not in r.tags]
                assert len(runs) == 1
                if runs[0].is_finished:
                    break
                assert daemon.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, (runs[0].status, log.read_text()[-3000:])
                time.sleep(1)
            assert runs[0].status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]

            late = "traces/2026/11/27/late.parquet"
            write(landing_dir, late, traces_table(7, offset=1000))
            run = _sensor_run_that_loaded(instance, db, late, daemon, log)
            assert run.asset_selection == {dg.AssetKey("traces")}  # the batch's dataset
            [materialization] = [
                r.asset_materialization for r in instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records]
            assert materialization.asset_key == dg.AssetKey("traces")
            assert materialization.metadata["rows_loaded"].value == 7
            assert materialization.metadata["files_loaded"].value == 1
            assert materialization.metadata["dagster/row_count"].value == expected["traces"] + 7
            evaluations = {
                r.event_log_entry.dagster_event.event_specific_data.check_name:
                r.event_log_entry.dagster_event.event_specific_data.passed
                for r in instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records}
            assert evaluations == {"quarantined_files": True, "loaded_rows_stored": True}
            expected["traces"] += 7

    counts = {name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
              for name in expected}
    assert counts == expected  # once, even if the landing sensor raced the launched run
    loaded = db.execute("SELECT count(*) FROM ingest_files WHERE status = 'loaded'").fetchone()[0]
    assert loaded == 5


def _sensor_run_that_loaded(instance, db, key, daemon, log, timeout=120) -> dg.DagsterRun:
    """The finished run of the landing sensor that loaded ``key`` (per the ledger)."""
    deadline = time.monotonic() + timeout
    while True:
        row = db.execute("SELECT run_id FROM ingest_files WHERE object_key = %s", (key,)).fetchone()
        run = instance.get_run_by_id(row[0]) if row else None
        if run is not None and run.is_finished:
            assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            assert run.tags.get("dagster/sensor_name") == "landing_sensor"
            return run
        assert daemon.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
