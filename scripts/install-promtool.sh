#!/usr/bin/env bash
# Put Prometheus' promtool (used by the metrics exposition test) in .cache/promtool/bin.
# Extracted from Debian's `prometheus` package without installing or starting the server.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.cache/promtool"
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
if [ -x "$DEST/bin/promtool" ]; then echo "$DEST/bin/promtool"; exit 0; fi
mkdir -p "$DEST/deb"
( cd "$DEST/deb" && apt-get download prometheus >/dev/null 2>&1 ) || {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  ( cd "$DEST/deb" && apt-get download prometheus >&2 )
}
dpkg-deb -x "$DEST"/deb/prometheus_*.deb "$DEST/root"
mkdir -p "$DEST/bin" && cp "$DEST/root/usr/bin/promtool" "$DEST/bin/promtool"
rm -rf "$DEST/root" "$DEST/deb"
echo "$DEST/bin/promtool"
