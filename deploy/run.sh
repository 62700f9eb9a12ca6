#!/bin/sh
# One command from a fresh Debian 12 machine to a running ndrguard: installs what is missing,
# builds, then runs `ndrguard` with the arguments given (default: --help).
#   deploy/run.sh scan --json /var/mail/bounces
#   deploy/run.sh serve            the content filter on 127.0.0.1:10025 (deploy/ndrguard.conf),
#                                  on a local PostgreSQL it creates under ./var; prints the
#                                  Postfix lines that hook it in
#   deploy/run.sh migrate          (creates and starts the local PostgreSQL first, too)
#   deploy/run.sh quarantine list  held messages (same database and deploy/ndrguard.conf as serve)
#   deploy/run.sh digest --mailbox M --dry-run   the digest M would get (same links as serve's pages)
#   deploy/run.sh demo             a storm and genuine bounces through a private Postfix: the
#                                  quarantine, metrics and digests they make, in a minute
# Commands that need a database get the local cluster of deploy/local-db.sh unless NDRGUARD_DB
# names another.
set -eu
cd "$(dirname "$0")/.."
deploy/setup.sh
deploy/build.sh >&2
[ "$#" -eq 0 ] && set -- --help
case "$1" in
demo)
    exec python3 deploy/demo.py "$@"
    ;;
migrate|serve|quarantine|digest)
    if [ -z "${NDRGUARD_DB:-}" ]; then NDRGUARD_DB=$(deploy/local-db.sh start); export NDRGUARD_DB; fi
    ;;
esac
if [ "$1" = serve ]; then
    shift
    {
        echo "---- hook ndrguard into Postfix (after queue): master.cf ----"
        cat deploy/postfix/master.cf.snippet
        echo "---- main.cf ----"
        cat deploy/postfix/main.cf.snippet
        echo "---- (before queue instead: deploy/postfix/before-queue.snippet) ----"
    } >&2
    # The release pages too, with their secret beside the local database.
    mkdir -p "${NDRGUARD_DATA_DIR:-var}"
    exec "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" serve --config deploy/ndrguard.conf \
        --set web_listen=127.0.0.1:8025 --set "web_secret_file=${NDRGUARD_DATA_DIR:-var}/web.secret" \
        --set metrics_listen=127.0.0.1:9325 "$@"
fi
if [ "$1" = quarantine ] || [ "$1" = digest ]; then
    command=$1
    shift
    "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" migrate >/dev/null
    mkdir -p "${NDRGUARD_DATA_DIR:-var}"
    exec "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" "$command" --config deploy/ndrguard.conf \
        --set "web_secret_file=${NDRGUARD_DATA_DIR:-var}/web.secret" "$@"
fi
exec "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" "$@"
