#!/bin/sh
# A short libFuzzer run over the detector, seeded from the regression inputs and samples.
# Fails when the fuzzer finds a crash, a leak, a timeout or an out-of-memory; the input is
# kept in WORK_DIR/artifacts for a regression test (copy it into tests/fuzz/regress/).
# usage: smoke.sh FUZZER SECONDS WORK_DIR DICT SEED_DIR...
set -eu
fuzzer=$1 seconds=$2 work=$3 dict=$4
shift 4
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
for seeds in "$@"; do
    [ -d "$seeds" ] && find "$seeds" -type f ! -name '*.expect' -exec cp {} "$work/corpus/" \;
done
exec "$fuzzer" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -dict="$dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus"
