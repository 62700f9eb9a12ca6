#!/bin/sh
# One command from a fresh Debian 12 machine to a running ndrguard: installs what is missing,
# builds, then runs `ndrguard` with the arguments given (default: --help).
#   deploy/run.sh scan --json /var/mail/bounces
# The filter daemon (`ndrguard serve`, with the local PostgreSQL it creates) is not built yet:
# see README.md, "Status".
set -eu
cd "$(dirname "$0")/.."
deploy/setup.sh
deploy/build.sh >&2
[ "$#" -eq 0 ] && set -- --help
exec "${NDRGUARD_BUILD_DIR:-build}/app/ndrguard" "$@"
