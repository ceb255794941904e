"""``bench --scale``: what a tick, a scrape, a refresh and an empty ``ingest`` cost as the
landing and the ledger grow (issue 19), next to what a full listing costs at the same size.

Per size: a landing of that many retained files (every one loaded: a ledger row with its
fingerprint), in the Collector's awss3exporter layout (minute folders over 7 days), on a
local folder and on an S3 API (moto's server, when installed); a ledger of at least
``ledger_rows`` rows (the landing's keys plus synthetic ones, written by COPY). Measured:

- ``tick``: the discovery pass of a sensor tick (``pending_objects`` + ``list_outside``),
  with NEW_FILES (100) new files pending in the newest minute folder; ``full``: the same pass listing every key (what a tick cost
  before incremental discovery, and what ``ingest --sweep`` costs);
- ``s3_requests``: S3 API calls of one tick (boto's own event hook counts them);
- ``health_p50/p99``: ``/health`` documents, each computed anew (no cache);
- ``metrics_refresh``: one recomputation of the /metrics counters;
- ``ingest_empty``: the whole ``observatory-storage ingest`` process with nothing pending.

Separately, ``files_per_second``: one load of many 10-row Parquet files with group commits
(COPY_GROUP_FILES=100) and without (one transaction per file), side by side.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg_pool import ConnectionPool

from observatory_storage.bench import databases
from observatory_storage.bench.console import say
from observatory_storage.db.connection import connect
from observatory_storage.generate import build_table
from observatory_storage.ingest.discovery import Pass, discover, pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from observatory_storage.landing.keys import LANDING_ROOTS
from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.service.health import health_document
from observatory_storage.service.snapshot import CounterRefresher
from observatory_storage.settings import load_settings

NEWEST = dt.datetime(2026, 12, 7, 23, 59, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=7)
MTIME_NS = 1_764_000_000_000_000_000  # every bench file's mtime: fingerprints are known
PARTITION = "year={:%Y}/month={:%m}/day={:%d}/hour={:%H}/minute={:%M}"


def _key(i: int, n: int) -> str:
    at = NEWEST - SPAN * (i / max(n, 1))
    return f"traces/{PARTITION.format(at, at, at, at, at)}/traces_{i:08d}.parquet"


NEW_FILES = 100  # files pending at each measured tick


def _new_keys() -> list[str]:
    return [_key(0, 1).replace("traces_", f"new_{j:03d}_") for j in range(NEW_FILES)]


def _make_local(root: Path, n: int) -> list[str]:
    done = root / f".complete-{n}"
    keys = [_key(i, n) for i in range(n)]
    if done.exists():
        return keys
    for key in keys:
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, ns=(MTIME_NS, MTIME_NS))
    done.write_text("ok\n")
    return keys


def _make_s3(client, bucket: str, n: int) -> list[str]:
    keys = [_key(i, n) for i in range(n)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=f"landing/{key}", Body=b"x")
    return keys


def _fill_ledger(url: str, objects: dict[str, str], rows: int) -> None:
    """The landing's keys as loaded (their own fingerprints), plus synthetic rows up to
    ``rows``; by COPY, the counters' triggers off (the plans and costs are the point)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ingest_files DISABLE TRIGGER USER")
        with conn.cursor().copy("COPY ingest_files (object_key, dataset, status, fingerprint, "
                                "size_bytes, row_count, loaded_at) FROM STDIN") as copy:
            at = NEWEST.isoformat()
            for key, fingerprint in objects.items():
                copy.write_row((key, "traces", "loaded", fingerprint, 1, 10, at))
            for i in range(max(rows - len(objects), 0)):
                copy.write_row((f"traces/old/{i:09d}.parquet", "traces", "loaded", "f", 1, 10,
                                at))
        conn.execute("ALTER TABLE ingest_files ENABLE TRIGGER USER")
        conn.execute("ANALYZE ingest_files")


def _seconds(work, times: int = 3) -> float:
    values = []
    for _ in range(times):
        started = time.perf_counter()
        work()
        values.append(time.perf_counter() - started)
    return statistics.median(values)


def _count_requests(landing) -> list[int]:
    calls = [0]
    client = getattr(landing, "client", None)
    if client is not None:
        client.meta.events.register("before-call.s3.*", lambda **_: calls.__setitem__(
            0, calls[0] + 1))
    return calls


