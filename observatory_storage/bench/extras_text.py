"""Markdown for the optional sections of a report: parallelism, memory, queries, e2e."""

from __future__ import annotations


def extras_markdown(extras: dict) -> list[str]:
    parts = []
    if "parallelism" in extras:
        lines = [
            "Parallel ingest (concurrent load_objects processes over disjoint files):",
            "",
            "| processes | rows | seconds | rows/s | speed-up |",
            "|---:|---:|---:|---:|---:|",
        ]
        for p in extras["parallelism"]:
            lines.append(
                f"| {p['processes']} | {p['rows']:,} | {p['seconds']:.2f} | "
                f"{p['rows_per_second']:,.0f} | {p['speedup']:.2f}x |"
            )
        parts.append("\n".join(lines))
    if "indexes" in extras:
        lines = [
            "Index trade-off (raw pgpq COPY of the same spans, fresh table per index set):",
            "",
            "| indexes on traces | rows | seconds | rows/s | vs no index |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in extras["indexes"]:
            lines.append(
                f"| {r['indexes']} | {r['rows']:,} | {r['seconds']:.2f} | "
                f"{r['rows_per_second']:,.0f} | {r['relative']:.2f}x |"
            )
        parts.append("\n".join(lines))
    if "memory" in extras:
        m = extras["memory"]
        if m.get("skipped"):
            parts.append(f"Memory: skipped ({m['skipped']})")
        else:
            met = "yes" if m["met"] else "**no**"
            parts.append(
                f"Memory: one {m['file_mb']:,.0f} MB Parquet file ({m['rows']:,} spans) loaded in "
                f"{m['seconds']:.1f} s at peak RSS {m['peak_rss_mb']:.0f} MB "
                f"(interpreter + imports alone: {m['baseline_rss_mb']:.0f} MB); "
                f"target <= {m['target_mb']} MB: {met}"
            )
    if "queries" in extras:
        q = extras["queries"]
        lines = [
            f"Queries at {q['rows']:,} spans (p50/p99 over {q['runs']} runs, warm cache):",
            "",
            "| backend | query | p50 ms | p99 ms | index used | target | met? |",
            "|---|---|---:|---:|---|---|---|",
        ]
        for r in q["results"]:
            met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
            lines.append(
                f"| {r['backend']} | {r['query']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['index'] or 'none'} | {r.get('target', '')} | {met} |"
            )
        parts.append("\n".join(lines))
    if "e2e" in extras:
        e = extras["e2e"]
        if e.get("skipped"):
            parts.append(f"End to end through Dagster: skipped ({e['skipped']})")
        else:
            lines = [
                "End to end through Dagster (daemon + landing sensor):",
                "",
                "| measurement | value | target | met? |",
                "|---|---:|---|---|",
            ]
            for r in e["results"]:
                met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
                lines.append(f"| {r['name']} | {r['value']} | {r.get('target', '')} | {met} |")
            parts.append("\n".join(lines))
    return parts
