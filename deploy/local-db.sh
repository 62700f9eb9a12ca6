#!/bin/sh
# The local PostgreSQL that `deploy/run.sh` gives ndrguard: a cluster of its own under
# $NDRGUARD_DATA_DIR/pg (default ./var/pg), unix socket only, created and started on first use,
# started again on later uses. Prints the libpq connection string on stdout.
# As root the server runs as `postgres`; when that user cannot reach the checkout (cloned into
# /root, mode 0700 on Debian), the cluster lives in a directory of its own under postgres's
# home (/var/lib/postgresql/ndrguard-pg.XXXXXX, mode 0700) and ./var/pg is a link to it.
#   deploy/local-db.sh [start|stop|remove]     (remove: stop, then delete the cluster)
set -eu
cd "$(dirname "$0")/.."
link=${NDRGUARD_DATA_DIR:-$PWD/var}/pg
. deploy/pg_common.sh
data=$(pg_real "$link")
case "${1:-start}" in
start)
    if [ ! -f "$data/cluster/PG_VERSION" ]; then
        if [ -d "$link" ] && [ ! -L "$link" ] && ! pg_reachable "$link"; then
            # Left by a failed first try under a home postgres cannot enter: nothing in it.
            rm -rf "$link"
        fi
        home=$(getent passwd postgres | cut -d: -f6)
        data=$(pg_place "$link" "${home:-/var/lib/postgresql}")
        as_owner "$PGBIN/initdb" -D "$data/cluster" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 ||
            { cat "$data/initdb.log" >&2; exit 1; }
        echo "local-db: created a PostgreSQL cluster in $data/cluster" >&2
    fi
    if ! pg_reachable "$data/cluster"; then
        echo "local-db: the postgres user cannot reach $data/cluster (move it, or set NDRGUARD_DATA_DIR)" >&2
        exit 1
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
remove)
    as_owner "$PGBIN/pg_ctl" -D "$data/cluster" -m fast -w stop >/dev/null 2>&1 || true
    pg_unplace "$link"
    echo "local-db: removed" >&2
    ;;
*)
    echo "usage: deploy/local-db.sh [start|stop|remove]" >&2
    exit 2
    ;;
esac
