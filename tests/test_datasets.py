"""The dataset contracts are the single source: the table migration and the docs are
rendered from them, and the tables on both backends match them column for column."""

import pyarrow as pa

from observatory_storage.datasets import (
    ADDED_COLUMNS_PATHS,
    DATASETS,
    DOCS_PATH,
    MAPPING_START,
    MIGRATION_PATH,
    OTLP_DOCS_PATH,
    render_added_columns_sql,
    render_docs,
    render_otlp_docs,
    render_tables_sql,
)


def test_migration_and_docs_are_rendered_from_the_contracts():
    assert MIGRATION_PATH.read_text() == render_tables_sql(), (
        "sql/migrations/0002_datasets.sql is stale: run python -m observatory_storage.datasets"
    )
    assert DOCS_PATH.read_text() == render_docs(), (
        "docs/datasets.md is stale: run python -m observatory_storage.datasets"
    )
    for version, path in ADDED_COLUMNS_PATHS.items():
        assert path.read_text() == render_added_columns_sql(version), (
            f"{path.name} is stale: run python -m observatory_storage.datasets"
        )
    otlp_docs = OTLP_DOCS_PATH.read_text()
    assert MAPPING_START in otlp_docs and otlp_docs == render_otlp_docs(otlp_docs), (
        "docs/otlp.md's mapping table is stale: run python -m observatory_storage.datasets"
    )


def test_columns_added_later_come_after_the_original_ones():
    """ALTER TABLE ADD COLUMN appends: contract order must stay the tables' column order,
    and an applied migration (0002) never changes."""
    for ds in DATASETS.values():
        versions = [c.added_in for c in ds.columns]
        assert versions == sorted(versions), ds.name
        assert all(c.required is False for c in ds.columns if c.added_in != "0002")
    assert "cost_source" not in render_tables_sql()
    assert "ADD COLUMN IF NOT EXISTS cost_source text" in render_added_columns_sql("0006")


def test_contract_minimums():
    traces, metrics, logs = DATASETS["traces"], DATASETS["metrics"], DATASETS["logs"]
    assert traces.required == ["start_time", "trace_id", "span_id", "name"]
    assert metrics.required == ["time", "metric_name", "value"]
    assert logs.required == ["time", "body"]
    assert "trace_id" not in logs.required  # a log without a trace is normal
    assert traces.column("cost_usd").arrow_type == pa.decimal128(18, 9)
    for ds in DATASETS.values():
        assert ds.column(ds.time_column).arrow_type == pa.timestamp("us", tz="UTC")
        assert ds.column("attributes").pg_type == "jsonb"


def test_tables_match_the_contracts_on_both_backends(db):
    for ds in DATASETS.values():
        rows = db.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (ds.name,),
        ).fetchall()
        assert [r[0] for r in rows] == ds.column_names
        nullable = {r[0]: r[2] == "YES" for r in rows}
        assert [c for c in ds.column_names if not nullable[c]] == ds.required
        types = {r[0]: r[1] for r in rows}
        assert types[ds.time_column] == "timestamp with time zone"
        assert types["attributes"] == "jsonb"
