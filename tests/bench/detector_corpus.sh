#!/bin/sh
# BENCH detector_corpus: the detector against the Sisimai bounce parser on the same files, both
# pinned to one core, alternating three rounds after a shorter warm-up round that is not counted
# (it reads the files into the page cache); the median of each side is reported.
# Exits 1, without a BENCH line, when it cannot measure (no corpus, no Sisimai, a run failing).
# usage: detector_corpus.sh BENCH_DETECTOR SISIMAI_SCRIPT CORPUS_DIR
set -eu
bench=$1 sisimai=$2 corpus=$3
if [ ! -d "$corpus/bounces" ]; then
    echo "FAIL: no corpus at $corpus (../shared is not beside the checkout): no BENCH line"; exit 1
fi
if ! perl -MSisimai -e 1 2>/dev/null; then
    echo "FAIL: Sisimai is not installed (Debian package libsisimai-perl): no BENCH line"; exit 1
fi
pin=""
command -v taskset >/dev/null && pin="taskset -c $(($(nproc) - 1))"
dirs="$corpus/bounces $corpus/ham"
# The NAME=number field of a run's line; exits when the run did not print it.
field() {
    v=$(printf '%s\n' "$1" | sed -n "s/.*$2=\\([0-9.][0-9.]*\\).*/\\1/p")
    if [ -z "$v" ]; then echo "FAIL: no $2 in '$1': no BENCH line" >&2; exit 1; fi
    echo "$v"
}
d=$($pin "$bench" --seconds 1 $dirs)
s=$($pin perl "$sisimai" --seconds 10 $dirs)
echo "warm-up (not counted): $d"
echo "warm-up (not counted): $s"
det_rates="" sis_rates="" sis_version=""
for round in 1 2 3; do
    d=$($pin "$bench" --seconds 2 $dirs)
    echo "round $round: $d"
    s=$($pin perl "$sisimai" --seconds 60 $dirs)
    echo "round $round: $s"
    det_rates="$det_rates $(field "$d" messages_per_s)"
    sis_rates="$sis_rates $(field "$s" messages_per_s)"
    sis_version=$(echo "$s" | sed 's/.*version=\([^ ]*\).*/\1/')
    det_mb=$(field "$d" mb_per_s)
done
median() { printf '%s\n' $1 | sort -n | sed -n 2p; }
det=$(median "$det_rates")
sis=$(median "$sis_rates")
ratio=$(awk -v a="$det" -v b="$sis" 'BEGIN { printf "%.1f", a / b }')
echo "detector median ${det} messages/s (last round ${det_mb} MB/s); sisimai median ${sis} messages/s"
echo "goal: >= 20000 messages/s and > 10x sisimai"
echo "BENCH name=detector_corpus value=${det} unit=messages/s ratio=${ratio} reference=sisimai-${sis_version}-same-files-one-core"
