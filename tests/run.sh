#!/bin/sh
# One command from a fresh Debian 12 machine to a tested ndrguard: installs what is missing,
# builds the detector alone (.ci/detector_only.sh), then everything, runs every test but the
# benchmarks. Tests that need ../shared/corpus are skipped
# (and say so) when it is not beside the checkout. Benchmarks: ctest --test-dir build -L bench
set -eu
cd "$(dirname "$0")/.."
deploy/setup.sh
# The detector alone first (a few seconds): only a compiler, CMake and doctest.
.ci/detector_only.sh "${NDRGUARD_BUILD_DIR:-build}-detector"
deploy/build.sh
ctest --test-dir "${NDRGUARD_BUILD_DIR:-build}" -LE bench --output-on-failure "$@"
