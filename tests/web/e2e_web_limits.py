#!/usr/bin/env python3
"""End to end: the HTTP listeners of `ndrguard serve` (web_listen, metrics_listen) under idle and
slow clients and a frozen PostgreSQL (issue 13, items 1, 2 and 8), with a real throwaway
PostgreSQL and real sockets:
  - 40 idle connections to each listener, one that sends a byte of its header every second, and
    one kept alive after a request: /healthz, a page of held messages, the admin API and /metrics
    still answer promptly; beyond web_max_connections a connection gets 503 at once; every idle
    connection is closed by the server at its deadline (header, or keep-alive), the slow one too;
  - PostgreSQL frozen (SIGSTOP on the postmaster and every backend): /healthz, the page and the
    admin API answer 503 within about database_timeout_ms, /metrics answers; after SIGCONT,
    /healthz is 200 again;
  - 50 /healthz requests open at most web_database_connections PostgreSQL connections (counted
    from the server's log_connections lines), not one each; after a restart of PostgreSQL the
    first request is answered (the pool replaces its dead connections).
usage: e2e_web_limits.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR      (exit 77: skipped)
With WEB_LIMITS_DEFAULT_KEYS=1 the web_* keys are not set (a binary that does not know them, e.g.
main before them, runs with its defaults: header 10 s, keep-alive 15 s)."""
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, failures, free_port, fresh_postgres, wait_for, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
DEFAULT_KEYS = os.environ.get("WEB_LIMITS_DEFAULT_KEYS") == "1"
HEADER_S = 10 if DEFAULT_KEYS else 3
KEEPALIVE_S = 15 if DEFAULT_KEYS else 2
DB_TIMEOUT_MS = 1000
MAX_CONNECTIONS = 256 if DEFAULT_KEYS else 60
POOL = 4
MARGIN_S = 2.5  # for the server's deadlines, on a shared 2-core machine
IDLE = 40


def get(port, path, timeout=5.0, headers=None):
    """(status or None, body, seconds taken)."""
    start = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), time.time() - start
    except (OSError, http.client.HTTPException) as e:
        return None, repr(e), time.time() - start
    finally:
        conn.close()


def closed(sock):
    """True when the server has closed `sock` (read EOF or reset); a byte of data is ignored."""
    try:
        return sock.recv(4096) == b""
    except ConnectionError:
        return True
    except BlockingIOError:
        return False


def wait_closed(socks, opened_at, limit):
    """Seconds from opening to the server's close, per socket (None: still open after `limit`)."""
    left = {s: None for s in socks}
    end = opened_at + limit
    while any(v is None for v in left.values()) and time.time() < end:
        pending = [s for s, v in left.items() if v is None]
        readable, _, _ = select.select(pending, [], [], max(0.0, min(0.2, end - time.time())))
        for s in readable:
            if closed(s):
                left[s] = time.time() - opened_at
    return list(left.values())


class Watch(threading.Thread):
    """wait_closed() in the background, from now: its result in .times."""
    def __init__(self, socks, opened_at, limit):
        super().__init__(daemon=True)
        self.args_ = (socks, opened_at, limit)
        self.times = None
        self.start()

    def run(self):
        self.times = wait_closed(*self.args_)


def idle_connections(port, n):
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        out.append(s)
    return out


class Slowloris(threading.Thread):
    """A header sent one byte a second, for ever: closed (seconds after connecting) or None."""
    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.opened = time.time()
        self.closed_after = None
        self.bytes_sent = 0
        self.stop = False

    def run(self):
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
        self.sock.setblocking(False)
        for byte in data:
            if self.stop:
                return
            try:
                self.sock.send(bytes([byte]))
                self.bytes_sent += 1
            except OSError:
                self.closed_after = time.time() - self.opened
                return
            readable, _, _ = select.select([self.sock], [], [], 1.0)
            if readable and closed(self.sock):
                self.closed_after = time.time() - self.opened
                return


