#!/bin/sh
# A throwaway PostgreSQL 15 cluster for the tests: unix socket only, in its own directory (so
# it cannot collide with any other server on the machine), no fsync (test data is disposable).
#   pg_cluster.sh start DIR   -> writes DIR/conninfo; exit 77 when PostgreSQL is not installed
#   pg_cluster.sh stop DIR
#   pg_cluster.sh pause DIR | resume DIR   (stop and start again, keeping the data)
# As root the server runs as the `postgres` user: initdb refuses to run as root.
set -eu
cmd=$1 dir=$2
. "$(dirname "$0")/../../deploy/pg_common.sh"
case "$cmd" in
start)
    if [ ! -x "$PGBIN/initdb" ]; then
        echo "SKIP: no PostgreSQL 15 server binaries in $PGBIN (Debian package postgresql-15)"
        exit 77
    fi
    if [ -f "$dir/data/postmaster.pid" ]; then as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log"; exit 1; }
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p 5433 -k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$dir/server.log"; exit 1; }
    echo "host=$dir port=5433 dbname=postgres user=postgres" >"$dir/conninfo"
    echo "PostgreSQL test cluster running in $dir"
    ;;
pause)
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p 5433 -k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    rm -rf "$dir"
    echo "PostgreSQL test cluster stopped"
    ;;
*)
    echo "usage: pg_cluster.sh start|stop|pause|resume DIR" >&2
    exit 2
    ;;
esac
