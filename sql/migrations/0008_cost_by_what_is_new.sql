-- Cost by what is new (issue 19): a sensor tick, a /metrics refresh and an empty `ingest`
-- do work proportional to what is new, not to everything ever kept.
--
--   1. ingest_files.datasets: rows per table of an OTLP file that loaded into several
--      tables, so such a file counts under each of its tables.
--   2. Discovery state (ingest/discovery.py): when each landing root was last swept (listed
--      in full), and the backlog of listed files not settled yet. It only saves listing
--      work: the ledger alone says what is loaded; losing these rows costs one sweep.
--   3. Counters kept as ledger rows change, by statement-level triggers in the writing
--      transaction: /metrics reads a few dozen rows instead of aggregating the ledger. Rows
--      are sharded by backend (pg_backend_pid() % 16), so concurrent loaders do not queue
--      on one counter row. A deleted ledger row (replay, retention) keeps its counts (so
--      counters never go down) except its unpriced spans (a gauge of live rows). Replaces
--      0005's fold-on-delete trigger: ingest_totals and ingest_histogram_totals are folded
--      in once, here, and not written any more.
--   4. Indexes for the ledger queries that had none at 100M rows (tests/ingest/
--      test_ledger_plans.py checks every query's plan on a 1M-row ledger).

-- 1 -------------------------------------------------------------------------------------
ALTER TABLE {{schema}}.ingest_files ADD COLUMN IF NOT EXISTS datasets jsonb;

-- 2 -------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS {{schema}}.landing_sweeps (
    landing         text NOT NULL,        -- the landing, as every process names it
    root            text NOT NULL,        -- traces, metrics, logs, otlp
    cursor          text,                 -- the last key the rolling sweep listed (NULL: start)
    pass_started_at timestamptz,          -- when the current pass began
    last_pass_at    timestamptz,          -- when the last complete pass ended
    last_pass_files bigint,               -- files it listed
    PRIMARY KEY (landing, root)
);

CREATE TABLE IF NOT EXISTS {{schema}}.landing_backlog (
    landing     text NOT NULL,
    object_key  text NOT NULL,
    dataset     text NOT NULL,            -- the landing root it lies under
    size_bytes  bigint NOT NULL,
    fingerprint text NOT NULL,
    modified    timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (landing, object_key)
);
CREATE INDEX IF NOT EXISTS landing_backlog_root_idx ON {{schema}}.landing_backlog (landing, dataset);

-- 3 -------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS {{schema}}.ingest_counters (
    dataset   text NOT NULL,
    status    text NOT NULL,              -- loaded | quarantined (partial counts here)
    shard     smallint NOT NULL,
    files     bigint NOT NULL DEFAULT 0,
    rows      bigint NOT NULL DEFAULT 0,
    bytes     bigint NOT NULL DEFAULT 0,
    attempts  bigint NOT NULL DEFAULT 0,
    unpriced  bigint NOT NULL DEFAULT 0,  -- of live rows only
    last_at   timestamptz,                -- last time a row entered this status
    PRIMARY KEY (dataset, status, shard)
);

CREATE TABLE IF NOT EXISTS {{schema}}.ingest_counter_buckets (
    dataset text NOT NULL,
    metric  text NOT NULL,                -- copy_write_duration_seconds | copy_batch_size
    bucket  integer NOT NULL,             -- obs_le_bucket() (0005)
    shard   smallint NOT NULL,
    count   bigint NOT NULL DEFAULT 0,
    sum     double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, metric, bucket, shard)
);

