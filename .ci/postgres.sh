#!/usr/bin/env bash
# PostgreSQL 15 + pgvector on 127.0.0.1 for the export-pg / serve --backend pg tests.
# Debian 12 has no pgvector package: build it from the source tarball of Debian 13's pgvector package
# (checksum pinned) against postgresql-server-dev-15. Prints the DSN to use on its last line.
set -euo pipefail
PGV=0.8.0
SHA=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
PORT=${PGPORT:-55432}
PGBIN=/usr/lib/postgresql/15/bin
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

if ! dpkg -s postgresql-15 postgresql-server-dev-15 >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 postgresql-server-dev-15 build-essential curl >/dev/null
fi
if [ ! -f "$($PGBIN/pg_config --sharedir)/extension/vector.control" ]; then
  work=$(mktemp -d)
  curl -fsSL -o "$work/pgvector.tar.gz" "http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${PGV}.orig.tar.gz"
  echo "$SHA  $work/pgvector.tar.gz" | sha256sum -c --quiet
  tar -xzf "$work/pgvector.tar.gz" -C "$work"
  make -s -C "$work/pgvector-${PGV}" PG_CONFIG=$PGBIN/pg_config OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$work/pgvector-${PGV}" PG_CONFIG=$PGBIN/pg_config install >/dev/null
  rm -rf "$work"
fi
DATA=${PGDATA_DIR:-/tmp/storycluster-pg}
if ! $PGBIN/pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  rm -rf "$DATA"; mkdir -p "$DATA"; [ "$(id -u)" = 0 ] && chown postgres "$DATA"
  as_pg $PGBIN/initdb -D "$DATA" -U postgres --auth=trust >/dev/null
  as_pg $PGBIN/pg_ctl -s -D "$DATA" -l "$DATA/log" -o "-h 127.0.0.1 -p $PORT -k /tmp" -w start
fi
$PGBIN/psql -q -h 127.0.0.1 -p "$PORT" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'storycluster_test'" \
  | grep -q 1 || $PGBIN/psql -q -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE storycluster_test"
echo "postgresql://postgres@127.0.0.1:$PORT/storycluster_test"