def measure(settings, landing, url: str) -> dict:
    """One size: tick (incremental and full), S3 calls, /health, /metrics, empty ingest."""
    for key in _new_keys():  # what arrived since the last tick
        landing.put(key, b"x")
    calls = _count_requests(landing)
    out: dict = {}

    def tick():
        with connect(settings, autocommit=True) as conn:
            pending_objects(settings, conn, landing=landing)
        list(landing.list_outside())

    tick()  # the first pass of a root lists everything: measure the passes after it
    calls[0] = 0
    out["tick_s"] = round(_seconds(tick), 4)
    out["s3_requests_per_tick"] = calls[0] // 3 if calls[0] else None

    def full():
        with connect(settings, autocommit=True) as conn:
            discover(settings, conn, landing, LANDING_ROOTS, sweep=True, write=False,
                     report=Pass())
    calls[0] = 0
    out["full_listing_s"] = round(_seconds(full, 1), 4)
    out["s3_requests_full"] = calls[0] or None
    with ConnectionPool(url, min_size=1, max_size=2, open=True) as pool:
        durations = []
        for _ in range(20):
            backlog = LandingBacklog(settings, pool, probe_timeout=10)  # no cache
            started = time.perf_counter()
            health_document(pool, settings, backlog)
            durations.append(time.perf_counter() - started)
        durations.sort()
        out["health_p50_s"] = round(statistics.median(durations), 4)
        out["health_p99_s"] = round(durations[-1], 4)  # of 20: the slowest
        refresher = CounterRefresher(pool, settings, timeout=30)
        refresher.refresh()
        out["metrics_refresh_s"] = round(refresher.latest.duration_seconds, 4)
    if not landing.url.startswith("s3://"):
        cli = Path(sys.executable).with_name("observatory-storage")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LANDING_"))}
        env |= {"DATABASE_URL": url, "LANDING_URL": landing.url}
        subprocess.run([str(cli), "ingest"], env=env, capture_output=True, timeout=600)  # loads the new file
        out["ingest_empty_s"] = round(_seconds(lambda: subprocess.run(
            [str(cli), "ingest"], env=env, capture_output=True, timeout=600, check=True)), 3)
    return out


def files_per_second(server: str, data_dir: Path, files: int = 2000) -> dict:
    """One load of ``files`` 10-row Parquet files, grouped and one transaction per file."""
    folder = data_dir / f"small-{files}"
    if not (folder / ".complete").exists():
        buffer = io.BytesIO()
        pq.write_table(build_table("traces", 10, seed=1, start=NEWEST - SPAN), buffer)
        data = buffer.getvalue()
        for i in range(files):
            path = folder / "traces" / f"{i // 500:03d}" / f"small-{i:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (folder / ".complete").write_text("ok\n")
    out = {"files": files, "bytes_per_file": (folder / "traces" / "000" /
                                               "small-000000.parquet").stat().st_size}
    for label, group in (("grouped", 100), ("one_per_file", 1)):
        with databases.fresh_database(server, f"small{group}") as url:
            settings = load_settings(database_url=url, landing_url=str(folder),
                                     copy_group_files=group)
            with connect(settings) as conn:
                objects = pending_objects(settings, conn)
            started = time.perf_counter()
            report = load_objects(settings, objects)
            seconds = time.perf_counter() - started
            assert report.count("loaded") == files, report.format_table()
            out[f"{label}_files_per_second"] = round(files / seconds, 1)
    out["ratio"] = round(out["grouped_files_per_second"] / out["one_per_file_files_per_second"],
                         2)
    return out


def run_scale(server: str, data_dir: Path, sizes: list[int], ledger_rows: list[int],
              s3_sizes: list[int]) -> dict:
    """Every size on a local landing (and S3 when moto is installed), then files/s."""
    results: dict = {"local": [], "s3": [], "layout": "awss3exporter minute folders over 7 days"}
    for n in sizes:
        root = data_dir / f"scale-{n}"
        say(f"bench --scale: {n:,} local files ...")
        keys = _make_local(root, n)
        landing = open_landing(load_settings(landing_url=str(root)))
        # the smallest ledger that holds the landing; the largest landing with every one
        fitting = [r for r in ledger_rows if r >= n] or [n]
        for rows in fitting if n == max(sizes) else fitting[:1]:
            with databases.fresh_database(server, "scale") as url:
                _fill_ledger(url, {k: f"1-{MTIME_NS}" for k in keys}, rows)
                settings = load_settings(database_url=url, landing_url=str(root))
                results["local"].append({"files": n, "ledger_rows": rows,
                                         **measure(settings, landing, url)})
                for key in _new_keys():
                    root.joinpath(*key.split("/")).unlink(missing_ok=True)
    results["s3"] = _run_s3(server, s3_sizes, ledger_rows)
    say("bench --scale: files per second ...")
    results["files_per_second"] = files_per_second(server, data_dir)
    return results


def _run_s3(server: str, sizes: list[int], ledger_rows: list[int]) -> list[dict]:
    try:
        import boto3  # noqa: F401 - a dependency of the product
        from moto.server import ThreadedMotoServer  # lazy: moto is a test extra
    except ImportError:
        return [{"skipped": "moto is not installed (pip install -e '.[test]')"}]
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_REGION="us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: a line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    out = []
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for n in sizes:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            settings = load_settings(landing_url=f"s3://{bucket}/landing", s3_endpoint_url=endpoint)
            landing = open_landing(settings)
            landing.client.create_bucket(Bucket=bucket)
            say(f"bench --scale: {n:,} S3 objects ...")
            keys = _make_s3(landing.client, bucket, n)
            etags = {o.key: o.fingerprint for o in landing.list("traces")}
            rows = max([r for r in ledger_rows if r >= n] or [n])
            with databases.fresh_database(server, "scales3") as url:
                _fill_ledger(url, {k: etags[k] for k in keys}, rows)
                settings = settings.model_copy(update={"database_url": url})
                out.append({"files": n, "ledger_rows": rows, **measure(settings, landing, url)})
    finally:
        moto.stop()
    return out
