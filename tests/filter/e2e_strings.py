#!/usr/bin/env python3
"""End to end, issue 13 items 3 and 4: strings from the network that PostgreSQL cannot take as
text, and UTF-8 mailboxes, with a real `ndrguard serve`, a real PostgreSQL and smtp_sink.py.
  - one client sends bounces whose returned Message-ID holds a Latin-1 byte, a NUL, a CESU-8
    surrogate, beside eight clients sending ordinary bounces: every ordinary one gets its normal
    answer (no 451), each hostile one a definite answer (no 451);
  - outbound mail with such a Message-ID and MAIL FROM is recorded (250), and a bounce of it
    verifies;
  - jörg@ and jürg@ are held as two mailboxes; a release goes to exactly RCPT TO:<jörg@...> with
    SMTPUTF8 at a next hop that offers it, and fails cleanly (nothing sent, still held) at one
    that does not;
  - a recipient that is not UTF-8: 501 5.1.3 before queue; after queue delivered unfiltered.
usage: e2e_strings.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR      (exit 77: skipped)"""
import json
import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, failures, free_port, fresh_postgres, wait_for, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
sink_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_sink.py")
INBOUND = b"203.0.113.5"  # XFORWARD ADDR of a remote MTA
JOERG, JUERG = "j\u00f6rg@example.org".encode(), "j\u00fcrg@example.org".encode()


