#!/bin/sh
# A throwaway PostgreSQL 15 cluster for the tests: unix socket only, in its own directory (so
# it cannot collide with any other server on the machine), no fsync (test data is disposable).
#   pg_cluster.sh start DIR   -> writes DIR/conninfo; exit 77 when PostgreSQL is not installed
#   pg_cluster.sh stop DIR
#   pg_cluster.sh pause DIR | resume DIR   (stop and start again, keeping the data)
# As root the server runs as the `postgres` user: initdb refuses to run as root. When that
# user cannot reach DIR (a checkout under a 0700 home), DIR is a link to a directory of its
# own under $NDRGUARD_PG_TMP (default /var/tmp), removed by stop.
set -eu
cmd=$1 dir=$2
. "$(dirname "$0")/../../deploy/pg_common.sh"
options="-c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
case "$cmd" in
start)
    if [ ! -x "$PGBIN/initdb" ]; then
        echo "SKIP: no PostgreSQL 15 server binaries in $PGBIN (Debian package postgresql-15)"
        exit 77
    fi
    real=$(pg_real "$dir")
    if [ -f "$real/data/postmaster.pid" ]; then as_owner "$PGBIN/pg_ctl" -D "$real/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    pg_unplace "$dir"
    real=$(pg_place "$dir" "${NDRGUARD_PG_TMP:-/var/tmp}")
    as_owner "$PGBIN/initdb" -D "$real/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$real/initdb.log" 2>&1 ||
        { cat "$real/initdb.log"; exit 1; }
    as_owner "$PGBIN/pg_ctl" -D "$real/data" -l "$real/server.log" -w -t 30 -o "-p 5433 -k $real $options" \
        start >/dev/null || { cat "$real/server.log"; exit 1; }
    echo "host=$real port=5433 dbname=postgres user=postgres" >"$real/conninfo"
    echo "PostgreSQL test cluster running in $real"
    ;;
pause)
    real=$(pg_real "$dir")
    as_owner "$PGBIN/pg_ctl" -D "$real/data" -m fast -w stop >/dev/null
    ;;
resume)
    real=$(pg_real "$dir")
    as_owner "$PGBIN/pg_ctl" -D "$real/data" -l "$real/server.log" -w -t 30 -o "-p 5433 -k $real $options" \
        start >/dev/null
    ;;
stop)
    real=$(pg_real "$dir")
    if [ -f "$real/data/postmaster.pid" ]; then as_owner "$PGBIN/pg_ctl" -D "$real/data" -m fast -w stop >/dev/null; fi
    pg_unplace "$dir"
    echo "PostgreSQL test cluster stopped"
    ;;
*)
    echo "usage: pg_cluster.sh start|stop|pause|resume DIR" >&2
    exit 2
    ;;
esac
