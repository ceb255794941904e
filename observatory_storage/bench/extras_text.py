"""Markdown for the optional sections of a report: parallelism, indexes, memory, queries, e2e."""

from __future__ import annotations

MET = {True: "yes", False: "**no**", None: ""}


def _table(title: str, header: str, rule: str, rows: list[str]) -> str:
    return "\n".join([title, "", header, rule, *rows])


def _processes(title: str, rows: list[dict]) -> str:
    return _table(
        title,
        "| measurement | rows | seconds | rows/s | vs one psql stream | target | met? | load after |",
        "|---|---:|---:|---:|---:|---|---|---:|",
        [f"| {r['name']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_second']:,.0f} | "
         f"{r['vs_psql']:.2f}x | {r['target']} | {MET[r['met']]} | {r['load_average_after']} |"
         if r["vs_psql"] else
         f"| {r['name']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_second']:,.0f} | "
         f"- | {r['target']} | | {r['load_average_after']} |" for r in rows],
    )


def _scale(scale: dict) -> list[str]:
    head = ("| landing | files | ledger rows | tick s | full listing s | S3 requests per tick "
            "(full) | /health p50 / p99 s | /metrics refresh s | empty `ingest` s |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = []
    for where in ("local", "s3"):
        for r in scale.get(where, []):
            if "skipped" in r:
                rows.append(f"| {where} | skipped: {r['skipped']} | | | | | | | |")
                continue
            s3 = (f"{r['s3_requests_per_tick']} ({r['s3_requests_full']})"
                  if r.get("s3_requests_per_tick") is not None else "-")
            rows.append(f"| {where} | {r['files']:,} | {r['ledger_rows']:,} | {r['tick_s']} | "
                        f"{r['full_listing_s']} | {s3} | {r['health_p50_s']} / "
                        f"{r['health_p99_s']} | {r['metrics_refresh_s']} | "
                        f"{r.get('ingest_empty_s', '-')} |")
    parts = [_table(f"Scale with time ({scale.get('layout')}; every file loaded, one new):",
                    head, rule, rows)]
    f = scale.get("files_per_second")
    if f:
        parts.append(_table(
            f"Small files ({f['files']:,} Parquet files of 10 rows, {f['bytes_per_file']:,} B):",
            "| load | files/s |", "|---|---:|",
            [f"| group commits (COPY_GROUP_FILES=100) | {f['grouped_files_per_second']:,} |",
             f"| one transaction per file | {f['one_per_file_files_per_second']:,} |",
             f"| ratio | {f['ratio']}x |"]))
    return parts


def extras_markdown(extras: dict) -> list[str]:
    parts = []
    if "scale" in extras:
        parts += _scale(extras["scale"])
    if "processes" in extras:
        parts.append(_processes("Whole `observatory-storage ingest` processes (spawn to exit):",
                                extras["processes"]))
    if "plain_postgres" in extras:
        p = extras["plain_postgres"]
        parts.append("Plain PostgreSQL (embedded server), same data and methods:\n\n"
                     + p["table"])
        parts.append(_processes("Whole `ingest` processes on plain PostgreSQL:", p["processes"]))
    if "parallelism" in extras:
        parts.append(_table(
            "Parallel ingest (concurrent load_objects processes over disjoint files):",
            "| processes | rows | seconds | rows/s | speed-up |",
            "|---:|---:|---:|---:|---:|",
            [f"| {p['processes']} | {p['rows']:,} | {p['seconds']:.2f} | "
             f"{p['rows_per_second']:,.0f} | {p['speedup']:.2f}x |"
             for p in extras["parallelism"]],
        ))
    if "indexes" in extras:
        parts.append(_table(
            "Index trade-off (raw pgpq COPY of the same spans, fresh table per index set):",
            "| indexes on traces | rows | seconds | rows/s | vs no index |",
            "|---|---:|---:|---:|---:|",
            [f"| {r['indexes']} | {r['rows']:,} | {r['seconds']:.2f} | "
             f"{r['rows_per_second']:,.0f} | {r['relative']:.2f}x |"
             for r in extras["indexes"]],
        ))
    if "memory" in extras:
        m = extras["memory"]
        if m.get("skipped"):
            parts.append(f"Memory: skipped ({m['skipped']})")
        else:
            parts.append(
                f"Memory: one {m['file_mb']:,.0f} MB Parquet file ({m['rows']:,} spans) loaded in "
                f"{m['seconds']:.1f} s at peak RSS {m['peak_rss_mb']:.0f} MB "
                f"(interpreter + imports alone: {m['baseline_rss_mb']:.0f} MB); "
                f"target <= {m['target_mb']} MB: {MET[m['met']]}"
            )
    if "queries" in extras:
        q = extras["queries"]
        parts.append(_table(
            f"Queries at {q['rows']:,} spans (p50/p99 over {q['runs']} runs, warm cache):",
            "| backend | query | p50 ms | p99 ms | index used | target | met? |",
            "|---|---|---:|---:|---|---|---|",
            [f"| {r['backend']} | {r['query']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
             f"{r['index'] or 'none'} | {r.get('target', '')} | {MET[r.get('met')]} |"
             for r in q["results"]],
        ))
    if "otlp_decode" in extras:
        d = extras["otlp_decode"]
        parts.append(_table(
            f"OTLP decode + map alone ({d['spans']:,} SDK spans, {d['spans_per_message']:,} a message; "
            f"CPU time of one process per decoder, no database; peak RSS target "
            f"<= {d['rss_target_mb']} MB):",
            "| input | decoder | spans | CPU s | spans/s | vs python | peak RSS MB | target | met? | load after |",
            "|---|---|---:|---:|---:|---:|---:|---|---|---:|",
            [f"| {r['input']} | {r['decoder']} | {r['rows']:,} | {r['cpu_seconds']:.2f} | "
             f"{r['spans_per_second']:,} | {r['vs_python']:.2f}x | {r['peak_rss_mb']:.0f} | "
             f"{r['target'] or ''} | {MET[r['met']]} | {r['load_average_after']} |"
             for r in d["results"]],
        ))
    if "e2e" in extras:
        e = extras["e2e"]
        if e.get("skipped"):
            parts.append(f"End to end through Dagster: skipped ({e['skipped']})")
        else:
            parts.append(_table(
                "End to end through Dagster (daemon + landing sensor):",
                "| measurement | value | target | met? |",
                "|---|---:|---|---|",
                [f"| {r['name']} | {r['value']} | {r.get('target', '')} | {MET[r.get('met')]} |"
                 for r in e["results"]],
            ))
    return parts
