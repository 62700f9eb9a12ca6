#!/usr/bin/env python3
"""BENCH storm_1000: a storm of 1,000 bounces a second at one mailbox for 60 seconds, sent with
smtp-source to ndrguard serve's SMTP port (next hop: smtp_sink.py), then an exact reconciliation.

The bounce is a null-sender DSN that names no message (unverifiable): the expensive path, since
once the mailbox is in storm mode every one of them is committed to the quarantine in
PostgreSQL before it is answered. Pacing: one smtp-source run of 1,000 messages per second of
the schedule; a second that takes longer delays the next one, so the sustained rate is
messages sent / elapsed time. Reconciliation: every message is delivered (at the sink),
quarantined (a row) or tempfailed (a 451 in the log, which Postfix would retry); the storm
counters in PostgreSQL equal the number sent; the log has one line per message. Reports p50/p99
of the filter's time per message (its log's ms=) and of a probe's round trip during the storm,
and the filter's peak memory. A warm-up second of RATE bounces at another mailbox comes first and
is not counted (neither in the rate nor in the reconciliation, which is of the storm's mailbox).
Exits 1 without a BENCH line when it cannot measure (smtp-source or PostgreSQL missing, an
smtp-source run failing); 1 after it when the reconciliation fails.
usage: storm_1000.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR [SECONDS] [RATE]"""
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import free_port, fresh_postgres, postfix_missing, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
SECONDS = int(sys.argv[5]) if len(sys.argv) > 5 else 60
RATE = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
SESSIONS = 20
MAILBOX = "victim@example.org"
WARM_UP_MAILBOX = "warm-up@example.org"

DSN = ("From: MAILER-DAEMON@mx.spam.test (Mail Delivery System)\nTo: victim@example.org\n"
       "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
       "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
       "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.spam.test\n\n"
       "Final-Recipient: rfc822; nobody@spam.test\nAction: failed\nStatus: 5.1.1\n\n"
       "--B\nContent-Type: text/rfc822-headers\n\nFrom: victim@example.org\nTo: nobody@spam.test\n"
       "Subject: Cheap watches\n\n--B--\n")


