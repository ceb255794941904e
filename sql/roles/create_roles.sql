-- Least-privilege roles for observatory-storage (optional; see docs/security.md).
--
-- Run as a superuser (or a role with CREATEROLE that owns the schema), AFTER
-- `observatory-storage migrate`, and again after any migration that adds a table:
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f sql/roles/create_roles.sql \
--        -v schema=public \
--        -v owner_password="$OWNER_PW" -v ingest_password="$INGEST_PW" -v readonly_password="$RO_PW"
--
-- psql variables (all optional):
--   schema            DB_SCHEMA of the product                       (public)
--   owner_role        runs migrations and maintenance, owns objects  (obs_owner)
--   ingest_role       the Dagster run workers: COPY + ledger         (obs_ingest)
--   readonly_role     health/metrics service, dashboards            (obs_readonly)
--   datasets          comma-separated dataset tables                 (traces,metrics,logs)
--   ledger            ledger table ingest may update and delete      (ingest_files)
--   ledger_totals     counters the ledger's triggers keep             (ingest_counters,
--                     (they run as the writing role)                  ingest_counter_buckets,
--                                                                     ingest_totals,
--                                                                     ingest_histogram_totals)
--   discovery         what discovery keeps to save listing work       (landing_backlog,
--                                                                     landing_sweeps)
--   *_password        sets the role's password; a SCRAM verifier ("SCRAM-SHA-256$...")
--                     is accepted too and keeps the clear text off the server. Without
--                     one the role keeps its password (or none: cert/peer/IAM auth).
--
-- What each role may do:
--   owner     owns every table, view, sequence and function of the schema (the product's
--             schema should be its own: everything in it is taken over); CREATE on the
--             database (the migration runner's CREATE SCHEMA IF NOT EXISTS) and schema;
--             pg_read_all_settings (the runner reads shared_preload_libraries).
--   ingest    USAGE on the schema; SELECT + INSERT (hence COPY) on the dataset tables and
--             the ledger; UPDATE + DELETE on the ledger `ingest_files` only; INSERT + UPDATE
--             on the ledger's counters (its triggers run as the writing role); INSERT +
--             UPDATE + DELETE on the discovery state; SELECT elsewhere. No DDL: not owner
--             of anything, no CREATE, no TRUNCATE, no DELETE outside the ledger and the
--             discovery state.
--   readonly  USAGE + SELECT only, plus pg_read_all_stats so /health can count the
--             connections of other roles.
-- TimescaleDB: a GRANT on a hypertable is applied to its existing chunks, and new chunks
-- copy the hypertable's privileges, so chunks need nothing here. Plain PostgreSQL: rows
-- reach daily partitions through the parent table, whose privileges are the ones checked;
-- partitions created later by the owner get the default privileges below.
-- Idempotent: run it as often as you like.

\set QUIET on
\set ON_ERROR_STOP on

\if :{?schema}
\else
\set schema public
\endif
\if :{?owner_role}
\else
\set owner_role obs_owner
\endif
\if :{?ingest_role}
\else
\set ingest_role obs_ingest
\endif
\if :{?readonly_role}
\else
\set readonly_role obs_readonly
\endif
\if :{?datasets}
\else
\set datasets traces,metrics,logs
\endif
\if :{?ledger}
\else
\set ledger ingest_files
\endif
\if :{?ledger_totals}
\else
\set ledger_totals ingest_counters,ingest_counter_buckets,ingest_totals,ingest_histogram_totals
\endif
\if :{?discovery}
\else
\set discovery landing_backlog,landing_sweeps
\endif

-- Never write a password into the server log, whatever log_statement says (only a
-- superuser may change these; a managed service's admin role keeps the server's setting).
SELECT rolsuper AS is_superuser FROM pg_roles WHERE rolname = current_user \gset
\if :is_superuser
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\endif

BEGIN;

-- 1. Roles (LOGIN; membership in nothing) -------------------------------------------------
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', r)
FROM unnest(ARRAY[:'owner_role', :'ingest_role', :'readonly_role']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

\if :{?owner_password}
ALTER ROLE :"owner_role" PASSWORD :'owner_password';
\endif
\if :{?ingest_password}
ALTER ROLE :"ingest_role" PASSWORD :'ingest_password';
\endif
\if :{?readonly_password}
ALTER ROLE :"readonly_role" PASSWORD :'readonly_password';
\endif

-- 2. Database and schema ------------------------------------------------------------------
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I, %I, %I', current_database(),
              :'owner_role', :'ingest_role', :'readonly_role')
\gexec
SELECT format('GRANT CREATE ON DATABASE %I TO %I', current_database(), :'owner_role')
\gexec

SELECT format('CREATE SCHEMA IF NOT EXISTS %I', :'schema') \gexec
SELECT (:'schema' <> 'public') AS dedicated_schema \gset
\if :dedicated_schema
ALTER SCHEMA :"schema" OWNER TO :"owner_role";
\else
GRANT USAGE, CREATE ON SCHEMA public TO :"owner_role";
\endif
REVOKE CREATE ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"ingest_role", :"readonly_role";

-- 3. The owner takes over the schema's objects (extension members excluded) -----------------
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                             ELSE 'TABLE' END,
              n.nspname, c.relname, :'owner_role')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :'schema'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :'owner_role')
  AND NOT EXISTS (SELECT FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  -- a sequence owned by a column follows its table
  AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
ORDER BY c.relkind = 'p' DESC, c.relispartition, c.relname
\gexec

SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'owner_role')
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = :'schema'
  AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = :'owner_role')
  AND NOT EXISTS (SELECT FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
\gexec

-- 4. Existing tables ----------------------------------------------------------------------
-- Start from nothing, so re-running after a role was widened by hand narrows it again.
SELECT format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I, %I', :'schema',
              :'ingest_role', :'readonly_role')
