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


def test_kind_tags_follow_the_backend(backend, settings):
    """`timescaledb` tags the tables only on TimescaleDB; plain PostgreSQL gets `postgres`."""
    from observatory_storage.defs.assets import backend_kinds

    expected = {"postgres", "timescaledb"} if backend == "timescaledb" else {"postgres"}
    assert backend_kinds(settings) == expected


def test_another_schema_gets_its_own_asset_keys():
    """A run on schema observatory_demo materializes observatory_demo/traces, never traces."""
    from observatory_storage.defs.definitions import build

    demo = build("observatory_demo")
    keys = {k.to_user_string() for k in demo.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {f"observatory_demo/{t}" for t in
                    ("traces", "metrics", "logs", "traces_hourly", "metrics_hourly")}
    public = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert public == {"traces", "metrics", "logs", "traces_hourly", "metrics_hourly"}
    spec = next(s for s in demo.resolve_asset_graph().asset_nodes
                if s.key == dg.AssetKey(["observatory_demo", "traces"]))
    assert spec.metadata["dagster/table_name"] == "observatory_demo.traces"


def test_column_descriptions_name_the_attributes_plainly():
    """The asset page's column schema reads "OpenTelemetry: gen_ai.usage.input_tokens, ...",
    never a Python tuple (nor Markdown code marks in a table's own columns)."""
    repo = defs.get_repository_def()
    traces = next(key for key in repo.asset_graph.get_all_asset_keys()
                  if key.path[-1] == "traces")
    spec = repo.asset_graph.get(traces)
    schema = spec.metadata["dagster/column_schema"]
    described = {c.name: c.description for c in schema.columns}
    assert described["input_tokens"] == (
        "Prompt tokens, cached ones included. OpenTelemetry: gen_ai.usage.input_tokens, "
        "gen_ai.usage.prompt_tokens, llm.token_count.prompt.")
    assert "(x 1000)" in described["time_to_first_token_ms"]
    assert not any("`" in text for text in described.values())
    for key in repo.asset_graph.get_all_asset_keys():
        metadata = repo.asset_graph.get(key).metadata
        if "dagster/column_schema" not in metadata:
            continue
        for column in metadata["dagster/column_schema"].columns:
            text = column.description or ""
            assert "('" not in text and "',)" not in text, (key, text)
