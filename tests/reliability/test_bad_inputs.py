"""A corpus of hostile landing files, loaded in ONE batch next to good files.

Every file must end either loaded (values round-tripped) or quarantined with a reason
that names the file and, where the problem is in a value, the column and the row. No file
may crash the batch or stop the files after it, and hostile names (columns, keys) must
never reach SQL as text: the tables are intact afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pytest

from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.reliability.corpus import BASE_TIME, ipc_bytes, parquet_bytes, traces_table
from tests.reliability.report import record_input

HOSTILE_COLUMNS = ['"; DROP TABLE traces; --', "it's", 'quo"te', "semi;colon", "ünï 列"]


@dataclass
class Case:
    key: str
    data: bytes
    expect: str  # "loaded" or "quarantined"
    column: str | None = None  # the column a quarantine reason must name
    row: int | None = None  # the row it must name
    mentions: str | None = None  # text the reason must also contain
    rows: int = 0  # rows a loaded file holds
    tag: str | None = None  # span_id prefix of a loaded traces file
    check: Callable[[psycopg.Connection, str], None] | None = None


def _with(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


def _broken(tag: str, column: str, values: list, type_: pa.DataType | None = None) -> pa.Table:
    table = traces_table(len(values), tag=tag)
    return _with(table, column, pa.array(values, type_))


def _ts(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _value(conn, tag: str, column: str):
    return conn.execute(
        f"SELECT {column} FROM traces WHERE span_id LIKE %s ORDER BY span_id",  # noqa: S608 - test-owned constant
        (f"{tag}-%",),
    ).fetchall()


def _raw_strings(offsets: list[int], data: bytes) -> pa.Array:
    """A string array built from raw buffers, unvalidated: what a corrupt IPC file yields."""
    return pa.Array.from_buffers(
        pa.string(), len(offsets) - 1,
        [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)],
    )


def _ipc_with(tag: str, column: str, array: pa.Array) -> bytes:
    return ipc_bytes(_with(traces_table(len(array), tag=tag), column, array))


def _nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def corpus() -> list[Case]:
    good = traces_table(50, tag="good")
    cases = [
        Case("traces/good-first.parquet", parquet_bytes(traces_table(50, tag="first")),
             "loaded", rows=50, tag="first"),
        Case("traces/zero-bytes.parquet", b"", "quarantined"),
        Case("traces/truncated.parquet", parquet_bytes(good)[:300], "quarantined"),
        Case("traces/truncated-tail.parquet", parquet_bytes(good)[:-9], "quarantined"),
        Case("traces/truncated.arrow", ipc_bytes(good)[: len(ipc_bytes(good)) // 2], "quarantined"),
        Case("traces/not-parquet.parquet", b"id,name\n1,hello\n" * 20, "quarantined"),
        Case("traces/html.parquet", b"<html><body>502 Bad Gateway</body></html>", "quarantined"),
        Case("traces/magic-only.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", "quarantined"),
        # wrong types
        Case("traces/tokens-text.parquet",
             parquet_bytes(_broken("tt", "input_tokens", ["1", "2", "three", "4"])),
             "quarantined", column="input_tokens", row=2),
        Case("traces/start-bool.parquet",
             parquet_bytes(_broken("sb", "start_time", [True, False])),
             "quarantined", column="start_time"),
        Case("traces/tokens-overflow.parquet",
             parquet_bytes(_broken("to", "input_tokens", [1, 2**40], pa.int64())),
             "quarantined", column="input_tokens", row=1),
        Case("traces/metrics-in-traces.parquet",
             parquet_bytes(pa.table({"time": [BASE_TIME], "metric_name": ["x"], "value": [1.0]})),
             "quarantined"),
        # timestamps: null, absurd, negative epoch
        Case("traces/null-start.parquet",
             parquet_bytes(_broken("ns", "start_time", [BASE_TIME, BASE_TIME, None, BASE_TIME],
                                   pa.timestamp("us", tz="UTC"))),
             "quarantined", column="start_time", row=2),
        Case("traces/year-1.parquet",
             parquet_bytes(_broken("y1", "start_time", [_ts(1, 1, 1), BASE_TIME],
                                   pa.timestamp("us", tz="UTC"))),
             "loaded", rows=2, tag="y1",
             check=lambda c, b: _expect(_value(c, "y1", "start_time")[0][0].year == 1, "year 1")),
        Case("traces/year-9999.parquet",
             parquet_bytes(_broken("y9", "start_time", [_ts(9999, 12, 31, 23), BASE_TIME],
                                   pa.timestamp("us", tz="UTC"))),
             "loaded", rows=2, tag="y9",
             check=lambda c, b: _expect(_value(c, "y9", "start_time")[0][0].year == 9999,
                                        "year 9999")),
        Case("traces/negative-epoch.parquet",
             parquet_bytes(_broken("ne", "start_time", [-1_000_000, 0], pa.timestamp("s"))),
             "loaded", rows=2, tag="ne",
             check=lambda c, b: _expect(
                 _value(c, "ne", "start_time")[0][0] == _ts(1969, 12, 20, 10, 13, 20),
                 "negative epoch round-trip")),
        Case("traces/epoch-year-300000.parquet",
             parquet_bytes(_broken("yf", "start_time", [0, 10**13], pa.timestamp("s"))),
             "quarantined", column="start_time", row=1),
        Case("traces/micros-year-190000.parquet",
             parquet_bytes(_broken("ym", "start_time", [0, 6 * 10**18], pa.timestamp("us", tz="UTC"))),
             "quarantined", column="start_time", row=1),
        Case("traces/absurd-seconds-into-jsonb.parquet",
             parquet_bytes(_broken("sj", "input_payload", [0, 10**13], pa.timestamp("s"))),
             "quarantined", column="input_payload"),
        Case("traces/absurd-seconds-unknown-column.parquet",
             parquet_bytes(_broken("su", "seen_at", [0, 10**13], pa.timestamp("s"))),
             "quarantined", column="attributes"),
        Case("traces/garbage-iso.parquet",
             parquet_bytes(_broken("gi", "start_time", ["2026-01-01T00:00:00Z", "yesterday"])),
             "quarantined", column="start_time", row=1),
        # NaN / Infinity
        Case("traces/nan-duration.parquet",
             parquet_bytes(_broken("nd", "duration_ms", [1.0, float("nan")])),
             "quarantined", column="duration_ms", row=1),
        Case("traces/inf-cost.parquet",
             parquet_bytes(_broken("ic", "cost_usd", [0.1, 0.2, float("inf")])),
             "quarantined", column="cost_usd", row=2),
        Case("metrics/nan-value.parquet",
             parquet_bytes(pa.table({"time": [BASE_TIME] * 2, "metric_name": ["m", "m"],
                                     "value": [1.0, float("-inf")]})),
             "quarantined", column="value", row=1),
        Case("traces/nan-json.parquet",
             parquet_bytes(_broken("nj", "input_payload", ['{"a": 1}', '{"a": NaN}'])),
             "quarantined", column="input_payload", row=1),
        # corrupt Arrow structure (IPC readers do not validate offsets) and invalid UTF-8
        Case("traces/corrupt-offsets.arrow",
             _ipc_with("co", "trace_id", _raw_strings([0, 5, -70000, 10], b"helloworld")),
             "quarantined", column="trace_id"),
        Case("traces/offsets-past-data.arrow",
             _ipc_with("op", "name", _raw_strings([0, 5, 1 << 30, 10], b"helloworld")),
             "quarantined", column="name"),
        Case("traces/invalid-utf8.arrow",
             _ipc_with("iu", "name", _raw_strings([0, 2, 4, 6], b"ok\xff\xfeok")),
             "quarantined", column="name", row=1),
        # NUL bytes
        Case("traces/nul-name.parquet",
             parquet_bytes(_broken("nn", "name", ["ok", "ok", "bad\x00name"])),
             "quarantined", column="name", row=2),
        Case("traces/nul-json.parquet",
             parquet_bytes(_broken("nu", "output_payload", ['{"t": "a\\u0000b"}'])),
             "quarantined", column="output_payload", row=0),
        Case("logs/nul-body.arrow",
             ipc_bytes(pa.table({"time": [BASE_TIME] * 2, "body": ["fine", "\x00"]})),
             "quarantined", column="body", row=1),
        # big and deep values
        Case("traces/one-mb-string.parquet",
             parquet_bytes(_broken("mb", "status_message", ["x" * (1 << 20), "short"])),
             "loaded", rows=2, tag="mb",
             check=lambda c, b: _expect(
                 c.execute("SELECT max(length(status_message)) FROM traces "
                           "WHERE span_id LIKE 'mb-%'").fetchone()[0] == 1 << 20, "1 MB string")),
        Case("traces/nested-json-50.parquet",
             parquet_bytes(_broken("nj50", "input_payload", [_nested_json(50)])),
             "loaded", rows=1, tag="nj50",
             check=lambda c, b: _expect(
                 c.execute("SELECT input_payload #>> %s FROM traces WHERE span_id = 'nj50-0'",
                           (["a"] * 50,)).fetchone()[0] == "1", "50-deep JSON round-trip")),
        # 5,000 levels: within PostgreSQL's jsonb parser limits, so it loads intact
        Case("traces/nested-json-5000.parquet",
             parquet_bytes(_broken("nj5k", "input_payload", ["{}", _nested_json(5000)])),
             "loaded", rows=2, tag="nj5k",
             check=lambda c, b: _expect(
                 c.execute("SELECT input_payload #>> %s FROM traces WHERE span_id = 'nj5k-1'",
                           (["a"] * 5000,)).fetchone()[0] == "1", "5000-deep JSON round-trip")),
        Case("traces/nested-list-json-100000.parquet",
             parquet_bytes(_broken("njl", "input_payload", ["[" * 100_000 + "]" * 100_000])),
             "quarantined", column="input_payload", row=0),
        # duplicate and hostile column names
        Case("traces/duplicate-contract-column.parquet",
             parquet_bytes(pa.Table.from_arrays(
                 [*traces_table(3, tag="dc").columns, pa.array(["x", "y", "z"])],
                 names=[*traces_table(3, tag="dc").column_names, "name"])),
             "quarantined", column="name"),
        Case("traces/duplicate-unknown-column.parquet",
             parquet_bytes(pa.Table.from_arrays(
                 [*traces_table(2, tag="du").columns, pa.array(["a", "a"]), pa.array(["b", "b"])],
                 names=[*traces_table(2, tag="du").column_names, "extra", "extra"])),
             "quarantined", column="attributes", row=0, mentions="'extra'"),
        Case("traces/hostile-columns.parquet",
             parquet_bytes(_hostile_columns_table()), "loaded", rows=3, tag="hc",
             check=_hostile_columns_round_trip),
        # hostile but safe object keys
        Case("traces/ünïcödé 文件.parquet", parquet_bytes(traces_table(5, tag="uk")),
             "loaded", rows=5, tag="uk"),
        Case("traces/with space/and 'quotes\".parquet", parquet_bytes(traces_table(5, tag="qk")),
             "loaded", rows=5, tag="qk"),
        Case("traces/x'; DROP TABLE ingest_files; --.parquet",
             parquet_bytes(traces_table(5, tag="sk")), "loaded", rows=5, tag="sk"),
        Case("traces/good-last.arrow", ipc_bytes(traces_table(50, tag="last")),
             "loaded", rows=50, tag="last"),
    ]
    return cases


def _expect(ok: bool, what: str) -> None:
    assert ok, what


def _hostile_columns_table() -> pa.Table:
    table = traces_table(3, tag="hc")
    for i, name in enumerate(HOSTILE_COLUMNS):
        table = table.append_column(name, pa.array([f"v{i}-{r}" for r in range(3)]))
    return table


def _hostile_columns_round_trip(conn: psycopg.Connection, backend: str) -> None:
    rows = conn.execute(
        "SELECT attributes FROM traces WHERE span_id LIKE 'hc-%' ORDER BY span_id"
    ).fetchall()
    for r, (attributes,) in enumerate(rows):
        assert attributes == {name: f"v{i}-{r}" for i, name in enumerate(HOSTILE_COLUMNS)}


def _tables(conn: psycopg.Connection) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    }


def test_bad_input_corpus_loads_or_quarantines_in_one_batch(settings, db, backend, caplog):
    cases = corpus()
    landing = open_landing(settings)
    for case in cases:
        landing.put(case.key, case.data)
    tables_before = _tables(db)

    todo = pending_objects(settings, db)
    assert sorted(o.key for o in todo) == sorted(c.key for c in cases)
    with caplog.at_level(logging.INFO):
        report = load_objects(settings, todo)

    outcomes = {f.key: f for f in report.files}
    entries = {
        row[0]: row
        for row in db.execute(
            "SELECT object_key, status, row_count, error, error_column, error_row, quarantine_key "
            "FROM ingest_files"
        ).fetchall()
    }
    problems = []
    for case in cases:
        outcome, entry = outcomes.get(case.key), entries.get(case.key)
        if outcome is None or entry is None:
            problems.append(f"{case.key}: no outcome or no ledger row")
            continue
        record_input(case.key, backend, outcome.status,
                     entry[3] if outcome.status != "loaded" else f"{outcome.rows} rows")
        if outcome.status != case.expect or entry[1] != case.expect:
            problems.append(f"{case.key}: {outcome.status} ({outcome.error}), expected {case.expect}")
            continue
        if case.expect == "loaded":
            stored = db.execute(
                "SELECT count(*) FROM traces WHERE span_id LIKE %s", (f"{case.tag}-%",)
            ).fetchone()[0] if case.key.startswith("traces/") else case.rows
            if (outcome.rows, entry[2], stored) != (case.rows, case.rows, case.rows):
                problems.append(f"{case.key}: rows {outcome.rows}/{entry[2]}/{stored} != {case.rows}")
            if case.check is not None:
                try:
                    case.check(db, backend)
                except AssertionError as exc:
                    problems.append(f"{case.key}: {exc}")
            continue
        error = entry[3] or ""
        if case.key not in error:
            problems.append(f"{case.key}: reason does not name the file: {error!r}")
        if case.column is not None and entry[4] != case.column:
            problems.append(f"{case.key}: error_column {entry[4]!r} != {case.column!r}: {error}")
        if case.row is not None and entry[5] != case.row:
            problems.append(f"{case.key}: error_row {entry[5]!r} != {case.row!r}: {error}")
        if case.mentions is not None and case.mentions not in error:
            problems.append(f"{case.key}: reason does not mention {case.mentions}: {error}")
        if not landing.exists(f"_quarantine/{case.key}") or landing.exists(case.key):
            problems.append(f"{case.key}: not moved to _quarantine/")
    assert not problems, "\n".join(problems)

    # hostile names never became SQL: every table is still there, nothing else appeared
    assert _tables(db) == tables_before
    loaded_rows = sum(c.rows for c in cases if c.expect == "loaded")
    total = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    assert total == loaded_rows
    assert pending_objects(settings, db) == []  # nothing left over, nothing retried forever


UNSAFE_S3_KEYS = [
    "in/traces/../escape.parquet",
    "in//traces/absolute.parquet",
    "in/traces/ctl\x01char.parquet",
    "in/traces/tab\there.parquet",
    "in/traces/back\\slash.parquet",
    "in/traces/./dot.parquet",
]
SAFE_S3_KEYS = [
    "in/traces/ünïcödé 文件.parquet",
    "in/traces/with space/and 'quotes\".parquet",
    "in/traces/ok.parquet",
]


def test_s3_unsafe_keys_are_never_listed_and_warned(database_url, s3_bucket, caplog):
    url, client = s3_bucket
    bucket = url.split("/")[2]
    settings = make_settings(database_url, url, s3_endpoint_url=client.meta.endpoint_url)
    for n, key in enumerate(UNSAFE_S3_KEYS + SAFE_S3_KEYS):
        client.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(traces_table(4, tag=f"s{n}")))

    with psycopg.connect(database_url, autocommit=True) as conn, caplog.at_level(logging.WARNING):
        todo = pending_objects(settings, conn)
        assert sorted(o.key for o in todo) == sorted(k.removeprefix("in/") for k in SAFE_S3_KEYS)
        report = load_objects(settings, todo)
        assert [f.status for f in report.files] == ["loaded"] * len(SAFE_S3_KEYS)
        assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 4 * len(SAFE_S3_KEYS)
        assert conn.execute("SELECT count(*) FROM ingest_files").fetchone()[0] == len(SAFE_S3_KEYS)
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for key in UNSAFE_S3_KEYS:
        if key.startswith("in/traces/"):  # "in//traces/..." is outside every listed prefix
            assert repr(key.removeprefix("in/")) in warned, f"no warning for {key!r}"
    # the unsafe objects are untouched: not moved, not deleted
    listed = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(UNSAFE_S3_KEYS) <= listed


def test_local_unsafe_names_are_skipped_and_warned(database_url, landing_dir, caplog):
    settings = make_settings(database_url, landing_dir)
    (landing_dir / "traces").mkdir()
    for n, name in enumerate(["ctl\x01char.parquet", "back\\slash.parquet", "ok.parquet"]):
        (landing_dir / "traces" / name).write_bytes(parquet_bytes(traces_table(3, tag=f"l{n}")))
    with psycopg.connect(database_url, autocommit=True) as conn, caplog.at_level(logging.WARNING):
        todo = pending_objects(settings, conn)
        assert [o.key for o in todo] == ["traces/ok.parquet"]
        assert [f.status for f in load_objects(settings, todo).files] == ["loaded"]
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "control character" in warned and "backslash" in warned


@pytest.mark.parametrize("depth", [2_000])
def test_deep_json_in_attributes_column_is_quarantined_not_raised(settings, db, depth):
    """A deep ``attributes`` value goes through the merge path (json.loads), not only to_json."""
    table = traces_table(2, tag="da")
    table = _with(table, "attributes", pa.array(["{}", _nested_json(depth)]))
    table = table.append_column("unknown_col", pa.array(["u", "v"]))
    landing = open_landing(settings)
    landing.put("traces/deep-attributes.parquet", parquet_bytes(table))
    landing.put("traces/after.parquet", parquet_bytes(traces_table(3, tag="af")))
    report = load_objects(settings, pending_objects(settings, db))
    statuses = {f.key: f.status for f in report.files}
    assert statuses == {"traces/deep-attributes.parquet": "quarantined",
                        "traces/after.parquet": "loaded"}
    row = db.execute("SELECT error_column, error_row FROM ingest_files WHERE status = 'quarantined'")
    assert row.fetchone() == ("attributes", 1)


def test_json_round_trips_exactly(settings, db):
    """Unicode, quotes and SQL-looking text inside JSON come back byte-for-byte equal."""
    payload = {"q": "'; DROP TABLE traces; --", "u": "ünï 文件 \U0001f600", "n": [1, 2.5, None]}
    table = _with(traces_table(1, tag="jr"), "input_payload", pa.array([json.dumps(payload)]))
    open_landing(settings).put("traces/json.parquet", parquet_bytes(table))
    load_objects(settings, pending_objects(settings, db))
    stored = db.execute("SELECT input_payload FROM traces WHERE span_id = 'jr-0'").fetchone()[0]
    assert stored == payload


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_sensor_and_job_settle_the_whole_corpus(settings, db, landing_dir):
    """The landing sensor plans runs over the corpus (unsafe names skipped, no error) and
    the ingest_job runs it would launch settle every file: the job succeeds with the
    quarantined files in its metadata."""
    import dagster as dg

    from observatory_storage.defs.in_process import execute_ingest
    from observatory_storage.defs.sensors import evaluate

    cases = corpus()
    landing = open_landing(settings)
    for case in cases:
        landing.put(case.key, case.data)
    (landing_dir / "traces" / "ctl\x01char.parquet").write_bytes(parquet_bytes(traces_table(1, tag="c")))
    instance = dg.DagsterInstance.ephemeral()
    try:
        requests = evaluate(dg.build_sensor_context(instance=instance), settings)
        assert isinstance(requests, list), requests  # a SkipReason would mean the tick gave up
        planned = [key for r in requests for key in r.run_config["ops"]["ingest_files"]["config"]["keys"]]
        assert sorted(planned) == sorted(c.key for c in cases)
        for request in requests:
            config = request.run_config["ops"]["ingest_files"]["config"]
            report, result = execute_ingest(settings, keys=config["keys"],
                                            datasets=config["datasets"], instance=instance)
            assert result.success, request.run_key
            assert report.ok
    finally:
        instance.dispose()
    statuses = dict(db.execute("SELECT object_key, status FROM ingest_files").fetchall())
    assert statuses == {c.key: c.expect for c in cases}
