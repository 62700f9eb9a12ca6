#!/usr/bin/env python3
"""BENCH filter_hop: smtp-source -> ndrguard serve -> smtp-sink against smtp-source -> smtp-sink
direct, in the same run, alternating (a warm-up round that is not counted, then ROUNDS = 5
rounds, medians: this machine's speed changes from one minute to the next). The load is a DSN from <> that names a
message recorded in the sent log beforehand, so every message is parsed, looked up in PostgreSQL
(verified) and reinjected with the verdict header. Also prints ndrguard's added latency (p50/p99
of one-message sessions) and its peak memory (VmHWM).
Exits 1 without a BENCH line when it cannot measure (Postfix's tools or PostgreSQL missing, a
run failing).
usage: filter_hop.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR"""
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import free_port, fresh_postgres, postfix_missing, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
MESSAGES, SESSIONS, ROUNDS = 2000, 10, 5








DSN = ("From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\nTo: alice@example.org\r\n"
       "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
       "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
       "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n"
       "Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
       "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.org\r\nTo: nobody@remote.test\r\n"
       "Subject: hello\r\nMessage-ID: <bench.1@example.org>\r\n\r\n--B--\r\n")


def source(port, msgfile):
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(SESSIONS), "-m", str(MESSAGES), "-f", "", "-t", "alice@example.org",
                        "-F", msgfile, "127.0.0.1:%d" % port], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("smtp-source: " + r.stderr)
    return MESSAGES / (time.time() - t0)


def latency(port, n=200):
    out = []
    for _ in range(n):
        s = smtplib.SMTP("127.0.0.1", port, timeout=30, local_hostname="bench.test")
        s.ehlo("bench")
        s.mail("")
        s.rcpt("alice@example.org")
        t0 = time.perf_counter()
        s.data(DSN)
        out.append((time.perf_counter() - t0) * 1000)
        s.quit()
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as st:
        fields = st.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_log_lines(path, n, timeout=10):
    """The number of verified lines in the filter's log once there are n (it is written every
    100 ms), or what there is after the timeout."""
    end = time.time() + timeout
    while True:
        count = sum(1 for l in open(path) if "verification=verified" in l)
        if count >= n or time.time() > end:
            return count
        time.sleep(0.1)


def main():
    missing = postfix_missing(need_root=False)  # smtp-source and smtp-sink only
    if missing:
        print(missing.replace("SKIP", "FAIL", 1) + ": no BENCH line")
        return 1
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        print("FAIL: PostgreSQL could not be started: no BENCH line")
        return 1
    msgfile = os.path.join(work, "dsn.eml")
    with open(msgfile, "w") as f:
        f.write(DSN.replace("\r\n", "\n"))
    sink_port, fport, mport = free_port(), free_port(), free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink"] + user + ["-c", "127.0.0.1:%d" % sink_port, "256"], stdout=subprocess.DEVNULL)
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % fport, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "our_networks=127.0.0.2/32", "--set", "warm_up=off",
                              "--set", "max_sessions=64", "--set", "metrics_listen=127.0.0.1:%d" % mport], stderr=open(os.path.join(work, "serve.log"), "w"))
    try:
        if not (wait_port(sink_port) and wait_port(fport)):
            print("cannot start the sink or the filter")
            return 1
        # Record the message the DSN names, as outbound mail (from 127.0.0.2, "our network").
        s = smtplib.SMTP("127.0.0.1", fport, source_address=("127.0.0.2", 0), local_hostname="bench.test")
        s.sendmail("alice@example.org", ["bob@remote.test"],
                   "From: alice@example.org\r\nMessage-ID: <bench.1@example.org>\r\n\r\nhi\r\n")
        s.quit()
        # Warm-up, not counted: the first round is the slowest (connections, caches, pages).
        d, f = source(sink_port, msgfile), source(fport, msgfile)
        print("warm-up (not counted): direct %.0f msg/s, through ndrguard %.0f msg/s" % (d, f), flush=True)
        warm_lines = wait_log_lines(os.path.join(work, "serve.log"), MESSAGES)
        cpu0 = cpu_seconds(serve.pid)
        direct, filtered = [], []
        for rnd in range(ROUNDS):
            d = source(sink_port, msgfile)
            f = source(fport, msgfile)
            direct.append(d)
            filtered.append(f)
            print("round %d: direct %.0f msg/s, through ndrguard %.0f msg/s" % (rnd + 1, d, f), flush=True)
        wait_log_lines(os.path.join(work, "serve.log"), warm_lines + ROUNDS * MESSAGES)
        lines = [l for l in open(os.path.join(work, "serve.log")) if "verification=verified" in l][warm_lines:]
        verified = len(lines)
        busy_ms = sorted(float(l.rsplit(" ms=", 1)[1]) for l in lines if " ms=" in l)
        if busy_ms:
            print("filter time per message under load (final dot to answer, lookups gathered): p50 %.2f ms, p99 %.2f ms"
                  % (busy_ms[len(busy_ms) // 2], busy_ms[int(len(busy_ms) * 0.99) - 1]))
        print("messages verified against PostgreSQL: %d of %d (the log is written every 100 ms)" % (verified, ROUNDS * MESSAGES))
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
        found = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("ndrguard_sent_log_lookups_total{"))
        queries = [float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("ndrguard_sent_log_lookup_queries_total")]
        if queries and queries[0]:
            print("sent-log lookups: %.0f in %.0f PostgreSQL queries (%.1f per query)" % (found, queries[0], found / queries[0]))
        p50, p99 = latency(fport)
        d50, d99 = latency(sink_port)
        with open("/proc/%d/status" % serve.pid) as st:
            hwm = [l.split()[1] for l in st if l.startswith("VmHWM")][0]
        cpu = cpu_seconds(serve.pid) - cpu0
        total = ROUNDS * MESSAGES + 400  # the rounds and the two latency runs (not the warm-up)
        print("ndrguard CPU: %.2f s for %d messages = %.0f us per message (user+system)" % (cpu, total, cpu / total * 1e6))
        print("latency per message (DATA to reply): through ndrguard p50 %.2f ms p99 %.2f ms; direct p50 %.2f ms p99 %.2f ms"
              % (p50, p99, d50, d99))
        print("added latency: p50 %.2f ms, p99 %.2f ms; ndrguard peak memory %s kB" % (p50 - d50, p99 - d99, hwm))
        md, mf = statistics.median(direct), statistics.median(filtered)
        # Each round's two runs follow each other within seconds, under the same conditions; the
        # machine's speed changes between rounds. So the ratio is the median of the rounds'
        # ratios (the ratio of the medians, which mixes rounds, is printed too).
        paired = statistics.median(f / d for f, d in zip(filtered, direct))
        print("ratio per round: %s; median %.3f (ratio of the medians %.3f)"
              % (" ".join("%.2f" % (f / d) for f, d in zip(filtered, direct)), paired, mf / md))
        print("goal: at least 60%% of the direct rate; got %.0f%%" % (100 * paired))
        print("BENCH name=filter_hop value=%.0f unit=messages/s ratio=%.3f reference=smtp-source-to-smtp-sink-direct-same-round"
              % (mf, paired))
        return 0
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait()
        sink.terminate()
        sink.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
