-- Maintenance: job watermarks, hourly rollups, and per-file event-time bounds.

-- One row per maintenance job: when it last finished and what it did. Incremental jobs
-- (rollups, vacuum) read last_run_at as their watermark.
CREATE TABLE IF NOT EXISTS {{schema}}.maintenance_state (
    job         text PRIMARY KEY,
    last_run_at timestamptz NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Event-time bounds of each loaded file, written by the loader when it knows them. The
-- rollups job recomputes exactly the hours between them for files loaded since its last
-- run (late data included); without them it falls back to comparing hourly counts.
ALTER TABLE {{schema}}.ingest_files ADD COLUMN IF NOT EXISTS min_time timestamptz;
ALTER TABLE {{schema}}.ingest_files ADD COLUMN IF NOT EXISTS max_time timestamptz;

-- Hourly rollups: plain tables on both backends (continuous aggregates need the Timescale
-- license). Small (one row per hour and dimension set), kept RETENTION_ROLLUPS_DAYS, so
-- cost and usage history outlives raw-data retention. An hour is always replaced whole
-- (DELETE + INSERT in one transaction); the unique keys make a double count impossible.
CREATE TABLE IF NOT EXISTS {{schema}}.traces_hourly (
    bucket          timestamptz NOT NULL,
    provider        text,
    request_model   text,
    service_name    text,
    environment     text,
    spans           bigint NOT NULL,
    errors          bigint NOT NULL,
    input_tokens    bigint,
    output_tokens   bigint,
    cost_usd        numeric,
    latency_p50_ms  double precision,
    latency_p95_ms  double precision,
    latency_p99_ms  double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT traces_hourly_key UNIQUE NULLS NOT DISTINCT
        (bucket, provider, request_model, service_name, environment)
);

CREATE TABLE IF NOT EXISTS {{schema}}.metrics_hourly (
    bucket          timestamptz NOT NULL,
    metric_name     text NOT NULL,
    service_name    text,
    provider        text,
    model           text,
    count           bigint NOT NULL,
    sum             double precision,
    min             double precision,
    max             double precision,
    avg             double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT metrics_hourly_key UNIQUE NULLS NOT DISTINCT
        (bucket, metric_name, service_name, provider, model)
);
