#!/bin/sh
# deploy/systemd's units pass `systemd-analyze verify` (with the built binary in place of
# /usr/local/bin/ndrguard). Exit 77 when systemd-analyze is not installed.
set -eu
ndrguard=$1 units=$2 work=$3
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
for f in "$units"/*.service "$units"/*.timer; do
    sed "s|/usr/local/bin/ndrguard|$ndrguard|g" "$f" > "$work/$(basename "$f")"
done
out=$(cd "$work" && systemd-analyze verify ./*.service ./*.timer 2>&1) || { echo "$out"; exit 1; }
# verify exits 0 on some warnings: any line about our units is a failure.
if echo "$out" | grep -q "ndrguard"; then echo "$out"; exit 1; fi
echo "ok: $(ls "$work" | tr '\n' ' ')"
