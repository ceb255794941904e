#!/usr/bin/env bash
# Provision and run a real TimescaleDB (PostgreSQL 17 + timescaledb 2.x, Debian's
# Apache-licensed build) on a loopback port, for tests and benchmarks.
#
#   scripts/provision-timescaledb.sh start   # install if needed, start, print the URL
#   scripts/provision-timescaledb.sh stop    # stop the server (data is kept)
#   scripts/provision-timescaledb.sh url     # print the connection URL
#   scripts/provision-timescaledb.sh status  # exit 0 when the server runs
#
# Password + TLS servers (tests/security starts and stops them; the trust server above is
# left alone):
#
#   OBS_TSDB_SECURE_DIR=DIR scripts/provision-timescaledb.sh start-secure
#   scripts/provision-timescaledb.sh stop-secure [all] # stop them (all: any port), delete data
#   scripts/provision-timescaledb.sh secure-psql PORT [psql args]   # psql over the socket
#
# start-secure initdbs two throw-away clusters of the same PostgreSQL 17 binaries: one
# with shared_preload_libraries = 'timescaledb' (OBS_TSDB_SECURE_PORT, 55433) and one
# without, i.e. plain PostgreSQL (OBS_PG_SECURE_PORT, 55434). Both have ssl = on with
# DIR/server.crt and DIR/server.key, password_encryption = scram-sha-256, a superuser
# `postgres` whose password is DIR/postgres_password, and a pg_hba.conf that accepts
# only `hostssl ... scram-sha-256` on 127.0.0.1 (plain TCP is rejected) plus `local peer`
# for secure-psql. The caller makes the certificate (tests use trustme's throw-away CA).
#
# Debian 13 hosts install postgresql-17-timescaledb natively. Debian 12 hosts get a
# minimal Debian 13 tree (debootstrap --variant=minbase trixie) under .cache/trixie and
# run the server chrooted into it. Nothing is mounted into that tree: the device nodes
# PostgreSQL needs are created with mknod and shared memory uses System V, so deleting
# the folder is always safe and nothing is left mounted after this script returns.
# Needs root (apt-get, debootstrap, chroot). OBS_TSDB_PORT overrides the port (55432).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${OBS_CACHE_DIR:-$ROOT/.cache}"
PORT="${OBS_TSDB_PORT:-55432}"
CHROOT="$CACHE/trixie"
PGBIN=/usr/lib/postgresql/17/bin
log() { echo "provision-timescaledb: $*" >&2; }

debian_major() { cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0; }

native() {
  # Debian 13 or newer: the packages exist in the host's own archive.
  [ "$(debian_major)" -ge 13 ] 2>/dev/null
}

# Paths as seen by the server process, and the prefix used to run commands there.
if native; then
  DATA="$CACHE/tsdb-native-data"
  RUN=(setpriv --reuid=postgres --regid=postgres --init-groups)
  HOSTDATA="$DATA"
  SOCKDIR="$CACHE/tsdb-native-sock"
else
  DATA=/var/lib/obs-tsdb/data
  RUN=(chroot --userspec=postgres:postgres "$CHROOT")
  HOSTDATA="$CHROOT$DATA"
  SOCKDIR=/tmp
fi

