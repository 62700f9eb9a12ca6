#!/usr/bin/env python3
"""`ndrguard scan --expect`: writes the .expect golden files the sample test reads.
  - for every committed sample, the file it writes is the committed one, byte for byte;
  - on a new sample it creates NAME.expect (and the sample test's format reads it back: the
    same content as the committed file of the same message, less its notes);
  - note: lines are kept, a known_failure: file is left as it is;
  - not a .eml file, or --json/--null-sender with it: refused.
usage: expect_cli.py NDRGUARD SAMPLES_DIR WORK_DIR"""
import glob
import os
import shutil
import subprocess
import sys

ndrguard, samples, work = sys.argv[1:4]
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def expect(*args):
    return subprocess.run([ndrguard, "scan", "--expect", *args], capture_output=True, text=True, timeout=60)


def read(path):
    with open(path, "rb") as f:
        return f.read()


shutil.rmtree(work, ignore_errors=True)
copy = os.path.join(work, "samples")
shutil.copytree(samples, copy)
emls = sorted(glob.glob(os.path.join(copy, "*.eml")))
check("there are samples", len(emls) >= 25, len(emls))

r = expect(copy)
check("every sample: exit 0", r.returncode == 0, (r.returncode, r.stderr))
lines = r.stdout.splitlines()
check("every sample: one line each", len(lines) == len(emls), r.stdout)
check("every sample: unchanged", all(line.endswith(": unchanged") for line in lines), r.stdout)
for eml in emls:
    name = os.path.basename(eml)[:-4] + ".expect"
    if read(os.path.join(copy, name)) != read(os.path.join(samples, name)):
        check("the generated %s is the committed one" % name, False, read(os.path.join(copy, name)))
check("every generated .expect is the committed one", not failures)

# A new sample: dropped in, generated, the same as its twin's file without the notes.
new = os.path.join(work, "new")
os.makedirs(new)
shutil.copy(os.path.join(samples, "dsn-crlf.eml"), os.path.join(new, "new-case.eml"))
r = expect(os.path.join(new, "new-case.eml"))
created = os.path.join(new, "new-case.expect")
check("a new sample: exit 0, written", r.returncode == 0 and r.stdout.endswith("new-case.expect: written\n"), r)
twin = [l for l in read(os.path.join(samples, "dsn-crlf.expect")).decode().splitlines(True) if not l.startswith("note:")]
check("a new sample: its .expect says what the committed one says",
      os.path.exists(created) and read(created).decode() == "".join(twin), read(created) if os.path.exists(created) else "none")
check("a new sample: no temporary file left", sorted(os.listdir(new)) == ["new-case.eml", "new-case.expect"], os.listdir(new))

# A note written by hand survives a regeneration, and a stale line is replaced.
with open(created, "a") as f:
    f.write("note: written by a person\nreason: stale.tag\n")
r = expect(created[:-7] + ".eml")
text = read(created).decode()
check("rewritten: exit 0", r.returncode == 0 and "rewritten" in r.stdout, r)
check("rewritten: the note is kept", text.endswith("note: written by a person\n"), text)
check("rewritten: the stale line is gone", "stale.tag" not in text, text)

# known_failure: the expectations are a person's, not the detector's.
hand = "class: ndr\nknown_failure: the detector says dsn\n"
with open(created, "w") as f:
    f.write(hand)
r = expect(created[:-7] + ".eml")
check("known_failure: kept as it is", r.returncode == 0 and "kept (known_failure)" in r.stdout and read(created).decode() == hand, r)

# Not a sample: a file the sample test would not read; and options that would change what is
# classified.
mbox = os.path.join(new, "two.mbox")
with open(mbox, "w") as f:
    f.write("From a@example.org Mon Mar  2 09:15:00 2026\nSubject: one\n\nx\n\n"
            "From b@example.org Mon Mar  2 09:16:00 2026\nSubject: two\n\ny\n")
r = expect(mbox)
check("not a .eml: exit 1 with a message", r.returncode == 1 and "not a .eml file" in r.stderr, r)
check("not a .eml: nothing written", not os.path.exists(os.path.join(new, "two.expect")), os.listdir(new))
for option in ("--json", "--null-sender"):
    r = subprocess.run([ndrguard, "scan", "--expect", option, created[:-7] + ".eml"], capture_output=True, text=True)
    check("--expect with %s: exit 2" % option, r.returncode == 2, r)

print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
