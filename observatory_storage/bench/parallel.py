"""Parallel ingest: N processes run ``load_objects`` over disjoint files of one database.

This is what N concurrent Dagster ingest runs do. Each level gets its own fresh database;
the clock runs from the moment every worker is ready (imports and connections done, the
same as a warm run worker) until the last one finishes.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from observatory_storage.bench import databases
from observatory_storage.bench.console import say
from observatory_storage.bench.data import BenchData
from observatory_storage.bench.methods import Options
from observatory_storage.db.connection import connect
from observatory_storage.ingest.discovery import pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.settings import load_settings


def _settings(url: str, data: BenchData, options: Options):

    overrides = {
        "copy_batch_size": options.copy_batch_size,
        "copy_buffer_size": options.copy_buffer_size,
    }
    return load_settings(
        database_url=url,
        landing_url=str(data.landing),
        **{k: v for k, v in overrides.items() if v is not None},
    )


def _worker(url, data, options, objects, barrier, results) -> None:

    settings = _settings(url, data, options)
    barrier.wait()
    started = time.time()
    report = load_objects(settings, objects, run_id=f"bench-parallel-{mp.current_process().pid}")
    results.put((started, time.time(), report.rows, report.count("loaded"), len(objects)))


def run_level(data: BenchData, server_url: str, processes: int, options: Options) -> dict:

    context = mp.get_context("spawn")
    with databases.fresh_database(server_url, f"parallel{processes}") as url:
        settings = _settings(url, data, options)
        with connect(settings) as conn:
            objects = pending_objects(settings, conn, datasets=["traces"])
        shares = [objects[i::processes] for i in range(processes)]
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(target=_worker, args=(url, data, options, share, barrier, results))
            for share in shares
        ]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=3600) for _ in workers]
        for w in workers:
            w.join()
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed:
            raise RuntimeError(f"parallel ingest worker(s) failed with exit codes {failed}")
        rows = databases.count_rows(url)
    seconds = max(o[1] for o in outcomes) - min(o[0] for o in outcomes)
    loaded = sum(o[3] for o in outcomes)
    if loaded != len(objects):
        raise RuntimeError(f"parallel ingest loaded {loaded} of {len(objects)} files")
    return {
        "processes": processes,
        "files": len(objects),
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
    }


def run_parallel(
    data: BenchData, server_url: str, levels: list[int], options: Options
) -> list[dict]:
    results = []
    for processes in levels:
        say(f"bench: parallel ingest with {processes} process(es) ...")
        result = run_level(data, server_url, processes, options)
        say(f"bench: {processes} process(es): {result['rows_per_second']:,.0f} rows/s")
        results.append(result)
    base = results[0]["rows_per_second"] if results else 0
    for r in results:
        r["speedup"] = r["rows_per_second"] / base if base else 0.0
    return results
