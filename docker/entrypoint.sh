#!/bin/sh
# Entrypoint of every observatory-storage container.
#
# 1. Secrets from files for the tools that read only their environment: Dagster's instance
#    config (DAGSTER_PG_PASSWORD) and libpq clients of the test/bench profiles (PGPASSWORD).
#    NAME_FILE (a Docker/Kubernetes secret mounted as a file) sets NAME, trimmed of a final
#    newline. The product reads its own DATABASE_URL_FILE and DB_PASSWORD_FILE (settings),
#    and S3 credentials come from the standard AWS chain (AWS_SHARED_CREDENTIALS_FILE,
#    web identity, instance roles), so neither needs this step.
# 2. Waits, bounded, until the database answers (`observatory-storage db status`), so a
#    container started before the database does not crash-loop. It does NOT migrate:
#    migrations are the one-shot `migrate` service (or job), run once per deploy.
# 3. Execs the command, which becomes the process that receives the stop signal.
#
# WAIT_FOR_DB_SECONDS (default 60; 0 skips the wait) bounds step 2.
set -eu

for name in DAGSTER_PG_PASSWORD PGPASSWORD; do
  file_var="${name}_FILE"
  eval "file=\${$file_var:-}"
  if [ -n "$file" ]; then
    if [ ! -r "$file" ]; then
      echo "entrypoint: $file_var points at $file, which is not readable" >&2
      exit 2
    fi
    value="$(cat "$file")"
    export "$name=$value"
    unset "$file_var"
  fi
done

wait_seconds="${WAIT_FOR_DB_SECONDS:-60}"
if [ -n "${DATABASE_URL:-}${DATABASE_URL_FILE:-}" ] && [ "$wait_seconds" -gt 0 ]; then
  deadline=$(( $(date +%s) + wait_seconds ))
  attempt=1
  while :; do
    rc=0
    # db status prints the redacted URL only; its error line is redacted too.
    last_error="$(observatory-storage db status 2>&1 >/dev/null)" || rc=$?
    [ "$rc" -eq 0 ] && break
    if [ "$rc" -eq 2 ]; then  # a bad setting will not fix itself: fail now, say which
      echo "entrypoint: ${last_error}" >&2
      exit 2
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "entrypoint: database not reachable after ${wait_seconds}s: ${last_error}" >&2
      exit 3
    fi
    echo "entrypoint: waiting for the database (attempt $attempt)" >&2
    attempt=$(( attempt + 1 ))
    sleep 2
  done
fi

if [ "$#" -eq 0 ]; then
  set -- observatory-storage serve --host 0.0.0.0
fi
exec "$@"
