#!/usr/bin/env bash
# A private PostgreSQL cluster for the fault suite (test/faults/): its own data folder, its own port,
# fsync on, started and stopped by the tests themselves. Faults stop and start THIS cluster, never the
# machine's server on 5432.
#
#   scripts/pg-private.sh up              initdb (once), start, wait, create role + databases
#   scripts/pg-private.sh down [--purge]  stop (fast); --purge also deletes the data folder
#   scripts/pg-private.sh stop [MODE]     stop with pg_ctl's MODE: fast (default), smart or immediate
#   scripts/pg-private.sh start           start an initialised cluster and wait until it answers
#   scripts/pg-private.sh status          "running" (exit 0) or "not running" (exit 3)
#
# Env: MINOS_PG_PRIVATE_PORT (default 55432), MINOS_PG_PRIVATE_DATA (default <repo>/.cache/pg-private,
# or a folder under /var/tmp when the postgres user cannot reach the repository),
# MINOS_PG_PRIVATE_BIN (default: the newest /usr/lib/postgresql/<v>/bin).
# Needs PostgreSQL's server binaries (Debian: postgresql-<v>). As root the server runs as the
# `postgres` user (initdb refuses root); as any other user it runs as that user.
# Auth: trust on 127.0.0.1 only; role minos/min0s; databases exam_db, rooms_db, minos_test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${MINOS_PG_PRIVATE_PORT:-55432}"
HOST=127.0.0.1
DATABASES=(exam_db rooms_db minos_test)
READY_TIMEOUT_S=60

log() { echo "pg-private: $*"; }
die() { echo "pg-private: error: $*" >&2; exit 1; }

bin_dir() {
  if [ -n "${MINOS_PG_PRIVATE_BIN:-}" ]; then echo "$MINOS_PG_PRIVATE_BIN"; return; fi
  local v
  v="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (install postgresql)"
  echo "/usr/lib/postgresql/$v/bin"
}
BIN="$(bin_dir)"

# who runs the server: root cannot, so root hands it to `postgres`
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
  RUN_AS=(runuser -u postgres --)
else
  RUN_AS=()
fi
as_server() { "${RUN_AS[@]}" "$@"; }

data_dir() {
  if [ -n "${MINOS_PG_PRIVATE_DATA:-}" ]; then echo "$MINOS_PG_PRIVATE_DATA"; return; fi
  local d="$ROOT/.cache/pg-private"
  mkdir -p "$ROOT/.cache"
  # the server user must be able to reach the folder (a clone under /root is not reachable)
  if [ "${#RUN_AS[@]}" -eq 0 ] || as_server test -x "$ROOT/.cache"; then echo "$d"; else echo "/var/tmp/effect-minos-pg-private-$PORT"; fi
}
DATA="$(data_dir)"
RUN="$DATA.run"          # socket and log, outside the data folder (initdb wants it empty)
LOGFILE="$RUN/server.log"

pg_ctl() { as_server "$BIN/pg_ctl" -D "$DATA" "$@"; }
ready() { "$BIN/pg_isready" -h "$HOST" -p "$PORT" -q 2>/dev/null; }
psql_admin() { as_server "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
running() { pg_ctl status >/dev/null 2>&1; }

init() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  log "initdb into $DATA (port $PORT)"
  mkdir -p "$DATA" "$RUN"
  [ "${#RUN_AS[@]}" -eq 0 ] || chown postgres: "$DATA" "$RUN"
  chmod 700 "$DATA"
  as_server "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$RUN/initdb.log" 2>&1 ||
    { cat "$RUN/initdb.log" >&2; die "initdb failed"; }
  cat >>"$DATA/postgresql.conf" <<EOF

# effect-minos private cluster (scripts/pg-private.sh)
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$RUN'
fsync = on
synchronous_commit = on
max_connections = 200
shared_buffers = 64MB
log_min_messages = warning
EOF
  # trust on loopback only; nothing else may connect
  cat >"$DATA/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
}

start() {
  [ -f "$DATA/PG_VERSION" ] || die "not initialised; run '$0 up'"
  mkdir -p "$RUN"
  [ "${#RUN_AS[@]}" -eq 0 ] || chown postgres: "$RUN"
  if running; then
    ready && return 0
  else
    # -W: the wait below checks TCP, which is what clients see
    pg_ctl -l "$LOGFILE" -W start >/dev/null
  fi
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until ready; do
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$LOGFILE" >&2; die "not ready after ${READY_TIMEOUT_S}s"; }
    sleep 0.2
  done
}

provision() {
  psql_admin -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'minos') THEN
      CREATE ROLE minos LOGIN PASSWORD 'min0s' CREATEDB;
    END IF; END \$\$;"
  for db in "${DATABASES[@]}"; do
    if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_admin -c "CREATE DATABASE $db OWNER minos"
    fi
  done
}

stop() {
  local mode="${1:-fast}"
  case "$mode" in fast | smart | immediate) ;; *) die "unknown stop mode '$mode' (fast, smart, immediate)" ;; esac
  running || return 0
  pg_ctl -m "$mode" -w -t 60 stop >/dev/null
}

case "${1:-}" in
  up)
    init
    start
    provision
    log "ready on $HOST:$PORT (role minos, databases ${DATABASES[*]}, data $DATA)"
    ;;
  down)
    stop fast
    if [ "${2:-}" = "--purge" ]; then rm -rf "$DATA" "$RUN"; log "stopped and purged"; else log "stopped"; fi
    ;;
  stop)
    stop "${2:-fast}"
    log "stopped (${2:-fast})"
    ;;
  start)
    start
    log "started on $HOST:$PORT"
    ;;
  status)
    if running && ready; then echo "running ($HOST:$PORT)"; exit 0; fi
    if running; then echo "starting ($HOST:$PORT)"; exit 0; fi
    echo "not running"
    exit 3
    ;;
  *)
    echo "usage: $0 up|down [--purge]|stop [fast|smart|immediate]|start|status" >&2
    exit 2
    ;;
esac
