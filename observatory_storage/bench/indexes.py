"""The index trade-off: the same spans raw-COPYed into traces under different index sets.

Every index makes each inserted row touch one more structure, so the index set, more than
the client, sets the ingest ceiling. Each variant gets a fresh migrated database whose
shipped secondary indexes are replaced by the variant's, then the ``raw`` method (pgpq
binary COPY, no framework) loads the data, so only the indexes differ between rows.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from observatory_storage.bench import databases
from observatory_storage.bench.data import BenchData
from observatory_storage.bench.methods import Options, raw
from observatory_storage.datasets import TRACES

SHIPPED = {ix.name: ix.definition for ix in TRACES.indexes}

# label -> {index name: definition after "ON traces"}
VARIANTS: dict[str, dict[str, str]] = {
    "no secondary index": {},
    "start_time btree": {"traces_start_time_idx": SHIPPED["traces_start_time_idx"]},
    "start_time + trace_id hash": {
        "traces_start_time_idx": SHIPPED["traces_start_time_idx"],
        "traces_trace_id_idx": SHIPPED["traces_trace_id_idx"],
    },
    "start_time + trace_id btree": {
        "traces_start_time_idx": SHIPPED["traces_start_time_idx"],
        "traces_trace_id_idx": "(trace_id)",
    },
    "shipped (4 indexes)": SHIPPED,
    "shipped + btree (service_name, start_time)": SHIPPED
    | {"traces_service_time_idx": "(service_name, start_time DESC)"},
}


def _use_indexes(url: str, indexes: dict[str, str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in SHIPPED:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
        for name, definition in indexes.items():
            conn.execute(
                sql.SQL("CREATE INDEX {} ON traces ").format(sql.Identifier(name))
                + sql.SQL(definition)  # definitions are constants of this module
            )


def run_indexes(data: BenchData, server: str, options: Options) -> list[dict]:
    results = []
    baseline = None
    for label, indexes in VARIANTS.items():
        with databases.fresh_database(server, "indexes") as url:
            _use_indexes(url, indexes)
            load = raw(data, url, options)
            assert databases.count_rows(url) == load.rows
        rate = load.rows / load.seconds if load.seconds else 0.0
        baseline = baseline or rate
        results.append({
            "indexes": label,
            "count": len(indexes),
            "rows": load.rows,
            "seconds": load.seconds,
            "rows_per_second": rate,
            "relative": rate / baseline if baseline else 0.0,
        })
    return results
