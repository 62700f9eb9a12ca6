#!/bin/sh
# One command from a fresh Debian 12 machine to a running ndrguard: installs what is missing,
# builds, then runs `ndrguard` with the arguments given (default: --help).
#   deploy/run.sh scan --json /var/mail/bounces
#   deploy/run.sh migrate          (creates and starts a local PostgreSQL under ./var first)
# Commands that need a database get the local cluster of deploy/local-db.sh unless NDRGUARD_DB
# names another. The filter daemon (`ndrguard serve`) is not built yet: README.md, "Status".
set -eu
cd "$(dirname "$0")/.."
deploy/setup.sh
deploy/build.sh >&2
[ "$#" -eq 0 ] && set -- --help
case "$1" in
migrate)
    if [ -z "${NDRGUARD_DB:-}" ]; then NDRGUARD_DB=$(deploy/local-db.sh start); export NDRGUARD_DB; fi
    ;;
esac
exec "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" "$@"
