"""Faults during parallel loads: several files and parts of a split file in flight at once.

Same rule as test_faults.py: strike once, let the product recover on its own, then count
rows against what was written (0 lost, 0 duplicated) and check the ledger (files and parts).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from observatory_storage.defs.in_process import execute_ingest, first_failure, run_ingest
from observatory_storage.landing import open_landing
from tests.conftest import make_settings
from tests.reliability.corpus import traces_table
from tests.reliability.faults import (
    CLI,
    Background,
    TableLock,
    blocked_copy_pid,
    cli_env,
    dbname,
    step_retries,
    wait_for,
)

pytestmark = pytest.mark.slow

PARALLEL = {"copy_workers": 3, "copy_split_bytes": 1000}  # one part per row group


def write_files(landing, *, big_groups: int, rows: int, small: int, prefix: str = "p") -> dict:
    """One big file of ``big_groups`` row groups (oldest, so it starts first) and ``small``
    one-row-group files; span ids are unique across files. Returns key -> rows."""
    import io

    import pyarrow.parquet as pq

    written = {}
    sink = io.BytesIO()
    pq.write_table(traces_table(rows * big_groups, tag=f"{prefix}big"), sink, row_group_size=rows)
    landing.put(f"traces/{prefix}-big.parquet", sink.getvalue())
    written[f"traces/{prefix}-big.parquet"] = rows * big_groups
    time.sleep(0.02)
    for n in range(small):
        sink = io.BytesIO()
        pq.write_table(traces_table(rows, tag=f"{prefix}{n}"), sink)  # one row group: whole
        key = f"traces/{prefix}-{n}.parquet"
        landing.put(key, sink.getvalue())
        written[key] = rows
    return written


def exactly_once(url: str, written: dict, *, parts: int) -> tuple[int, int, int]:
    """(rows, lost, duplicated); asserts the ledger agrees: every file loaded, every part once."""
    with psycopg.connect(url, autocommit=True) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT span_id) FROM traces").fetchone()
        statuses = dict(conn.execute(
            "SELECT object_key, status FROM ingest_files WHERE object_key = ANY(%s)",
            (list(written),)).fetchall())
        ledger_rows = conn.execute(
            "SELECT coalesce(sum(row_count), 0) FROM ingest_files").fetchone()[0]
        part_rows = conn.execute(
            "SELECT count(*), coalesce(sum(row_count), 0) FROM ingest_parts").fetchone()
    assert statuses == dict.fromkeys(written, "loaded"), statuses
    assert ledger_rows == total and part_rows[0] == parts
    big = next(k for k in written if k.endswith("-big.parquet"))
    assert part_rows[1] == written[big]
    expected = sum(written.values())
    return total, expected - distinct, total - distinct


def committed_parts(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM ingest_parts").fetchone()[0]


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_worker_sigkilled_with_files_and_parts_in_flight(database_url, landing_dir, server_urls,
                                                         record_fault):
    """kill -9 of `ingest` while parts of a split file and other files are mid-COPY, after
    some parts committed; the next run loads exactly the missing parts and files."""
    settings = make_settings(database_url, landing_dir, **PARALLEL)
    written = write_files(open_landing(settings), big_groups=8, rows=3000, small=4)
    env = cli_env(database_url, str(landing_dir), COPY_WORKERS="3", COPY_SPLIT_BYTES="1000")
    worker = subprocess.Popen([CLI, "ingest"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    lock = None
    try:
        wait_for(lambda: committed_parts(database_url) >= 1, 120, "a first committed part")
        lock = TableLock(database_url, "traces")  # waits for COPYs in flight, blocks the next
        with psycopg.connect(server_urls["timescaledb"], autocommit=True) as admin:
            wait_for(lambda: admin.execute(
                "SELECT count(*) >= 3 FROM pg_stat_activity WHERE datname = %s "
                "AND query LIKE 'COPY %%' AND wait_event_type = 'Lock'",
                (dbname(database_url),)).fetchone()[0], 60, "three COPYs in flight")
        in_flight = committed_parts(database_url)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
        if lock is not None:
            lock.release()
    assert worker.returncode == -signal.SIGKILL
    struck = time.monotonic()
    summary = run_ingest(settings).as_dict()
    recovered = time.monotonic() - struck
    rows, lost, duplicated = exactly_once(database_url, written, parts=8)
    assert summary["ok"] and (lost, duplicated) == (0, 0)
    assert 1 <= in_flight < 8
    record_fault(
        fault="run worker SIGKILLed with 3 COPYs (parts of a split file and whole files) in "
              "flight", backend="timescaledb", files=len(written), rows=rows, lost=lost,
        duplicated=duplicated, recover_seconds=recovered,
        outcome=f"{in_flight} of 8 parts had committed and stayed; the next run loaded only "
                "the missing parts and files",
    )


def test_backend_terminated_mid_part(settings, backend, server_urls, record_fault):
    """pg_terminate_backend on one part's COPY while another part is in flight; the op's
    RetryPolicy resumes the split file with only its missing parts."""
    settings = make_settings(settings.database_url, settings.landing_url, copy_workers=2,
                             copy_split_bytes=1000)
    written = write_files(open_landing(settings), big_groups=4, rows=2000, small=0)
    lock = TableLock(settings.database_url, "traces")
    instance = dg.DagsterInstance.ephemeral()
    try:
        run = Background(lambda: execute_ingest(settings, instance=instance))
        with psycopg.connect(server_urls[backend], autocommit=True) as admin:
            db = dbname(settings.database_url)
            wait_for(lambda: admin.execute(
                "SELECT count(*) = 2 FROM pg_stat_activity WHERE datname = %s "
                "AND query LIKE 'COPY %%' AND wait_event_type = 'Lock'", (db,)).fetchone()[0],
                60, "two parts' COPYs")
            admin.execute("SELECT pg_terminate_backend(%s)", (blocked_copy_pid(admin, db),))
        struck = time.monotonic()
        lock.release()
        report, result = run.join(120)
        recovered = time.monotonic() - struck
    finally:
        lock.release()
    retries = step_retries(instance)
    instance.dispose()
    assert result.success, first_failure(result)
    rows, lost, duplicated = exactly_once(settings.database_url, written, parts=4)
    assert retries >= 1 and (lost, duplicated) == (0, 0)
    # the retry loaded what the first attempt had not committed: at most the 2 struck parts' worth
    assert 0 < report.rows <= written["traces/p-big.parquet"]
    record_fault(
        fault="backend terminated mid-part (split file, 2 parts in flight)", backend=backend,
        files=len(written), rows=rows, lost=lost, duplicated=duplicated,
        recover_seconds=recovered,
        outcome=f"the struck part rolled back; RetryPolicy ({retries} retry) resumed the file "
                f"and loaded its missing parts ({report.rows} rows)",
    )


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
    print(json.dumps([[f.key, f.status, f.rows] for f in report.files]))
    """
)


