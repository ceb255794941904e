"""The ledger at scale: every query the product runs on ingest_files/ingest_parts is
served by an index, checked on the plans PostgreSQL chooses for a 1M-row ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from observatory_storage.ingest import discovery, ledger
from observatory_storage.landing import open_landing
from observatory_storage.maintenance import checks, compression, rollups, vacuum
from observatory_storage.maintenance.landing_retention import expire_landing_files
from observatory_storage.service import facts
from tests.conftest import make_settings

ROWS = 1_000_000
LEDGER = ("ingest_files", "ingest_parts")


class Explaining(psycopg.Cursor):
    """Runs EXPLAIN of every statement that reads the ledger before running it."""

    plans: list[tuple[str, dict]] = []

    def execute(self, query, params=None, **kwargs):
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        if any(t in text for t in LEDGER) and text.lstrip().upper().startswith(("SELECT", "WITH")):
            with psycopg.ClientCursor(self.connection) as cur:
                plan = cur.execute(f"EXPLAIN (FORMAT JSON) {text}", params).fetchone()[0]
            Explaining.plans.append((text, plan[0]["Plan"]))
        return super().execute(query, params, **kwargs)


def _seq_scans(node: dict) -> list[str]:
    found = [node["Relation Name"]] if node.get("Node Type") == "Seq Scan" and \
        node.get("Relation Name") in LEDGER else []
    for child in node.get("Plans", ()):
        found += _seq_scans(child)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_every_ledger_query_uses_an_index(backend, database_url, landing_dir, db):
    # 1M rows over 90 days, three datasets; a few quarantined and untimed ones; files older
    # than a week have left the landing (as landing retention leaves them). The counters'
    # triggers are off for the bulk insert: the plans are the point here.
    db.execute("ALTER TABLE ingest_files DISABLE TRIGGER USER")
    db.execute(
        """INSERT INTO ingest_files (object_key, dataset, status, fingerprint, size_bytes,
               row_count, run_id, loaded_at, min_time, max_time, landing_deleted_at,
               duration_ms, error)
           SELECT format('%%s/2026/%%s/f-%%s.parquet', ds, i %% 97, i), ds,
                  CASE WHEN i %% 1000 = 0 THEN 'quarantined' ELSE 'loaded' END, 'fp', 4096,
                  50, 'run-' || (i / 500), at,
                  CASE WHEN i %% 100 = 0 THEN NULL ELSE at - interval '5 minutes' END,
                  CASE WHEN i %% 100 = 0 THEN NULL ELSE at - interval '1 minute' END,
                  CASE WHEN at < now() - interval '7 days' THEN at + interval '7 days' END,
                  30.0, CASE WHEN i %% 1000 = 0 THEN 'bad' END
           FROM (SELECT i, (ARRAY['traces', 'metrics', 'logs'])[1 + i %% 3] AS ds,
                        now() - (i * interval '90 days' / %s) AS at
                 FROM generate_series(1, %s) AS i) AS g""", (ROWS, ROWS))
    db.execute("ALTER TABLE ingest_files ENABLE TRIGGER USER")
    db.execute("ANALYZE ingest_files")
    settings = make_settings(database_url, landing_dir)
    schema, now = settings.db_schema, datetime.now(UTC)
    Explaining.plans = []
    with psycopg.connect(database_url, autocommit=True, cursor_factory=Explaining) as conn:
        keys = [f"traces/2026/{i % 97}/f-{i}.parquet" for i in range(3, 3000, 3)]
        ledger.lookup(conn, schema, keys)  # discovery, the loader, replay
        ledger.quarantined(conn, schema)  # replay --all
        facts.ledger_summary(conn, schema)  # /health, /metrics
        facts.ingest_counters(conn, schema)  # /metrics: no ledger at all
        checks.run_span(conn, settings, "traces", "run-3")  # each materialization
        checks.consistency(conn, settings, "traces", "run-3")  # loaded_rows_stored
        checks.rollup_vs_raw(conn, settings, "traces")  # hourly_matches_raw
        rollups.hours_from_ledger(conn, settings, "traces", now - timedelta(hours=2))
        vacuum.written_ranges(conn, settings, now - timedelta(days=1))
        compression.observed_lateness(conn, settings, now)
        expire_landing_files(conn, settings, now, dry_run=True, landing=open_landing(settings))
        discovery.discover(settings, conn, open_landing(settings), ["traces"], write=False)
        conn.execute("SELECT count(*) FROM ingest_parts WHERE object_key = %s", (keys[0],))
    assert len(Explaining.plans) >= 12, [t for t, _ in Explaining.plans]
    scans = {text: _seq_scans(plan) for text, plan in Explaining.plans}
    assert not {t: s for t, s in scans.items() if s}, json.dumps(
        {t[:200]: s for t, s in scans.items() if s}, indent=1)
