#!/usr/bin/env python3
"""End to end: PostgreSQL frozen (SIGSTOP on the postmaster and every backend) or a table locked:
every wait of `ndrguard serve` on it ends in 451 within database_timeout_ms (1 s here), clients
that hang up mid-wait give their session back, new clients are still greeted, and once
PostgreSQL is back the same messages are accepted, nothing lost and nothing held twice.
usage: e2e_db_freeze.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, dsn_returning, failures, free_port, fresh_postgres, sink_files, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
TIMEOUT_MS = 1000
BOUND = 5.0  # seconds: the 1 s timeout plus a generous margin (a busy 2-core machine)
REMOTE = "203.0.113.5"


def send(port, mail_from, rcpts, message, client_addr=REMOTE, queue_id=None):
    """One transaction as Postfix's smtpd would make it; (code, text, seconds the answer to the
    message took)."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=20, local_hostname="mx.remote.test")
    t0 = time.time()
    try:
        s.ehlo("mx.remote.test")
        attrs = "NAME=mx.remote.test ADDR=%s" % client_addr
        if queue_id:
            attrs += " IDENT=%s" % queue_id
        s.docmd("XFORWARD", attrs)
        s.mail(mail_from)
        for r in rcpts:
            s.rcpt(r)
        t0 = time.time()
        try:
            code, text = s.data(message)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode(), time.time() - t0
    except (OSError, smtplib.SMTPException) as e:  # no answer in 20 s: what the old code did
        return 0, "no answer: %r" % e, time.time() - t0
    finally:
        try:
            s.quit()
        except Exception:
            pass


def send_and_hang_up(port, message):
    """A client that sends a bounce and goes before the answer (as a Postfix smtp process that
    timed out would)."""
    try:
        hang_up_after_sending(port, message)
    except OSError:
        pass  # refused (421 and closed): the old code, with every session taken


def hang_up_after_sending(port, message):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = c.makefile("rwb")
    f.readline()
    for cmd in (b"EHLO mx.remote.test", b"XFORWARD ADDR=" + REMOTE.encode(), b"MAIL FROM:<>", b"RCPT TO:<alice@example.org>",
                b"DATA"):
        f.write(cmd + b"\r\n")
        f.flush()
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                break
    f.write(message.encode().replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    f.flush()
    c.close()


def greeting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            return c.makefile("rb").readline().decode(errors="replace").strip()
    except OSError as e:
        return "no greeting: %r" % e


def unverifiable(tag):
    """A DSN that names no original message: nothing to look up (held by the policy here)."""
    return ("From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\nTo: alice@example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <%s@mx.remote.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [%s]\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
            "Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n") % (tag, tag)


def outbound(n):
    return "From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: freeze %s\r\nMessage-ID: <freeze.%s@example.org>\r\n\r\nhi\r\n" % (n, n)


def postgres_pids(pg_dir):
    with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster] + [int(p) for p in children]


def at_sink(sink_dir, needle):
    return [m for m in sink_files(sink_dir) if needle in m]


