#!/usr/bin/env python3
"""ndrguard in a minute: a private Postfix (after queue, example.org delivered into Maildirs under
var/demo/mail), ndrguard serve on a fresh `ndrguard_demo` database of the local PostgreSQL, then
mail through them:
  - alice@example.org sends a message; a genuine bounce of it comes back and is delivered with
    its X-NDRGuard: verified header;
  - forged bounces (of messages never sent) are refused; Postfix drops them as double bounces;
  - a storm of 40 bounces hits bob@example.org: after storm_threshold (10) they are held;
  - one out-of-office reply that names nothing is held for alice (policy.autoreply.unverifiable
    = quarantine, for the demo);
then shows the quarantine, the storm, the metrics and the digest that each of them receives,
and keeps serve running (release pages on http://127.0.0.1:18025, metrics on
http://127.0.0.1:19325/metrics) until Ctrl-C, so the digest's links can be followed.
Run it with `deploy/run.sh demo` (as root: Postfix's master runs as root)."""
import email
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "postfix"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from postfix_instance import Instance  # noqa: E402
from e2e_common import dsn_returning, fresh_dir, postfix_missing, send, wait_for, wait_port  # noqa: E402

NDRGUARD = os.environ.get("NDRGUARD_BIN") or os.path.join(ROOT, os.environ.get("NDRGUARD_BUILD_DIR", "build"), "app", "ndrguard")
DATA = os.path.abspath(os.environ.get("NDRGUARD_DATA_DIR", os.path.join(ROOT, "var")))
WORK = os.path.join(DATA, "demo")
PUBLIC, FILTER, REINJECT, WEB, METRICS = 12525, 12025, 12026, 18025, 19325
REMOTE = "203.0.113.5"  # the remote MTA, as Postfix reports it (XFORWARD)


