"""One ``observatory-storage bench`` invocation: prepare the data, run the chosen methods in
fresh databases, add the extra measurements asked for, and build one report."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from observatory_storage.bench import data as bench_data
from observatory_storage.bench import databases
from observatory_storage.bench.catalog import METHODS
from observatory_storage.bench.console import say
from observatory_storage.bench.e2e import run_e2e
from observatory_storage.bench.extras_text import extras_markdown
from observatory_storage.bench.indexes import run_indexes
from observatory_storage.bench.memory import run_memory
from observatory_storage.bench.methods import Options
from observatory_storage.bench.otlp import run_decode
from observatory_storage.bench.parallel import run_parallel
from observatory_storage.bench.processes import run_processes
from observatory_storage.bench.queries import run_queries
from observatory_storage.bench.report import Report, machine, package_versions
from observatory_storage.bench.runner import run_methods
from observatory_storage.bench.scale import run_scale
from observatory_storage.db import embedded
from observatory_storage.settings import Settings

__all__ = ["METHODS", "Options", "databases", "markdown", "run"]


def run(settings: Settings, server: str, *, rows: int, methods: list[str], data_dir: Path,
        options: Options, copy_suite: bool = False, levels: list[int] = (),
        big_file_gb: float = 0.0, indexes: bool = False, queries: bool = False,
        query_rows: int = 10_000_000, e2e: bool = False, keep: bool = False,
        scale: dict | None = None, otlp_decode: bool = False) -> Report:
    report = Report(
        backend=databases.backend_kind(server),
        server=databases.shown(server),
        rows=rows,
        machine=machine() | {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
        versions=package_versions() | databases.server_versions(server),
    )
    if scale is not None:
        report.extras["scale"] = run_scale(server, data_dir, **scale)
    if not methods and not otlp_decode:
        return report  # --scale alone
    say(f"bench: {rows:,} spans on {report.backend} ({report.server}); preparing data ...")
    data = bench_data.prepare(data_dir / f"spans-{rows}", rows)
    if methods:
        report.methods = run_methods(methods, data, server, options, keep=keep)
        report.score()
    if copy_suite:
        _copy_suite(report, data, server, options, settings, keep)
    if levels:
        report.extras["parallelism"] = run_parallel(data, server, levels, options)
    if big_file_gb > 0:
        report.extras["memory"] = run_memory(data_dir, server, big_file_gb, options)
    if indexes:
        report.extras["indexes"] = run_indexes(data, server, options)
    if queries:
        report.extras["queries"] = run_queries(data_dir, server, query_rows, settings)
    if e2e:
        report.extras["e2e"] = run_e2e(data_dir, server, data)
    if otlp_decode:
        report.extras["otlp_decode"] = run_decode(data)
    return report


def _copy_suite(report, data, server, options, settings, keep: bool) -> None:
    """Whole ingest processes on this server; the same methods on plain PostgreSQL."""
    psql = report.method("psql")
    say("bench: whole ingest processes ...")
    report.extras["processes"] = run_processes(data, server, psql and psql.rows_per_second)
    if report.backend != "timescaledb":
        return
    plain = embedded.ensure_started(settings.embedded_pg_dir)
    say(f"bench: the same methods on plain PostgreSQL ({databases.shown(plain)}) ...")
    other = Report(backend="postgres", server=databases.shown(plain), rows=report.rows)
    other.methods = run_methods([m.method for m in report.methods], data, plain, options,
                                keep=keep)
    other.score()
    psql = other.method("psql")
    report.extras["plain_postgres"] = {
        "methods": [m.as_dict() for m in other.methods],
        "table": other.table(),
        "processes": run_processes(data, plain, psql and psql.rows_per_second),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def markdown(report: Report) -> str:
    head = (
        f"{report.rows:,} spans, backend {report.backend}, "
        f"{report.machine.get('nproc')} CPUs, load {report.machine.get('load_average_at_start')}"
    )
    table = [report.table()] if report.methods else []
    return "\n\n".join([head, *table, *extras_markdown(report.extras)]).rstrip()
