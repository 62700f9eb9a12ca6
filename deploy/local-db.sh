#!/bin/sh
# The local PostgreSQL that `deploy/run.sh` gives ndrguard: a cluster of its own under
# $NDRGUARD_DATA_DIR/pg (default ./var/pg), unix socket only, created and started on first use,
# started again on later uses. Prints the libpq connection string on stdout.
#   deploy/local-db.sh [start|stop]
set -eu
cd "$(dirname "$0")/.."
data=${NDRGUARD_DATA_DIR:-$PWD/var}/pg
. deploy/pg_common.sh
case "${1:-start}" in
start)
    if [ ! -f "$data/cluster/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data"
        as_owner "$PGBIN/initdb" -D "$data/cluster" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 ||
            { cat "$data/initdb.log" >&2; exit 1; }
        echo "local-db: created a PostgreSQL cluster in $data/cluster" >&2
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$data/cluster" status >/dev/null 2>&1; then
        as_owner "$PGBIN/pg_ctl" -D "$data/cluster" -l "$data/server.log" -w -t 30 \
            -o "-p 5433 -k $data -c listen_addresses=" start >/dev/null || { tail -20 "$data/server.log" >&2; exit 1; }
        echo "local-db: PostgreSQL running, socket in $data (log: $data/server.log)" >&2
    fi
    echo "host=$data port=5433 dbname=postgres user=postgres"
    ;;
stop)
    as_owner "$PGBIN/pg_ctl" -D "$data/cluster" -m fast -w stop >/dev/null 2>&1 || true
    echo "local-db: stopped" >&2
    ;;
*)
    echo "usage: deploy/local-db.sh [start|stop]" >&2
    exit 2
    ;;
esac
