#!/usr/bin/env python3
"""End to end with a real Postfix (private instance) and a real PostgreSQL, in both modes.

After queue (content_filter): outbound mail recorded; a genuine bounce of it delivered with the
verdict header; a forged null-sender bounce rejected, and Postfix drops it as a double bounce (no
new bounce anywhere); a forged bounce from a non-null sender never 5xx'd (no backscatter);
PostgreSQL stopped -> 451, the message stays queued and is delivered once it is back; ndrguard
stopped -> Postfix defers and delivers after the restart. Nothing lost, nothing twice.
Before queue (smtpd_proxy_filter): the client sees the 5xx for a forged bounce, nothing is queued;
a genuine bounce is delivered.
usage: e2e_postfix.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from postfix_instance import Instance  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import (check, dsn_returning, failures, free_port, send, sink_files as sink_messages,  # noqa: E402
                        fresh_postgres, postfix_missing, wait_for, wait_port)

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
sink_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "filter", "smtp_sink.py")




















def at_sink(sink_dir, marker):
    return [m for m in sink_messages(sink_dir) if marker in m]


def verdict(message):
    """The X-NDRGuard header's value ("" when absent); Postfix adds its Received lines above it."""
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n"):
        if line.startswith("X-NDRGuard: "):
            return line[len("X-NDRGuard: "):]
    return ""


def outbound(msgid, subject="hello"):
    return ("From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\nhi\r\n"
            % (subject, msgid))





class Filter:
    def __init__(self, conninfo, mode, port, next_hop, logpath):
        self.args = [ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                     "--set", "listen=127.0.0.1:%d" % port, "--set", "next_hop=127.0.0.1:%d" % next_hop,
                     "--set", "mode=" + mode, "--set", "hostname=filter.test", "--set", "warm_up=off",
                     "--set", "our_networks=127.0.0.0/8"]
        self.port, self.logpath, self.proc = port, logpath, None

    def start(self):
        self.proc = subprocess.Popen(self.args, stderr=open(self.logpath, "a"))
        return wait_port(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def after_queue(conninfo, pg_dir, root):
    sink_port, public, fport, reinject = free_port(), free_port(), free_port(), free_port()
    sink_dir = os.path.join(root, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, sink_script, str(sink_port), sink_dir])
    flt = Filter(conninfo, "after_queue", fport, reinject, os.path.join(root, "serve.log"))
    pf = Instance(os.path.join(root, "pf"), "after_queue", public, fport, reinject, sink_port)
    try:
        check("after queue: sink and filter up", wait_port(sink_port) and flt.start())
        pf.start()
        check("after queue: postfix up", wait_port(public))

        code, _ = send(public, "alice@example.org", ["bob@remote.test"], outbound("aq.out.1@example.org"))
        check("outbound accepted by postfix", code == 250)
        check("outbound delivered through the filter", wait_for(lambda: len(at_sink(sink_dir, "<aq.out.1@example.org>")) == 1))

        code, _ = send(public, "", ["alice@example.org"], dsn_returning("aq.out.1@example.org", "genuine-1"), "203.0.113.5")
        check("genuine bounce accepted", code == 250)
        check("genuine bounce delivered, verdict verified",
              wait_for(lambda: any(verdict(m).startswith("verified msgid=<aq.out.1@example.org>")
                                   for m in at_sink(sink_dir, "genuine-1"))))

        code, _ = send(public, "", ["alice@example.org"], dsn_returning("aq.never.1@example.org", "forged-null"), "203.0.113.5")
        check("forged null-sender bounce queued by postfix", code == 250)
        check("... rejected by the filter and dropped by postfix as a double bounce",
              wait_for(lambda: "backscatter" in pf.maillog() and pf.queue_size() == 0))
        time.sleep(1)
        check("... never delivered", not at_sink(sink_dir, "forged-null"))

        code, _ = send(public, "postmaster@remote.test", ["alice@example.org"],
                       dsn_returning("aq.never.2@example.org", "forged-nonnull"), "203.0.113.5")
        def held_ids():
            r = subprocess.run([ndrguard, "quarantine", "list", "--json", "--db", conninfo], capture_output=True, text=True)
            return [i["id"] for i in json.loads(r.stdout or "[]") if i["message_ids"] == ["aq.never.2@example.org"]]
        check("forged bounce from a non-null sender: quarantined, never 5xx'd",
              wait_for(lambda: len(held_ids()) == 1 and pf.queue_size() == 0))
        check("... not delivered", not at_sink(sink_dir, "forged-nonnull"))
        # Released through Postfix's reinjection port (which bypasses the filter): delivered once.
        ids = held_ids()
        release = [ndrguard, "quarantine", "release", str(ids[0] if ids else 0), "--db", conninfo,
                   "--set", "next_hop=127.0.0.1:%d" % reinject, "--by", "e2e"]
        first = subprocess.run(release, capture_output=True, text=True)
        second = subprocess.run(release, capture_output=True, text=True)
        check("release through postfix: released, then already released",
              first.returncode == 0 and "released queue_id=" in first.stdout and second.returncode == 1 and
              "already_released" in second.stderr, first.stdout + first.stderr + second.stderr)
        check("... delivered exactly once, marked as released",
              wait_for(lambda: len(at_sink(sink_dir, "forged-nonnull")) == 1) and
              "X-NDRGuard-Released: id=" in at_sink(sink_dir, "forged-nonnull")[0])
        time.sleep(1)
        check("... and not twice", len(at_sink(sink_dir, "forged-nonnull")) == 1)
        check("postfix made no bounce of its own (no backscatter)", "sender non-delivery notification" not in pf.maillog())

        # PostgreSQL down: 451, the message waits in Postfix's queue, and goes once it is back.
        subprocess.run([pg_cluster, "pause", pg_dir], check=True, capture_output=True)
        code, _ = send(public, "", ["alice@example.org"], dsn_returning("aq.out.1@example.org", "db-down"), "203.0.113.5")
        check("bounce during a database outage accepted by postfix", code == 250)
        check("... deferred with the filter's 451", wait_for(lambda: "sent log unavailable" in pf.maillog() and pf.queue_size() >= 1))
        subprocess.run([pg_cluster, "resume", pg_dir], check=True, capture_output=True)
        pf.flush()
        check("... delivered once PostgreSQL is back", wait_for(lambda: len(at_sink(sink_dir, "db-down")) == 1, 60))

        # ndrguard down: Postfix defers, and delivers after the restart.
        flt.stop()
        code, _ = send(public, "alice@example.org", ["bob@remote.test"], outbound("aq.out.2@example.org"))
        check("outbound while the filter is down accepted by postfix", code == 250)
        check("... deferred (connection refused)", wait_for(lambda: pf.queue_size() >= 1 and "Connection refused" in pf.maillog()))
        check("filter restarted", flt.start())
        pf.flush()
        check("... delivered after the restart", wait_for(lambda: len(at_sink(sink_dir, "<aq.out.2@example.org>")) == 1, 60))

        time.sleep(2)
        counts = {}
        for m in sink_messages(sink_dir):
            for line in m.split("\r\n"):
                if line.lower().startswith("message-id:"):
                    counts[line] = counts.get(line, 0) + 1
                    break
        check("nothing twice at the sink", all(n == 1 for n in counts.values()), counts)
        check("queue empty at the end", pf.queue_size() == 0)
    finally:
        pf.stop()
        flt.stop()
        sink.terminate()
        sink.wait()


