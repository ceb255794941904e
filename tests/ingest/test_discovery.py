"""Incremental discovery: a pass costs what is new, and still finds every file (late ones
through the rolling sweep), on a real landing and a real ledger."""

from __future__ import annotations

import datetime as dt

import pytest

from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import Pass, discover, pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from observatory_storage.landing.partitions import Partition, segment_span
from tests.conftest import make_settings

PARTITION = "year={:%Y}/month={:%m}/day={:%d}/hour={:%H}/minute={:%M}"  # awss3exporter's
NEWEST = dt.datetime(2026, 12, 7, 23, 58, tzinfo=dt.UTC)


def _key(root: str, at: dt.datetime, name: str) -> str:
    return f"{root}/{PARTITION.format(at, at, at, at, at)}/{name}"


def test_time_folders_are_read_from_their_names():
    year = segment_span("year=2026", Partition())
    month = segment_span("month=12", year)
    assert (month.start, month.end) == (dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                                        dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert segment_span("2026-12-07", Partition()).end == dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
    day = segment_span("07", segment_span("12", segment_span("2026", Partition())))
    assert segment_span("23", day).end == dt.datetime(2026, 12, 8, tzinfo=dt.UTC)  # YYYY/MM/DD/HH
    in_2026 = segment_span("2026", Partition())
    assert segment_span("13", in_2026) is None  # no 13th month
    for name in ("service-a", "month=13", "dt=2026-02-30", "2026x", "12"):
        assert segment_span(name, Partition()) is None


@pytest.fixture
def stream(tmp_path):
    """A landing of minute folders over two days (the awss3exporter's layout), a flat
    folder and a second stream, each file 1 byte (the listing is what is measured)."""
    landing_dir = tmp_path / "landing"
    landing = open_landing(make_settings("postgresql://unused", landing_dir))
    keys = []
    for minutes in range(0, 48 * 60, 7):
        at = NEWEST - dt.timedelta(minutes=minutes)
        keys.append(_key("otlp", at, f"traces_{minutes}.binpb"))
    keys += ["otlp/flat/a.binpb", "traces/service-b/2026/12/01/00/x.parquet"]
    for key in keys:
        landing.put(key, b"x")
    return landing_dir, landing, keys


def test_the_recent_walk_skips_old_time_folders(stream):
    _, landing, _keys = stream
    recent = {o.key for o in landing.list_recent("otlp", dt.timedelta(minutes=15))}
    newest = {_key("otlp", NEWEST - dt.timedelta(minutes=m), f"traces_{m}.binpb")
              for m in (0, 7, 14)}
    assert recent == newest | {"otlp/flat/a.binpb"}  # and the flat folder, always
    # a second stream keeps its own clock: its newest folder is days old, still walked
    other = {o.key for o in landing.list_recent("traces", dt.timedelta(minutes=15))}
    assert other == {"traces/service-b/2026/12/01/00/x.parquet"}


def test_list_after_continues_in_key_order(stream):
    _, landing, keys = stream
    everything = sorted(k for k in keys if k.startswith("otlp/"))
    first = landing.list_after("otlp", None, 100)
    assert [o.key for o in first] == everything[:100]
    rest = landing.list_after("otlp", first[-1].key, 10_000)
    assert [o.key for o in rest] == everything[100:]


def test_late_files_are_found_by_the_rolling_sweep_and_the_backlog_keeps_them(
        database_url, stream, db):
    landing_dir, landing, keys = stream
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=100,
                             landing_sweep_minutes=0)
    with connect(settings, autocommit=True) as conn:
        first = Pass()
        todo = discover(settings, conn, landing, ["otlp"], report=first)
        assert first.full and len(todo) == len([k for k in keys if k.startswith("otlp/")])
        # everything loaded: a pass now lists the recent folders and one sweep step only
        for key in keys:
            if key.startswith("otlp/"):
                conn.execute("INSERT INTO ingest_files (object_key, dataset, status, "
                             "fingerprint, size_bytes) VALUES (%s, 'otlp', 'loaded', %s, 1)",
                             (key, landing.stat(key).fingerprint))
        quiet = Pass()
        assert discover(settings, conn, landing, ["otlp"], report=quiet) == []
        assert not quiet.full and quiet.recent == 4 and quiet.swept == 100
        # a late writer: a file into a folder two days old, which no recent walk reaches
        late = _key("otlp", NEWEST - dt.timedelta(days=2), "late.binpb")
        landing.put(late, b"x")
        passes = 0
        while True:
            passes += 1
            found = [o.key for o in discover(settings, conn, landing, ["otlp"])]
            if found:
                break
            assert passes < 20
        assert found == [late] and passes <= len(keys) // 100 + 2
        # the backlog keeps it pending until the ledger settles it, sweep or not
        assert [o.key for o in discover(settings, conn, landing, ["otlp"])] == [late]
        assert db.execute("SELECT object_key FROM landing_backlog").fetchall() == [(late,)]


def test_a_pass_loads_what_it_found_exactly_once(database_url, stream, db):
    landing_dir, landing, keys = stream
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=50)
    with connect(settings) as conn:
        todo = pending_objects(settings, conn, datasets=["traces"])
    assert [o.key for o in todo] == ["traces/service-b/2026/12/01/00/x.parquet"]
    report = load_objects(settings, todo)
    assert report.count("quarantined") == 1  # one byte is no Parquet file: settled all the same
    with connect(settings) as conn:
        assert pending_objects(settings, conn, datasets=["traces"]) == []
    assert db.execute("SELECT count(*) FROM landing_backlog").fetchone()[0] == 0


def test_a_file_deleted_before_loading_leaves_the_backlog(database_url, stream, db):
    landing_dir, landing, keys = stream
    settings = make_settings(database_url, landing_dir, landing_sweep_batch=0)
    old = _key("otlp", NEWEST - dt.timedelta(minutes=1442), "traces_1442.binpb")  # a day old
    with connect(settings, autocommit=True) as conn:
        discover(settings, conn, landing, ["otlp"])  # the first pass: everything, kept
        assert db.execute("SELECT count(*) FROM landing_backlog WHERE object_key = %s",
                          (old,)).fetchone()[0] == 1
        landing.delete(old)
        discover(settings, conn, landing, ["otlp"], sweep=True)  # a sweep: it is gone
    assert db.execute("SELECT count(*) FROM landing_backlog WHERE object_key = %s",
                      (old,)).fetchone()[0] == 0