def held(conninfo, queue_id):
    """How many copies the quarantine holds of Postfix's queue id."""
    r = subprocess.run(["psql", "-X", "-Atq", conninfo, "-c", "SELECT count(*) FROM quarantine WHERE queue_id = '%s'" % queue_id],
                       capture_output=True, text=True)
    return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else -1


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    sink_dir = os.path.join(work, "sink")
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "smtp_sink.py"), str(sink_port), sink_dir])
    log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % port, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "hostname=filter.test", "--set", "warm_up=off", "--set", "our_networks=127.0.0.0/8",
                              "--set", "database_timeout_ms=%d" % TIMEOUT_MS, "--set", "max_sessions=4",
                              "--set", "policy.dsn.unverifiable=quarantine"], stderr=log)
    frozen = []
    locker = None

    def thaw():
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        frozen.clear()

    try:
        check("sink and filter listen", wait_port(sink_port) and wait_port(port))
        code, text, _ = send(port, "alice@example.org", ["bob@remote.test"], outbound(0), client_addr="127.0.0.1")
        code2, text2, _ = send(port, "", ["alice@example.org"], dsn_returning("freeze.0@example.org", "bounce.before"))
        code3, text3, _ = send(port, "", ["alice@example.org"], unverifiable("hold.before"), queue_id="HOLD0")
        check("before: outbound recorded, its bounce verified, an unverifiable bounce held",
              code == 250 and code2 == 250 and code3 == 250 and "held in quarantine" in text3, (text, text2, text3))

        # Frozen: nothing PostgreSQL does answers, the kernel still accepts and ACKs.
        frozen.extend(postgres_pids(pg_dir))
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        code, text, took = send(port, "", ["alice@example.org"], dsn_returning("freeze.0@example.org", "bounce.frozen"))
        check("frozen: a bounce that needs a lookup gets 451 within the bound", code == 451 and took < BOUND,
              "%s %s after %.1f s" % (code, text, took))
        code, text, took = send(port, "alice@example.org", ["bob@remote.test"], outbound(1), client_addr="127.0.0.1")
        check("frozen: an outbound message (a sent-log record) gets 451 within the bound", code == 451 and took < BOUND,
              "%s %s after %.1f s" % (code, text, took))
        code, text, took = send(port, "", ["alice@example.org"], unverifiable("hold.frozen"), queue_id="HOLD1")
        check("frozen: a hold gets 451 within the bound", code == 451 and took < BOUND, "%s %s after %.1f s" % (code, text, took))
        code, text, took = send(port, "alice@example.org", ["bob@remote.test"], outbound(2), client_addr="127.0.0.1")
        check("frozen: the next record is bounded too (the writer was not left stuck)", code == 451 and took < BOUND,
              "%s %s after %.1f s" % (code, text, took))

        # max_sessions=4 clients that hang up while their bounce waits for a lookup: their
        # sessions end with the bounded wait, and new clients are greeted, not told 421.
        for i in range(4):
            send_and_hang_up(port, dsn_returning("freeze.0@example.org", "bounce.gone.%d" % i))
        time.sleep(BOUND / 2)
        greetings = [greeting(port) for _ in range(4)]
        check("frozen: after clients that hung up mid-wait, new clients are greeted with 220",
              all(g.startswith("220") for g in greetings), greetings)

        thaw()
        time.sleep(1)
        code, text, _ = send(port, "alice@example.org", ["bob@remote.test"], outbound(1), client_addr="127.0.0.1")
        check("thawed: the outbound message is accepted", code == 250, "%s %s" % (code, text))
        code, text, _ = send(port, "", ["alice@example.org"], dsn_returning("freeze.0@example.org", "bounce.frozen"))
        check("thawed: the bounce is accepted (verified, delivered)", code == 250 and at_sink(sink_dir, "bounce.frozen"),
              "%s %s" % (code, text))
        code, text, _ = send(port, "", ["alice@example.org"], unverifiable("hold.frozen"), queue_id="HOLD1")
        check("thawed: the hold is accepted", code == 250 and "held in quarantine" in text, "%s %s" % (code, text))
        code, text, _ = send(port, "", ["alice@example.org"], dsn_returning("freeze.1@example.org", "bounce.of.1"))
        check("thawed: the outbound message was recorded (its bounce is verified)", code == 250 and any(
            m.startswith("X-NDRGuard: verified") for m in at_sink(sink_dir, "bounce.of.1")), "%s %s" % (code, text))
        time.sleep(0.5)
        check("nothing delivered twice", len(at_sink(sink_dir, "Subject: freeze 1")) == 1 and
              len(at_sink(sink_dir, "bounce.frozen")) == 1, (len(at_sink(sink_dir, "Subject: freeze 1")),
                                                            len(at_sink(sink_dir, "bounce.frozen"))))
        check("nothing delivered that was answered 451", not at_sink(sink_dir, "Subject: freeze 2") and
              not at_sink(sink_dir, "bounce.gone."))
        check("nothing held twice", held(conninfo, "HOLD1") == 1 and held(conninfo, "HOLD0") == 1,
              (held(conninfo, "HOLD1"), held(conninfo, "HOLD0")))

        # A table locked by another session: statement and lock waits end within the bound too.
        locker = subprocess.Popen(["psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", conninfo], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        locker.stdin.write("BEGIN;\nLOCK TABLE sent_log IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
        locker.stdin.flush()
        got = locker.stdout.readline().strip()
        check("sent_log locked by another session", got == "locked", got)
        code, text, took = send(port, "", ["alice@example.org"], dsn_returning("freeze.0@example.org", "bounce.locked"))
        check("locked: a bounce that needs a lookup gets 451 within the bound", code == 451 and took < BOUND,
              "%s %s after %.1f s" % (code, text, took))
        code, text, took = send(port, "alice@example.org", ["bob@remote.test"], outbound(3), client_addr="127.0.0.1")
        check("locked: an outbound message gets 451 within the bound", code == 451 and took < BOUND,
              "%s %s after %.1f s" % (code, text, took))
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(timeout=20)
        locker = None
        code, text, _ = send(port, "alice@example.org", ["bob@remote.test"], outbound(3), client_addr="127.0.0.1")
        check("unlocked: the outbound message is accepted", code == 250, "%s %s" % (code, text))
        code, text, _ = send(port, "", ["alice@example.org"], dsn_returning("freeze.3@example.org", "bounce.locked"))
        check("unlocked: the bounce is accepted and verified", code == 250 and any(
            m.startswith("X-NDRGuard: verified") for m in at_sink(sink_dir, "bounce.locked")), "%s %s" % (code, text))
    finally:
        thaw()
        if locker:
            locker.kill()
            locker.wait()
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        sink.terminate()
        sink.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        log.close()
    if failures:
        with open(os.path.join(work, "serve.log")) as f:
            print("--- serve.log (last lines)\n" + "".join(f.readlines()[-40:]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
