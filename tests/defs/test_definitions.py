"""The whole Dagster code location loads: broken imports or config fail here."""

import dagster as dg

from observatory_storage.definitions import defs


def test_definitions_load_and_validate():
    repo = defs.get_repository_def()
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)
    assert repo.get_all_jobs() is not None


def test_ingest_job_copy_step_is_pooled_and_retried_and_the_sensor_starts_running():
    from observatory_storage.defs.retry import DB_RETRY_POLICY

    job = defs.resolve_job_def("ingest_job")
    node = job.graph.node_named("ingest_files")
    assert node.definition.pool == "observatory_copy"
    assert node.definition.retry_policy == DB_RETRY_POLICY
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.job_name == "ingest_job"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
