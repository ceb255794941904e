#!/usr/bin/env bash
# README pictures of the Dagster UI after the demo: the asset lineage and the `traces` page.
#
#   scripts/screenshots.sh [OUT_DIR]     # default docs/img
#
# Steps: a fresh DAGSTER_HOME (our dagster.yaml) -> `observatory-storage demo` (records its
# ingest run and materializations there) -> `maintenance rollups` (materializes the hourly
# assets and runs their checks) -> the `asset_checks` job -> `dagster dev` on that home ->
# headless Chromium (Debian's `chromium`; installed with apt-get when missing) -> PNGs.
# The database is DATABASE_URL when set, else the embedded PostgreSQL (stopped afterwards
# if this script started it). Nothing outside OUT_DIR and a temporary folder is written.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/docs/img}" && cd "${1:-$ROOT/docs/img}" && pwd)"
BIN="$ROOT/.venv/bin"
PORT="${SCREENSHOT_PORT:-3417}"
WORK="$(mktemp -d)"
log() { echo "screenshots: $*" >&2; }

if ! command -v chromium >/dev/null; then
  log "installing chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

export DAGSTER_HOME="$WORK/dagster_home"
mkdir -p "$DAGSTER_HOME"
cp "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"

started_db=""
if [ -z "${DATABASE_URL:-}" ]; then
  "$BIN/observatory-storage" db status >/dev/null 2>&1 || started_db=1
fi
DEV_PID=""
cleanup() {
  if [ -n "$DEV_PID" ]; then
    kill -TERM -- "-$DEV_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$DEV_PID" 2>/dev/null || true
  fi
  if [ -n "$started_db" ]; then "$BIN/observatory-storage" db stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
log "demo (DAGSTER_HOME=$DAGSTER_HOME)"
"$BIN/observatory-storage" demo --keep-running --landing "$WORK/landing" >"$WORK/demo.txt"
log "two more loads (rows per load, plotted over time)"
for rows in 1500 3000; do
  "$BIN/observatory-storage" generate --landing "$WORK/landing" --files 2 --rows "$rows" >/dev/null
  "$BIN/observatory-storage" ingest --landing "$WORK/landing" >/dev/null
done
log "rollups and asset checks"
"$BIN/observatory-storage" maintenance rollups >/dev/null
"$BIN/python" - <<'EOF'
import dagster as dg

from observatory_storage.defs.ingest import in_process_job

with dg.DagsterInstance.get() as instance:
    result = in_process_job("asset_checks").execute_in_process(instance=instance)
    assert result.success
EOF

mkdir -p "$DAGSTER_HOME/.nux" && echo "seen: 1" >"$DAGSTER_HOME/.nux/nux.yaml"  # no sign-up pop-up

log "dagster dev on port $PORT"
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL="$("$BIN/python" -c 'from observatory_storage.db import embedded
from observatory_storage.settings import get_settings
print(embedded.running_uri(get_settings().embedded_pg_dir))')"
fi
# own session: the cleanup's kill reaches dagster dev and everything it started
(cd "$DAGSTER_HOME" && LANDING_URL="$WORK/landing" DATABASE_URL="$DATABASE_URL" \
  exec setsid "$BIN/python" -W "ignore:Function \`dev_command\` is superseded:Warning" \
  -m dagster dev -w "$ROOT/workspace.yaml" -h 127.0.0.1 -p "$PORT" >"$WORK/dev.log" 2>&1) &
DEV_PID=$!
for _ in $(seq 180); do
  curl -fs "http://127.0.0.1:$PORT/server_info" >/dev/null 2>&1 && break
  sleep 1
done
sleep 10  # the code location loads after the server answers; freshness is evaluated

shot() {  # shot NAME PATH
  log "$1: http://127.0.0.1:$PORT$2"
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$WORK/chromium-$1" --window-size=1400,900 \
    --virtual-time-budget=20000 --screenshot="$OUT/$1.png" "http://127.0.0.1:$PORT$2" \
    >"$WORK/chromium-$1.log" 2>&1
}
shot dagster-lineage "/asset-groups"
shot dagster-traces "/assets/traces"
log "wrote $OUT/dagster-lineage.png and $OUT/dagster-traces.png"
