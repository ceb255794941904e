"""End to end through Dagster: a file dropped in the landing folder -> rows committed.

Runs ``dagster-daemon run`` on the project's ``workspace.yaml`` with the project's
``dagster.yaml`` in a temporary DAGSTER_HOME, against a fresh database and a temporary
landing folder: the landing sensor (running by default) and the queued run launcher do
the rest, exactly as under ``observatory-storage dev``. The clock starts just before a
file is renamed into place and stops when the ledger shows it committed (polled every
50 ms, so latencies carry up to 50 ms of polling).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pyarrow.parquet as pq

from observatory_storage.bench import databases
from observatory_storage.bench.console import say
from observatory_storage.bench.data import BenchData, spans
from observatory_storage.landing import open_landing
from observatory_storage.settings import PROJECT_ROOT, load_settings

SMALL_ROWS = 100
SINGLE_FILES = 20
BURST_FILES = 1_000
LARGE_FILES = 10
POLL_SECONDS = 0.05
STARTUP_TIMEOUT = 240


@contextlib.contextmanager
def daemon(url: str, landing: Path, home: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` in its own process group, stopped (group-wide) on exit."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # The benchmark's own URL: a DATABASE_URL_FILE or DB_PASSWORD_FILE of the caller's
    # environment would clash with it (settings refuse two sources for one URL).
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("DATABASE_URL_FILE", "DB_PASSWORD_FILE")}
    env = inherited | {
        "DAGSTER_HOME": str(home),
        "DATABASE_URL": url,
        "LANDING_URL": str(landing),
        "SENSOR_INTERVAL_SECONDS": "1",
    }
    binary = str(Path(sys.executable).parent / "dagster-daemon")
    log = open(home / "daemon.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [binary, "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        _kill_leftovers(home)


def _kill_leftovers(home: Path) -> None:
    """The daemon's code server runs in a session of its own and outlives the daemon's
    process group: end every process still working for this DAGSTER_HOME."""

    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("DAGSTER_HOME") == str(home):
                proc.kill()


def _parquet_bytes(table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _wait_loaded(conn: psycopg.Connection, keys: list[str], timeout: float) -> float:
    """Seconds until every key is loaded (raises TimeoutError)."""
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        done = conn.execute(
            "SELECT count(*) FROM ingest_files WHERE status = 'loaded' AND object_key = ANY(%s)",
            (keys,),
        ).fetchone()[0]
        if done == len(keys):
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{done} of {len(keys)} files loaded after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def run_e2e(data_dir: Path, server_url: str, data: BenchData | None = None) -> dict:

    small_rows = spans(SMALL_ROWS * 50, seed=4243)
    payloads = [
        _parquet_bytes(small_rows.slice((i % 50) * SMALL_ROWS, SMALL_ROWS))
        for i in range(SINGLE_FILES + BURST_FILES + 1)
    ]
    results = []
    # a run worker may still be flushing its event log into DAGSTER_HOME/history while
    # the folder is removed: leftovers in the temporary folder are harmless
    with tempfile.TemporaryDirectory(
        prefix="obs-bench-e2e-", ignore_cleanup_errors=True
    ) as tmp, databases.fresh_database(
        server_url, "e2e"
    ) as url:
        root = Path(tmp)
        landing_dir, home = root / "landing", root / "dagster_home"
        landing_dir.mkdir()
        home.mkdir()
        landing = open_landing(load_settings(database_url=url, landing_url=str(landing_dir)))
        with daemon(url, landing_dir, home), psycopg.connect(url, autocommit=True) as conn:
            say("bench: e2e: starting dagster-daemon, waiting for the first file ...")
            landing.put("traces/warmup.parquet", payloads[0])
            warmup = _wait_loaded(conn, ["traces/warmup.parquet"], STARTUP_TIMEOUT)
            say(f"bench: e2e: first file loaded {warmup:.1f} s after the daemon started")

            latencies = []
            for i in range(SINGLE_FILES):
                key = f"traces/single/{i:04d}.parquet"
                started = time.perf_counter()
                landing.put(key, payloads[1 + i])
                _wait_loaded(conn, [key], 120)
                latencies.append(time.perf_counter() - started)
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
            say(f"bench: e2e: single small file p50 {p50:.2f} s, p95 {p95:.2f} s")
            results += [
                _row("single small file p50", p50, "s", "<= 5 s", p50 <= 5.0),
                _row("single small file p95", p95, "s"),
            ]

            keys = [f"traces/burst/{i:04d}.parquet" for i in range(BURST_FILES)]
            started = time.perf_counter()
            for i, key in enumerate(keys):
                landing.put(key, payloads[1 + SINGLE_FILES + i])
            written = time.perf_counter() - started
            _wait_loaded(conn, keys, 600)
            burst = time.perf_counter() - started
            say(f"bench: e2e: {BURST_FILES} small files in {burst:.1f} s")
            results += [
                _row(f"{BURST_FILES:,} small files ({SMALL_ROWS} spans each), drop to committed",
                     burst, "s", "<= 60 s", burst <= 60.0),
                _row(f"  of which writing the {BURST_FILES:,} files", written, "s"),
            ]

            if data is not None and data.parquet_files:
                large = list(data.parquet_files[:LARGE_FILES])
                keys = [f"traces/large/{p.name}" for p in large]
                rows = sum(pq.ParquetFile(p).metadata.num_rows for p in large)
                started = time.perf_counter()
                for path, key in zip(large, keys, strict=True):
                    landing.put(key, path.read_bytes())
                _wait_loaded(conn, keys, 1800)
                seconds = time.perf_counter() - started
                say(f"bench: e2e: {len(large)} large files in {seconds:.1f} s")
                results += [
                    _row(f"{len(large)} large files ({rows:,} spans), drop to committed",
                         seconds, "s"),
                    _row("  large files, spans/s", rows / seconds, "rows/s"),
                ]
    return {"results": results, "startup_seconds": warmup}


def _row(name: str, value: float, unit: str, target: str = "", met: bool | None = None) -> dict:
    shown = f"{value:,.0f} {unit}" if unit == "rows/s" else f"{value:.2f} {unit}"
    return {"name": name, "value": shown, "seconds" if unit == "s" else unit: value,
            "target": target, "met": met}
