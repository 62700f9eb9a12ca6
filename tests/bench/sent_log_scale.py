#!/usr/bin/env python3
"""BENCH sent_log_scale: the sent log at the size of a large site (see sent_log_scale.cpp for
what is measured). This wrapper starts a throwaway PostgreSQL cluster (with pg_stat_statements
loaded, for the server's own time per statement), makes the schema with
`ndrguard migrate` (the real one, day partitions included), runs bench_sent_log_scale against
it, and stops the cluster. Options after WORK_DIR go to the benchmark (--ids N for a quick run;
CTest's registration uses the 10 million of the issue).
Exits 1 without a BENCH line when it cannot measure (PostgreSQL missing, migrate failing, the
benchmark failing).
usage: sent_log_scale.py NDRGUARD BENCH PG_CLUSTER_SH SQL_DIR WORK_DIR [BENCH OPTIONS...]"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import fresh_postgres  # noqa: E402

ndrguard, bench, pg_cluster, sql_dir, work = sys.argv[1:6]
extra = sys.argv[6:]


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        print("FAIL: PostgreSQL could not be started: no BENCH line")
        return 1
    try:
        # pg_stat_statements (PostgreSQL's contrib, in postgresql-15) tells the server's own time
        # per lookup apart from the round trip: loaded at start, so the cluster starts again.
        r = subprocess.run(["psql", conninfo, "-Atc", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"],
                           capture_output=True, text=True)
        if r.returncode != 0 or subprocess.run([pg_cluster, "pause", pg_dir]).returncode != 0 or \
                subprocess.run([pg_cluster, "resume", pg_dir]).returncode != 0:
            print("FAIL: cannot load pg_stat_statements: %s: no BENCH line" % r.stderr.strip())
            return 1
        r = subprocess.run([ndrguard, "migrate", "--db", conninfo, "--sql-dir", sql_dir], capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: ndrguard migrate: %s%s: no BENCH line" % (r.stdout, r.stderr))
            return 1
        print(r.stdout.strip(), flush=True)
        return subprocess.run([bench, "--db", conninfo] + extra).returncode
    finally:
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
