"""The dataset contracts are the single source: the table migration and the docs are
rendered from them, and the tables on both backends match them column for column."""

import pyarrow as pa

from observatory_storage.datasets import (
    DATASETS,
    DOCS_PATH,
    MIGRATION_PATH,
    render_docs,
    render_tables_sql,
)


def test_migration_and_docs_are_rendered_from_the_contracts():
    assert MIGRATION_PATH.read_text() == render_tables_sql(), (
        "sql/migrations/0002_datasets.sql is stale: run python -m observatory_storage.datasets"
    )
    assert DOCS_PATH.read_text() == render_docs(), (
        "docs/datasets.md is stale: run python -m observatory_storage.datasets"
    )


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
