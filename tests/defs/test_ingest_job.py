"""ingest_job in process against both backends: rows, ledger, metadata, exactly once."""

import dagster as dg
import pytest

from observatory_storage.definitions import defs
from observatory_storage.defs.in_process import execute_ingest, run_ingest
from observatory_storage.defs.ingest import run_config_for
from observatory_storage.settings import get_settings
from tests.defs.files import write_broken, write_sample


@pytest.fixture
def env_settings(settings, monkeypatch):
    """The job's StorageResource reads the environment, as under the daemon."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LANDING_URL", settings.landing_url)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


ingest_job = defs.resolve_job_def("ingest_job")  # with the resources the daemon binds


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Asset name -> the metadata of its materialization in this run."""
    return {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("ingest_files")
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """(asset, check) -> passed, for every check evaluated in this run."""
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }


def counts(db) -> dict[str, int]:
    return {
        name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608 - fixed names
        for name in ("traces", "metrics", "logs")
    }


def ledger(db) -> dict[str, str]:
    return dict(db.execute("SELECT object_key, status FROM ingest_files").fetchall())


def test_job_loads_every_pending_file_and_quarantines_the_broken_one(env_settings, db, landing_dir):
    expected = write_sample(landing_dir)
    write_broken(landing_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest_job.execute_in_process(instance=instance)
        assert result.success  # a quarantined file is not a failed run
        meta = materialized(result)
        tags = instance.get_run_by_id(result.run_id).tags

    assert counts(db) == expected
    assert set(meta) == {"traces", "metrics", "logs"}  # each dataset the run loaded
    traces = meta["traces"]
    assert traces["rows_loaded"] == expected["traces"]
    assert traces["files_loaded"] == 3 and traces["files_quarantined"] == 1
    assert traces["dagster/row_count"] == expected["traces"] and traces["row_count_exact"]
    assert traces["bytes"] > 0 and traces["rows_per_second"] > 0
    assert traces["event_time_min"] <= traces["event_time_max"]
    assert "traces/broken.parquet" in traces["problems"]
    assert sum(m["rows_loaded"] for m in meta.values()) == sum(expected.values())
    assert checks(result) == {
        ("traces", "quarantined_files"): False,  # WARN: the broken file
        ("traces", "loaded_rows_stored"): True,
        ("metrics", "quarantined_files"): True,
        ("metrics", "loaded_rows_stored"): True,
        ("logs", "quarantined_files"): True,
        ("logs", "loaded_rows_stored"): True,
    }
    assert tags["observatory/loaded"] == "5" and tags["observatory/quarantined"] == "1"
    states = ledger(db)
    assert states.pop("traces/broken.parquet") == "quarantined"
    assert set(states.values()) == {"loaded"} and len(states) == 5
    run_ids = {r for (r,) in db.execute("SELECT DISTINCT run_id FROM ingest_files")}
    assert run_ids == {result.run_id}
    assert (landing_dir / "_quarantine" / "traces" / "broken.parquet").exists()

    with dg.DagsterInstance.ephemeral() as instance:
        again = ingest_job.execute_in_process(instance=instance)
    assert again.success
    assert materialized(again) == {}  # nothing loaded: no materialization
    assert counts(db) == expected  # nothing loaded twice


def test_job_loads_only_the_keys_in_its_config(env_settings, db, landing_dir):
    write_sample(landing_dir, traces_files=2, rows=5)
    config = run_config_for(["traces/2026/11/27/batch-1.parquet", "traces/gone.parquet"])
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest_job.execute_in_process(run_config=config, instance=instance)
    assert result.success  # a key deleted before the run is skipped, not an error
    meta = materialized(result)
    assert set(meta) == {"traces"}
    assert meta["traces"]["files_loaded"] == 1 and meta["traces"]["files_skipped"] == 1
    assert counts(db) == {"traces": 5, "metrics": 0, "logs": 0}
    assert ledger(db) == {"traces/2026/11/27/batch-1.parquet": "loaded"}


def test_job_refuses_an_unsafe_key_without_reading_it(env_settings, db, landing_dir):
    write_sample(landing_dir, traces_files=1, rows=3)
    config = run_config_for(["traces/../../etc/passwd", "traces/2026/11/27/batch-0.parquet"])
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest_job.execute_in_process(run_config=config, instance=instance,
                                               raise_on_error=False)
    assert not result.success
    assert counts(db)["traces"] == 3  # the good key still loaded
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "traces/../../etc/passwd" in failure.event_specific_data.error.message


def test_execute_ingest_uses_the_given_settings_not_the_environment(settings, db, landing_dir,
                                                                   monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    get_settings.cache_clear()
    expected = write_sample(landing_dir, traces_files=1, rows=4)
    report, result = execute_ingest(settings)
    get_settings.cache_clear()
    assert result.success and report.ok
    assert report.count("loaded") == 3
    assert counts(db) == expected


def test_run_ingest_is_the_job_in_process(settings, db, landing_dir):
    expected = write_sample(landing_dir, traces_files=2, rows=3)
    write_broken(landing_dir, "logs/bad.arrow")
    report = run_ingest(settings)
    assert report.ok
    assert report.count("loaded") == 4 and report.count("quarantined") == 1
    assert counts(db) == expected
    assert run_ingest(settings).count("loaded") == 0


def test_a_run_of_only_broken_files_warns_without_materializing(env_settings, db, landing_dir):
    """Nothing loaded: no materialization (freshness is not reset), the quarantine check warns."""
    write_broken(landing_dir, "logs/bad.arrow")
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest_job.execute_in_process(instance=instance)
    assert result.success
    assert materialized(result) == {}
    assert checks(result) == {("logs", "quarantined_files"): False}
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