def psql(pg_dir, sql):
    host = re.search(r"host=(\S+)", open(os.path.join(pg_dir, "conninfo")).read()).group(1)
    r = subprocess.run(["psql", "-h", host, "-p", "5433", "-U", "postgres", "-d", "postgres", "-Atc", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql: " + r.stderr)
    return r.stdout.strip()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def inbound_lines(log_path):
    return sum(1 for l in open(log_path) if "direction=inbound" in l)


def delivered_at(sink_dir):
    return len([n for n in os.listdir(sink_dir) if n.endswith(".eml")])


def main():
    missing = postfix_missing(need_root=False)  # smtp-source only
    if missing:
        print(missing.replace("SKIP", "FAIL", 1) + ": no BENCH line")
        return 1
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        print("FAIL: PostgreSQL could not be started: no BENCH line")
        return 1
    msgfile = os.path.join(work, "storm.eml")
    with open(msgfile, "w") as f:
        f.write(DSN)
    sink_dir = os.path.join(work, "sink")
    os.makedirs(sink_dir)
    sink_port, fport = free_port(), free_port()
    sink = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "..", "filter", "smtp_sink.py"),
                             str(sink_port), sink_dir])
    log_path = os.path.join(work, "serve.log")
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % fport, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "our_networks=127.0.0.2/32", "--set", "warm_up=off", "--set", "max_sessions=64"],
                             stderr=open(log_path, "w"))
    probe_ms = []
    stop_probe = threading.Event()

    def probe():  # one extra bounce every 200 ms, timed from DATA to the answer
        while not stop_probe.is_set():
            try:
                s = smtplib.SMTP("127.0.0.1", fport, timeout=30, local_hostname="probe.test")
                s.ehlo("probe")
                s.mail("")
                s.rcpt(MAILBOX)
                t0 = time.perf_counter()
                s.data(DSN.replace("\n", "\r\n"))
                probe_ms.append((time.perf_counter() - t0) * 1000)
                s.quit()
            except Exception as e:  # counted by the reconciliation like any other message
                print("probe: %s" % e)
            stop_probe.wait(0.2)

    try:
        if not (wait_port(sink_port) and wait_port(fport)):
            print("cannot start the sink or the filter")
            return 1
        # Warm-up, not counted: one second's worth at another mailbox (its own storm), then the
        # log and the sink are read from where it left them.
        r = subprocess.run(["smtp-source", "-s", str(SESSIONS), "-m", str(RATE), "-f", "", "-t", WARM_UP_MAILBOX,
                            "-F", msgfile, "127.0.0.1:%d" % fport], capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: smtp-source (warm-up): %s: no BENCH line" % r.stderr.strip())
            return 1
        end = time.time() + 30
        while inbound_lines(log_path) < RATE and time.time() < end:
            time.sleep(0.1)
        time.sleep(0.5)  # the last deliveries' files at the sink
        warm_lines = inbound_lines(log_path)
        warm_delivered = delivered_at(sink_dir)
        print("warm-up (not counted): %d bounces at %s, %d delivered" % (warm_lines, WARM_UP_MAILBOX, warm_delivered),
              flush=True)
        if warm_lines != RATE:
            print("FAIL: the warm-up's %d bounces gave %d log lines: no BENCH line" % (RATE, warm_lines))
            return 1
        prober = threading.Thread(target=probe)
        failed_runs = 0
        t_start = time.time()
        prober.start()
        behind = 0
        for second in range(SECONDS):
            due = t_start + second
            if time.time() < due:
                time.sleep(due - time.time())
            else:
                behind += 1
            r = subprocess.run(["smtp-source", "-s", str(SESSIONS), "-m", str(RATE), "-f", "", "-t", MAILBOX,
                                "-F", msgfile, "127.0.0.1:%d" % fport], capture_output=True, text=True)
            if r.returncode != 0:
                print("smtp-source: " + r.stderr.strip())
                failed_runs += 1
        elapsed = time.time() - t_start
        stop_probe.set()
        prober.join()
        sent = SECONDS * RATE + len(probe_ms)
        rate = SECONDS * RATE / elapsed
        print("sent %d storm bounces in %.1f s (%.0f/s; %d of %d seconds started late) + %d probe bounces"
              % (SECONDS * RATE, elapsed, rate, behind, SECONDS, len(probe_ms)), flush=True)

        with open("/proc/%d/status" % serve.pid) as st:
            hwm = int([l.split()[1] for l in st if l.startswith("VmHWM")][0])
        serve.send_signal(signal.SIGTERM)  # the last storm counts are written on the way out
        serve.wait(timeout=60)

        if failed_runs:
            print("FAIL: %d of %d smtp-source runs failed: no BENCH line" % (failed_runs, SECONDS))
            return 1
        lines = [l for l in open(log_path) if "direction=inbound" in l][warm_lines:]
        actions = {}
        for l in lines:
            # What was answered decides: a 4xx is a tempfail whatever was intended.
            a = "tempfail" if ' reply="4' in l else re.search(r" action=(\w+)", l).group(1)
            actions[a] = actions.get(a, 0) + 1
        ms = [float(re.search(r" ms=([\d.]+)", l).group(1)) for l in lines]
        delivered = delivered_at(sink_dir) - warm_delivered
        quarantined = int(psql(pg_dir, "SELECT count(*) FROM quarantine WHERE mailbox = '%s'" % MAILBOX))
        counted = int(psql(pg_dir, "SELECT coalesce(sum(verified + forged + unverifiable), 0) FROM ndr_counts WHERE mailbox = '%s'" % MAILBOX))
        storm = psql(pg_dir, "SELECT count(*), sum(unverifiable), sum(quarantined), sum(delivered) FROM storms WHERE mailbox = '%s'" % MAILBOX)
        storms, storm_unverifiable, storm_quarantined, storm_delivered = [int(x or 0) for x in storm.split("|")]
        tempfailed = actions.get("tempfail", 0)
        print("filter log: %d inbound lines, actions %s" % (len(lines), actions))
        print("delivered at the sink %d + quarantined rows %d + tempfailed %d = %d; sent %d"
              % (delivered, quarantined, tempfailed, delivered + quarantined + tempfailed, sent))
        print("storm counters: %d counted in ndr_counts; %d storm(s): %d unverifiable, %d quarantined, %d delivered"
              % (counted, storms, storm_unverifiable, storm_quarantined, storm_delivered))
        checks = {
            "one log line per message": len(lines) == sent,
            "every message delivered, quarantined or tempfailed": delivered + quarantined + tempfailed == sent,
            "log agrees with the sink and the database": actions.get("deliver", 0) == delivered and
                                                          actions.get("quarantine", 0) == quarantined,
            "counters equal the truth": counted == sent - tempfailed,
            "one storm, counting every bounce": storms == 1 and storm_unverifiable == sent - tempfailed,
            "storm's quarantined count equals the rows": storm_quarantined == quarantined,
        }
        for name, ok in checks.items():
            print(("PASS " if ok else "FAIL ") + name)
        print("filter time per message (log ms=): p50 %.1f ms, p99 %.1f ms; probe round trip during the storm: p50 %.1f ms, "
              "p99 %.1f ms (%d probes); ndrguard peak memory %d kB"
              % (percentile(ms, 0.5), percentile(ms, 0.99), percentile(probe_ms, 0.5), percentile(probe_ms, 0.99),
                 len(probe_ms), hwm))
        print("BENCH name=storm_1000 value=%.0f unit=messages/s ratio=%.3f reference=target-rate-%d-per-s"
              % (rate, rate / RATE, RATE))
        return 0 if all(checks.values()) else 1
    finally:
        stop_probe.set()
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        sink.terminate()
        sink.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
