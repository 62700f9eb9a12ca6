# Sourced by deploy/local-db.sh and tests/pg/pg_cluster.sh: where PostgreSQL 15 lives, and how
# to run its tools as a user it accepts (initdb and postgres refuse to run as root).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
