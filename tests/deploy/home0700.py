#!/usr/bin/env python3
"""The README's `deploy/run.sh serve` from a checkout under a 0700 directory (issue 13, item 9):
a newcomer clones into /root (mode 0700 on Debian) and runs it as root, where the PostgreSQL
server (user postgres) cannot enter the checkout. The working tree is copied into a fresh
0700 directory and run there with this build (NDRGUARD_BUILD_DIR: no second build): the local
cluster must start (placed outside the checkout), serve must greet and answer /healthz 200,
`deploy/run.sh quarantine list` must work on the same database; `deploy/local-db.sh remove`
then leaves nothing behind.
usage: home0700.py SOURCE_DIR BUILD_DIR      (exit 77: not root, or no PostgreSQL)"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, failures, free_port, wait_for  # noqa: E402

source, build = (os.path.abspath(p) for p in sys.argv[1:3])


def copy_checkout(to):
    """The working tree as it is (tracked and new files, not build trees)."""
    r = subprocess.run(["git", "-C", source, "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True)
    if r.returncode != 0:  # not a git checkout: everything but builds and local data
        top = lambda d, names: [n for n in names if d == source and (n.startswith("build") or n == "var")]
        shutil.copytree(source, to, symlinks=True, ignore=top)
        return
    for name in r.stdout.decode().split("\0"):
        src = os.path.join(source, name)
        if not name or not os.path.lexists(src) or name.startswith(("build", "var/")):
            continue
        dst = os.path.join(to, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(512).startswith(b"220 ")
    except OSError:
        return False


def main():
    if os.geteuid() != 0:
        print("SKIP: the 0700-home case is root's (the PostgreSQL server then runs as postgres)")
        return 77
    if not os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        print("SKIP: no PostgreSQL 15 server binaries (Debian package postgresql-15)")
        return 77
    home = tempfile.mkdtemp(prefix="ndrguard-home-")
    os.chmod(home, 0o700)
    checkout = os.path.join(home, "ndrguard")
    copy_checkout(checkout)
    env = dict(os.environ, NDRGUARD_BUILD_DIR=build)
    env.pop("NDRGUARD_DB", None)
    env.pop("NDRGUARD_DATA_DIR", None)
    smtp, web, metrics = free_port(), free_port(), free_port()
    log = open(os.path.join(home, "serve.log"), "w+")
    serve = subprocess.Popen([os.path.join(checkout, "deploy", "run.sh"), "serve", "--set", "listen=127.0.0.1:%d" % smtp,
                              "--set", "web_listen=127.0.0.1:%d" % web, "--set", "metrics_listen=127.0.0.1:%d" % metrics],
                             cwd="/", env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        up = wait_for(lambda: greets(smtp) or serve.poll() is not None, 90) and serve.poll() is None
        log.seek(0)
        check("deploy/run.sh serve from a checkout under a 0700 directory: serve greets", up, log.read()[-3000:])
        link = os.path.join(checkout, "var", "pg")
        real = os.path.realpath(link)
        check("the local cluster lives outside the checkout, recorded as var/pg", os.path.islink(link) and
              not real.startswith(home) and os.stat(real).st_uid == pwd.getpwnam("postgres").pw_uid and
              oct(os.stat(real).st_mode & 0o777) == "0o700", (link, real))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % web, timeout=10) as r:
                health = r.status
        except Exception as e:
            health = e
        check("its /healthz answers 200 (the database is there)", health == 200, health)
        q = subprocess.run([os.path.join(checkout, "deploy", "run.sh"), "quarantine", "list"], cwd="/", env=env,
                           capture_output=True, text=True, timeout=120)
        check("deploy/run.sh quarantine list works on the same database", q.returncode == 0, q.stdout + q.stderr)
    finally:
        try:
            os.killpg(serve.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        real = os.path.realpath(os.path.join(checkout, "var", "pg"))
        subprocess.run([os.path.join(checkout, "deploy", "local-db.sh"), "remove"], capture_output=True, env=env)
        check("deploy/local-db.sh remove removes the cluster outside the checkout", not os.path.exists(real), real)
        shutil.rmtree(home, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
