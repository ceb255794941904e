"""generate: realistic, deterministic LLM telemetry in every landing format."""

from __future__ import annotations

import datetime as dt

import pyarrow.compute as pc
import pytest

from observatory_storage.datasets import get_dataset
from observatory_storage.generate import MODELS, build_table, generate
from observatory_storage.ingest.conform import Conformer
from observatory_storage.ingest.readers import BatchReader
from observatory_storage.landing.local import LocalLanding

START = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("dataset", ["traces", "metrics", "logs"])
def test_tables_match_the_contract_and_conform_unchanged(dataset):
    table = build_table(dataset, 500, seed=1, start=START)
    assert table.schema == get_dataset(dataset).arrow_schema and table.num_rows == 500
    conformer = Conformer(get_dataset(dataset), table.schema, "gen")
    for batch in table.to_batches():
        assert conformer.conform(batch).equals(batch)


def test_same_seed_same_rows_other_seed_other_rows():
    assert build_table("traces", 300, seed=4, start=START).equals(
        build_table("traces", 300, seed=4, start=START))
    assert not build_table("traces", 300, seed=4, start=START).equals(
        build_table("traces", 300, seed=5, start=START))


def test_traces_look_like_llm_traffic():
    t = build_table("traces", 20_000, seed=2, start=START, spread_hours=6)
    providers = set(pc.unique(t["provider"].drop_null()).to_pylist())
    assert set(MODELS) <= providers
    assert len(pc.unique(t["request_model"].drop_null())) >= 12
    chat = pc.equal(t["operation"], "chat")
    errors = pc.sum(pc.and_(chat, pc.equal(t["status_code"], "error"))).as_py()
    chats = pc.sum(chat).as_py()
    assert 0.015 < errors / chats < 0.05
    failed = t.filter(pc.equal(t["status_code"], "error"))
    assert failed["status_message"].null_count == 0 and failed["error_type"].null_count == 0
    assert pc.all(pc.less_equal(t["start_time"], t["end_time"])).as_py()
    assert pc.min(t["start_time"]).as_py() >= START
    # every non-root span points at a span of its own trace
    spans = dict(zip(t["span_id"].to_pylist(), t["trace_id"].to_pylist(), strict=True))
    for parent, trace in zip(t["parent_span_id"].to_pylist(), t["trace_id"].to_pylist(), strict=True):
        assert parent is None or spans[parent] == trace
    assert pc.count_distinct(t["session_id"]).as_py() > 100
    assert pc.count_distinct(t["user_id"]).as_py() > 100
    costs = t["cost_usd"].drop_null()
    assert pc.min(costs).as_py() >= 0 and 0 < pc.mean(costs.cast("float64")).as_py() < 1


@pytest.mark.parametrize("fmt, kind", [("parquet", "parquet"), ("arrow", "arrow-file"),
                                       ("arrows", "arrow-stream")])
def test_generate_writes_readable_files_to_the_landing(tmp_path, fmt, kind):
    landing = LocalLanding(tmp_path)
    seen = []
    keys = generate(landing, "logs", 3, 40, fmt, seed=9, start=START, progress=seen.append)
    assert keys == [f"logs/2026/05/01/gen-9-0000{i}.{fmt}" for i in range(3)]
    assert seen == [40, 40, 40]
    assert [o.key for o in landing.list()] == keys
    with landing.open(landing.stat(keys[0])) as handle:
        reader = BatchReader(handle, keys[0], 1000)
        assert reader.format == kind and sum(b.num_rows for b in reader) == 40
    again = generate(LocalLanding(tmp_path / "again"), "logs", 3, 40, fmt, seed=9, start=START)
    assert (tmp_path / "again" / again[1]).read_bytes() == (tmp_path / keys[1]).read_bytes()


def test_snappy_parquet_and_unknown_format(tmp_path):
    landing = LocalLanding(tmp_path)
    [key] = generate(landing, "metrics", 1, 30, "parquet", seed=1, start=START,
                     compression="snappy")
    with landing.open(landing.stat(key)) as handle:
        assert sum(b.num_rows for b in BatchReader(handle, key, 100)) == 30
    with pytest.raises(ValueError, match="unknown format"):
        generate(landing, "traces", 1, 1, "csv")


@pytest.mark.parametrize(("fmt", "compression", "dataset"), [
    ("otlp-proto", "zstd", "traces"), ("otlp-json", "gzip", "metrics"),
    ("otlp-jsonl", "none", "logs"),
])
def test_otlp_formats_are_read_back_by_the_otlp_reader(tmp_path, fmt, compression, dataset):
    from observatory_storage.ingest.readers import open_reader

    landing = LocalLanding(tmp_path)
    keys = generate(landing, dataset, 2, 1500, fmt, seed=3, start=START, compression=compression)
    assert all(k.startswith("otlp/") for k in keys)
    for key in keys:
        with open(tmp_path / key, "rb") as handle:
            batches = list(open_reader(handle, key, "otlp", 1000).batches())
        assert {name for name, _ in batches} == {dataset}
        assert sum(b.num_rows for _, b in batches) >= 1500


@pytest.mark.parametrize("fmt", ["otlp-jsonl", "otlp-proto"])
def test_otlp_files_spread_their_spans_across_the_window(fmt, tmp_path):
    """generate --format otlp-*: spans over the whole --spread-hours window, as the Parquet
    formats do, so a one-day query sees them all (not a pile at the window's start)."""
    from observatory_storage.ingest.otlp.reader import OtlpReader

    landing = LocalLanding(tmp_path)
    [key] = generate(landing, "traces", 1, 3000, fmt, seed=3, start=START, spread_hours=24)
    with open(tmp_path / key, "rb") as handle:
        times = [t for _, batch in OtlpReader(handle, key, "otlp", 10_000).batches()
                 for t in batch.column("start_time").to_pylist()]
    assert len(times) == 3000
    assert min(times) - START < dt.timedelta(minutes=30)
    assert START + dt.timedelta(hours=23) < max(times) <= START + dt.timedelta(hours=24, minutes=5)
