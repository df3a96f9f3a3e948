#!/usr/bin/env bash
# Brings up the real services the PostgreSQL + Kafka backends and their tests need, on machines
# without Docker (users with Docker run `docker compose up -d` instead):
#   - PostgreSQL on 127.0.0.1:5432 (already installed here): starts it if stopped, then creates the
#     role minos/min0s and the databases exam_db, rooms_db and minos_test when missing;
#   - Apache Kafka on 127.0.0.1:9092 from Apache's jars (scripts/kafka.sh).
# The 3-broker cluster of the failover tests is separate: `bash scripts/kafka.sh cluster up`.
# Usage: scripts/services.sh up|down|status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGHOST_ADDR="${MINOS_PG_HOST:-127.0.0.1}"
PGPORT_NUM="${MINOS_PG_PORT:-5432}"
PG_ADMIN="${MINOS_PG_ADMIN:-postgres}"
DATABASES=(exam_db rooms_db minos_test)

psql_admin() { psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U "$PG_ADMIN" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

pg_ready() { pg_isready -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -q 2>/dev/null; }

postgres_up() {
  if ! pg_ready; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      echo "postgres: not answering, starting the local cluster"
      version="$(ls /etc/postgresql | sort -V | tail -n 1)"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || { echo "postgres: nothing answers on $PGHOST_ADDR:$PGPORT_NUM" >&2; return 1; }
  fi
  psql_admin -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'minos') THEN
      CREATE ROLE minos LOGIN PASSWORD 'min0s' CREATEDB;
    END IF; END \$\$;"
  for db in "${DATABASES[@]}"; do
    if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_admin -c "CREATE DATABASE $db OWNER minos"
    fi
  done
  echo "postgres: ready on $PGHOST_ADDR:$PGPORT_NUM (role minos, databases ${DATABASES[*]})"
}

case "${1:-}" in
  up)
    postgres_up
    bash "$here/kafka.sh" up
    ;;
  down)
    # PostgreSQL belongs to the machine; only Kafka is ours to stop
    bash "$here/kafka.sh" down
    ;;
  status)
    if pg_ready; then echo "postgres: running"; else echo "postgres: not running"; fi
    bash "$here/kafka.sh" status || true
    bash "$here/kafka.sh" cluster status || true
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
