#!/bin/sh
# BENCH detector_corpus: the detector against the Sisimai bounce parser on the same files, both
# pinned to one core, alternating three rounds; the median of each side is reported.
# usage: detector_corpus.sh BENCH_DETECTOR SISIMAI_SCRIPT CORPUS_DIR   (exit 77: skipped)
set -eu
bench=$1 sisimai=$2 corpus=$3
if [ ! -d "$corpus/bounces" ]; then
    echo "SKIP: no corpus at $corpus (../shared is not beside the checkout)"; exit 77
fi
if ! perl -MSisimai -e 1 2>/dev/null; then
    echo "SKIP: Sisimai is not installed (Debian package libsisimai-perl)"; exit 77
fi
pin=""
command -v taskset >/dev/null && pin="taskset -c $(($(nproc) - 1))"
dirs="$corpus/bounces $corpus/ham"
det_rates="" sis_rates="" sis_version=""
for round in 1 2 3; do
    d=$($pin "$bench" --seconds 2 $dirs)
    echo "round $round: $d"
    s=$($pin perl "$sisimai" --seconds 60 $dirs)
    echo "round $round: $s"
    det_rates="$det_rates $(echo "$d" | sed 's/.*messages_per_s=\([0-9.]*\).*/\1/')"
    sis_rates="$sis_rates $(echo "$s" | sed 's/.*messages_per_s=\([0-9.]*\).*/\1/')"
    sis_version=$(echo "$s" | sed 's/.*version=\([^ ]*\).*/\1/')
    det_mb=$(echo "$d" | sed 's/.*mb_per_s=\([0-9.]*\).*/\1/')
done
median() { printf '%s\n' $1 | sort -n | sed -n 2p; }
det=$(median "$det_rates")
sis=$(median "$sis_rates")
ratio=$(awk -v a="$det" -v b="$sis" 'BEGIN { printf "%.1f", a / b }')
echo "detector median ${det} messages/s (last round ${det_mb} MB/s); sisimai median ${sis} messages/s"
echo "goal: >= 20000 messages/s and > 10x sisimai"
echo "BENCH name=detector_corpus value=${det} unit=messages/s ratio=${ratio} reference=sisimai-${sis_version}-same-files-one-core"
