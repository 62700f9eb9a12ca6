#!/bin/sh
# Installs what ndrguard needs to build and test on Debian 12, and nothing when it is all there.
# Used by deploy/run.sh, tests/run.sh and .ci/run; safe to run again. Needs root (or sudo)
# only when something is missing.
set -eu

# Build: compiler, CMake, Ninja. Libraries: nlohmann-json (scan --json), doctest (unit tests),
# libpqxx (the sent log), Boost.Asio 1.81 (the filter daemon; never the libboost-dev metapackage),
# OpenSSL's libcrypto (HMAC-SHA256 of the release links).
# PostgreSQL 15: the server the tests (and the local run) start. python3: the end-to-end driver.
# Postfix: the end-to-end tests run a private instance (the system one is never configured).
# The digest: mimetic. Metrics: prometheus-cpp (core). Tests: Chromium and chromedriver (the
# release pages in a browser), Prometheus and promtool (scraping, alert rules).
# Fuzzing: clang with its runtime (libFuzzer, ASan, UBSan). Benchmarks: Sisimai, the peer
# bounce parser they compare with (only needed for `ctest -L bench`).
# DKIM evidence: libopendkim (verification); its tests sign with python3-dkim and OpenDKIM's
# opendkim-testmsg (opendkim-tools), with keys made by openssl. `ndrguard backfill`: zlib
# (gzip-rotated mail logs). OpenDKIM's milter (opendkim): the end-to-end test of DKIM evidence
# signs outbound mail with it as Postfix's smtpd_milters (a private instance, its own config).
# Postgrey: the policy service's end-to-end test and benchmark run Debian's greylisting policy
# server beside it (coexistence, and the peer it is compared with).
PACKAGES="build-essential cmake ninja-build pkg-config ca-certificates
  nlohmann-json3-dev doctest-dev libpqxx-dev libpq-dev postgresql-15 libboost1.81-dev libboost-system1.81-dev libssl-dev python3
  clang libclang-rt-14-dev llvm
  postfix libsisimai-perl util-linux
  libmimetic-dev chromium chromium-driver prometheus-cpp-dev prometheus
  libopendkim-dev python3-dkim opendkim-tools openssl zlib1g-dev opendkim
  postgrey"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: these Debian packages are missing and I am not root:$missing" >&2
    exit 1
fi
echo "setup: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix without a system configuration: /etc/postfix/main.cf is not created, nothing starts.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
