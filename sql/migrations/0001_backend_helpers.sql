-- Backend helpers: one code path for TimescaleDB (hypertables) and plain PostgreSQL
-- (native range partitions by day plus a DEFAULT partition, so late or future rows are
-- never rejected). {{schema}} is substituted by the migration runner.

CREATE OR REPLACE FUNCTION {{schema}}.obs_has_timescaledb() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- Name of the daily partition of a table for a day: traces_p20261128.
CREATE OR REPLACE FUNCTION {{schema}}.obs_partition_name(p_table text, p_day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_table || '_p' || to_char(p_day, 'YYYYMMDD')
$$;

-- Ensure daily partitions exist for [p_first, p_last]. Rows of those days that sit in the
-- DEFAULT partition are moved into the new partition in the same transaction.
-- Returns the number of partitions created. No-op for hypertables.
CREATE OR REPLACE FUNCTION {{schema}}.obs_ensure_partitions(
    p_schema text, p_table text, p_time_column text, p_first date, p_last date
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    part text;
    created integer := 0;
    moved bigint;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table pt
        JOIN pg_class c ON c.oid = pt.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = p_schema AND c.relname = p_table
    ) THEN
        RETURN 0;
    END IF;
    d := p_first;
    WHILE d <= p_last LOOP
        part := {{schema}}.obs_partition_name(p_table, d);
        IF to_regclass(format('%I.%I', p_schema, part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS)',
                           p_schema, part, p_schema, p_table);
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I.%I WHERE %I >= %L::timestamptz AND %I < %L::timestamptz RETURNING *) '
                'INSERT INTO %I.%I SELECT * FROM moved',
                p_schema, p_table || '_default', p_time_column, d::timestamp AT TIME ZONE 'UTC',
                p_time_column, (d + 1)::timestamp AT TIME ZONE 'UTC', p_schema, part);
            GET DIAGNOSTICS moved = ROW_COUNT;
            EXECUTE format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                           p_schema, p_table, p_schema, part,
                           d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
            IF moved > 0 THEN
                RAISE NOTICE 'moved % rows of % from %_default into %', moved, d, p_table, part;
            END IF;
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Make a freshly created table time-partitioned: a hypertable on TimescaleDB, else a
-- DEFAULT partition plus daily partitions from yesterday to p_ahead days ahead.
CREATE OR REPLACE FUNCTION {{schema}}.obs_make_time_partitioned(
    p_schema text, p_table text, p_time_column text, p_chunk_interval text, p_ahead integer
) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF {{schema}}.obs_has_timescaledb() THEN
        PERFORM create_hypertable(format('%I.%I', p_schema, p_table)::regclass,
                                  by_range(p_time_column, p_chunk_interval::interval),
                                  if_not_exists => true, create_default_indexes => false);
        RETURN 'hypertable';
    END IF;
    IF to_regclass(format('%I.%I', p_schema, p_table || '_default')) IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT',
                       p_schema, p_table || '_default', p_schema, p_table);
    END IF;
    PERFORM {{schema}}.obs_ensure_partitions(p_schema, p_table, p_time_column,
                                             (now() AT TIME ZONE 'UTC')::date - 1,
                                             (now() AT TIME ZONE 'UTC')::date + p_ahead);
    RETURN 'partitioned';
END
$$;