def postgres_processes(pg_dir):
    with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster] + [int(c) for c in children]


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def connections_logged(pg_dir):
    with open(os.path.join(pg_dir, "server.log"), errors="replace") as f:
        return f.read().count("connection received:")


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    subprocess.run([ndrguard, "migrate", "--db", conninfo, "--sql-dir", sql_dir], check=True, capture_output=True)
    subprocess.run(["psql", conninfo, "-q", "-c", "ALTER SYSTEM SET log_connections = on", "-c", "SELECT pg_reload_conf()"],
                   check=True, capture_output=True)
    web_port, metrics_port, smtp_port = free_port(), free_port(), free_port()
    secret_file = os.path.join(work, "web.secret")
    admin_file = os.path.join(work, "admin.token")
    settings = ["listen=127.0.0.1:%d" % smtp_port, "next_hop=127.0.0.1:%d" % free_port(), "warm_up=off",
                "web_listen=127.0.0.1:%d" % web_port, "web_base_url=http://127.0.0.1:%d" % web_port,
                "web_secret_file=" + secret_file, "admin_token_file=" + admin_file,
                "metrics_listen=127.0.0.1:%d" % metrics_port, "database_timeout_ms=%d" % DB_TIMEOUT_MS]
    if not DEFAULT_KEYS:
        settings += ["web_header_timeout_seconds=%d" % HEADER_S, "web_request_timeout_seconds=6",
                     "web_keepalive_timeout_seconds=%d" % KEEPALIVE_S, "web_max_connections=%d" % MAX_CONNECTIONS,
                     "web_workers=4", "web_database_connections=%d" % POOL]
    args = [a for kv in settings for a in ("--set", kv)]
    log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir] + args, stderr=log)
    frozen = []
    try:
        if not (wait_port(web_port) and wait_port(metrics_port)):
            check("serve listens on web_listen and metrics_listen", False, open(os.path.join(work, "serve.log")).read())
            return 1
        link = subprocess.run([ndrguard, "quarantine", "link", "--mailbox", "victim@example.org", "--db", conninfo] + args,
                              capture_output=True, text=True)
        page = "/" + link.stdout.split()[-1].split("/", 3)[3] if link.returncode == 0 else "/held/none"
        admin = {"Authorization": "Bearer " + open(admin_file).read().strip()} if os.path.exists(admin_file) else {}
        status, body, _ = get(web_port, page)
        check("the page of held messages answers", status == 200 and "Nothing is held" in body, (status, body[:200]))

        # Idle and slow clients.
        opened = time.time()
        idle = idle_connections(web_port, IDLE) + idle_connections(metrics_port, IDLE)
        slow = Slowloris(web_port)
        slow.start()
        idle_watch = Watch(idle, opened, HEADER_S + MARGIN_S)
        kept = http.client.HTTPConnection("127.0.0.1", web_port, timeout=5)
        try:
            kept.request("GET", "/healthz")
            kept_answer = kept.getresponse()
            kept_answer.read()
            kept_status = kept_answer.status
        except (OSError, http.client.HTTPException) as e:
            kept_status = repr(e)
        check("a kept-alive connection is answered", kept_status == 200, kept_status)
        kept_watch = Watch([kept.sock] if kept.sock else [], time.time(), KEEPALIVE_S + MARGIN_S)
        time.sleep(0.5)
        for name, port, path, headers in (("/healthz", web_port, "/healthz", None), ("a page", web_port, page, None),
                                          ("the admin API", web_port, "/api/stats", admin),
                                          ("/metrics", metrics_port, "/metrics", None)):
            status, body, took = get(web_port if port == web_port else metrics_port, path, 5.0, headers)
            check("%d idle connections per listener and a slow one: %s answers promptly (%.2f s)" % (IDLE, name, took),
                  status == 200 and took < 2.0, (status, body[:200], took))
        status, body, _ = get(web_port, "/api/held?mailbox=%zz", 5.0, admin)
        check("admin API: a bad %-encoding in mailbox= is refused (400), not 'every mailbox'", status == 400, (status, body[:200]))

        if not DEFAULT_KEYS:
            # Beyond web_max_connections: a 503 at once, never a wait in the backlog.
            extra = [socket.create_connection(("127.0.0.1", web_port), timeout=5) for _ in range(MAX_CONNECTIONS - IDLE + 5)]
            refused, end = 0, time.time() + 1.5
            pending = list(extra)
            while pending and time.time() < end:
                readable, _, _ = select.select(pending, [], [], 0.2)
                for s in readable:
                    pending.remove(s)
                    try:
                        refused += s.recv(100).startswith(b"HTTP/1.1 503")
                    except OSError:
                        pass
            check("beyond web_max_connections, connections get 503 at once", refused >= 5, refused)
            for s in extra:
                s.close()

        idle_watch.join()
        times = idle_watch.times
        still_open = sum(t is None for t in times)
        check("every idle connection is closed by the server by web_header_timeout_seconds (%d s) + %.1f s"
              % (HEADER_S, MARGIN_S), still_open == 0, "%d of %d still open; closed after %s" % (
                  still_open, len(times), sorted(t for t in times if t is not None)[-3:]))
        check("idle connections are not closed before their deadline", all(t is None or t > HEADER_S - 1 for t in times),
              sorted(t for t in times if t is not None)[:3])
        slow.join(max(0.0, opened + HEADER_S + MARGIN_S - time.time()))
        slow.stop = True
        check("a header sent a byte a second is closed at the header deadline, not kept alive by each byte",
              slow.closed_after is not None and slow.closed_after <= HEADER_S + MARGIN_S,
              "closed after %s s, %d bytes sent" % (slow.closed_after, slow.bytes_sent))
        kept_watch.join()
        kept_closed = kept_watch.times
        check("a kept-alive connection idle for web_keepalive_timeout_seconds is closed",
              kept_closed and kept_closed[0] is not None, kept_closed)
        for s in idle:
            s.close()

        # 50 /healthz: a pool of connections, not a backend each.
        before = connections_logged(pg_dir)
        answers = [get(web_port, "/healthz")[0] for _ in range(50)]
        time.sleep(0.3)
        opened_now = connections_logged(pg_dir) - before
        check("50 /healthz answered 200", answers.count(200) == 50, answers)
        check("50 /healthz open at most %d PostgreSQL connections (web_database_connections)" % POOL,
              opened_now <= POOL, "%d connections opened" % opened_now)

        # PostgreSQL frozen: 503 within about database_timeout_ms.
        frozen = postgres_processes(pg_dir)
        signal_all(frozen, signal.SIGSTOP)
        bound = 3 * (DB_TIMEOUT_MS / 1000.0 + 0.5)
        for name, port, path, headers in (("/healthz", web_port, "/healthz", None), ("a page", web_port, page, None),
                                          ("the admin API", web_port, "/api/stats", admin),
                                          ("/healthz again", web_port, "/healthz", None)):
            status, body, took = get(port, path, 15.0, headers)
            check("PostgreSQL frozen: %s answers 503 within %.1f s (%.2f s)" % (name, bound, took),
                  status == 503 and took < bound, (status, body[:200], took))
        status, body, took = get(metrics_port, "/metrics", 15.0)
        check("PostgreSQL frozen: /metrics answers within %.1f s (%.2f s, %s)" % (bound, took, status),
              status in (200, 503) and took < bound, (status, body[:200], took))
        signal_all(frozen, signal.SIGCONT)
        frozen = []
        check("PostgreSQL thawed: /healthz is 200 again", wait_for(lambda: get(web_port, "/healthz")[0] == 200, 20, 0.5))
        status, body, _ = get(web_port, page)
        check("PostgreSQL thawed: the page answers 200", status == 200, (status, body[:200]))

        # A restart kills the pooled connections: the next request finds out and uses a new one.
        # Several requests at once first, so that several connections are pooled (all dead after).
        burst = [threading.Thread(target=get, args=(web_port, page)) for _ in range(8)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        subprocess.run([pg_cluster, "pause", pg_dir], check=True, capture_output=True)
        subprocess.run([pg_cluster, "resume", pg_dir], check=True, capture_output=True)
        status, body, _ = get(web_port, "/healthz")
        check("PostgreSQL restarted: the first /healthz is 200 (a dead pooled connection is replaced)", status == 200,
              (status, body[:200]))
        status, body, _ = get(web_port, page)
        check("PostgreSQL restarted: the page answers 200", status == 200, (status, body[:200]))
    finally:
        signal_all(frozen, signal.SIGCONT)
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            check("serve stops on SIGTERM", False, "still running after 20 s")
            serve.kill()
            serve.wait()
        log.close()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
