#!/usr/bin/env python3
"""`ndrguard backfill` on logs written by a real private Postfix, against a throwaway PostgreSQL.

The site before ndrguard: Postfix relays straight to a sink (no content filter). Three messages
from our network (127.0.0.1, backfill's our_networks=127.0.0.1/32), one local submission
(sendmail, logged by pickup) and one from outside (a client on 127.0.0.2) go through it. Then:
backfill on its maillog_file records exactly the four outbound Message-IDs, on the day of
their lines; a second run records nothing new; a gzip-rotated copy of the log does the same
from an empty sent log; a file of hostile lines (huge, binary, NULs, truncated) and a truncated
.gz crash nothing and are counted as skipped; a hand-written log in the ISO format with a
message from 8 days ago is left out by --since 7d and recorded with --since 30d, so the sent
log's first day covers the 7-day bounce window: serve (warm_up=auto) that did not reject a
forged null-sender bounce before rejects one after.
usage: e2e_backfill.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import datetime
import gzip
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "postfix"))
from postfix_instance import Instance  # noqa: E402
sys.path.insert(0, os.path.join(here, ".."))
from e2e_common import (check, dsn_returning, failures, free_port, fresh_postgres, postfix_missing, send,  # noqa: E402
                        wait_for, wait_port)

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
sink_script = os.path.join(here, "..", "filter", "smtp_sink.py")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

OURS = ["out.1@example.org", "out.2@example.org", "out.3@example.org"]
LOCAL = "local.1@example.org"
INBOUND = "in.1@remote.test"


def message(msgid):
    return ("From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: backfill\r\nMessage-ID: <%s>\r\n\r\nhi\r\n" % msgid)


def send_from(source, port, msgid):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60, local_hostname="client.test", source_address=(source, 0))
    try:
        s.sendmail("alice@example.org", ["bob@remote.test"], message(msgid))
    finally:
        s.quit()


def backfill(conninfo, *args):
    r = subprocess.run([ndrguard, "backfill", "--db", conninfo, "--sql-dir", sql_dir,
                        "--set", "our_networks=127.0.0.1/32"] + list(args), capture_output=True, text=True, timeout=120)
    counts = dict(re.findall(r"(\w+)=(\d+)", r.stdout))
    print("  $ ndrguard backfill %s -> exit %d\n%s%s" % (" ".join(args), r.returncode,
          "".join("    " + l + "\n" for l in r.stdout.splitlines()), r.stderr), flush=True)
    return r.returncode, {k: int(v) for k, v in counts.items()}, r.stdout + r.stderr


def psql(conninfo, sql):
    r = subprocess.run([os.path.join(PGBIN, "psql"), conninfo, "-XAtqc", sql], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return [l for l in r.stdout.splitlines() if l]


def sent_ids(conninfo):
    return sorted(psql(conninfo, "SELECT message_id FROM sent_log"))


def forged_bounce_answer(conninfo, root, name):
    """Starts serve (warm_up=auto) on this sent log, gives it a forged null-sender bounce as
    Postfix would (XFORWARD ADDR from outside), returns the SMTP code of the answer."""
    sink_port, port = free_port(), free_port()
    sink_dir = os.path.join(root, "sink-" + name)
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, sink_script, str(sink_port), sink_dir])
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % port, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "mode=after_queue", "--set", "hostname=filter.test", "--set", "warm_up=auto",
                              "--set", "our_networks=127.0.0.1/32"], stderr=open(os.path.join(root, "serve-%s.log" % name), "w"))
    try:
        if not (wait_port(sink_port) and wait_port(port)):
            return None
        time.sleep(2)  # serve reads the sent log's first day at its first storm sync (250 ms)
        code, _ = send(port, "", ["alice@example.org"], dsn_returning("never.sent.%s@example.org" % name), "203.0.113.5")
        return code
    finally:
        serve.terminate()
        sink.terminate()
        serve.wait()
        sink.wait()


def run(conninfo, root):
    sink_port, public, fport, reinject = free_port(), free_port(), free_port(), free_port()
    sink_dir = os.path.join(root, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, sink_script, str(sink_port), sink_dir])
    # No content filter: the site before ndrguard (the last content_filter line wins).
    pf = Instance(os.path.join(root, "pf"), "after_queue", public, fport, reinject, sink_port,
                  extra_main=["content_filter ="])
    try:
        check("sink up", wait_port(sink_port))
        pf.start()
        check("postfix up", wait_port(public))
        for msgid in OURS:
            send_from("127.0.0.1", public, msgid)
        send_from("127.0.0.2", public, INBOUND)
        r = subprocess.run(["sendmail", "-C", pf.etc, "-f", "alice@example.org", "bob@remote.test"],
                           input=message(LOCAL).replace("\r\n", "\n"), capture_output=True, text=True, timeout=60)
        check("sendmail (pickup) accepted the local submission", r.returncode == 0, r.stderr)
        delivered = wait_for(lambda: len([n for n in os.listdir(sink_dir) if n.endswith(".eml")]) == 5 and
                             pf.maillog().count("removed") >= 5, timeout=60)
        check("all five delivered to the sink", delivered, os.listdir(sink_dir))
    finally:
        pf.stop()
        sink.terminate()
        sink.wait()
    log = pf.log
    text = pf.maillog()
    check("the log has pickup, client= and status=sent lines",
          "postfix/pickup" in text and "client=" in text and "status=sent" in text, text[-2000:])
    expected = sorted(OURS + [LOCAL])

    rc, c, out = backfill(conninfo, log)
    check("first run: exit 0", rc == 0, out)
    check("first run: exactly the outbound ids are in the sent log", sent_ids(conninfo) == expected, sent_ids(conninfo))
    check("first run: recorded 4, the outside client dropped as not ours",
          c.get("recorded") == 4 and c.get("not_ours") == 1, c)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    days = psql(conninfo, "SELECT DISTINCT sent_day FROM sent_log")
    # The log's times are this machine's local time, as backfill reads them.
    check("recorded on the day of their log lines", days in ([today],
          [(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).date().isoformat()]), days)

    rc, c, out = backfill(conninfo, log)
    check("second run: nothing new", rc == 0 and c.get("recorded") == 0 and c.get("already_recorded") == 4, c)
    check("second run: the sent log unchanged", psql(conninfo, "SELECT count(*) FROM sent_log") == ["4"])

    rc, c, out = backfill(conninfo, "--dry-run", log)
    check("dry run: would record nothing new", rc == 0 and c.get("would_record") == 0, c)

    # A rotated log, gzip-compressed, into an empty sent log.
    rotated = os.path.join(root, "maillog.1.gz")
    with open(log, "rb") as src, gzip.open(rotated, "wb") as dst:
        shutil.copyfileobj(src, dst)
    psql(conninfo, "TRUNCATE sent_log")
    rc, c, out = backfill(conninfo, rotated)
    check("gzip: the same four ids", rc == 0 and c.get("recorded") == 4 and sent_ids(conninfo) == expected, c)
    rc, c, out = backfill(conninfo, rotated, log)
    check("gzip then plain: nothing new", rc == 0 and c.get("recorded") == 0, c)

    # Hostile lines: huge, binary, NULs, a truncated line at the end without its newline.
    hostile = os.path.join(root, "hostile.log")
    with open(hostile, "wb") as f:
        f.write(b"Dec  2 10:00:00 mail postfix/smtpd[1]: ABCDEF01: client=ws[127.0.0.1]" + b"x" * 5_000_000 + b"\n")
        f.write(os.urandom(200_000).replace(b"\n", b"") + b"\n")
        f.write(b"Dec  2 10:00:01 mail postfix/cleanup[2]: ABCDEF01: message-id=<\x00evil@x>\n")
        f.write(b"\n" * 1000)
        f.write(b"<22>1 2026-12-01T22:10:07Z mail postfix/cleanup 904 - [unterminated\n")
        for i in range(200_000):  # queue ids that never complete: dropped past the bound
            f.write(b"Dec  2 10:00:02 mail postfix/smtpd[3]: %010X: client=ws[127.0.0.1]\n" % (0xA00000000 + i))
        f.write(b"Dec  2 10:00:03 mail postfix/qmgr[4]: ABCDEF01: from=<a@b>, si")
    before = sent_ids(conninfo)
    rc, c, out = backfill(conninfo, hostile)
    check("hostile: exit 0, nothing recorded", rc == 0 and c.get("recorded") == 0 and sent_ids(conninfo) == before, out)
    check("hostile: counted as skipped by reason",
          c.get("too_long", 0) >= 2 and c.get("not_text", 0) >= 1 and c.get("no_header", 0) >= 1000, c)
    check("hostile: the never-completed queue ids dropped past the bound (100000 held at most)",
          c.get("evicted", 0) >= 100_000, c)
    cut = os.path.join(root, "cut.gz")
    with open(rotated, "rb") as f:
        whole = f.read()
    with open(cut, "wb") as f:
        f.write(whole[: len(whole) // 2])
    rc, c, out = backfill(conninfo, cut)
    check("a truncated .gz: exit 1, said so, no crash", rc == 1 and "truncated" in out, out)
    rc, c, out = backfill(conninfo, os.path.join(root, "missing.log"))
    check("a missing file: exit 1", rc == 1 and "cannot open" in out, out)

    # Warm-up: the sent log's first day is what serve's warm_up=auto compares with the bounce
    # window (filter/src/server_impl.hpp in_warm_up). A log line from 8 days ago, ISO format.
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)
    stamp = old.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    iso = os.path.join(root, "old.log")
    with open(iso, "w") as f:
        for line in ["postfix/smtpd[1]: 0A1B2C3D4E: client=ws[127.0.0.1], sasl_method=PLAIN, sasl_username=alice",
                     "postfix/cleanup[2]: 0A1B2C3D4E: message-id=<old.1@example.org>",
                     "postfix/qmgr[3]: 0A1B2C3D4E: from=<alice@example.org>, size=300, nrcpt=1 (queue active)",
                     "postfix/smtp[4]: 0A1B2C3D4E: to=<bob@remote.test>, relay=mx[203.0.113.9]:25, delay=1, "
                     "delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)",
                     "postfix/qmgr[3]: 0A1B2C3D4E: removed"]:
            f.write("%s mail %s\n" % (stamp, line))
    code = forged_bounce_answer(conninfo, root, "before")
    check("serve, sent log of today only: in warm-up, a forged bounce is not rejected", code is not None and code < 500, code)
    rc, c, out = backfill(conninfo, "--since", "7d", iso)
    check("--since 7d leaves out a message of 8 days ago", rc == 0 and c.get("older_than_since") == 1 and c.get("recorded") == 0, c)
    rc, c, out = backfill(conninfo, "--since", "30d", iso)
    check("--since 30d records it", rc == 0 and c.get("recorded") == 1, c)
    first = psql(conninfo, "SELECT min(sent_day) FROM sent_log")[0]
    check("the sent log's first day covers the 7-day bounce window (warm-up ends)",
          first <= (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7)).date().isoformat(), first)
    check("recorded on its own day", psql(conninfo, "SELECT sent_day FROM sent_log WHERE message_id = 'old.1@example.org'")
          == [old.date().isoformat()])
    code = forged_bounce_answer(conninfo, root, "after")
    check("serve after the backfill: warm-up over, the forged bounce rejected", code is not None and code >= 500, code)


def main():
    missing = postfix_missing()
    if missing:
        print(missing)
        return 77
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    root = os.path.join(work, "run")
    os.makedirs(root)
    try:
        run(conninfo, root)
    finally:
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        p = os.path.join(root, "pf", "log", "maillog")
        if failures and os.path.exists(p):
            print("---- maillog (last 30 lines)")
            with open(p) as f:
                for line in f.read().splitlines()[-30:]:
                    print("  " + line)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