def before_queue(conninfo, root):
    sink_port, public, fport, reinject = free_port(), free_port(), free_port(), free_port()
    sink_dir = os.path.join(root, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, sink_script, str(sink_port), sink_dir])
    flt = Filter(conninfo, "before_queue", fport, reinject, os.path.join(root, "serve.log"))
    pf = Instance(os.path.join(root, "pf"), "before_queue", public, fport, reinject, sink_port)
    try:
        check("before queue: sink and filter up", wait_port(sink_port) and flt.start())
        pf.start()
        check("before queue: postfix up", wait_port(public))
        code, text = send(public, "alice@example.org", ["bob@remote.test"], outbound("bq.out.1@example.org"))
        check("before queue: outbound accepted with the next queue id", code == 250 and "queued as" in text, text)
        check("before queue: outbound delivered", wait_for(lambda: len(at_sink(sink_dir, "<bq.out.1@example.org>")) == 1))
        code, text = send(public, "", ["alice@example.org"], dsn_returning("bq.never@example.org", "bq-forged"), "203.0.113.5")
        check("before queue: the client sees the 5xx for a forged bounce", code == 550 and "backscatter" in text, "%s %s" % (code, text))
        code, text = send(public, "postmaster@remote.test", ["alice@example.org"],
                          dsn_returning("bq.never2@example.org", "bq-forged-nonnull"), "203.0.113.5")
        check("before queue: rejecting a non-null sender is safe here, and done", code == 550, "%s %s" % (code, text))
        check("before queue: nothing queued for them", pf.queue_size() == 0)
        code, _ = send(public, "", ["alice@example.org"], dsn_returning("bq.out.1@example.org", "bq-genuine"), "203.0.113.5")
        check("before queue: genuine bounce accepted", code == 250)
        check("before queue: genuine bounce delivered, verified",
              wait_for(lambda: any(verdict(m).startswith("verified") for m in at_sink(sink_dir, "bq-genuine"))))
        time.sleep(1)
        check("before queue: forged ones never delivered", not at_sink(sink_dir, "bq-forged"))
    finally:
        pf.stop()
        flt.stop()
        sink.terminate()
        sink.wait()


def main():
    missing = postfix_missing()
    if missing:
        print(missing)
        return 77
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    try:
        after_queue(conninfo, pg_dir, os.path.join(work, "after"))
        before_queue(conninfo, os.path.join(work, "before"))
    finally:
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        for phase in ("after", "before"):
            for name in ("serve.log", "pf/log/maillog"):
                p = os.path.join(work, phase, name)
                if failures and os.path.exists(p):
                    print("---- %s/%s (last 15 lines)" % (phase, name))
                    with open(p) as f:
                        for line in f.read().splitlines()[-15:]:
                            print("  " + line)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
