"""Measure scrape cost over a large synthetic ledger (not a test; run by hand).

    .venv/bin/python -m tests.service.scrape_bench postgresql://postgres@127.0.0.1:55432/postgres 1000000

Creates (or reuses) database ``obs_svc_bench_<rows>`` on that server, migrates it, fills
``ingest_files`` with synthetic rows via generate_series, VACUUMs it (as autovacuum
would) and prints the time of the ledger queries one scrape and one /health make.
"""

from __future__ import annotations

import statistics
import sys
import time

import psycopg
from psycopg import sql

from observatory_storage.maintenance.migrate import migrate
from observatory_storage.service import facts
from observatory_storage.settings import load_settings
from tests.conftest import with_dbname

FILL = """
INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes, row_count,
                          attempts, duration_ms, loaded_at, run_id)
SELECT format('%s/2026/%s/batch-%s.parquet', ds, i % 365, i), ds,
       CASE WHEN i % 97 = 0 THEN 'quarantined' ELSE 'loaded' END,
       md5(i::text), 100000 + i % 5000000, (i * 7919) % 200000, 1 + (i % 13 = 0)::int,
       5 + (i * 31) % 20000, now() - make_interval(secs => i), 'run-' || (i / 500)
FROM generate_series(1::bigint, {rows}) AS i,
     LATERAL (SELECT (ARRAY['traces','metrics','logs'])[1 + i % 3] AS ds) AS d
"""


def main(server_url: str, rows: int) -> None:
    name = f"obs_svc_bench_{rows}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_dbname(server_url, name)
    settings = load_settings(database_url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, settings)
        have = conn.execute("SELECT count(*) FROM ingest_files").fetchone()[0]
        if have != rows:
            conn.execute("TRUNCATE ingest_files")
            started = time.perf_counter()
            conn.execute(FILL.format(rows=int(rows)))
            conn.execute("VACUUM ANALYZE ingest_files")
            print(f"filled {rows} rows in {time.perf_counter() - started:.1f} s")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('ingest_files'))"
        ).fetchone()[0]
        for label, fn in (
            ("metrics (ingest_counters)", lambda: facts.ingest_counters(conn, "public")),
            ("health (ledger_summary)", lambda: facts.ledger_summary(conn, "public")),
        ):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                fn()
                times.append((time.perf_counter() - started) * 1000)
            print(f"{rows} rows ({size}): {label}: median {statistics.median(times):.0f} ms "
                  f"min {min(times):.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
