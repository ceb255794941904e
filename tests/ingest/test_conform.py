"""Each cast the conform step performs, and each rejection naming file, column and row."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from observatory_storage.datasets import get_dataset
from observatory_storage.ingest.conform import Conformer
from observatory_storage.ingest.errors import ConformError

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
UTC_US = pa.timestamp("us", tz="UTC")


def span_columns(n: int = 3, **overrides) -> dict:
    columns = {
        "start_time": pa.array([T0 + dt.timedelta(seconds=i) for i in range(n)], UTC_US),
        "trace_id": [f"t{i}" for i in range(n)],
        "span_id": [f"s{i}" for i in range(n)],
        "name": ["chat"] * n,
    }
    columns.update(overrides)
    return {k: v for k, v in columns.items() if v is not None}


def conform(dataset: str = "traces", batches: int = 1, **columns) -> pa.Table:
    table = pa.table(columns)
    conformer = Conformer(get_dataset(dataset), table.schema, "landing/f.parquet")
    size = max(1, table.num_rows // batches)
    out = [conformer.conform(b) for b in table.to_batches(max_chunksize=size)]
    result = pa.Table.from_batches(out)
    assert result.schema == get_dataset(dataset).arrow_schema
    return result


def rejected(dataset: str = "traces", batches: int = 1, **columns) -> ConformError:
    with pytest.raises(ConformError) as info:
        conform(dataset, batches, **columns)
    assert info.value.file == "landing/f.parquet"
    return info.value


def col(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


# --- names ---------------------------------------------------------------------------

def test_names_match_case_insensitively_and_missing_optional_columns_are_null():
    table = conform(**span_columns(2, name=None), NAME=["a", "b"], Provider=["openai", "x"],
                    StartTimeLocal=["x", "y"])
    assert col(table, "name") == ["a", "b"]
    assert col(table, "provider") == ["openai", "x"]
    assert col(table, "request_model") == [None, None]
    assert [json.loads(a) for a in col(table, "attributes")] == [
        {"StartTimeLocal": "x"}, {"StartTimeLocal": "y"}]


def test_missing_required_column_is_rejected():
    error = rejected(**span_columns(span_id=None))
    assert (error.column, error.row) == ("span_id", None)
    assert "required column is missing" in str(error) and "landing/f.parquet" in str(error)


def test_two_columns_for_one_contract_column_is_rejected():
    error = rejected(**span_columns(2, name=None), NAME=["a", "b"], Name=["c", "d"])
    assert error.column == "name" and "several columns" in error.reason


def test_null_in_required_column_names_the_row_across_batches():
    ids = ["a", "b", "c", "d", None, "f"]
    error = rejected(batches=3, **span_columns(6, span_id=ids))
    assert (error.column, error.row, error.reason) == ("span_id", 4, "required value is null")


# --- timestamps ---------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamp_units_and_naive_become_utc_microseconds(unit):
    naive = pa.array([dt.datetime(2026, 3, 1, 12, 0, 1)], pa.timestamp(unit))
    aware = pa.array([dt.datetime(2026, 3, 1, 14, 0, 1, tzinfo=dt.UTC)],
                     pa.timestamp(unit, tz="Europe/Paris"))
    table = conform(**span_columns(1, start_time=naive), end_time=aware)
    assert col(table, "start_time")[0] == dt.datetime(2026, 3, 1, 12, 0, 1, tzinfo=dt.UTC)
    assert col(table, "end_time")[0] == dt.datetime(2026, 3, 1, 14, 0, 1, tzinfo=dt.UTC)
    assert col(table, "duration_ms") == [7_200_000.0]


def test_nanoseconds_are_truncated_to_microseconds():
    ns = pa.array([1_772_366_400_123_456_789], pa.timestamp("ns", tz="UTC"))
    table = conform(**span_columns(1, start_time=ns))
    assert table.column("start_time").cast(pa.int64())[0].as_py() == 1_772_366_400_123_456


def test_iso_strings_with_and_without_zone():
    strings = ["2026-03-01T12:00:00Z", "2026-03-01 13:00:00+01:00", "2026-03-01T12:00:00.5"]
    table = conform(**span_columns(3, start_time=strings))
    assert col(table, "start_time") == [T0, T0, T0 + dt.timedelta(milliseconds=500)]


def test_bad_iso_string_names_the_row():
    error = rejected(**span_columns(3, start_time=["2026-03-01T12:00:00Z", "yesterday", None]))
    assert (error.column, error.row) == ("start_time", 1)
    assert "yesterday" in error.reason


def test_date_column_is_midnight_utc():
    table = conform(**span_columns(1), end_time=pa.array([dt.date(2026, 3, 2)]))
    assert col(table, "end_time") == [dt.datetime(2026, 3, 2, tzinfo=dt.UTC)]


def test_timestamp_outside_postgres_friendly_years_is_rejected():
    far = pa.array([0, 300_000 * 365 * 86400], pa.timestamp("s"))
    error = rejected(**span_columns(2, start_time=far))
    assert (error.column, error.row) == ("start_time", 1)


def test_integer_time_is_rejected_not_guessed():
    error = rejected(**span_columns(1, start_time=[1_772_366_400]))
    assert error.column == "start_time" and "expected a timestamp" in error.reason


# --- integers -----------------------------------------------------------------------

def test_int64_and_whole_floats_and_strings_fit_int4():
    table = conform(**span_columns(3), input_tokens=pa.array([1, 2**31 - 1, None], pa.int64()),
                    output_tokens=[1.0, None, None], reasoning_tokens=["7", " 8", None],
                    total_tokens=[None, 0, None])
    assert col(table, "input_tokens") == [1, 2**31 - 1, None]
    assert col(table, "output_tokens") == [1, None, None]
    assert col(table, "reasoning_tokens") == [7, 8, None]
    assert col(table, "total_tokens") == [2, 0, None]


def test_int_overflow_names_the_row():
    error = rejected(**span_columns(3), input_tokens=pa.array([1, 2, 2**31], pa.int64()))
    assert (error.column, error.row) == ("input_tokens", 2)


def test_fractional_tokens_are_rejected():
    error = rejected(**span_columns(2), output_tokens=[1.0, 1.5])
    assert (error.column, error.row) == ("output_tokens", 1)


def test_nan_tokens_are_rejected():
    error = rejected(**span_columns(2), output_tokens=[float("nan"), 1.0])
    assert (error.column, error.row) == ("output_tokens", 0)


def test_smallint_range_is_checked():
    logs = {"time": pa.array([T0, T0], UTC_US), "body": ["a", "b"],
            "severity_number": pa.array([9, 40000], pa.int32())}
    error = rejected("logs", **logs)
    assert (error.column, error.row) == ("severity_number", 1)


# --- floats and decimals -------------------------------------------------------------

def test_cost_from_float_int_string_and_decimal_is_exact_numeric():
    for values, expected in [
        ([0.1, 1e-10, None], [Decimal("0.100000000"), Decimal("0E-9"), None]),
        (pa.array([3, 0, None], pa.int64()), [Decimal("3"), Decimal("0"), None]),
        (["0.000123456", "1e-3", None], [Decimal("0.000123456"), Decimal("0.001"), None]),
        (["0.0000000016", "2", None], [Decimal("0.000000002"), Decimal("2"), None]),
        (pa.array([Decimal("1.1234567894"), None, None], pa.decimal128(20, 10)),
         [Decimal("1.123456789"), None, None]),
    ]:
        table = conform(**span_columns(3), cost_usd=values)
        assert col(table, "cost_usd") == expected


@pytest.mark.parametrize("bad, row", [([0.1, float("inf")], 1), ([float("nan"), 0.1], 0),
                                      (["0.1", "ten"], 1), ([1e12, 0.0], 0)])
def test_bad_costs_are_rejected(bad, row):
    error = rejected(**span_columns(2), cost_usd=bad)
    assert (error.column, error.row) == ("cost_usd", row)


def test_double_columns_refuse_infinity():
    error = rejected(**span_columns(2), time_to_first_token_ms=[1.5, float("-inf")])
    assert (error.column, error.row) == ("time_to_first_token_ms", 1)


# --- text -----------------------------------------------------------------------------

def test_string_variants_and_binary_ids():
    table = conform(**span_columns(
        2,
        trace_id=pa.array([b"\x01" * 16, b"\xab" * 16], pa.binary(16)),
        span_id=pa.array(["a", "b"], pa.large_string()),
        name=pa.array(["x", "y"], pa.string_view()),
    ), provider=pa.array(["openai", "openai"]).dictionary_encode(),
        user_id=pa.array([42, None], pa.int64()))
    assert col(table, "trace_id") == ["01" * 16, "ab" * 16]
    assert col(table, "span_id") == ["a", "b"]
    assert col(table, "name") == ["x", "y"]
    assert col(table, "provider") == ["openai", "openai"]
    assert col(table, "user_id") == ["42", None]


def test_float_for_text_is_rejected():
    error = rejected(**span_columns(1), user_id=[1.5])
    assert error.column == "user_id" and "expected text" in error.reason


# --- json -----------------------------------------------------------------------------

def test_json_strings_structs_maps_and_lists_become_jsonb_text():
    structs = pa.array([{"role": "user", "n": 1}, None, {"role": "x", "n": None}])
    maps = pa.array([[("k", 1)], [], None], pa.map_(pa.string(), pa.int64()))
    lists = pa.array([[{"a": 1.5}], None, []])
    table = conform(**span_columns(3), input_payload=structs, output_payload=lists,
                    attributes=maps)
    assert [None if v is None else json.loads(v) for v in col(table, "input_payload")] == [
        {"role": "user", "n": 1}, None, {"role": "x", "n": None}]
    assert [None if v is None else json.loads(v) for v in col(table, "output_payload")] == [
        [{"a": 1.5}], None, []]
    assert [None if v is None else json.loads(v) for v in col(table, "attributes")] == [
        {"k": 1}, {}, None]


def test_unknown_columns_fold_into_attributes_merged_with_existing():
    table = conform(**span_columns(3), attributes=['{"a": 1}', None, '{"team": "x"}'],
                    team=["x", "y", "x"], retries=pa.array([1, None, 3], pa.int8()),
                    seen_at=pa.array([T0, None, None], UTC_US))
    assert [json.loads(v) for v in col(table, "attributes")] == [
        {"a": 1, "team": "x", "retries": 1, "seen_at": T0.isoformat()},
        {"team": "y"},
        {"team": "x", "retries": 3},
    ]


def test_unknown_column_disagreeing_with_attributes_is_rejected():
    error = rejected(**span_columns(2), attributes=['{"team": "x"}', '{"team": "x"}'],
                     team=["x", "y"])
    assert (error.column, error.row) == ("attributes", 1)


def test_attributes_that_are_not_objects_cannot_take_unknown_columns():
    error = rejected(**span_columns(2), attributes=['{"a": 1}', "[1, 2]"], extra=[1, 2])
    assert (error.column, error.row) == ("attributes", 1)


def test_nan_in_unknown_float_column_is_rejected():
    error = rejected(**span_columns(2), score=[0.5, float("nan")])
    assert (error.column, error.row) == ("attributes", 1)


# --- derived columns ----------------------------------------------------------------

def test_duration_and_total_tokens_are_derived_where_missing():
    end = pa.array([T0 + dt.timedelta(milliseconds=1500), None, T0], UTC_US)
    table = conform(**span_columns(3, start_time=pa.array([T0, T0, T0], UTC_US)), end_time=end,
                    duration_ms=[None, 7.0, 9.0],
                    input_tokens=[10, None, None], output_tokens=[5, 3, None],
                    total_tokens=[None, None, 99])
    assert col(table, "duration_ms") == [1500.0, 7.0, 9.0]
    assert col(table, "total_tokens") == [15, 3, 99]


def test_total_tokens_overflow_is_rejected():
    error = rejected(**span_columns(2), input_tokens=[1, 2**31 - 1], output_tokens=[0, 1])
    assert (error.column, error.row) == ("total_tokens", 1)


def test_metrics_and_logs_contracts():
    metrics = conform("metrics", time=["2026-03-01T12:00:00Z"], metric_name=["x"],
                      value=pa.array([3], pa.int64()), region=["eu"])
    assert col(metrics, "value") == [3.0] and json.loads(col(metrics, "attributes")[0]) == {
        "region": "eu"}
    error = rejected("metrics", time=[T0], metric_name=["x"], value=[None])
    assert (error.column, error.row) == ("value", 0)
