# Sourced by deploy/local-db.sh and tests/pg/pg_cluster.sh: where PostgreSQL 15 lives, how to
# run its tools as a user it accepts (initdb and postgres refuse to run as root), and where a
# cluster can live when the checkout is out of that user's reach.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# True when the server's user can reach DIR: always when we are that user (not root); as
# root, the `postgres` user needs search permission on every directory up to DIR, which a
# checkout under a 0700 home (/root on Debian) does not give.
pg_reachable() {
    [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1" 2>/dev/null
}

# The directory the server's files go in for DIR, made ready (owned by the server's user):
# DIR itself when the server can reach it; otherwise a new directory under BASE (owned by
# postgres, mode 0700) that DIR becomes a symbolic link to, so that its path is recorded in
# the checkout and pg_unplace finds it again. Prints the directory (never the link: the
# server resolves no path through a home it cannot enter).
pg_place() {
    _dir=$1 _base=$2
    if [ -L "$_dir" ] && [ -d "$_dir/" ]; then readlink "$_dir"; return; fi
    [ -L "$_dir" ] && rm -f "$_dir"  # its directory is gone (a reboot emptied BASE)
    mkdir -p "$(dirname "$_dir")"
    if pg_reachable "$(dirname "$_dir")"; then
        mkdir -p "$_dir"
        if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$_dir"; fi
        echo "$_dir"
        return
    fi
    mkdir -p "$_base"
    _real=$(mktemp -d "$_base/ndrguard-pg.XXXXXX")
    chown postgres:postgres "$_real"
    chmod 700 "$_real"
    ln -s "$_real" "$_dir"
    echo "$_real"
}

# Where DIR's files are: the directory its link names, or DIR.
pg_real() {
    if [ -L "$1" ]; then readlink "$1"; else echo "$1"; fi
}

# Removes DIR, and the directory it links to if pg_place made it.
pg_unplace() {
    if [ -L "$1" ]; then
        _real=$(readlink "$1")
        case "$_real" in */ndrguard-pg.*) rm -rf "$_real" ;; esac
        rm -f "$1"
    else
        rm -rf "$1"
    fi
}