-- What a set of ledger rows contributes to the counters: one row per (ledger row, table it
-- counts under), with a sign. Spelled once, as text, for the triggers' transition tables
-- (a function cannot take those as an argument, but EXECUTE'd SQL sees them) and for the
-- one-time fold of the ledger below.
CREATE OR REPLACE FUNCTION {{schema}}.obs_contributions_sql(p_source text, p_sign integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format(
        'SELECT coalesce(e.key, f.dataset) AS dataset, '
        '       CASE WHEN f.status = ''partial'' THEN ''quarantined'' ELSE f.status END AS status, '
        '       %s AS sign, coalesce(e.value::bigint, f.row_count) AS rows, '
        '       f.size_bytes AS bytes, f.attempts AS attempts, '
        '       CASE WHEN f.status = ''loaded'' AND coalesce(e.key, f.dataset) IN (''traces'', ''otlp'') '
        '            THEN coalesce(f.unpriced_rows, 0) ELSE 0 END AS unpriced, '
        '       CASE WHEN f.status = ''loaded'' THEN f.duration_ms END AS duration_ms '
        'FROM %s f '
        'LEFT JOIN LATERAL jsonb_each_text(CASE WHEN f.status = ''loaded'' THEN f.datasets END) e '
        '    ON true '
        'WHERE f.status IN (''loaded'', ''quarantined'', ''partial'')', p_sign, p_source)
$$;

-- The statements adding signed contributions (SQL text ``p_delta``) to this backend's
-- shard of the counters; with ``p_keep`` (a deletion) only their unpriced part. They are
-- EXECUTE'd by the trigger function itself: only its own statements see the transition
-- tables.
CREATE OR REPLACE FUNCTION {{schema}}.obs_counters_sql(p_delta text, p_keep boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format(
        'INSERT INTO {{schema}}.ingest_counters AS c '
        '    (dataset, status, shard, files, rows, bytes, attempts, unpriced, last_at) '
        'SELECT dataset, status, pg_backend_pid() %% 16, sum(%1$s * sign), sum(%1$s * sign * rows), '
        '       sum(%1$s * sign * bytes), sum(%1$s * sign * attempts), sum(sign * unpriced), '
        '       max(CASE WHEN sign > 0 THEN now() END) '
        'FROM (%2$s) AS d GROUP BY dataset, status '
        'HAVING sum(%1$s * sign) <> 0 OR sum(%1$s * sign * rows) <> 0 '
        '    OR sum(%1$s * sign * bytes) <> 0 OR sum(%1$s * sign * attempts) <> 0 '
        '    OR sum(sign * unpriced) <> 0 '
        'ORDER BY dataset, status '
        'ON CONFLICT (dataset, status, shard) DO UPDATE '
        '    SET files = c.files + EXCLUDED.files, rows = c.rows + EXCLUDED.rows, '
        '        bytes = c.bytes + EXCLUDED.bytes, attempts = c.attempts + EXCLUDED.attempts, '
        '        unpriced = c.unpriced + EXCLUDED.unpriced, '
        '        last_at = greatest(c.last_at, EXCLUDED.last_at)',
        CASE WHEN p_keep THEN 0 ELSE 1 END, p_delta)
$$;

CREATE OR REPLACE FUNCTION {{schema}}.obs_buckets_sql(p_delta text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format(
        'INSERT INTO {{schema}}.ingest_counter_buckets AS h (dataset, metric, bucket, shard, count, sum) '
        'SELECT dataset, metric, {{schema}}.obs_le_bucket(value, {{schema}}.obs_histogram_bounds(metric)), '
        '       pg_backend_pid() %% 16, sum(sign), sum(sign * value) '
        'FROM (SELECT dataset, sign, ''copy_write_duration_seconds'' AS metric, '
        '             duration_ms / 1000.0 AS value '
        '      FROM (%1$s) AS d WHERE status = ''loaded'' AND duration_ms IS NOT NULL '
        '      UNION ALL '
        '      SELECT dataset, sign, ''copy_batch_size'', rows::float8 '
        '      FROM (%1$s) AS d WHERE status = ''loaded'') AS observations '
        'GROUP BY 1, 2, 3 HAVING sum(sign) <> 0 OR sum(sign * value) <> 0 '
        'ORDER BY 1, 2, 3 '
        'ON CONFLICT (dataset, metric, bucket, shard) DO UPDATE '
        '    SET count = h.count + EXCLUDED.count, sum = h.sum + EXCLUDED.sum', p_delta)
$$;

-- Statement-level: a group commit's one UPDATE of many ledger rows is one delta.
CREATE OR REPLACE FUNCTION {{schema}}.obs_count_ledger_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        delta := {{schema}}.obs_contributions_sql('added', 1);
    ELSIF TG_OP = 'UPDATE' THEN
        delta := {{schema}}.obs_contributions_sql('added', 1) || ' UNION ALL '
                 || {{schema}}.obs_contributions_sql('removed', -1);
    ELSE  -- a deleted row keeps everything it counted but its unpriced spans (a gauge)
        EXECUTE {{schema}}.obs_counters_sql({{schema}}.obs_contributions_sql('removed', -1), true);
        RETURN NULL;
    END IF;
    EXECUTE {{schema}}.obs_counters_sql(delta, false);
    EXECUTE {{schema}}.obs_buckets_sql(delta);
    RETURN NULL;
END
$$;

-- The triggers first: creating them locks the ledger against writers until this migration
-- commits, so the fold below sees exactly the rows the triggers will not.
DROP TRIGGER IF EXISTS ingest_files_fold_deleted ON {{schema}}.ingest_files;
DROP TRIGGER IF EXISTS ingest_files_count_inserts ON {{schema}}.ingest_files;
DROP TRIGGER IF EXISTS ingest_files_count_updates ON {{schema}}.ingest_files;
DROP TRIGGER IF EXISTS ingest_files_count_deletes ON {{schema}}.ingest_files;
CREATE TRIGGER ingest_files_count_inserts AFTER INSERT ON {{schema}}.ingest_files
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.obs_count_ledger_changes();
CREATE TRIGGER ingest_files_count_updates AFTER UPDATE ON {{schema}}.ingest_files
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.obs_count_ledger_changes();
CREATE TRIGGER ingest_files_count_deletes AFTER DELETE ON {{schema}}.ingest_files
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.obs_count_ledger_changes();

-- The fold, once: live ledger rows (shard 0) plus what 0003/0005 folded from deleted rows.
-- Guarded, so a re-run of this file (it is idempotent) does not count twice.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {{schema}}.ingest_counters) THEN
        EXECUTE {{schema}}.obs_counters_sql(
            {{schema}}.obs_contributions_sql('{{schema}}.ingest_files', 1), false);
        EXECUTE {{schema}}.obs_buckets_sql(
            {{schema}}.obs_contributions_sql('{{schema}}.ingest_files', 1));
        UPDATE {{schema}}.ingest_counters SET shard = 0;  -- (the fold ran on one backend)
        UPDATE {{schema}}.ingest_counter_buckets SET shard = 0;
        UPDATE {{schema}}.ingest_counters c SET last_at = l.last_at
        FROM (SELECT dataset, max(loaded_at) AS last_at FROM {{schema}}.ingest_files
              WHERE status = 'loaded' GROUP BY dataset) AS l
        WHERE c.dataset = l.dataset AND c.status = 'loaded';
        INSERT INTO {{schema}}.ingest_counters AS c
            (dataset, status, shard, files, rows, bytes, attempts)
        SELECT dataset, CASE WHEN status = 'partial' THEN 'quarantined' ELSE status END, 0,
               sum(files), sum(rows), sum(bytes), sum(attempts)
        FROM {{schema}}.ingest_totals GROUP BY 1, 2
        ON CONFLICT (dataset, status, shard) DO UPDATE
            SET files = c.files + EXCLUDED.files, rows = c.rows + EXCLUDED.rows,
                bytes = c.bytes + EXCLUDED.bytes, attempts = c.attempts + EXCLUDED.attempts;
        INSERT INTO {{schema}}.ingest_counter_buckets AS h (dataset, metric, bucket, shard, count, sum)
        SELECT dataset, metric, bucket, 0, count, sum FROM {{schema}}.ingest_histogram_totals
        ON CONFLICT (dataset, metric, bucket, shard) DO UPDATE
            SET count = h.count + EXCLUDED.count, sum = h.sum + EXCLUDED.sum;
    END IF;
END
$$;

-- 4 -------------------------------------------------------------------------------------
-- replay --all, /health: the quarantined files
CREATE INDEX IF NOT EXISTS ingest_files_quarantined_idx ON {{schema}}.ingest_files (object_key)
    WHERE status IN ('quarantined', 'partial');
-- loaded-vs-stored: loaded files whose event time reaches into a window (recent ones)
CREATE INDEX IF NOT EXISTS ingest_files_loaded_max_time_idx
    ON {{schema}}.ingest_files (dataset, max_time) WHERE status = 'loaded';
-- loaded-vs-stored: loaded files that recorded no event time
CREATE INDEX IF NOT EXISTS ingest_files_untimed_idx ON {{schema}}.ingest_files (dataset)
    WHERE status = 'loaded' AND min_time IS NULL;
-- landing retention: loaded files still in the landing, oldest first
CREATE INDEX IF NOT EXISTS ingest_files_landing_due_idx ON {{schema}}.ingest_files (loaded_at)
    WHERE status = 'loaded' AND landing_deleted_at IS NULL;
