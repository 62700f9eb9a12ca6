#!/bin/sh
# Configures and builds ndrguard in ./build (Ninja, RelWithDebInfo). The libFuzzer build of the
# detector (clang, ASan+UBSan) is made as part of it when clang is installed.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR="${NDRGUARD_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# Two jobs: these machines have two cores and the sanitizer build is memory-hungry.
cmake --build "$BUILD_DIR" -j "${NDRGUARD_JOBS:-2}"
