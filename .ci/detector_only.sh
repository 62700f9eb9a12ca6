#!/bin/sh
# The detector alone, in its own build directory: configured with NDRGUARD_DETECTOR_ONLY=ON and
# every package but doctest refused (.ci/only_doctest.cmake), built, its tests run (unit and
# sample tests, the ASan+UBSan fuzz replay). Then the link lines are read: they may name the
# build's own archives and the compiler's sanitizer flags, no other library. A few seconds.
# usage: .ci/detector_only.sh [BUILD_DIR]   (default: build-detector)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-detector}
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNDRGUARD_DETECTOR_ONLY=ON \
      -DCMAKE_PROJECT_TOP_LEVEL_INCLUDES="$src/.ci/only_doctest.cmake" >/dev/null
cmake --build "$build" -j "${NDRGUARD_JOBS:-2}"
# Every library on a link line: -lNAME, or a path to a .a/.so that is not one of this build's.
libs=$(sed -n 's/^ *LINK_LIBRARIES = //p' "$build/build.ninja" | tr ' ' '\n' |
       grep -E '^-l|\.(a|so)(\.[0-9.]+)?$' | grep -v -E '^(detector|tests)/' | sort -u || true)
if [ -n "$libs" ]; then
    echo "detector-only build links more than the detector: $libs" >&2
    exit 1
fi
ctest --test-dir "$build" --output-on-failure
