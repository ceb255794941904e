-- The ingest ledger: one row per landing object key. The row of a loaded file is written
-- in the same transaction as its COPY, so a file is in its table wholly or not at all, and
-- a loaded key is never loaded again (the primary key serializes racing runs).

CREATE TABLE IF NOT EXISTS {{schema}}.ingest_files (
    object_key      text PRIMARY KEY,
    dataset         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('loaded', 'quarantined')),
    fingerprint     text NOT NULL,            -- size + mtime/etag of the object read
    size_bytes      bigint NOT NULL,
    row_count       bigint NOT NULL DEFAULT 0,
    error           text,                      -- why a file was quarantined
    error_column    text,
    error_row       bigint,
    quarantine_key  text,                      -- where the file was moved, if it was
    run_id          text,
    attempts        integer NOT NULL DEFAULT 1,
    duration_ms     double precision,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    conflict_fingerprint text,                 -- a loaded key reappeared with other content
    conflict_at     timestamptz,
    landing_deleted_at timestamptz             -- landing retention removed the file
);

CREATE INDEX IF NOT EXISTS ingest_files_dataset_status_idx
    ON {{schema}}.ingest_files (dataset, status, loaded_at DESC);
CREATE INDEX IF NOT EXISTS ingest_files_loaded_at_idx ON {{schema}}.ingest_files (loaded_at);

-- Totals of ledger rows already retired by ledger retention, so counters exposed to
-- Prometheus never go down when old ledger rows are deleted.
CREATE TABLE IF NOT EXISTS {{schema}}.ingest_totals (
    dataset     text NOT NULL,
    status      text NOT NULL,
    files       bigint NOT NULL DEFAULT 0,
    rows        bigint NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, status)
);

-- Delete ledger rows older than p_cutoff (only those whose landing file is gone when
-- p_only_left_landing), folding them into ingest_totals in the same transaction.
CREATE OR REPLACE FUNCTION {{schema}}.obs_retire_ledger_rows(
    p_cutoff timestamptz, p_only_left_landing boolean DEFAULT true
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    WITH gone AS (
        DELETE FROM {{schema}}.ingest_files
        WHERE loaded_at < p_cutoff
          AND (NOT p_only_left_landing OR landing_deleted_at IS NOT NULL OR status = 'quarantined')
        RETURNING dataset, status, row_count, size_bytes
    ), agg AS (
        SELECT dataset, status, count(*) AS files, sum(row_count) AS rows, sum(size_bytes) AS bytes
        FROM gone GROUP BY dataset, status
    ), upsert AS (
        INSERT INTO {{schema}}.ingest_totals AS t (dataset, status, files, rows, bytes)
        SELECT dataset, status, files, rows, bytes FROM agg
        ON CONFLICT (dataset, status) DO UPDATE
            SET files = t.files + EXCLUDED.files,
                rows = t.rows + EXCLUDED.rows,
                bytes = t.bytes + EXCLUDED.bytes
        RETURNING 1
    )
    SELECT coalesce(sum(files), 0) INTO n FROM agg;
    RETURN n;
END
$$;
