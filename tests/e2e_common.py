"""Helpers shared by the end-to-end tests and the network benchmarks: ports, waiting, one SMTP
transaction as Postfix's smtpd would see it (XFORWARD included), a DSN naming a message, the
throwaway PostgreSQL cluster and a check() that counts failures."""
import os
import smtplib
import socket
import subprocess
import time

failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=40, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_port(port, timeout=20):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    return wait_for(up, timeout, 0.1)


def send(port, mail_from, rcpts, message, client_addr=None):
    """One transaction; returns (code, text) of the answer to the message, or of the first
    refusal. client_addr: sent as XFORWARD ADDR, as Postfix reports the original client."""
    # local_hostname: no getfqdn(), whose DNS lookup can take seconds on a fresh machine
    s = smtplib.SMTP("127.0.0.1", port, timeout=60, local_hostname="mx.remote.test")
    try:
        s.ehlo("mx.remote.test")
        if client_addr:
            code, text = s.docmd("XFORWARD", "NAME=mx.remote.test ADDR=%s" % client_addr)
            if code != 250:
                return code, text.decode()
        code, text = s.mail(mail_from)
        if code != 250:
            return code, text.decode()
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                return code, text.decode()
        code, text = s.data(message)
        return code, text.decode()
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        try:
            s.quit()
        except Exception:
            pass


def dsn_returning(msgid, tag=None):
    """An RFC 3464 bounce returning the headers of <msgid>; `tag` (default bounce.<msgid with
    dots>) is in its text and its own Message-ID, to find it again at the sink."""
    tag = tag or "bounce." + msgid.replace("@", ".")
    return ("From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\n"
            "To: alice@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Message-ID: <%s@mx.remote.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [%s]\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
            "Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.org\r\nTo: nobody@remote.test\r\n"
            "Subject: hello\r\nMessage-ID: <%s>\r\n\r\n--B--\r\n") % (tag, tag, msgid)


def start_postgres(pg_cluster, pg_dir):
    """Starts the throwaway cluster; returns its conninfo, or None (with the reason printed)
    when PostgreSQL is not installed. Raises on any other failure."""
    r = subprocess.run([pg_cluster, "start", pg_dir], capture_output=True, text=True)
    if r.returncode == 77:
        print(r.stdout.strip())
        return None
    if r.returncode != 0:
        raise RuntimeError("cannot start PostgreSQL: " + r.stdout + r.stderr)
    with open(os.path.join(pg_dir, "conninfo")) as f:
        return f.read().strip()


def sink_files(sink_dir):
    """The messages a smtp_sink.py stored, oldest first."""
    out = []
    for name in sorted(os.listdir(sink_dir)):
        if name.endswith(".eml"):
            with open(os.path.join(sink_dir, name), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
    return out


def postfix_missing(need_root=True):
    """Why a test that runs a private Postfix instance cannot run here, or "" when it can."""
    import shutil
    if shutil.which("postfix") is None or shutil.which("smtp-source") is None or \
            not os.path.exists("/usr/lib/postfix/sbin/master"):
        return "SKIP: Postfix is not installed (Debian package postfix)"
    if need_root and os.geteuid() != 0:
        return "SKIP: a private Postfix instance needs root (its master runs as root)"
    return ""


def reachable(path):
    """True when the unprivileged users that PostgreSQL, Postfix's daemons and its delivery
    agents run as can reach PATH (search permission on every directory up to it). Not as root:
    the servers then run as ourselves, in our own checkout."""
    if os.geteuid() != 0:
        return True
    return subprocess.run(["runuser", "-u", "nobody", "--", "test", "-x", path], capture_output=True).returncode == 0


PLACED = "ndrguard-"  # the prefix of the directories fresh_dir makes under /var/tmp


def remove_dir(path):
    """Removes PATH, and the directory it links to when fresh_dir made it."""
    import shutil
    if os.path.islink(path):
        target = os.readlink(path)
        if os.path.basename(target).startswith(PLACED):
            shutil.rmtree(target, ignore_errors=True)
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def fresh_dir(path, kind="work"):
    """Empties PATH (mode 0755) and returns the directory to use for it: PATH itself, or, when
    the servers' users cannot reach it (a checkout under a 0700 home, such as /root, run as
    root), a new directory under $NDRGUARD_PLACE_DIR (default /var/tmp) that PATH links to, so
    that it is found (and emptied) again on the next run. Give the servers the returned path:
    a path through the link passes through the home they cannot enter."""
    import tempfile
    remove_dir(path)
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    os.makedirs(parent, exist_ok=True)
    if reachable(parent):
        real = os.path.join(parent, os.path.basename(path))
        os.makedirs(real)
    else:
        real = tempfile.mkdtemp(prefix=PLACED + kind + "-", dir=os.environ.get("NDRGUARD_PLACE_DIR", "/var/tmp"))
        os.symlink(real, path)
    os.chmod(real, 0o755)
    return real


def fresh_postgres(work, pg_cluster):
    """Empties WORK (see fresh_dir: what is in it is reachable by PostgreSQL and Postfix) and
    starts a cluster in WORK/pg; returns (pg_dir, conninfo), conninfo None when PostgreSQL is
    not installed."""
    pg_dir = os.path.join(fresh_dir(work), "pg")
    return pg_dir, start_postgres(pg_cluster, pg_dir)
