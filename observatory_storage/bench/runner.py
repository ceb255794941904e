"""Run the chosen methods one after another, each in its own fresh database."""

from __future__ import annotations

from collections.abc import Callable

from observatory_storage.bench import databases
from observatory_storage.bench.catalog import DESCRIPTIONS, METHODS
from observatory_storage.bench.console import say
from observatory_storage.bench.data import BenchData
from observatory_storage.bench.methods import MethodSkipped, Options
from observatory_storage.bench.report import MethodResult
from observatory_storage.settings import redact_text


def run_method(
    name: str,
    data: BenchData,
    server_url: str,
    options: Options,
    *,
    keep: bool = False,
    log: Callable[[str], None] = say,
) -> MethodResult:
    result = MethodResult(name, DESCRIPTIONS[name])
    try:
        with databases.fresh_database(server_url, name, keep=keep) as url:
            result.database = databases.dbname(url)
            log(f"bench: {name} ...")
            load = METHODS[name](data, url, options)
            result.rows = databases.count_rows(url)
    except MethodSkipped as exc:
        result.skipped = str(exc)
        log(f"bench: {name} skipped: {exc}")
        return result
    except Exception as exc:  # one broken peer must not lose the other measurements
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        result.skipped = f"failed: {redact_text(first_line)[:300]}"
        log(f"bench: {name} FAILED: {result.skipped}")
        return result
    result.expected_rows = load.rows
    result.seconds = load.seconds
    result.sampled = load.sampled
    result.note = load.note
    if result.rows != load.rows:
        result.note = (result.note + f"; table holds {result.rows} of {load.rows} rows").strip("; ")
    log(
        f"bench: {name}: {result.rows:,} rows in {result.seconds:.2f} s "
        f"({result.rows_per_second or 0:,.0f} rows/s)"
    )
    return result


def run_methods(
    names: list[str],
    data: BenchData,
    server_url: str,
    options: Options,
    *,
    keep: bool = False,
) -> list[MethodResult]:
    return [run_method(n, data, server_url, options, keep=keep) for n in names]
