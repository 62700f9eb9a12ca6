#!/usr/bin/env python3
"""BATV tags made by an independent implementation (Python's hmac and hashlib, written here from
draft-levine-smtp-batv-01 and Exim's ${prvs}: HMAC-SHA1 over K DDD loc-core@domain, the first 3
bytes in hex, DDD the expiry day modulo 1000), checked by ndrguard's verify_batv through batv_check.
usage: batv_cross_check.py BATV_CHECK"""
import hashlib
import hmac
import subprocess
import sys

check = sys.argv[1]
today = 20424
keys = {0: "old-secret", 4: "Exim key \u00e9 with UTF-8"}


def tag(key_number, secret, ddd, address):
    source = f"{key_number}{ddd % 1000:03d}{address}".encode()
    return f"prvs={key_number}{ddd % 1000:03d}{hmac.new(secret.encode(), source, hashlib.sha1).hexdigest()[:6]}={address}"


cases = []
for i, address in enumerate(["alice@example.org", "list-owner+x@lists.example.org", "o'neil@example.org",
                             "a=b@example.org", "UPPER@Example.ORG"]):
    for key_number, secret in keys.items():
        for days_ahead in range(0, 8):  # made on any day of the last week
            cases.append((tag(key_number, secret, today + days_ahead, address), "valid", address))
        cases.append((tag(key_number, secret, today - 1, address), "expired", address))
        cases.append((tag(key_number, secret + "x", today + 7, address), "invalid", address))
    cases.append((tag(9, "whatever", today + 7, address), "invalid", address))
    cases.append((address, "not_tagged", address))

args = [check, str(today), "7"] + [f"{k}:{s}" for k, s in keys.items()]
run = subprocess.run(args, input="".join(c[0] + "\n" for c in cases), capture_output=True, text=True, check=True)
lines = run.stdout.splitlines()
if len(lines) != len(cases):
    sys.exit(f"{len(cases)} addresses, {len(lines)} answers:\n{run.stdout}{run.stderr}")
failures = 0
for (address, want, untagged), line in zip(cases, lines):
    status, _reason, got_untagged = line.split(" ", 2)
    if status != want or got_untagged != untagged:
        print(f"FAIL {address}: want {want} {untagged}, got {line}")
        failures += 1
print(f"{len(cases)} tags checked, {failures} failures")
sys.exit(1 if failures else 0)
