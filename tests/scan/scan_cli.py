#!/usr/bin/env python3
"""`ndrguard scan` on what a careless operator hands it (issue 13, item 8):
  - a FIFO (or device, socket) given as PATH is skipped with a message at once, exit 1;
  - a directory that cannot be read, at the top or deeper, is reported, exit 1, and the rest
    is still scanned (as root, the scan runs as `nobody`, for whom permissions count);
  - an mbox truncated while it is being scanned ends with a message and exit 1, not SIGBUS;
  - a file far larger than a message may be is read in bounded memory.
usage: scan_cli.py NDRGUARD WORK_DIR"""
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

ndrguard, work = sys.argv[1:3]
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def scan(*paths, timeout=30, **kw):
    try:
        return subprocess.run([ndrguard, "scan", *paths], capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        return e


MESSAGE = "From: a@example.org\nTo: b@example.org\nSubject: hello %d\nMessage-ID: <m%d@example.org>\n\nhi\n"

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
good = os.path.join(work, "good.eml")
with open(good, "w") as f:
    f.write(MESSAGE % (0, 0))

# A FIFO nobody writes to: open() without O_NONBLOCK would wait for a writer for ever.
fifo = os.path.join(work, "fifo")
os.mkfifo(fifo)
t0 = time.monotonic()
r = scan(fifo, good, timeout=20)
took = time.monotonic() - t0
if isinstance(r, subprocess.TimeoutExpired):
    check("a FIFO argument is skipped at once", False, "scan still blocked after 20 s")
else:
    check("a FIFO argument is skipped at once", took < 10, "%.1f s" % took)
    check("a FIFO argument: exit 1", r.returncode == 1, (r.returncode, r.stderr))
    check("a FIFO argument: a line on stderr", "fifo: not a regular file" in r.stderr, r.stderr)
    check("a FIFO argument: the other path is still scanned", "good.eml  not_bounce" in r.stdout, r.stdout)
r = scan("/dev/null", timeout=20)
check("a device argument: exit 1 with a message",
      not isinstance(r, subprocess.TimeoutExpired) and r.returncode == 1 and "not a regular file" in r.stderr, r)

# Unreadable directories. Root reads everything: as root, the scan runs as nobody, from a copy
# of the binary in a directory nobody can reach (the checkout may not be).
as_root = os.geteuid() == 0
tree = tempfile.mkdtemp(prefix="ndrguard-scan-")
try:
    os.chmod(tree, 0o755)
    binary = ndrguard
    preexec = None
    if as_root:
        binary = os.path.join(tree, "ndrguard")
        shutil.copy(ndrguard, binary)
        os.chmod(binary, 0o755)

        def preexec():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
    top = os.path.join(tree, "top")
    os.makedirs(os.path.join(top, "locked"))
    os.makedirs(os.path.join(top, "open"))
    with open(os.path.join(top, "open", "a.eml"), "w") as f:
        f.write(MESSAGE % (1, 1))
    with open(os.path.join(top, "locked", "b.eml"), "w") as f:
        f.write(MESSAGE % (2, 2))
    for d, _, files in os.walk(tree):
        os.chmod(d, 0o755)
        for name in files:
            os.chmod(os.path.join(d, name), 0o755 if name == "ndrguard" else 0o644)
    os.chmod(os.path.join(top, "locked"), 0)
    closed = os.path.join(tree, "closed")
    os.makedirs(closed)
    os.chmod(closed, 0)

    def scan_as(*paths):
        return subprocess.run([binary, "scan", *paths], capture_output=True, text=True, timeout=30, preexec_fn=preexec)
    r = scan_as(closed)
    check("an unreadable directory: exit 1", r.returncode == 1, (r.returncode, r.stderr))
    check("an unreadable directory: a line on stderr", "closed: Permission denied" in r.stderr, r.stderr)
    r = scan_as(top)
    check("an unreadable subdirectory: exit 1", r.returncode == 1, (r.returncode, r.stderr))
    check("an unreadable subdirectory: named on stderr", "locked: Permission denied" in r.stderr, r.stderr)
    check("an unreadable subdirectory: the rest is scanned", "a.eml  not_bounce" in r.stdout, r.stdout)
finally:
    for d, dirs, _ in os.walk(tree):
        for name in dirs:
            os.chmod(os.path.join(d, name), 0o755)
    shutil.rmtree(tree, ignore_errors=True)

# An mbox truncated while being scanned. Its rows fill the pipe, which is not read: once the
# first row is out the scan is under way, and it stalls on the full pipe; the file is then
# truncated to nothing and the pipe drained. An mmap of the file dies of SIGBUS here.
mbox = os.path.join(work, "big.mbox")
with open(mbox, "w") as f:
    for i in range(30000):
        f.write("From sender@example.org Mon Mar  2 10:00:00 2026\n" + MESSAGE % (i, i) + "\n")
p = subprocess.Popen([ndrguard, "scan", mbox], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
first = p.stdout.readline()
time.sleep(0.5)  # (not needed for the result: the scan is mid-file whenever the truncation lands)
os.truncate(mbox, 0)
rest, err = p.communicate(timeout=60)
rows = 1 + rest.count(b"\n") if first else 0
check("a truncated mbox: no crash", p.returncode >= 0,
      "killed by %s" % (signal.Signals(-p.returncode).name if p.returncode < 0 else ""))
check("a truncated mbox: exit 1", p.returncode == 1, p.returncode)
check("a truncated mbox: said so", b"truncated while being read" in err, err[-300:])
check("a truncated mbox: the rows read before it were printed", 0 < rows < 30000, rows)

# A file much larger than a message may be: one mbox message of 96 MB. Only the detector's
# 32 MiB head is kept (flags=truncated); the scan's peak memory stays well below the file.
huge = os.path.join(work, "huge.mbox")
with open(huge, "w") as f:
    f.write("From sender@example.org Mon Mar  2 10:00:00 2026\nSubject: huge\n\n")
    line = "x" * 1023 + "\n"
    block = line * 1024
    for _ in range(96):
        f.write(block)
r = scan(huge, timeout=120)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
check("a huge message: scanned, flagged truncated", r.returncode == 0 and "flags=truncated" in r.stdout, r)
check("a huge message: peak memory below 80 MB (file: 96 MB)", peak_kb < 80 * 1024,
      "%d KB" % peak_kb)
os.unlink(huge)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