def say(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


def storm_dsn(i):
    return ("From: MAILER-DAEMON@mx%d.spam.test (Mail Delivery System)\r\nTo: bob@example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <storm-%d@mx.spam.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx%d.spam.test\r\n\r\n"
            "Final-Recipient: rfc822; victim%d@spam.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: bob@example.org\r\nTo: victim%d@spam.test\r\n"
            "Subject: Cheap watches, best prices %d\r\n\r\n--B--\r\n") % (i % 3, i, i % 3, i, i, i)


def main():
    missing = postfix_missing()
    if missing:
        print("demo: " + missing.replace("SKIP: ", ""))
        return 1
    base = subprocess.run([os.path.join(ROOT, "deploy", "local-db.sh"), "start"], capture_output=True, text=True,
                          check=True).stdout.strip()
    # A fresh database each time, so that what is shown is this run's.
    subprocess.run(["psql", base, "-q", "-c", "DROP DATABASE IF EXISTS ndrguard_demo WITH (FORCE)"], check=True)
    subprocess.run(["psql", base, "-q", "-c", "CREATE DATABASE ndrguard_demo"], check=True)
    conninfo = base.replace("dbname=postgres", "dbname=ndrguard_demo")
    db = ["--db", conninfo]

    # Postfix's daemons and its delivery as nobody must reach these: under /var/tmp (and
    # var/demo a link to it) when the checkout is not reachable (a clone in /root).
    work = fresh_dir(WORK, "demo")
    mail_root = os.path.join(work, "mail")
    os.makedirs(mail_root)
    shutil.chown(mail_root, "nobody", "nogroup")
    pf = Instance(os.path.join(work, "postfix"), "after_queue", PUBLIC, FILTER, REINJECT, 1, extra_main=[
        "virtual_mailbox_domains = example.org",
        "virtual_mailbox_base = " + mail_root,
        "virtual_mailbox_maps = inline:{ alice@example.org=alice/, bob@example.org=bob/ }",
        "virtual_uid_maps = static:65534",
        "virtual_gid_maps = static:65534",
        "virtual_minimum_uid = 100",
    ])
    common = [*db, "--config", os.path.join(ROOT, "deploy", "ndrguard.conf"), "--sql-dir", os.path.join(ROOT, "sql"),
              "--set", "next_hop=127.0.0.1:%d" % REINJECT, "--set", "hostname=demo.example.org",
              "--set", "web_base_url=http://127.0.0.1:%d" % WEB, "--set", "web_secret_file=" + os.path.join(work, "web.secret")]
    serve_log = os.path.join(work, "serve.log")
    serve = subprocess.Popen([NDRGUARD, "serve", *common, "--set", "listen=127.0.0.1:%d" % FILTER,
                              "--set", "web_listen=127.0.0.1:%d" % WEB, "--set", "metrics_listen=127.0.0.1:%d" % METRICS,
                              "--set", "warm_up=off", "--set", "storm_threshold=10", "--set", "storm_exit_threshold=2",
                              "--set", "storm_sync_ms=200", "--set", "policy.autoreply.unverifiable=quarantine"],
                             stderr=open(serve_log, "w"))
    try:
        pf.start()
        if not (wait_port(FILTER) and wait_port(PUBLIC)):
            print("demo: serve or Postfix did not start; see " + serve_log)
            return 1
        say("alice@example.org sends a message (recorded in the sent log)")
        msgid = "demo-%d@example.org" % int(time.time())
        print(send(PUBLIC, "alice@example.org", ["carol@remote.test"],
                   "From: alice@example.org\r\nTo: carol@remote.test\r\nSubject: hello\r\nMessage-ID: <%s>\r\n\r\nhi\r\n" % msgid))
        time.sleep(1)
        say("a genuine bounce of it comes back: delivered, with X-NDRGuard: verified")
        print(send(PUBLIC, "", ["alice@example.org"], dsn_returning(msgid, "genuine"), REMOTE))
        say("three forged bounces (messages alice never sent): refused")
        for i in range(3):
            print(send(PUBLIC, "", ["alice@example.org"], dsn_returning("never-sent-%d@example.org" % i, "forged%d" % i), REMOTE))
        say("an out-of-office reply that names no message: held for alice")
        print(send(PUBLIC, "carol@remote.test", ["alice@example.org"],
                   "From: carol@remote.test\r\nTo: alice@example.org\r\nSubject: Out of office\r\n"
                   "Auto-Submitted: auto-replied\r\nMessage-ID: <ooo-%d@remote.test>\r\n\r\nBack on Monday.\r\n" % time.time(), REMOTE))
        say("a storm: 40 bounces for mail bob never sent")
        for i in range(40):
            send(PUBLIC, "", ["bob@example.org"], storm_dsn(i), REMOTE)
            time.sleep(0.05)
        wait_for(lambda: "\n" in run(NDRGUARD, "quarantine", "list", *db), 20)
        time.sleep(2)

        say("ndrguard quarantine list")
        print(run(NDRGUARD, "quarantine", "list", *db))
        say("ndrguard quarantine storms")
        print(run(NDRGUARD, "quarantine", "storms", *db))
        say("metrics (http://127.0.0.1:%d/metrics), inbound messages" % METRICS)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % METRICS, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(("ndrguard_messages_total", "ndrguard_storm", "ndrguard_quarantine_items")):
                    print(line)
        say("ndrguard digest: one mail per mailbox, through Postfix into the Maildirs")
        print(run(NDRGUARD, "digest", *common))
        shown = 0
        for user in ("alice", "bob"):
            maildir = os.path.join(mail_root, user, "new")
            wait_for(lambda: any("X-NDRGuard-Digest" in open(os.path.join(maildir, f), errors="replace").read()
                                 for f in (os.listdir(maildir) if os.path.isdir(maildir) else [])), 20)
            for name in sorted(os.listdir(maildir)) if os.path.isdir(maildir) else []:
                with open(os.path.join(maildir, name), "rb") as f:
                    m = email.message_from_bytes(f.read(), policy=email.policy.default)
                if m["X-NDRGuard-Digest"]:
                    shown += 1
                    say("%s's digest (%s)" % (user, os.path.join(maildir, name)))
                    print("Subject: " + str(m["Subject"]) + "\n")
                    print(m.get_body(("plain",)).get_content())
                elif m["X-NDRGuard"]:
                    print("%s's Maildir also has the delivered bounce: X-NDRGuard: %s" % (user, m["X-NDRGuard"]))
        if shown != 2:
            print("demo: expected a digest for alice and one for bob, found %d; see %s" % (shown, serve_log))
            return 1
        say("serve keeps running for the digest's links: http://127.0.0.1:%d  (Ctrl-C stops the demo)" % WEB)
        if WAIT:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        serve.terminate()
        serve.wait()
        pf.stop()
        print("\ndemo: stopped (the demo database ndrguard_demo and %s stay for a look)" %
              (WORK if work == WORK else "%s -> %s" % (WORK, work)))
    return 0


WAIT = "--no-wait" not in sys.argv  # --no-wait (the tests): show everything, then stop

if __name__ == "__main__":
    sys.exit(main())
