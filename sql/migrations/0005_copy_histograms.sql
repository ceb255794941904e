-- Scrape-time metrics of the health/metrics service (observatory_storage/service/).
--
-- The service computes Prometheus counters and histograms from durable tables: live
-- ledger rows (ingest_files) plus every ledger row ever deleted. 0003 folded rows into
-- ingest_totals only when ledger retention retired them; but `replay` deletes quarantined
-- rows too, and any deletion that is not folded makes a counter go down (Prometheus reads
-- that as a reset, so increase() alerts fire falsely). So here:
--   * a statement-level AFTER DELETE trigger folds EVERY deleted ledger row (retention,
--     replay, manual clean-up) into ingest_totals and ingest_histogram_totals, in the
--     deleting transaction; obs_retire_ledger_rows keeps its contract and now just deletes;
--   * ingest_totals gains attempts (failed attempts = attempts - loaded files);
--   * obs_histogram_bounds(metric) defines the COPY histogram buckets once; the service
--     reads them back, it has no copy of its own; obs_le_bucket() places a value;
--   * a partial index makes counting conflicts (in /health) an index lookup.
-- Not a write-path trigger: maintaining totals on INSERT/UPDATE would make concurrent
-- loaders of a dataset queue on the same totals rows until they commit.

CREATE OR REPLACE FUNCTION {{schema}}.obs_histogram_bounds(p_metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_metric
        -- seconds one file took from open to commit (ingest_files.duration_ms / 1000)
        WHEN 'copy_write_duration_seconds' THEN
            '{0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,900}'::float8[]
        -- rows one loaded file COPYed (ingest_files.row_count)
        WHEN 'copy_batch_size' THEN
            '{1,10,100,1000,10000,50000,100000,500000,1000000,5000000,10000000}'::float8[]
    END
$$;

-- 1-based index of the first bound >= p_value (Prometheus buckets are "le"); the array
-- length + 1 means +Inf. width_bucket counts the bounds <= p_value; a value equal to a
-- bound belongs to that bound's bucket. No subquery, so the planner inlines it.
CREATE OR REPLACE FUNCTION {{schema}}.obs_le_bucket(p_value float8, p_bounds float8[])
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(p_value, p_bounds) + 1
           - coalesce(p_value = p_bounds[width_bucket(p_value, p_bounds)], false)::integer
$$;

CREATE TABLE IF NOT EXISTS {{schema}}.ingest_histogram_totals (
    dataset text NOT NULL,
    metric  text NOT NULL,
    bucket  integer NOT NULL,     -- obs_le_bucket() of the observations counted here
    count   bigint NOT NULL DEFAULT 0,
    sum     double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, metric, bucket)
);

ALTER TABLE {{schema}}.ingest_totals ADD COLUMN IF NOT EXISTS attempts bigint;
UPDATE {{schema}}.ingest_totals SET attempts = files WHERE attempts IS NULL;
ALTER TABLE {{schema}}.ingest_totals ALTER COLUMN attempts SET DEFAULT 0;
ALTER TABLE {{schema}}.ingest_totals ALTER COLUMN attempts SET NOT NULL;

CREATE INDEX IF NOT EXISTS ingest_files_conflicts_idx ON {{schema}}.ingest_files (dataset)
    WHERE conflict_fingerprint IS NOT NULL;

-- Fold deleted ledger rows into the totals, in the deleting transaction.
CREATE OR REPLACE FUNCTION {{schema}}.obs_fold_deleted_ledger_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{schema}}.ingest_totals AS t (dataset, status, files, rows, bytes, attempts)
    SELECT dataset, status, count(*), coalesce(sum(row_count), 0),
           coalesce(sum(size_bytes), 0), coalesce(sum(attempts), 0)
    FROM gone GROUP BY dataset, status
    ORDER BY dataset, status  -- one lock order for concurrent deleters
    ON CONFLICT (dataset, status) DO UPDATE
        SET files = t.files + EXCLUDED.files,
            rows = t.rows + EXCLUDED.rows,
            bytes = t.bytes + EXCLUDED.bytes,
            attempts = t.attempts + EXCLUDED.attempts;

    INSERT INTO {{schema}}.ingest_histogram_totals AS h (dataset, metric, bucket, count, sum)
    SELECT dataset, metric,
           {{schema}}.obs_le_bucket(value, {{schema}}.obs_histogram_bounds(metric)) AS bucket,
           count(*), sum(value)
    FROM (
        SELECT dataset, 'copy_write_duration_seconds' AS metric, duration_ms / 1000.0 AS value
        FROM gone WHERE status = 'loaded' AND duration_ms IS NOT NULL
        UNION ALL
        SELECT dataset, 'copy_batch_size', row_count::float8 FROM gone WHERE status = 'loaded'
    ) AS observations
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (dataset, metric, bucket) DO UPDATE
        SET count = h.count + EXCLUDED.count, sum = h.sum + EXCLUDED.sum;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS ingest_files_fold_deleted ON {{schema}}.ingest_files;
CREATE TRIGGER ingest_files_fold_deleted
    AFTER DELETE ON {{schema}}.ingest_files
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.obs_fold_deleted_ledger_rows();

-- Same contract as in 0003 (delete ledger rows older than p_cutoff, only those whose
-- landing file is gone when p_only_left_landing); the trigger above does the folding.
CREATE OR REPLACE FUNCTION {{schema}}.obs_retire_ledger_rows(
    p_cutoff timestamptz, p_only_left_landing boolean DEFAULT true
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM {{schema}}.ingest_files
    WHERE loaded_at < p_cutoff
      AND (NOT p_only_left_landing OR landing_deleted_at IS NOT NULL OR status = 'quarantined');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
