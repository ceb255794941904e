"""landing_sensor ticks against a real landing folder, a real database and a real instance."""

import io
import json

import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.tags import WILL_RETRY_TAG

from observatory_storage.definitions import defs
from observatory_storage.defs.resources import StorageResource
from observatory_storage.defs.sensors import (
    BATCH_TAG,
    SensorCursor,
    key_hash,
    plan_batches,
)
from observatory_storage.landing.base import LandingObject
from observatory_storage.settings import get_settings
from tests.defs.files import traces_table, write_sample

ingest_job = defs.resolve_job_def("ingest_job")
landing_sensor = defs.resolve_sensor_def("landing_sensor")


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LANDING_URL", settings.landing_url)
    monkeypatch.setenv("INGEST_MAX_FILES_PER_RUN", "500")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def tick(instance, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"storage": StorageResource()}
    )
    result = landing_sensor.evaluate_tick(context)
    return result, result.cursor


def keys_of(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["ingest_files"]["config"]["keys"]


def create_run(instance, request: dg.RunRequest, status=dg.DagsterRunStatus.NOT_STARTED):
    """What the daemon does with a RunRequest (without launching it)."""
    return instance.create_run_for_job(
        job_def=ingest_job,
        run_config=request.run_config,
        tags={**request.tags, "dagster/run_key": request.run_key},
        status=status,
    )


def write_tiny_files(landing, count: int) -> None:
    buffer = io.BytesIO()
    pq.write_table(traces_table(1), buffer)
    data = buffer.getvalue()
    folder = landing / "traces" / "burst"
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"f-{i:04d}.parquet").write_bytes(data)


def test_a_burst_of_1000_small_files_becomes_two_runs(env, settings, instance, landing_dir):
    write_tiny_files(landing_dir, 1000)
    result, cursor = tick(instance)
    requests = result.run_requests
    assert len(requests) == 2
    assert [len(keys_of(r)) for r in requests] == [500, 500]
    all_keys = [k for r in requests for k in keys_of(r)]
    assert len(set(all_keys)) == 1000
    for request in requests:
        assert request.tags["dataset"] == "traces"
        assert request.tags[BATCH_TAG] == request.run_key
        assert request.run_key.startswith("traces-")
    # the cursor holds every requested key, as a short hash, under its run key
    parsed = SensorCursor.parse(cursor)
    assert set(parsed.batches) == {r.run_key for r in requests}
    assert parsed.in_flight() == {key_hash(k) for k in all_keys}
    assert SensorCursor.parse(parsed.to_json()) == parsed


def test_batches_respect_the_byte_bound_and_let_a_big_file_run_alone():
    objs = [LandingObject(f"traces/{i}", "traces", size, str(i), 0.0)
            for i, size in enumerate([10, 10, 10, 100, 10])]
    batches = plan_batches(objs, max_files=10, max_bytes=25)
    assert [[o.size for o in b] for b in batches] == [[10, 10], [10], [100], [10]]


def test_in_flight_files_are_not_requested_again(env, settings, instance, landing_dir):
    write_sample(landing_dir, traces_files=2, rows=3)
    first, cursor = tick(instance)
    assert sorted(r.tags["dataset"] for r in first.run_requests) == ["logs", "metrics", "traces"]

    # before the daemon even created the runs, and after it queued them: nothing new
    again, cursor = tick(instance, cursor)
    assert again.run_requests == [] and "held by 3 unfinished run" in again.skip_message
    for request in first.run_requests:
        create_run(instance, request)
    again, cursor = tick(instance, cursor)
    assert again.run_requests == []

    # a new file still flows while the others are in flight
    (landing_dir / "traces" / "late.parquet").write_bytes(
        (landing_dir / "traces/2026/11/27/batch-0.parquet").read_bytes()
    )
    late, cursor = tick(instance, cursor)
    assert [keys_of(r) for r in late.run_requests] == [["traces/late.parquet"]]


def test_a_failed_run_is_requested_again_under_a_fresh_run_key(env, settings, instance, landing_dir):
    write_sample(landing_dir, traces_files=1, rows=3)
    first, cursor = tick(instance)
    runs = {r.tags["dataset"]: create_run(instance, r) for r in first.run_requests}
    old_keys = {r.tags["dataset"]: r.run_key for r in first.run_requests}

    instance.report_run_failed(runs["traces"])
    retried, cursor = tick(instance, cursor)
    [request] = retried.run_requests
    assert request.tags["dataset"] == "traces"
    assert keys_of(request) == ["traces/2026/11/27/batch-0.parquet"]
    assert request.run_key != old_keys["traces"]  # Dagster would skip a remembered key
    assert old_keys["traces"] not in SensorCursor.parse(cursor).batches


def test_a_failed_run_awaiting_its_automatic_retry_still_holds_its_files(
    env, settings, instance, landing_dir
):
    write_sample(landing_dir, traces_files=1, rows=3)
    first, cursor = tick(instance)
    for request in first.run_requests:
        run = create_run(instance, request)
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})
        instance.report_run_failed(instance.get_run_by_id(run.run_id))
    again, cursor = tick(instance, cursor)
    assert again.run_requests == []