@pytest.mark.parametrize("backend", ["postgres"])
def test_three_processes_race_on_a_split_file(database_url, landing_dir, record_fault):
    settings = make_settings(database_url, landing_dir, **PARALLEL)
    written = write_files(open_landing(settings), big_groups=8, rows=1000, small=2, prefix="r")
    env = cli_env(database_url, str(landing_dir), COPY_WORKERS="2", COPY_SPLIT_BYTES="1000")
    keys = list(written)
    started = time.monotonic()
    lock = TableLock(database_url, "traces")  # hold every COPY until all three are in
    try:
        racers = [subprocess.Popen([sys.executable, "-c", _RACER, json.dumps(order),
                                    f"racer-{n}"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                  for n, order in enumerate([keys, keys[::-1], keys[1:] + keys[:1]])]
        with psycopg.connect(database_url, autocommit=True) as admin:
            wait_for(lambda: admin.execute(
                "SELECT count(*) >= 4 "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone()[0], 120, "the racers to collide")
    finally:
        lock.release()
    loaded_rows: dict[str, int] = dict.fromkeys(keys, 0)
    for racer in racers:
        out, err = racer.communicate(timeout=180)
        assert racer.returncode == 0, err
        for key, status, rows in json.loads(out):
            assert status in ("loaded", "skipped"), (key, status)
            loaded_rows[key] += rows
    elapsed = time.monotonic() - started
    rows, lost, duplicated = exactly_once(database_url, written, parts=8)
    assert loaded_rows == written and (lost, duplicated) == (0, 0)  # every row by exactly one
    with psycopg.connect(database_url, autocommit=True) as conn:
        by = conn.execute(sql.SQL("SELECT count(DISTINCT run_id) FROM ingest_parts")).fetchone()[0]
    record_fault(
        fault="three processes racing on one split file (8 parts) and two small files",
        backend="postgres", files=len(written), rows=rows, lost=lost, duplicated=duplicated,
        recover_seconds=None,
        outcome=f"in {elapsed:.1f}s the parts were loaded by {by} process(es), each part "
                "exactly once (ingest_parts primary key)",
    )


_LOADER = textwrap.dedent(
    """
    import signal
    # Ctrl-C's own handler, whatever this process inherited: a suite started in the
    # background (nohup, `cmd &` without job control) passes SIGINT on as ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from observatory_storage.ingest.discovery import pending_objects
    from observatory_storage.ingest.loader import load_objects
    from observatory_storage.db.connection import connect
    from observatory_storage.settings import load_settings
    settings = load_settings()
    with connect(settings) as conn:
        objects = pending_objects(settings, conn)
    load_objects(settings, objects, run_id="interrupted")
    """
)


@pytest.mark.parametrize("backend", ["timescaledb"])
def test_interrupted_load_cancels_its_copies_at_once(database_url, landing_dir, record_fault):
    """Ctrl-C (KeyboardInterrupt) of a loading process while its COPYs wait: they are
    cancelled, the process ends without waiting for them, nothing half-loaded stays, and the
    next run loads it all."""
    settings = make_settings(database_url, landing_dir, **PARALLEL)
    written = write_files(open_landing(settings), big_groups=4, rows=1000, small=2, prefix="i")
    env = cli_env(database_url, str(landing_dir), COPY_WORKERS="3", COPY_SPLIT_BYTES="1000")
    lock = TableLock(database_url, "traces")  # held throughout: the COPYs can only be cancelled
    try:
        worker = subprocess.Popen([sys.executable, "-c", _LOADER], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with psycopg.connect(database_url, autocommit=True) as admin:
            wait_for(lambda: admin.execute(
                "SELECT count(*) >= 3 FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY %%' AND wait_event_type = 'Lock'").fetchone()[0], 90,
                "three COPYs in flight")
            struck = time.monotonic()
            worker.send_signal(signal.SIGINT)
            worker.wait(30)
            ended = time.monotonic() - struck
            copying = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY %%' AND state = 'active'").fetchone()[0]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
        lock.release()
    assert worker.returncode != 0 and copying == 0
    summary = run_ingest(settings).as_dict()
    rows, lost, duplicated = exactly_once(database_url, written, parts=4)
    assert summary["ok"] and (lost, duplicated) == (0, 0)
    record_fault(
        fault="load interrupted (KeyboardInterrupt) with 3 COPYs waiting", backend="timescaledb",
        files=len(written), rows=rows, lost=lost, duplicated=duplicated, recover_seconds=None,
        outcome=f"the COPYs were cancelled and the process ended in {ended:.1f}s (the lock "
                "was still held); the next run loaded every file and part once",
    )
