#!/usr/bin/env bash
# The whole test suite on real servers, from a fresh clone:
#   1. a virtualenv with the package, its test extras and dagster-postgres (.venv);
#   2. a real TimescaleDB on 127.0.0.1:55432 (scripts/provision-timescaledb.sh);
#   3. promtool for the metrics exposition test;
#   4. pytest (plain PostgreSQL comes from the embedded wheel, started by the tests).
# Arguments are passed to pytest. Servers this script started are stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
if ! .venv/bin/python -c "import observatory_storage, pytest, moto, polars, dagster_postgres" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  # postgres-storage: the production dagster.yaml (Postgres run storage) is tested for real
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".[test,postgres-storage]"
  touch .venv/.installed
fi

started_tsdb=0
if [ -z "${TEST_TIMESCALEDB_URL:-}" ]; then
  if ! bash scripts/provision-timescaledb.sh status >/dev/null 2>&1; then started_tsdb=1; fi
  bash scripts/provision-timescaledb.sh start >/dev/null
fi
cleanup() {
  if [ "$started_tsdb" = 1 ] && [ "${OBS_KEEP_TEST_SERVER:-0}" != 1 ]; then
    bash scripts/provision-timescaledb.sh stop || true
  fi
}
trap cleanup EXIT

PROMTOOL="$(bash scripts/install-promtool.sh)" || PROMTOOL=""
export OBS_PROMTOOL="${PROMTOOL}"
# CI has a C compiler: the compiled OTLP decoder must have been built, never silently skipped
export OBS_REQUIRE_NATIVE_DECODER="${OBS_REQUIRE_NATIVE_DECODER:-1}"

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
exit $rc
