"""Faults survived with every good file loaded exactly once (0 rows lost, 0 duplicated).

Real servers and real processes: the shared TimescaleDB and embedded PostgreSQL, and a
private PostgreSQL (``private_pg``) that may be restarted, starved of connection slots or
of disk. Each test puts N files in flight, strikes once, lets the product recover on its
own (Dagster's RetryPolicy, or the next run as the sensor would start it), then counts
rows and ledger entries. Every test adds one row to the table printed at the end of the
session and copied into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import psycopg
import pytest

from observatory_storage.defs.in_process import execute_ingest, first_failure, run_ingest
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.reliability.corpus import parquet_bytes, traces_table
from tests.reliability.faults import (
    CLI,
    Background,
    TableLock,
    blocked_copy_pid,
    cli_env,
    dbname,
    drop_private_database,
    new_private_database,
    step_retries,
    tally,
    wait_for,
    write_burst,
)

pytestmark = pytest.mark.slow

ROWS = 2000
# The burst tests below strike one COPY while the files before it are committed and the
# files after it wait: one file at a time (COPY_WORKERS=1). Faults with several files and
# parts in flight at once are in test_parallel_faults.py.
SERIAL = {"copy_workers": 1}


def _ingest_in_thread(settings, instance) -> Background:
    return Background(lambda: execute_ingest(settings, instance=instance))


# --- the backend dies mid-COPY ----------------------------------------------------------


def test_backend_terminated_mid_copy(settings, backend, server_urls, record_fault):
    """pg_terminate_backend on the loader's COPY; the op's RetryPolicy loads the rest."""
    settings = make_settings(settings.database_url, settings.landing_url, **SERIAL)
    burst = write_burst(open_landing(settings), metrics=10, traces=10, rows=ROWS)
    lock = TableLock(settings.database_url, "traces")
    instance = dg.DagsterInstance.ephemeral()
    try:
        run = _ingest_in_thread(settings, instance)
        with psycopg.connect(server_urls[backend], autocommit=True) as admin:
            pid = wait_for(lambda: blocked_copy_pid(admin, dbname(settings.database_url)), 60,
                           "the traces COPY to start")
            in_flight = tally(settings.database_url, burst)
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        struck = time.monotonic()
        lock.release()
        report, result = run.join(90)
        recovered = time.monotonic() - struck
    finally:
        lock.release()
    after = tally(settings.database_url, burst)
    retries = step_retries(instance)
    instance.dispose()
    assert result.success, first_failure(result)
    assert retries >= 1 and in_flight.ledger_loaded == 10  # the metrics files, before the kill
    assert after.clean and after.ledger_loaded == len(burst.keys) and after.ledger_other == 0
    assert report.count("loaded") == 10  # the retry's own report: the 10 traces files
    record_fault(
        fault="backend terminated mid-COPY (pg_terminate_backend)", backend=backend,
        files=len(burst.keys), rows=after.rows, lost=after.lost, duplicated=after.duplicated,
        recover_seconds=recovered,
        outcome=f"COPY rolled back; RetryPolicy re-ran the op ({retries} retry) and loaded the "
                f"other {report.count('loaded')} files",
    )


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_worker_sigkilled_mid_copy(database_url, landing_dir, server_urls, record_fault):
    """kill -9 of `observatory-storage ingest` during a COPY; the next run loads the rest once."""
    settings = make_settings(database_url, landing_dir, **SERIAL)
    burst = write_burst(open_landing(settings), metrics=5, traces=10, rows=ROWS)
    env = cli_env(database_url, str(landing_dir), COPY_WORKERS="1")
    lock = TableLock(database_url, "traces")
    try:
        worker = subprocess.Popen([CLI, "ingest"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
                wait_for(lambda: blocked_copy_pid(admin, dbname(database_url)), 90,
                         "the worker's traces COPY")
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
        struck = time.monotonic()
        assert worker.returncode == -signal.SIGKILL
        in_flight = tally(database_url, burst)
    finally:
        lock.release()
    rerun = run_ingest(settings)  # the body of `observatory-storage ingest`, in this process
    recovered = time.monotonic() - struck
    summary = rerun.as_dict()
    after = tally(database_url, burst)
    assert in_flight.ledger_loaded == 5 and in_flight.rows == 5 * ROWS
    assert after.clean and after.ledger_loaded == len(burst.keys)
    assert summary["ok"] and summary["datasets"]["traces"]["loaded"] == 10
    assert "metrics" not in summary["datasets"]  # loaded before the kill, never touched again
    record_fault(
        fault="run worker SIGKILLed mid-COPY", backend="timescaledb", files=len(burst.keys),
        rows=after.rows, lost=after.lost, duplicated=after.duplicated, recover_seconds=recovered,
        outcome="killed COPY's transaction rolled back with its ledger claim; the next "
                "ingest run loaded the 10 remaining files",
    )


# --- racing runs ---------------------------------------------------------------------------

_RACER = textwrap.dedent(
    """
    import json, sys
    from observatory_storage.ingest.loader import load_objects
    from observatory_storage.landing import open_landing
    from observatory_storage.settings import load_settings
    settings = load_settings()
    landing = open_landing(settings)
    objects = [landing.stat(key) for key in json.loads(sys.argv[1])]
    report = load_objects(settings, objects, run_id=sys.argv[2])
    print(json.dumps([[f.key, f.status] for f in report.files]))
    """
)


@pytest.mark.parametrize("backend", ["postgres"])
def test_four_runs_race_over_overlapping_files(database_url, landing_dir, record_fault):
    settings = make_settings(database_url, landing_dir)
    burst = write_burst(open_landing(settings), traces=24, rows=1000, prefix="race")
    keys = sorted(burst.keys)
    subsets = [keys[:12], keys[6:18][::-1], keys[12:], keys[::-1]]  # every key in >= 2 runs
    env = cli_env(database_url, str(landing_dir))
    started = time.monotonic()
    racers = [
        subprocess.Popen([sys.executable, "-c", _RACER, json.dumps(subset), f"racer-{n}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, subset in enumerate(subsets)
    ]
    outcomes: dict[str, list[str]] = {key: [] for key in keys}
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        for key, status in json.loads(out):
            outcomes[key].append(status)
    elapsed = time.monotonic() - started
    after = tally(database_url, burst)
    for key, statuses in outcomes.items():
        assert sorted(statuses).count("loaded") == 1, (key, statuses)
        assert set(statuses) <= {"loaded", "skipped"}, (key, statuses)
    assert after.clean and after.ledger_loaded == len(keys)
    attempts = sum(len(s) for s in outcomes.values())
    record_fault(
        fault="four ingest runs racing over overlapping file sets", backend="postgres",
        files=len(keys), rows=after.rows, lost=after.lost, duplicated=after.duplicated,
        recover_seconds=None,
        outcome=f"{attempts} attempts by 4 processes in {elapsed:.1f}s: each file loaded by "
                "exactly one, skipped by the others (ledger primary key)",
    )


# --- landing files that change under the loader -------------------------------------------


@pytest.mark.parametrize("backend", ["timescaledb"])
@pytest.mark.parametrize("store", ["local", "s3"])
def test_landing_file_deleted_or_rewritten_after_listing(
    store, database_url, landing_dir, request, record_fault
):
    if store == "s3":
        url, client = request.getfixturevalue("s3_bucket")
        settings = make_settings(database_url, url, s3_endpoint_url=client.meta.endpoint_url)
    else:
        settings = make_settings(database_url, landing_dir)
    landing = open_landing(settings)
    burst = write_burst(landing, traces=10, rows=ROWS, prefix=store)
    deleted, rewritten = burst.keys[3], burst.keys[6]
    with psycopg.connect(database_url, autocommit=True) as conn:
        listed = pending_objects(settings, conn)
        assert len(listed) == 10
        landing.delete(deleted)
        time.sleep(0.01)  # a new mtime on the local disk
        landing.put(rewritten, parquet_bytes(traces_table(ROWS // 2, tag=f"{store}-rewrite")))
        first = load_objects(settings, listed)
        struck = time.monotonic()
        statuses = {f.key: f.status for f in first.files}
        second = load_objects(settings, pending_objects(settings, conn))
        recovered = time.monotonic() - struck
    assert statuses[deleted] == "gone" and statuses[rewritten] == "gone"
    assert [(f.key, f.status, f.rows) for f in second.files] == [(rewritten, "loaded", ROWS // 2)]
    burst.keys.remove(deleted)
    burst.rows["traces"] -= ROWS + ROWS // 2  # the deleted file, and the rewrite's smaller size
    after = tally(database_url, burst)
    with psycopg.connect(database_url, autocommit=True) as conn:
        old_rows = conn.execute(
            "SELECT count(*) FROM traces WHERE span_id LIKE %s", (f"{store}6-%",)
        ).fetchone()[0]
    assert old_rows == 0  # nothing of the version that was replaced
    assert after.clean and after.ledger_loaded == 9
    record_fault(
        fault=f"landing file deleted / rewritten after listing ({store})", backend="timescaledb",
        files=10, rows=after.rows, lost=after.lost, duplicated=after.duplicated,
        recover_seconds=recovered,
        outcome="both reported `gone` (fingerprint check at open); the next pass loaded the "
                "new version only; the deleted file left no row",
    )


# --- the database refuses connections -----------------------------------------------------


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_database_refusing_connections(database_url, landing_dir, server_urls, record_fault):
    settings = make_settings(database_url, landing_dir)
    burst = write_burst(open_landing(settings), traces=10, rows=ROWS)
    env = cli_env(database_url, str(landing_dir))
    name = dbname(database_url)
    with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            refused = subprocess.run([CLI, "ingest"], env=env, capture_output=True, text=True,
                                     timeout=120)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    struck = time.monotonic()
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.startswith("error: cannot connect to ")
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert f'"{name}" is not currently accepting connections' in refused.stderr
    before = tally(database_url, burst)
    report = run_ingest(settings)  # what the CLI runs, in this process: one Dagster import less
    recovered = time.monotonic() - struck
    assert report.ok and report.count("loaded") == 10
    after = tally(database_url, burst)
    assert before.rows == 0 and after.clean and after.ledger_loaded == 10
    record_fault(
        fault="database refusing connections (ALLOW_CONNECTIONS false)", backend="timescaledb",
        files=10, rows=after.rows, lost=after.lost, duplicated=after.duplicated,
        recover_seconds=recovered,
        outcome="`observatory-storage ingest` exit 3 with one redacted line, nothing "
                "half-loaded; once allowed, the next run loaded all",
    )


# --- a private server: restart, connection slots, disk ------------------------------------


def test_database_restart_during_burst(private_pg, tmp_path, record_fault):
    url = new_private_database(private_pg, "restart_burst")
    try:
        settings = make_settings(url, tmp_path / "landing", **SERIAL)
        burst = write_burst(open_landing(settings), metrics=10, traces=10, rows=ROWS)
        lock = TableLock(url, "traces")
        instance = dg.DagsterInstance.ephemeral()
        run = _ingest_in_thread(settings, instance)
        with private_pg.admin() as admin:
            wait_for(lambda: blocked_copy_pid(admin, "restart_burst"), 60, "the traces COPY")
        in_flight = tally(url, burst)
        private_pg.restart()  # fast shutdown: every session, the lock holder's too, is ended
        struck = time.monotonic()
        lock.release()
        report, result = run.join(90)
        recovered = time.monotonic() - struck
        retries = step_retries(instance)
        instance.dispose()
        after = tally(url, burst)
    finally:
        drop_private_database(private_pg, "restart_burst")
    assert result.success, first_failure(result)
    assert retries >= 1 and in_flight.ledger_loaded == 10
    assert after.clean and after.ledger_loaded == 20
    record_fault(
        fault="database restarted during a burst (pg_ctl restart -m fast)", backend="postgres",
        files=20, rows=after.rows, lost=after.lost, duplicated=after.duplicated,
        recover_seconds=recovered,
        outcome=f"in-flight COPY lost with the server, rolled back; RetryPolicy ({retries} "
                f"retry) loaded the other {report.count('loaded')} files once it was back",
    )


def test_connection_slots_exhausted(private_pg, tmp_path, record_fault):
    url = new_private_database(private_pg, "slots")
    hoard: list[psycopg.Connection] = []
    try:
        settings = make_settings(url, tmp_path / "landing")
        burst = write_burst(open_landing(settings), traces=10, rows=ROWS)
        while True:  # take every slot the server has
            try:
                hoard.append(psycopg.connect(url, autocommit=True, connect_timeout=5))
            except psycopg.OperationalError as exc:
                assert "too many clients" in str(exc) or "reserved" in str(exc), exc
                break
            assert len(hoard) <= private_pg.max_connections
        instance = dg.DagsterInstance.ephemeral()
        run = _ingest_in_thread(settings, instance)
        wait_for(lambda: step_retries(instance), 60, "the ingest op to hit the limit and retry")
        for conn in hoard:
            conn.close()
        hoard.clear()
        struck = time.monotonic()
        report, result = run.join(90)
        recovered = time.monotonic() - struck
        retries = step_retries(instance)
        instance.dispose()
        after = tally(url, burst)
    finally:
        for conn in hoard:
            conn.close()
        drop_private_database(private_pg, "slots")
    assert result.success, first_failure(result)
    assert after.clean and after.ledger_loaded == 10 and report.count("loaded") == 10
    record_fault(
        fault=f"connection slots exhausted (max_connections={private_pg.max_connections})",
        backend="postgres", files=10, rows=after.rows, lost=after.lost,
        duplicated=after.duplicated, recover_seconds=recovered,
        outcome=f"'too many clients' is transient: RetryPolicy waited ({retries} retry) and "
                "loaded all once slots freed",
    )


def test_out_of_disk(private_pg, tmp_path, record_fault):
    disk = private_pg.mount_tmpfs("smalldisk", "64m")
    if disk is None:
        pytest.skip("mount -t tmpfs is not permitted here")
    name = "diskfull"
    try:
        with private_pg.admin() as admin:
            admin.execute(f"CREATE TABLESPACE smalldisk LOCATION '{disk}'")
        url = new_private_database(private_pg, name, tablespace="smalldisk")
        used_kb = _used_kb(disk)
        private_pg.resize_tmpfs(disk, f"{used_kb + 1536}k")  # room for a few files only
        # group commits of 2 files, one at a time: some commit before the disk fills
        settings = make_settings(url, tmp_path / "landing", copy_group_files=2, copy_workers=1)
        burst = write_burst(open_landing(settings), traces=20, rows=ROWS)
        instance = dg.DagsterInstance.ephemeral()
        _, failed = execute_ingest(settings, instance=instance)
        message, transient = first_failure(failed)
        during = tally(url, burst)
        private_pg.resize_tmpfs(disk, "64m")  # the operator adds space; nothing else is done
        struck = time.monotonic()
        report, result = execute_ingest(settings, instance=instance)
        recovered = time.monotonic() - struck
        instance.dispose()
        after = tally(url, burst)
    finally:
        drop_private_database(private_pg, name)
        with private_pg.admin() as admin:
            admin.execute("DROP TABLESPACE IF EXISTS smalldisk")
        private_pg.unmount(disk)
    assert not failed.success and not transient
    assert "DiskFull" in message and "No space left on device" in message, message
    assert 0 < during.ledger_loaded < 20 and during.clean is False  # part loaded, rest waiting
    assert during.duplicated == 0 and during.ledger_other == 0
    assert result.success and after.clean and after.ledger_loaded == 20
    record_fault(
        fault="out of disk (tablespace on a tmpfs)", backend="postgres", files=20,
        rows=after.rows, lost=after.lost, duplicated=after.duplicated, recover_seconds=recovered,
        outcome=f"{during.ledger_loaded} files loaded, then the run failed at once "
                "(not retried): `DiskFull ... No space left on device`; after space was added the next run "
                f"loaded the other {report.count('loaded')}",
    )


def _used_kb(path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024
