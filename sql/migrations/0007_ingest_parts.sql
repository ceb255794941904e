-- Parallel loads within one big file (ingest/parts.py): a Parquet / Arrow IPC file above
-- COPY_SPLIT_BYTES is split into parts (row-group / record-batch ranges) that load
-- concurrently, each in its own transaction with its own ledger row here, so a retry loads
-- only the parts still missing. The file's ingest_files row says how it was split
-- (part_bounds, fixed when the split is first claimed, so every process and retry uses the
-- same parts whatever its settings) and moves through new states:
--   loading  parts are being loaded; rows of committed parts are already visible
--   loaded   every part committed: row_count/min_time/max_time summarize the parts
--   partial  a part was refused after other parts had committed: those rows stay (they
--            cannot be told apart from other files' rows), the rest is not loaded, the
--            file is set aside like a quarantined one; never retried nor replayed
-- A file that fails before any part commits is 'quarantined' exactly like a small file.

ALTER TABLE {{schema}}.ingest_files DROP CONSTRAINT IF EXISTS ingest_files_status_check;
ALTER TABLE {{schema}}.ingest_files ADD CONSTRAINT ingest_files_status_check
    CHECK (status IN ('loaded', 'quarantined', 'loading', 'partial'));
ALTER TABLE {{schema}}.ingest_files ADD COLUMN IF NOT EXISTS part_bounds integer[];

CREATE TABLE IF NOT EXISTS {{schema}}.ingest_parts (
    object_key  text NOT NULL REFERENCES {{schema}}.ingest_files (object_key) ON DELETE CASCADE,
    part        integer NOT NULL,          -- 0-based; units part_bounds[part+1]..part_bounds[part+2]-1
    fingerprint text NOT NULL,             -- of the file version the part was read from
    row_count   bigint NOT NULL DEFAULT 0,
    min_time    timestamptz,
    max_time    timestamptz,
    run_id      text,
    duration_ms double precision,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object_key, part)
);
