"""The project's dagster.yaml and workspace.yaml load in the installed Dagster."""

import shutil

import dagster as dg
import yaml
from dagster._core.instance.config import PoolGranularity
from dagster._core.workspace.load import location_origins_from_yaml_paths

from observatory_storage.settings import PROJECT_ROOT


def test_dagster_yaml_loads_with_every_limit(tmp_path, monkeypatch):
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue.max_concurrent_runs >= 1
        assert {"key": "dataset", "value": {"applyLimitPerUniqueValue": True}, "limit": 2} in (
            queue.tag_concurrency_limits
        )
        assert concurrency.pool_config.default_pool_limit == 2
        assert concurrency.pool_config.pool_granularity == PoolGranularity.RUN
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.telemetry_enabled is False
        assert instance.nux_enabled is False  # no community pop-up on a new instance
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_coordinator.dequeue_interval_seconds == 1


def test_dagster_yaml_has_no_unknown_top_level_key():
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert set(config) <= set(dagster_instance_config_schema())


def test_workspace_yaml_names_the_code_location():
    origins = location_origins_from_yaml_paths([str(PROJECT_ROOT / "workspace.yaml")])
    assert [o.location_name for o in origins] == ["observatory_storage"]
    assert origins[0].loadable_target_origin.module_name == "observatory_storage.definitions"