apt_install_host() {
  if [ ! -f "$CACHE/.apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

make_devices() {
  local dev="$CHROOT/dev"
  mkdir -p "$dev"
  mknode() { [ -e "$dev/$1" ] || mknod -m "$2" "$dev/$1" c "$3" "$4"; }
  mknode null 666 1 3; mknode zero 666 1 5; mknode full 666 1 7
  mknode random 666 1 8; mknode urandom 666 1 9; mknode tty 666 5 0
  mkdir -p "$dev/shm" && chmod 1777 "$dev/shm"
}

install_chroot() {
  [ -x "$CHROOT$PGBIN/postgres" ] && [ -f "$CHROOT/.obs-ready" ] && return 0
  command -v debootstrap >/dev/null || apt_install_host debootstrap
  if [ ! -f "$CHROOT/.obs-bootstrapped" ]; then
    log "debootstrap --variant=minbase trixie $CHROOT (about a minute)"
    rm -rf "$CHROOT"; mkdir -p "$CHROOT"
    debootstrap --variant=minbase trixie "$CHROOT" >&2
    # debootstrap mounts /proc and /sys while it works and should unmount them; make sure.
    for m in proc sys; do mountpoint -q "$CHROOT/$m" && umount -l "$CHROOT/$m" || true; done
    touch "$CHROOT/.obs-bootstrapped"
  fi
  make_devices
  cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
  printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"; chmod +x "$CHROOT/usr/sbin/policy-rc.d"
  log "installing postgresql-17 and postgresql-17-timescaledb in the chroot"
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends postgresql-17 postgresql-17-timescaledb >&2
  touch "$CHROOT/.obs-ready"
}

install_native() {
  [ -x "$PGBIN/postgres" ] && [ -f "/usr/share/postgresql/17/extension/timescaledb.control" ] && return 0
  log "installing postgresql-17 and postgresql-17-timescaledb"
  apt_install_host postgresql-17 postgresql-17-timescaledb
}

initdb_once() {
  [ -f "$HOSTDATA/PG_VERSION" ] && return 0
  mkdir -p "$HOSTDATA"
  if native; then chown -R postgres:postgres "$(dirname "$HOSTDATA")"
  else chroot "$CHROOT" chown -R postgres:postgres "$(dirname "$DATA")"; fi
  "${RUN[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
  cat >> "$HOSTDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
dynamic_shared_memory_type = sysv
listen_addresses = '127.0.0.1'
fsync = on
max_connections = 200
CONF
}

running() { "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  if native; then install_native; else install_chroot; fi
  native || make_devices
  initdb_once
  mkdir -p "$([ "$SOCKDIR" = /tmp ] && echo "$CHROOT/tmp" || echo "$SOCKDIR")"
  native && chown postgres:postgres "$SOCKDIR"
  if ! running; then
    # setsid + closed stdio: the server never holds the caller's terminal or pipes.
    setsid "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
      -o "-p $PORT -k $SOCKDIR" start </dev/null >/dev/null 2>&1 \
      || { tail -20 "$HOSTDATA/server.log" >&2; exit 1; }
  fi
  echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
}

stop() {
  [ -f "$HOSTDATA/PG_VERSION" ] || return 0
  running && "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# --- password + TLS clusters --------------------------------------------------------------
SECURE_PORTS=("timescaledb:${OBS_TSDB_SECURE_PORT:-55433}" "postgres:${OBS_PG_SECURE_PORT:-55434}")
secure_data() {  # FLAVOR PORT -> the data folder as the server sees it
  if native; then echo "$CACHE/tsdb-native-secure-$1-$2"; else echo "/var/lib/obs-tsdb/secure-$1-$2"; fi
}
host_path() { if native; then echo "$1"; else echo "$CHROOT$1"; fi; }

start_secure_cluster() {
  local flavor=$1 port=$2 dir=$3 data host
  data="$(secure_data "$flavor" "$port")"; host="$(host_path "$data")"
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$host"; mkdir -p "$host"
  install -m 600 "$dir/postgres_password" "$host/pwfile"
  if native; then chown -R postgres:postgres "$host"; else chroot "$CHROOT" chown -R postgres:postgres "$data"; fi
  "${RUN[@]}" "$PGBIN/initdb" -D "$data/pg" -U postgres --pwfile="$data/pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$host/pwfile"
  install -m 644 "$dir/server.crt" "$host/pg/server.crt"
  install -m 600 "$dir/server.key" "$host/pg/server.key"
  if native; then chown postgres:postgres "$host/pg/server."*
  else chroot "$CHROOT" chown postgres:postgres "$data/pg/server.crt" "$data/pg/server.key"; fi
  {
    [ "$flavor" = timescaledb ] && printf "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
    cat <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
dynamic_shared_memory_type = sysv
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 100
CONF
  } >> "$host/pg/postgresql.conf"
  cat > "$host/pg/pg_hba.conf" <<HBA
local     all all              peer
hostssl   all all 127.0.0.1/32 scram-sha-256
hostnossl all all 127.0.0.1/32 reject
HBA
  setsid "${RUN[@]}" "$PGBIN/pg_ctl" -D "$data/pg" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $SOCKDIR" start </dev/null >/dev/null 2>&1 \
    || { tail -20 "$host/server.log" >&2; exit 1; }
  echo "$flavor postgresql://postgres@127.0.0.1:$port/postgres"
}

start_secure() {
  local dir="${OBS_TSDB_SECURE_DIR:-}" entry
  [ -n "$dir" ] || { log "start-secure: set OBS_TSDB_SECURE_DIR (server.crt, server.key, postgres_password)"; exit 2; }
  for f in server.crt server.key postgres_password; do
    [ -r "$dir/$f" ] || { log "start-secure: $dir/$f is missing"; exit 2; }
  done
  if native; then install_native; else install_chroot; make_devices; fi
  mkdir -p "$([ "$SOCKDIR" = /tmp ] && echo "$CHROOT/tmp" || echo "$SOCKDIR")"
  native && chown postgres:postgres "$SOCKDIR"
  for entry in "${SECURE_PORTS[@]}"; do start_secure_cluster "${entry%%:*}" "${entry#*:}" "$dir"; done
}

stop_secure() {  # the clusters of the configured ports; `stop-secure all`: every one
  local host data
  for host in "$(host_path "$(dirname "$(secure_data x 0)")")"/*secure-*-*; do
    [ -d "$host/pg" ] || continue
    if [ "${1:-}" != all ]; then
      case " ${SECURE_PORTS[*]} " in *":${host##*-} "*) ;; *) continue ;; esac
    fi
    data="$(dirname "$(secure_data x 0)")/$(basename "$host")"
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$data/pg" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    rm -rf "$host"
  done
}

secure_psql() {  # PORT [psql args]: psql as postgres over the unix socket (peer), stdin passed
  local port=$1; shift
  exec "${RUN[@]}" "$PGBIN/psql" -X -h "$SOCKDIR" -p "$port" "$@"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) running ;;
  url) echo "postgresql://postgres@127.0.0.1:$PORT/postgres" ;;
  start-secure) start_secure ;;
  stop-secure) stop_secure "${2:-}" ;;
  secure-psql) shift; secure_psql "$@" ;;
  *) echo "usage: $0 start|stop|status|url|start-secure|stop-secure|secure-psql PORT" >&2; exit 2 ;;
esac