\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I, %I', :'schema',
              :'ingest_role', :'readonly_role')
\gexec
SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', :'schema', :'ingest_role')
\gexec

-- Dataset tables: append only (INSERT is what COPY ... FROM needs).
SELECT format('GRANT INSERT ON %I.%I TO %I', :'schema', trim(t), :'ingest_role')
FROM unnest(string_to_array(:'datasets', ',')) AS t
WHERE to_regclass(format('%I.%I', :'schema', trim(t))) IS NOT NULL
\gexec

-- Ledger: one row per landing object, written in the COPY's transaction, updated on
-- retries and conflicts.
SELECT format('GRANT INSERT, UPDATE, DELETE ON %I.%I TO %I', :'schema', :'ledger', :'ingest_role')
\gexec
-- Deleting a ledger row (replay, clean-up) folds it into the totals in the same statement.
SELECT format('GRANT INSERT, UPDATE ON %I.%I TO %I', :'schema', trim(t), :'ingest_role')
FROM unnest(string_to_array(:'ledger_totals', ',')) AS t
WHERE to_regclass(format('%I.%I', :'schema', trim(t))) IS NOT NULL
\gexec

-- Discovery state: the backlog of listed files and the time of each root's last sweep.
SELECT format('GRANT INSERT, UPDATE, DELETE ON %I.%I TO %I', :'schema', trim(t), :'ingest_role')
FROM unnest(string_to_array(:'discovery', ',')) AS t
WHERE to_regclass(format('%I.%I', :'schema', trim(t))) IS NOT NULL
\gexec

-- 5. Future tables and partitions created by the owner (migrations, daily partitions) ------
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I, %I',
              :'owner_role', :'schema', :'ingest_role', :'readonly_role')
\gexec
-- A new dataset table is appendable by ingest without re-running this script; nothing
-- beyond INSERT (no UPDATE, DELETE, TRUNCATE) is ever granted by default.
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT INSERT ON TABLES TO %I',
              :'owner_role', :'schema', :'ingest_role')
\gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
              :'owner_role', :'schema', :'ingest_role')
\gexec

-- 6. Monitoring ---------------------------------------------------------------------------
GRANT pg_read_all_stats TO :"readonly_role";
-- The migration runner reads shared_preload_libraries to tell whether TimescaleDB can be
-- installed; that setting is visible only with pg_read_all_settings.
GRANT pg_read_all_settings TO :"owner_role";

COMMIT;

\set QUIET off
\echo observatory-storage roles ready: owner=:owner_role ingest=:ingest_role readonly=:readonly_role schema=:schema
