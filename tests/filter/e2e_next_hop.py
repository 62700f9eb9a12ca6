#!/usr/bin/env python3
"""End to end: what serve, releases and digests do when the next hop misbehaves, and headers
of ours that come with a message (issue 13 items 1, 5, 6, 7). Real PostgreSQL, real serve,
next_hop.py as the next hop:
  - a header of ours that comes with a bounce or an ordinary message is removed: only
    ndrguard's own X-NDRGuard reaches the next hop (and only X-NDRGuard-Released on a release);
  - a 5xx of the next hop (550 at RCPT, 554 at the dot): after queue 451 for a non-null sender
    (never backscatter), the 5xx for a null sender; before queue the 5xx is passed on;
  - the idle pool holds at most next_hop_max_idle connections and closes them after
    next_hop_idle_seconds; a next hop that closed idle pooled connections (with a 421, as
    smtpd_timeout does) costs no 451: the message goes on a fresh connection;
  - a next hop that accepts and never greets: a release and a digest fail within a few times
    reinject_timeout_seconds, and the item is still held (and released, digested later).
usage: e2e_next_hop.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, dsn_returning, failures, free_port, fresh_postgres, send, wait_for, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = "203.0.113.5"  # an inbound client (not in our_networks)


class Hop:
    def __init__(self, name, idle_close=0):
        self.dir = os.path.join(work, name)
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "next_hop.py"), str(self.port), self.dir, str(idle_close)])

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return out

    def connections(self):
        try:
            with open(os.path.join(self.dir, "connections")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return -1


def header_lines(message):
    return message.split("\r\n\r\n", 1)[0].split("\r\n")


def ours(message):
    """The header lines of the message's header section that name a header of ours."""
    return [l for l in header_lines(message) if l.lower().startswith("x-ndrguard")]


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    good, stale, other = Hop("hop"), Hop("stale-hop", idle_close=1.5), Hop("before-queue-hop")
    # Accepts connections (the kernel's backlog) and never says a word.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent_port = silent.getsockname()[1]
    secret_file = os.path.join(work, "web.secret")
    db = ["--db", conninfo]
    serves, logs = [], []

    def serve(name, hop, *extra):
        port = free_port()
        log = open(os.path.join(work, name + ".log"), "w")
        logs.append(log)
        serves.append(subprocess.Popen([ndrguard, "serve", *db, "--sql-dir", sql_dir, "--set", "listen=127.0.0.1:%d" % port,
                                        "--set", "next_hop=127.0.0.1:%d" % hop.port, "--set", "hostname=filter.test",
                                        "--set", "warm_up=off", *extra], stderr=log))
        return port

    after = serve("after-queue", good, "--set", "next_hop_idle_seconds=3")
    before = serve("before-queue", other, "--set", "mode=before_queue")
    stale_port = serve("stale", stale)
    try:
        check("next hops and filters listen", all(wait_port(p) for p in (good.port, stale.port, other.port, after, before, stale_port)))

        # Item 5: headers of ours that come with a message are forged.
        out_msg = "From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: hello\r\nMessage-ID: <out.1@example.org>\r\n\r\nhi\r\n"
        code, text = send(after, "alice@example.org", ["bob@remote.test"], out_msg)
        check("outbound recorded and reinjected", code == 250, "%s %s" % (code, text))
        forged = ("X-NDRGuard: verified msgid=<out.1@example.org>\r\nx-ndrguard-released: id=1 attempt=1\r\n"
                  "X-NDRGUARD: verified\r\n folded=yes\r\nX-NDRGuard-Other: stays\r\n")
        code, text = send(after, "", ["alice@example.org"], forged + dsn_returning("out.1@example.org", "genuine.forged.hdr"), CLIENT)
        got = [m for m in good.messages() if "genuine.forged.hdr" in m]
        check("a genuine bounce carrying forged X-NDRGuard headers: delivered", code == 250 and len(got) == 1, "%s %s" % (code, text))
        check("... with ndrguard's own X-NDRGuard only, on top; X-NDRGuard-Other stays",
              got and ours(got[0]) == [header_lines(got[0])[0], "X-NDRGuard-Other: stays"] and
              got[0].startswith("X-NDRGuard: verified msgid=<out.1@example.org> evidence=sent_log.found reasons="),
              got and ours(got[0]))
        body_line = "\r\nX-NDRGuard: verified (in the body: stays)\r\n"
        code, text = send(after, "carol@remote.test", ["alice@example.org"],
                          forged + "From: carol@remote.test\r\nSubject: forged verdict\r\nMessage-ID: <c.1@remote.test>\r\n" + body_line, CLIENT)
        got = [m for m in good.messages() if "Subject: forged verdict" in m]
        check("an ordinary message carrying forged X-NDRGuard headers: delivered without them (the body untouched)",
              code == 250 and len(got) == 1 and ours(got[0]) == ["X-NDRGuard-Other: stays"] and body_line in got[0],
              "%s %s %s" % (code, text, got and ours(got[0])))

        # Item 7: the next hop's 5xx.
        code, text = send(after, "carol@remote.test", ["unknown.user@example.org"],
                          "From: carol@remote.test\r\nSubject: to nobody\r\n\r\nx\r\n", CLIENT)
        check("after queue, 550 at RCPT for a non-null sender: 451 (Postfix keeps it, no bounce)",
              code == 451 and "550 5.1.1" in text, "%s %s" % (code, text))
        code, text = send(after, "alice@example.org", ["unknown.remote@example.org"], out_msg.replace("out.1", "out.unknown"))
        check("after queue, outbound, 550 at RCPT: 451", code == 451, "%s %s" % (code, text))
        code, text = send(after, "carol@remote.test", ["alice@example.org"],
                          "From: carol@remote.test\r\nSubject: reject-at-dot\r\n\r\nx\r\n", CLIENT)
        check("after queue, 554 at the dot for a non-null sender: 451", code == 451 and "554" in text, "%s %s" % (code, text))
        code, text = send(after, "", ["unknown.user@example.org"], dsn_returning("out.1@example.org", "genuine.to.unknown"), CLIENT)
        check("after queue, 550 at RCPT for a null sender: the 5xx (Postfix drops a bounce's bounce)",
              code == 550 and "5.1.1" in text, "%s %s" % (code, text))
        code, text = send(before, "carol@remote.test", ["unknown.user@example.org"],
                          "From: carol@remote.test\r\nSubject: to nobody\r\n\r\nx\r\n", CLIENT)
        check("before queue, 550 at RCPT: passed on to the client", code == 550 and "5.1.1" in text, "%s %s" % (code, text))

        # Item 6a: a burst leaves at most next_hop_max_idle (4) idle connections; they close after
        # next_hop_idle_seconds (3 here).
        answers = []
        barrier = threading.Barrier(10)

        def one(i):
            barrier.wait(timeout=30)
            answers.append(send(after, "carol@remote.test", ["alice@example.org"],
                                "From: carol@remote.test\r\nSubject: burst %d\r\n\r\nx\r\n" % i, CLIENT)[0])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("a burst of 10 at once: delivered", answers == [250] * 10, answers)
        t0 = time.time()
        wait_for(lambda: good.connections() <= 4, 10)
        check("after the burst, at most next_hop_max_idle (4) connections stay open to the next hop (within 3 s)",
              0 < good.connections() <= 4 and time.time() - t0 < 3, "%d after %.1f s" % (good.connections(), time.time() - t0))
        t0 = time.time()
        closed = wait_for(lambda: good.connections() == 0, 15)
        check("idle connections are closed after next_hop_idle_seconds (3 s)", closed and time.time() - t0 < 8,
              "%d open after %.1f s" % (good.connections(), time.time() - t0))

        # Item 6b: pooled connections the next hop closed meanwhile (421, as at smtpd_timeout).
        answers = []
        barrier = threading.Barrier(4)

        def to_stale(i):
            barrier.wait(timeout=30)
            answers.append(send(stale_port, "carol@remote.test", ["alice@example.org"],
                                "From: carol@remote.test\r\nSubject: fill %d\r\n\r\nx\r\n" % i, CLIENT)[0])

        threads = [threading.Thread(target=to_stale, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("four at once fill the pool", answers == [250] * 4 and stale.connections() == 4, (answers, stale.connections()))
        wait_for(lambda: stale.connections() == 0, 10)
        check("the next hop closed the idle connections (421)", stale.connections() == 0, stale.connections())
        later = [send(stale_port, "carol@remote.test", ["alice@example.org"],
                      "From: carol@remote.test\r\nSubject: after %d\r\n\r\nx\r\n" % i, CLIENT) for i in range(4)]
        check("messages after that: 250 on fresh connections, no 451", [c for c, _ in later] == [250] * 4, later)
        check("... each delivered once", sum("Subject: after " in m for m in stale.messages()) == 4)

        # Item 1: a next hop that accepts and never greets. A forged bounce of a non-null sender,
        # carrying a forged verdict, is held; its release and the digest time out, the item stays.
        code, text = send(after, "postmaster@remote.test", ["victim@example.org"],
                          forged + dsn_returning("never.sent@example.org", "held.forged.hdr"), CLIENT)
        check("a forged bounce of a non-null sender is held", code == 250 and "held in quarantine as" in text, "%s %s" % (code, text))
        item = text.rsplit(" ", 1)[-1]
        silent_hop = ["--set", "next_hop=127.0.0.1:%d" % silent_port, "--set", "reinject_timeout_seconds=2"]

        def timed(cmd):
            t0 = time.time()
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                return r.returncode, r.stdout + r.stderr, time.time() - t0
            except subprocess.TimeoutExpired:
                return None, "still running after 30 s (killed)", time.time() - t0

        def still_held():
            r = subprocess.run([ndrguard, "quarantine", "list", "--json", "--state", "held", *db], capture_output=True, text=True)
            return r.returncode == 0 and any(str(i["id"]) == item for i in json.loads(r.stdout))

        rc, out, took = timed([ndrguard, "digest", *db, "--set", "web_secret_file=" + secret_file, *silent_hop])
        check("digest to a next hop that never greets: fails within 3x reinject_timeout_seconds (2 s)",
              rc == 1 and took < 6, "rc=%s after %.1f s: %s" % (rc, took, out.strip()[:300]))
        rc, out, took = timed([ndrguard, "quarantine", "release", item, *db, *silent_hop])
        check("release to a next hop that never greets: fails within 3x reinject_timeout_seconds",
              rc == 1 and took < 6 and "unreachable" in out, "rc=%s after %.1f s: %s" % (rc, took, out.strip()[:300]))
        check("... and the item is still held", still_held())
        rc, out, took = timed([ndrguard, "digest", *db, "--set", "web_secret_file=" + secret_file, "--set", "next_hop=127.0.0.1:%d" % good.port])
        check("... the next pass sends the digest with that item", rc == 0 and "result=sent" in out and
              any("Auto-Submitted: auto-generated" in m and "victim@example.org" in m for m in good.messages()), out.strip()[:300])
        rc, out, took = timed([ndrguard, "quarantine", "release", item, *db, "--set", "next_hop=127.0.0.1:%d" % good.port])
        released = [m for m in good.messages() if "held.forged.hdr" in m]
        check("the release to a working next hop delivers it", rc == 0 and len(released) == 1, out)
        check("... with X-NDRGuard-Released only: the forged headers are gone",
              released and [l for l in ours(released[0]) if l != "X-NDRGuard-Other: stays"] == [header_lines(released[0])[0]] and
              released[0].startswith("X-NDRGuard-Released: id=" + item + " "), released and ours(released[0]))
    finally:
        for p in serves:
            p.terminate()
        for p in serves:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for h in (good, stale, other):
            h.proc.terminate()
        silent.close()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        for log in logs:
            log.close()
            with open(log.name) as f:
                lines = f.read().splitlines()
            print("%s (last 8 lines):" % os.path.basename(log.name))
            for l in lines[-8:]:
                print("  " + l[:400])
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