def test_finished_runs_leave_the_cursor_and_loaded_files_are_not_pending(
    env, settings, instance, landing_dir, db
):
    expected = write_sample(landing_dir, traces_files=2, rows=3)
    first, cursor = tick(instance)
    for request in first.run_requests:
        result = ingest_job.execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert result.success
    assert db.execute("SELECT count(*) FROM traces").fetchone()[0] == expected["traces"]

    done, cursor = tick(instance, cursor)
    assert done.run_requests == [] and done.skip_message == "no new landing files"
    assert SensorCursor.parse(cursor).batches == {}

    # a cursor reset re-lists, but the ledger says there is nothing left to load
    reset, _ = tick(instance, None)
    assert reset.run_requests == []

    # a file in no dataset folder gets no run, and the tick says why
    (landing_dir / "foo").mkdir()
    (landing_dir / "foo" / "x.parquet").write_bytes(b"PAR1")
    stray, _ = tick(instance, cursor)
    assert stray.run_requests == []
    assert stray.skip_message == (
        "no new landing files; 1 file(s) not in a dataset folder (<landing>/traces/, "
        "<landing>/metrics/, <landing>/logs/, <landing>/otlp/), never loaded: foo/x.parquet")


def test_unreachable_database_skips_without_the_password(env, instance, landing_dir):
    write_sample(landing_dir, traces_files=1, rows=1)
    env.setenv("DATABASE_URL", "postgresql://app:s3cr3t-pw@127.0.0.1:1/nowhere")
    get_settings.cache_clear()
    previous = json.dumps({"v": 1, "seq": 7, "batches": {}})
    result, cursor = tick(instance, previous)
    assert result.run_requests == []
    assert "cannot list pending files" in result.skip_message
    assert "s3cr3t-pw" not in result.skip_message
    assert cursor in (None, previous)  # kept as it was


def test_a_garbled_cursor_starts_over_safely(env, settings, instance, landing_dir):
    write_sample(landing_dir, traces_files=1, rows=1)
    result, cursor = tick(instance, "{not json")
    assert len(result.run_requests) == 3
    assert SensorCursor.parse(cursor).seq > 1_000_000  # seeded from the clock


def test_tick_cadence_stated_in_the_docs_is_dagsters():
    """README, docs/dagster.md and the sensor's description say "about every 5 s": that is
    the daemon's sensor loop, and our minimum interval is below it (a minimum of 5 would
    skip loops that start a few ms early)."""
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    from observatory_storage.settings import PROJECT_ROOT, Settings

    assert MIN_INTERVAL_LOOP_TIME == 5
    assert landing_sensor.minimum_interval_seconds < MIN_INTERVAL_LOOP_TIME
    assert Settings.model_fields["sensor_interval_seconds"].default < MIN_INTERVAL_LOOP_TIME
    assert "about every 5 s" in landing_sensor.description
    for doc in ("README.md", "docs/dagster.md"):
        text = (PROJECT_ROOT / doc).read_text()
        assert "every 5 s" in text and "every second" not in text, doc


def test_otlp_files_are_requested_and_loaded_by_the_job(env, settings, instance, landing_dir, db):
    """A Collector's output under otlp/ goes through the same sensor -> run -> ledger path."""
    from observatory_storage import generate_otlp as otlp

    spans = otlp.genai_spans(30, seed=4)
    folder = landing_dir / "otlp" / "year=2026" / "month=12"
    folder.mkdir(parents=True)
    (folder / "traces_1.binpb.gz").write_bytes(otlp.file_bytes(
        [otlp.encode("traces", spans, "proto")], "single", "gzip"))
    (folder / "all.jsonl").write_bytes(otlp.file_bytes(
        [otlp.encode("traces", spans[:5], "json"),
         otlp.encode("logs", otlp.sdk_logs(4, spans=spans), "json")], "lines"))
    first, _ = tick(instance)
    [request] = first.run_requests
    assert sorted(keys_of(request)) == ["otlp/year=2026/month=12/all.jsonl",
                                        "otlp/year=2026/month=12/traces_1.binpb.gz"]
    result = ingest_job.execute_in_process(run_config=request.run_config, instance=instance,
                                           tags=request.tags)
    assert result.success
    assert db.execute("SELECT count(*), sum(row_count), sum(unpriced_rows) FROM ingest_files "
                      "WHERE status = 'loaded'").fetchone()[:2] == (2, 30 + 5 + 4)
    assert db.execute("SELECT sum(unpriced_rows) FROM ingest_files").fetchone()[0] > 0
    assert db.execute("SELECT count(*) FROM logs").fetchone()[0] == 4
    # the mixed file (ledger dataset "otlp") must not look like a duplicated load
    evaluations = [e.event_specific_data for e in result.all_events
                   if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert evaluations and all(ev.passed for ev in evaluations), evaluations
    assert dict(db.execute("SELECT object_key, dataset FROM ingest_files").fetchall()) == {
        "otlp/year=2026/month=12/traces_1.binpb.gz": "traces",
        "otlp/year=2026/month=12/all.jsonl": "otlp"}


def test_a_missing_landing_fails_the_tick(env, settings, instance, tmp_path):
    """A landing folder that is not there is a configuration error: a failed tick (red in
    the UI) naming it, not a quiet "no new landing files"."""
    missing = tmp_path / "nowhere"
    env.setenv("LANDING_URL", str(missing))
    get_settings.cache_clear()
    context = dg.build_sensor_context(instance=instance, resources={"storage": StorageResource()})
    with pytest.raises(dg.Failure, match=f"landing folder {missing} does not exist"):
        landing_sensor.evaluate_tick(context)
    assert not missing.exists()
