#!/usr/bin/env python3
"""`ndrguard scan --verdict` against a real throwaway PostgreSQL (issue 15): the verdict and
action serve would give, with the sent log's answer and the evidence, sending nothing.

The sent log gets two ids (through `ndrguard backfill`, from a hand-written Postfix log; the
older one 8 days old, so warm-up is over for the 7-day bounce window). Then bounces written here (RFC 3464, returning the headers):
  - of that id: verified, deliver, found=1/1;
  - of an id never sent: forged, reject (a null sender after queue);
  - of an id never sent whose returned trace shows our relay (--set our_relays=...): suspect,
    quarantine (the gap verdict, never reject), also in the text form;
  - a heuristic NDR of an id never sent: forged but weak, quarantine, note weak_detection;
  - the forged one again with --sender someone@remote.test: quarantine (no 5xx after queue);
  - a BATV-tagged recipient with a valid tag of batv_keys: verified with the sent log empty;
    one with a bad hash: forged;
and the errors: a dkim_keys file that cannot be read (exit 1, naming it), no database
(exit 1), a bad --set (exit 2). The JSON fields verification and action use the metrics' words.
usage: scan_verdict.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
from e2e_common import check, dsn_returning, failures, fresh_postgres  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
PG_BIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
METRIC_VERIFICATIONS = {"verified", "forged", "unverifiable", "suspect", "none"}
METRIC_ACTIONS = {"deliver", "reject", "quarantine", "tempfail", "dropped"}


def run(*args):
    return subprocess.run([ndrguard] + list(args), capture_output=True, text=True, timeout=60)


def verdict(conninfo, path, *extra, json_out=True):
    r = run("scan", "--verdict", *(["--json"] if json_out else []), "--db", conninfo, *extra, path)
    print("  $ ndrguard scan --verdict %s %s -> %d\n%s%s" % (" ".join(extra), os.path.basename(path), r.returncode,
          "".join("    " + l + "\n" for l in r.stdout.splitlines()), r.stderr), flush=True)
    if not json_out:
        return r, None
    try:
        return r, json.loads(r.stdout.splitlines()[0])
    except (ValueError, IndexError):
        return r, None


def write(path, text):
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def with_trace(msgid, by_host):
    """A DSN returning headers with a Received line: the original left through `by_host`."""
    dsn = dsn_returning(msgid)
    inner = "Content-Type: text/rfc822-headers\r\n\r\n"
    return dsn.replace(inner, inner + "Received: from laptop.example.org (laptop.example.org [192.0.2.10])\r\n"
                       "\tby %s (Postfix) with ESMTPSA id 4F2A81C0031\r\n\tfor <nobody@remote.test>; "
                       "Mon, 30 Nov 2026 09:15:00 +0000\r\n" % by_host)


def heuristic_ndr(msgid):
    return ("From: MAILER-DAEMON@mx.remote.test\r\nTo: alice@example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <ndr.%s>\r\n\r\n"
            "This is the mail system at host mx.remote.test.\r\n\r\n"
            "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n"
            "<nobody@remote.test>: host mx.remote.test said: 550 5.1.1 User unknown\r\n\r\n"
            "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
            "From: alice@example.org\r\nTo: nobody@remote.test\r\nMessage-ID: <%s>\r\nSubject: hi\r\n\r\nhello\r\n") % (msgid, msgid)


def prvs(secret, address, day_offset=7):
    """draft-levine-smtp-batv-01's prvs tag (K=0), as Exim's ${prvs} makes it."""
    today = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.date(1970, 1, 1)).days
    ddd = "%03d" % ((today + day_offset) % 1000)
    digest = hmac.new(secret.encode(), ("0" + ddd + address).encode(), hashlib.sha1).hexdigest()[:6]
    return "prvs=0%s%s=%s" % (ddd, digest, address)


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    try:
        r = run("migrate", "--db", conninfo, "--sql-dir", sql_dir)
        check("migrate", r.returncode == 0, r.stderr)
        # Two messages of ours, from Postfix's log: one 8 days old (the sent log then covers the
        # 7-day bounce window: no warm-up), one 2 days old (the one bounced below).
        now = datetime.datetime.now(datetime.timezone.utc)
        lines = []
        for qid, msgid, age in (("0A1B2C3D4E", "old.1@example.org", 8), ("0B1B2C3D4E", "sent.1@example.org", 2)):
            stamp = (now - datetime.timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
            lines += ["%s mail %s\n" % (stamp, l) for l in [
                "postfix/smtpd[1]: %s: client=ws[127.0.0.1]" % qid,
                "postfix/cleanup[2]: %s: message-id=<%s>" % (qid, msgid),
                "postfix/qmgr[3]: %s: from=<alice@example.org>, size=300, nrcpt=1 (queue active)" % qid,
                "postfix/smtp[4]: %s: to=<nobody@remote.test>, relay=mx[203.0.113.9]:25, delay=1, "
                "delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)" % qid]]
        log = write(os.path.join(work, "mail.log"), "".join(lines))
        r = run("backfill", "--db", conninfo, "--sql-dir", sql_dir, "--set", "our_networks=127.0.0.1/32", "--since", "30d", log)
        check("backfill recorded the two sent ids", r.returncode == 0 and "recorded=2" in r.stdout, r.stdout + r.stderr)
        window = []

        genuine = write(os.path.join(work, "genuine.eml"), dsn_returning("sent.1@example.org"))
        r, j = verdict(conninfo, genuine, *window)
        check("a bounce of a message we sent: verified, deliver, found 1/1",
              r.returncode == 0 and j and j["verification"] == "verified" and j["action"] == "deliver"
              and j["sent_log"]["found"] == ["sent.1@example.org"] and j["evidence"] == ["sent_log.found"]
              and j["warm_up"] is False, j)

        forged = write(os.path.join(work, "forged.eml"), dsn_returning("never.1@example.org"))
        r, j = verdict(conninfo, forged, *window)
        check("a bounce of a message never sent: forged, reject",
              r.returncode == 0 and j and j["verification"] == "forged" and j["action"] == "reject"
              and j["sent_log"]["found"] == [] and j["policy"] == "reject", j)
        r, j2 = verdict(conninfo, forged, *window, "--sender", "someone@remote.test")
        check("the same from a non-null sender: quarantine (no 5xx after queue)",
              j2 and j2["action"] == "quarantine" and "non_null_sender_after_queue" in j2["notes"], j2)
        r, j3 = verdict(conninfo, forged, "--set", "bounce_window_days=10")
        check("a 10-day window is not covered by 8 days of sent log: warm-up, held instead of refused",
              j3 and j3["warm_up"] is True and j3["action"] == "quarantine" and "warm_up" in j3["notes"], j3)

        gap = write(os.path.join(work, "gap.eml"), with_trace("never.2@example.org", "mail.example.org"))
        r, j = verdict(conninfo, gap, *window, "--set", "our_relays=mail.example.org")
        check("missing from the sent log, our relay in the trace: suspect, quarantine",
              r.returncode == 0 and j and j["verification"] == "suspect" and j["action"] == "quarantine"
              and j["evidence"] == ["sent_log.missing", "trace.our_relay"], j)
        r, j = verdict(conninfo, gap, *window, "--set", "our_relays=mail.example.org",
                       "--set", "policy.dsn.suspect=reject")
        check("suspect = reject cannot be configured (exit 2, says why)",
              r.returncode == 2 and "suspect: never reject" in r.stderr, r.stderr)
        r, j = verdict(conninfo, gap, *window)
        check("without our_relays the same bounce is forged", j and j["verification"] == "forged", j)
        r, _ = verdict(conninfo, gap, *window, "--set", "our_relays=mail.example.org", json_out=False)
        line = r.stdout.strip()
        check("the text form: the detector's row, then verification, action, evidence",
              r.returncode == 0 and line.startswith(gap) and
              "  verification=suspect action=quarantine evidence=sent_log.missing,trace.our_relay found=0/1 policy=quarantine"
              in line, line)

        ndr = write(os.path.join(work, "ndr.eml"), heuristic_ndr("never.3@example.org"))
        r, j = verdict(conninfo, ndr, *window)
        check("a heuristic NDR, forged: weak, quarantine (never rejected)",
              j and j["class"] == "ndr" and j["verification"] == "forged" and j["action"] == "quarantine"
              and "detector.weak" in j["evidence"] and "weak_detection" in j["notes"], j)

        secret = write(os.path.join(work, "batv.secret"), "relay-secret-1\n")
        keys = ["--set", "batv_keys=0:" + secret]
        unknown = write(os.path.join(work, "batv.eml"), dsn_returning("never.4@example.org"))
        tagged = prvs("relay-secret-1", "alice@example.org")
        r, j = verdict(conninfo, unknown, *window, *keys, "--rcpt", tagged)
        check("a valid BATV tag of our key: verified with the id not in the sent log",
              j and j["verification"] == "verified" and j["action"] == "deliver"
              and j["evidence"] == ["sent_log.missing", "batv.valid"] and j["mailbox"] == "alice@example.org", j)
        bad = tagged[:10] + ("1" if tagged[10] == "0" else "0") + tagged[11:]
        r, j = verdict(conninfo, unknown, *window, *keys, "--rcpt", bad)
        check("a bad BATV hash: forged", j and j["verification"] == "forged" and "batv.bad_hash" in j["evidence"], j)
        r, j = verdict(conninfo, unknown, *window, *keys, "--rcpt", prvs("relay-secret-1", "alice@example.org", -2))
        check("an expired BATV tag: forged", j and j["verification"] == "forged" and "batv.expired" in j["evidence"], j)

        r, j = verdict(conninfo, genuine, *window)
        check("JSON words are the metrics' label values",
              j and j["verification"] in METRIC_VERIFICATIONS and j["action"] in METRIC_ACTIONS, j)

        r, _ = verdict(conninfo, genuine, "--set", "dkim_keys=example.org:s1:/nonexistent/key.pem")
        check("a dkim_keys file that cannot be read: exit 1, naming it",
              r.returncode == 1 and "/nonexistent/key.pem" in r.stderr, r.stderr)
        r, _ = verdict("host=127.0.0.1 port=1 dbname=none connect_timeout=2", genuine)
        check("no database: exit 1 with the reason", r.returncode == 1 and r.stderr.strip(), r.stderr)
        r, _ = verdict(conninfo, genuine, "--set", "our_domains=not a domain!")
        check("a bad setting: exit 2", r.returncode == 2 and "our_domains" in r.stderr, r.stderr)
        r = run("scan", "--json", genuine)
        j = json.loads(r.stdout.splitlines()[0])
        check("without --verdict nothing of the verdict (and no database)", r.returncode == 0 and "verification" not in j, j)
    finally:
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
