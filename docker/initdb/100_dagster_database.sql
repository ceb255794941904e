-- Runs once, when the timescaledb container initialises an empty data volume
-- (/docker-entrypoint-initdb.d, after the image's own 000_/001_ TimescaleDB scripts).
-- Dagster's run, event-log and schedule storage (dagster-postgres) gets its own database on
-- the same server, so `observatory` holds only product data and each can be backed up,
-- restored or moved on its own. From template0: no TimescaleDB extension in it.
-- An existing volume skips this file; create the database by hand then:
--   docker compose -f docker/docker-compose.yml exec timescaledb \
--     psql -U postgres -f /docker-entrypoint-initdb.d/100_dagster_database.sql
SELECT 'CREATE DATABASE dagster TEMPLATE template0 ENCODING ''UTF8'''
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dagster')
\gexec
