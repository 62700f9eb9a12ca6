#!/usr/bin/env python3
"""BENCH policy_service: requests per second and latency of ndrguard serve's policy service
(policy_listen) over Postfix's policy protocol, side by side in the same run with Debian's
postgrey answering the same request stream (bench_policy_client: 8 connections, each one request
at a time as a Postfix smtpd asks; half null-sender RCPTs to a mailbox in storm mode, which
ndrguard refuses, half ordinary mail). Goal: at least 10x postgrey's rate, p99 under 1 ms.

serve runs on a throwaway PostgreSQL with a storm opened by the filter (20 bounces to its SMTP
port) and its log to a file; postgrey with its own database directory and --delay=1. Each round
runs ndrguard, then postgrey, under the same conditions; a warm-up round is not counted; the ratio
is the median of the rounds' ratios.
usage: policy_service.py NDRGUARD CLIENT PG_CLUSTER_SH SQL_DIR WORK_DIR [--rounds N] [--seconds S]
Exits 1 without a BENCH line when it cannot measure (postgrey or PostgreSQL missing, a run failing)."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from e2e_common import dsn_returning, free_port, fresh_postgres, send, wait_for, wait_port  # noqa: E402

STORM = "victim@example.org"
CONNECTIONS = 8


def run_client(client, port, warmup, seconds):
    r = subprocess.run([client, str(port), str(CONNECTIONS), str(warmup), str(seconds), STORM],
                       capture_output=True, text=True, timeout=seconds + warmup + 60)
    m = re.search(r"RESULT (.*)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError("bench_policy_client on port %d: %s %s" % (port, r.stdout, r.stderr))
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def main():
    ndrguard, client, pg_cluster, sql_dir, work = sys.argv[1:6]
    rest = sys.argv[6:]
    rounds = int(rest[rest.index("--rounds") + 1]) if "--rounds" in rest else 3
    seconds = float(rest[rest.index("--seconds") + 1]) if "--seconds" in rest else 5
    if shutil.which("postgrey") is None:
        print("FAIL: postgrey is not installed (Debian package postgrey): no BENCH line")
        return 1
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        print("FAIL: PostgreSQL could not be started: no BENCH line")
        return 1
    root = os.path.dirname(pg_dir)
    fport, pport, gport, sink = free_port(), free_port(), free_port(), free_port()
    log = open(os.path.join(root, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % fport, "--set", "next_hop=127.0.0.1:%d" % sink,
                              "--set", "policy_listen=127.0.0.1:%d" % pport, "--set", "warm_up=off",
                              "--set", "our_networks=192.0.2.0/24", "--set", "storm_threshold=20",
                              "--set", "storm_exit_threshold=5"], stderr=log)
    pgdb = os.path.join(root, "postgrey")
    os.makedirs(pgdb)
    if os.geteuid() == 0:
        shutil.chown(pgdb, "postgrey")
    postgrey = subprocess.Popen(["postgrey", "--inet=127.0.0.1:%d" % gport, "--dbdir=" + pgdb, "--delay=1",
                                 "--pidfile=" + os.path.join(pgdb, "pid")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "postgrey.log"), "w"))
    try:
        if not (wait_port(pport) and wait_port(fport) and wait_port(gport)):
            print("FAIL: serve or postgrey did not start: no BENCH line")
            return 1
        for i in range(20):
            send(fport, "", [STORM], dsn_returning("never.%d@example.org" % i, "storm-%d" % i), "203.0.113.5")
        if not wait_for(lambda: "storm started" in open(os.path.join(root, "serve.log")).read(), 20):
            print("FAIL: the storm did not start: no BENCH line")
            return 1
        run_client(client, pport, 0.5, 1)  # warm-up, not counted
        run_client(client, gport, 0.5, 1)
        ours, theirs = [], []
        for r in range(rounds):
            ours.append(run_client(client, pport, 0.5, seconds))
            theirs.append(run_client(client, gport, 0.5, seconds))
            print("round %d: ndrguard %.0f req/s p50 %.0f us p99 %.0f us (rejects %d, dunno %d); "
                  "postgrey %.0f req/s p50 %.0f us p99 %.0f us (greylisted %d, dunno %d)"
                  % (r + 1, ours[-1]["rps"], ours[-1]["p50_us"], ours[-1]["p99_us"], ours[-1]["rejects"], ours[-1]["dunno"],
                     theirs[-1]["rps"], theirs[-1]["p50_us"], theirs[-1]["p99_us"], theirs[-1]["other"], theirs[-1]["dunno"]),
                  flush=True)
        if any(o["rejects"] == 0 for o in ours):
            print("FAIL: ndrguard refused nothing: the storm was not seen: no BENCH line")
            return 1
        ratio = statistics.median(o["rps"] / t["rps"] for o, t in zip(ours, theirs))
        rps = statistics.median(o["rps"] for o in ours)
        p99 = statistics.median(o["p99_us"] for o in ours) / 1000
        p999 = statistics.median(o["p999_us"] for o in ours) / 1000
        grey_rps = statistics.median(t["rps"] for t in theirs)
        grey_p99 = statistics.median(t["p99_us"] for t in theirs) / 1000
        print("goal: at least 10x postgrey and p99 under 1 ms; got %.1fx, p99 %.3f ms (p99.9 %.3f ms); postgrey %.0f req/s, "
              "p99 %.3f ms" % (ratio, p99, p999, grey_rps, grey_p99))
        print("BENCH name=policy_service value=%.0f unit=requests/s ratio=%.2f reference=postgrey-same-stream-same-round "
              "p99_ms=%.3f postgrey_requests_per_s=%.0f postgrey_p99_ms=%.3f" % (rps, ratio, p99, grey_rps, grey_p99))
        return 0
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        postgrey.terminate()
        postgrey.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