def session(port, mail_from, rcpts, message, client=INBOUND, mail_params=b""):
    """One transaction with raw bytes (smtplib cannot send what is not UTF-8); returns the
    (code, text) of the answer to the message, or of the first refusal."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            if not line:
                return 0, b"connection closed"
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    def cmd(line):
        s.sendall(line + b"\r\n")
        return reply()
    try:
        reply()
        cmd(b"EHLO mx.remote.test")
        if client:
            cmd(b"XFORWARD NAME=mx.remote.test ADDR=" + client)
        code, text = cmd(b"MAIL FROM:<" + mail_from + b">" + (b" " + mail_params if mail_params else b""))
        if code != 250:
            return code, text
        for r in rcpts:
            code, text = cmd(b"RCPT TO:<" + r + b">")
            if code != 250:
                return code, text
        code, text = cmd(b"DATA")
        if code != 354:
            return code, text
        body = message.replace(b"\r\n.", b"\r\n..")
        return cmd(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".")
    finally:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()


def dsn(returned_id, tag):
    """An RFC 3464 bounce returning the headers of a message with Message-ID <returned_id>."""
    return (b"From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\nTo: alice@example.org\r\n"
            b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + tag + b"@mx.remote.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [" + tag + b"]\r\n\r\n"
            b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
            b"Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.org\r\nTo: nobody@remote.test\r\n"
            b"Subject: hello\r\nMessage-ID: <" + returned_id + b">\r\n\r\n--B--\r\n")


def unverifiable(tag):
    """A DSN naming no message: held under policy.dsn.unverifiable = quarantine."""
    return (b"From: MAILER-DAEMON@mx.remote.test\r\nTo: someone@example.org\r\nSubject: Undelivered [" + tag + b"]\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nnot delivered [" + tag + b"]\r\n\r\n"
            b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
            b"Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n")


def outbound(msgid, tag):
    return b"From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: out [" + tag + b"]\r\nMessage-ID: <" + msgid + b">\r\n\r\nhi\r\n"


class Sink:
    def __init__(self, name, smtputf8):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.port = free_port()
        env = dict(os.environ, SINK_SMTPUTF8="1" if smtputf8 else "0")
        self.proc = subprocess.Popen([sys.executable, sink_script, str(self.port), self.dir], env=env)

    def envelopes(self):
        out = []
        for n in sorted(os.listdir(self.dir)):
            if n.endswith(".env"):
                with open(os.path.join(self.dir, n), "rb") as f:
                    out.append(f.read())
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    subprocess.run([ndrguard, "migrate", "--db", conninfo, "--sql-dir", sql_dir], check=True, capture_output=True)
    utf8_hop, ascii_hop = Sink("sink-utf8", True), Sink("sink-ascii", False)
    after_port, before_port = free_port(), free_port()
    common = ["--db", conninfo, "--sql-dir", sql_dir, "--set", "warm_up=off", "--set", "storm_threshold=100000",
              "--set", "policy.dsn.unverifiable=quarantine", "--set", "next_hop=127.0.0.1:%d" % utf8_hop.port]
    log_path = os.path.join(work, "serve.log")
    log = open(log_path, "w")
    serves = [subprocess.Popen([ndrguard, "serve", *common, "--set", "listen=127.0.0.1:%d" % after_port], stderr=log),
              subprocess.Popen([ndrguard, "serve", *common, "--set", "listen=127.0.0.1:%d" % before_port,
                                "--set", "mode=before_queue"], stderr=subprocess.DEVNULL)]
    try:
        check("two sinks and two filters listen", all(wait_port(p) for p in (utf8_hop.port, ascii_hop.port, after_port, before_port)))

        # Outbound mail first: ordinary ids for the ordinary bounces, and hostile ones.
        ordinary_ids = [b"ord.%d@mail.example.org" % i for i in range(8)]
        for i, mid in enumerate(ordinary_ids):
            code, text = session(after_port, b"alice@example.org", [b"bob@remote.test"], outbound(mid, b"o%d" % i), client=None)
            check("outbound ordinary %d recorded" % i, code == 250, text)
        hostile_sent = [b"caf\xe9.sent@mail.example.org", b"nul\x00.sent@mail.example.org", b"s\xed\xa0\x80.sent@mail.example.org"]
        for i, mid in enumerate(hostile_sent):
            code, text = session(after_port, b"alice\xff\x00@example.org", [b"bob\xfe@remote.test"], outbound(mid, b"h%d" % i), client=None)
            check("outbound with a bad Message-ID and MAIL FROM: a definite 250, not 451 (%r)" % mid, code == 250, text)

        # Eight ordinary clients and one hostile client at once.
        results, hostile_results = [], []
        lock = threading.Lock()

        def ordinary(k):
            for j in range(6):
                r = session(after_port, b"", [b"alice@example.org"], dsn(ordinary_ids[k], b"ord-%d-%d" % (k, j)))
                with lock:
                    results.append(r)

        never_sent = [b"caf\xe9.never@mail.example.org", b"nul\x00.never@mail.example.org", b"\xff\xfe@mail.example.org",
                      b"s\xed\xa0\x80.never@mail.example.org", b"\xc0\xafoverlong@mail.example.org"]

        def hostile():
            for j in range(4):
                for k, mid in enumerate(never_sent + hostile_sent):
                    r = session(after_port, b"", [b"alice@example.org"], dsn(mid, b"hostile-%d-%d" % (j, k)))
                    with lock:
                        hostile_results.append((mid, r))

        threads = [threading.Thread(target=ordinary, args=(k,)) for k in range(8)] + [threading.Thread(target=hostile)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tempfails = [r for r in results if r[0] == 451]
        check("ordinary bounces beside a hostile client: every one delivered, 0%% 451 (%d of %d)" % (len(tempfails), len(results)),
              len(results) == 48 and all(c == 250 and b"queued as SINK" in t for c, t in results),
              [r for r in results if r[0] != 250][:3])
        check("hostile bounces: a definite answer each, never 451",
              len(hostile_results) == 32 and all(r[0] not in (0, 451) for _, r in hostile_results),
              [x for x in hostile_results if x[1][0] in (0, 451)][:3])
        check("hostile bounces naming ids never sent: refused as backscatter (550)",
              all(r[0] == 550 for mid, r in hostile_results if mid in never_sent), hostile_results[:3])
        check("a bounce of a message whose id had a bad byte still verifies (delivered)",
              all(r[0] == 250 for mid, r in hostile_results if mid in hostile_sent), hostile_results[-3:])

        # UTF-8 mailboxes: held apart, released to exactly that address.
        for tag, rcpt in ((b"u-joerg-1", JOERG), (b"u-joerg-2", JOERG), (b"u-juerg-1", JUERG)):
            code, text = session(after_port, b"", [rcpt], unverifiable(tag), mail_params=b"SMTPUTF8")
            check("bounce for %s held" % rcpt.decode(), code == 250 and b"held in quarantine" in text, text)

        def held(mailbox):
            r = subprocess.run([ndrguard, "quarantine", "list", "--mailbox", mailbox, "--json", "--db", conninfo],
                               capture_output=True)
            return json.loads(r.stdout.decode()) if r.returncode == 0 else r.stderr.decode()
        joerg_items, juerg_items = held(JOERG.decode()), held(JUERG.decode())
        check("jörg@ and jürg@ are two mailboxes (2 and 1 held)",
              isinstance(joerg_items, list) and len(joerg_items) == 2 and isinstance(juerg_items, list) and len(juerg_items) == 1,
              (joerg_items, juerg_items))
        check("the quarantine names the mailboxes in UTF-8",
              all(i["mailbox"] == JOERG.decode() for i in joerg_items) and juerg_items[0]["mailbox"] == JUERG.decode(),
              (joerg_items, juerg_items))

        def release(item, hop):
            return subprocess.run([ndrguard, "quarantine", "release", str(item["id"]), "--db", conninfo,
                                   "--set", "next_hop=127.0.0.1:%d" % hop.port], capture_output=True)
        r = release(joerg_items[0], utf8_hop)
        check("release to a next hop offering SMTPUTF8: released", r.returncode == 0 and b"released" in r.stdout, r.stdout + r.stderr)
        envs = [e for e in utf8_hop.envelopes() if JOERG in e]
        check("... with MAIL FROM:<> SMTPUTF8 and exactly RCPT TO:<jörg@example.org>",
              len(envs) == 1 and envs[0].split(b"\n")[0] == b"MAIL FROM:<> SMTPUTF8" and
              envs[0].split(b"\n")[1:] == [b"RCPT TO:<" + JOERG + b">", b""], envs)
        r = release(juerg_items[0], ascii_hop)
        check("release to a next hop without SMTPUTF8: fails cleanly, saying why",
              r.returncode != 0 and b"SMTPUTF8" in r.stdout + r.stderr, r.stdout + r.stderr)
        check("... nothing sent, and the item is held again",
              ascii_hop.envelopes() == [] and [i["state"] for i in held(JUERG.decode())] == ["held"],
              (ascii_hop.envelopes(), held(JUERG.decode())))

        # The digest of a UTF-8 mailbox: to exactly that address, with SMTPUTF8.
        d = subprocess.run([ndrguard, "digest", "--mailbox", JOERG.decode(), "--db", conninfo,
                            "--set", "next_hop=127.0.0.1:%d" % utf8_hop.port,
                            "--set", "web_secret_file=" + os.path.join(work, "web.secret")], capture_output=True)
        digests = [e for e in utf8_hop.envelopes() if e.startswith(b"MAIL FROM:<postmaster@")]
        check("digest of jörg@: sent with SMTPUTF8 to exactly RCPT TO:<jörg@example.org>",
              d.returncode == 0 and len(digests) == 1 and digests[0].split(b"\n")[0].endswith(b"> SMTPUTF8") and
              digests[0].split(b"\n")[1] == b"RCPT TO:<" + JOERG + b">", (d.stderr, digests))

        # A recipient that is not UTF-8 (Latin-1 ö).
        latin1 = b"j\xf6rg@example.org"
        code, text = session(before_port, b"", [latin1], unverifiable(b"latin1-before"))
        check("before queue: RCPT not UTF-8 gets 501 5.1.3", code == 501 and b"5.1.3" in text, text)
        code, text = session(after_port, b"", [latin1], unverifiable(b"latin1-after"))
        check("after queue: RCPT not UTF-8 is delivered unfiltered (never held under a mangled key)",
              code == 250 and b"queued as SINK" in text, text)
        log.flush()
        check("... and the log says why", wait_for(lambda: "note=malformed_recipient" in open(log_path, errors="replace").read(), 5))
        plain = b"From: a@remote.test\r\nTo: alice@example.org\r\nSubject: [null-sender]\r\n\r\nnot a bounce\r\n"
        code, text = session(after_port, b"", [JOERG], plain, mail_params=b"SMTPUTF8")
        check("MAIL FROM:<> SMTPUTF8 and a UTF-8 RCPT pass through unchanged",
              code == 250 and [e for e in utf8_hop.envelopes() if e == b"MAIL FROM:<> SMTPUTF8\nRCPT TO:<" + JOERG + b">\n"] != [],
              (text, utf8_hop.envelopes()[-2:]))
    finally:
        for s in serves:
            s.terminate()
            s.wait()
        utf8_hop.stop()
        ascii_hop.stop()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
