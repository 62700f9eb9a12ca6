#!/usr/bin/env python3
"""BENCH postfix_pipeline: Postfix's after-queue pipeline with ndrguard as the content filter,
against the same pipeline with Postfix itself as the filter (an smtpd that queues again), in the
same run, alternating 3 rounds (medians). smtp-source -> Postfix smtpd -> queue -> filter ->
smtpd -> queue -> sink; the rate is messages / time until the last reached the sink.
Goal: at least 95% (the filter is never the bottleneck).
A warm-up round of each, not counted, comes first (the first round is consistently the slowest).
Exits 1 without a BENCH line when it cannot measure (Postfix or PostgreSQL missing, a run failing).
usage: postfix_pipeline.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "postfix"))
from postfix_instance import Instance, REINJECT  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import free_port, fresh_postgres, postfix_missing, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
MESSAGES = 400








class PostfixAsFilter(Instance):
    """The reference: the filter port is one more Postfix smtpd that queues the mail again."""
    def write(self):
        super().write()
        with open(os.path.join(self.etc, "master.cf"), "a") as f:
            f.write(REINJECT.format(reinject=self.filter_port).replace("postfix/reinject", "postfix/asfilter"))


def run(kind, root, conninfo):
    sink_port, public, fport, reinject = free_port(), free_port(), free_port(), free_port()
    sink_dir = os.path.join(root, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, os.path.join(here, "..", "filter", "smtp_sink.py"), str(sink_port), sink_dir])
    cls = Instance if kind == "ndrguard" else PostfixAsFilter
    pf = cls(os.path.join(root, "pf"), "after_queue", public, fport, reinject, sink_port)
    serve = None
    try:
        wait_port(sink_port)
        if kind == "ndrguard":
            serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                                      "--set", "listen=127.0.0.1:%d" % fport, "--set", "next_hop=127.0.0.1:%d" % reinject],
                                     stderr=open(os.path.join(root, "serve.log"), "w"))
            wait_port(fport)
        pf.start()
        wait_port(public)
        t0 = time.time()
        subprocess.run(["smtp-source", "-s", "10", "-m", str(MESSAGES), "-l", "2000", "-f", "alice@example.org",
                        "-t", "bob@remote.test", "127.0.0.1:%d" % public], check=True, capture_output=True)
        end = time.time() + 300
        while time.time() < end and len([n for n in os.listdir(sink_dir) if n.endswith(".eml")]) < MESSAGES:
            time.sleep(0.05)
        got = len([n for n in os.listdir(sink_dir) if n.endswith(".eml")])
        elapsed = time.time() - t0
        if got < MESSAGES:
            raise RuntimeError("%s: only %d of %d messages arrived" % (kind, got, MESSAGES))
        return MESSAGES / elapsed
    finally:
        pf.stop()
        if serve:
            serve.send_signal(signal.SIGTERM)
            serve.wait()
        sink.terminate()
        sink.wait()


def main():
    missing = postfix_missing()
    if missing:
        print(missing.replace("SKIP", "FAIL", 1) + ": no BENCH line")
        return 1
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        print("FAIL: PostgreSQL could not be started: no BENCH line")
        return 1
    rates = {"ndrguard": [], "postfix": []}
    try:
        for kind in ("ndrguard", "postfix"):
            rate = run(kind, os.path.join(work, "%s-warm-up" % kind), conninfo)
            print("warm-up (not counted): %s as the filter: %.0f msg/s" % (kind, rate), flush=True)
        for rnd in range(3):
            for kind in ("ndrguard", "postfix"):
                rate = run(kind, os.path.join(work, "%s-%d" % (kind, rnd)), conninfo)
                rates[kind].append(rate)
                print("round %d: %s as the filter: %.0f msg/s" % (rnd + 1, kind, rate), flush=True)
    finally:
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    n, p = statistics.median(rates["ndrguard"]), statistics.median(rates["postfix"])
    # As in filter_hop: the two runs of a round share the machine's conditions of the moment.
    ratios = [a / b for a, b in zip(rates["ndrguard"], rates["postfix"])]
    paired = statistics.median(ratios)
    print("ratio per round: %s; median %.3f (ratio of the medians %.3f)" % (" ".join("%.2f" % r for r in ratios), paired, n / p))
    print("goal: at least 95%% of the pipeline with Postfix as the filter; got %.0f%%" % (100 * paired))
    print("BENCH name=postfix_pipeline value=%.0f unit=messages/s ratio=%.3f reference=same-pipeline-postfix-smtpd-as-filter-same-round"
          % (n, paired))
    return 0


if __name__ == "__main__":
    sys.exit(main())
