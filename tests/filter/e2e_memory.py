#!/usr/bin/env python3
"""Memory of `ndrguard serve` under concurrent large messages (issue 13, item 8): 16 clients at
once send 20-49 MB messages through serve to a sink (a Python next hop that discards them),
retrying after a 452 as Postfix does, until every message is delivered. Serve's peak RSS
(VmHWM) must stay within the bound derived from its configuration, as deploy/ndrguard.conf
states it, and its RSS afterwards near where it started (the heap is given back).
usage: e2e_memory.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR [--measure]
  --measure: no max_message_memory_mb (an older binary): print the figures, assert nothing."""
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, failures, free_port, fresh_postgres, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
MEASURE_ONLY = "--measure" in sys.argv
CLIENTS = 16
MEMORY_MB = 256               # max_message_memory_mb given to serve
MAX_MESSAGE = 50 * 1024 * 1024  # max_message_bytes (the default)
MB = 1024 * 1024


class Sink(socketserver.StreamRequestHandler):
    """Accepts every message and keeps nothing of it."""
    def handle(self):
        w = self.wfile
        w.write(b"220 sink.test ESMTP\r\n")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                w.write(b"250-sink.test\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                w.write(b"354 go ahead\r\n")
                tail = b""
                while not tail.endswith(b"\r\n.\r\n"):
                    chunk = self.rfile.read1(1 << 20)
                    if not chunk:
                        return
                    tail = (tail + chunk)[-5:]
                w.write(b"250 2.0.0 Ok: queued as SINK\r\n")
            elif verb == b"QUIT":
                w.write(b"221 bye\r\n")
                return
            else:
                w.write(b"250 2.0.0 Ok\r\n")


class ThreadingSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def body(size):
    """A plain message of `size` bytes (CRLF lines, no line starting with a dot)."""
    line = b"x" * 74 + b"\r\n"
    head = b"From: a@remote.test\r\nTo: bob@example.org\r\nSubject: big\r\nMessage-ID: <big-%d@remote.test>\r\n\r\n" % size
    return head + line * ((size - len(head)) // len(line))


def reply(sock_file):
    while True:
        line = sock_file.readline(4096)
        if not line or line[3:4] != b"-":
            return line


def send_until_accepted(port, size, results, i, deadline):
    message = body(size)
    tries = 0
    while time.time() < deadline:
        tries += 1
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
                f = s.makefile("rb")
                reply(f)
                for cmd in (b"EHLO mx.remote.test", b"XFORWARD NAME=mx.remote.test ADDR=203.0.113.%d" % (i + 1),
                            b"MAIL FROM:<a@remote.test> SIZE=%d" % len(message), b"RCPT TO:<bob@example.org>", b"DATA"):
                    s.sendall(cmd + b"\r\n")
                    r = reply(f)
                s.sendall(message + b".\r\n")
                r = reply(f)
                s.sendall(b"QUIT\r\n")
        except OSError as e:
            r = b"error " + str(e).encode()
        if r.startswith(b"250"):
            results[i] = (r, tries)
            return
        results[i] = (r, tries)
        if not r.startswith(b"452"):
            return
        time.sleep(0.3)


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    sink_port, port, metrics_port = free_port(), free_port(), free_port()
    sink = ThreadingSink(("127.0.0.1", sink_port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    log = open(os.path.join(work, "serve.log"), "w")
    args = [ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir, "--set", "listen=127.0.0.1:%d" % port,
            "--set", "next_hop=127.0.0.1:%d" % sink_port, "--set", "hostname=filter.test", "--set", "warm_up=off",
            "--set", "max_message_bytes=%d" % MAX_MESSAGE, "--set", "max_sessions=%d" % (CLIENTS + 4),
            "--set", "session_timeout_seconds=600", "--set", "idle_timeout_seconds=120"]
    if not MEASURE_ONLY:
        args += ["--set", "max_message_memory_mb=%d" % MEMORY_MB]
    serve = subprocess.Popen(args, stderr=log)
    try:
        check("serve listens", wait_port(port))
        time.sleep(1)
        base = status(serve.pid, "VmRSS")
        sizes = [20 * MB + (29 * MB * i) // (CLIENTS - 1) for i in range(CLIENTS)]  # 20..49 MB
        results = [None] * CLIENTS
        t0 = time.time()
        threads = [threading.Thread(target=send_until_accepted, args=(port, sizes[i], results, i, t0 + 240))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - t0
        time.sleep(2)
        hwm, after = status(serve.pid, "VmHWM"), status(serve.pid, "VmRSS")
        retried = sum(r[1] - 1 for r in results if r)
        print("figures: %d messages of %d-%d MB in %.1f s, %d retries after 452; serve RSS before %.0f MB, "
              "peak (VmHWM) %.0f MB, after %.0f MB" % (CLIENTS, sizes[0] // MB, sizes[-1] // MB, took, retried,
                                                         base / MB, hwm / MB, after / MB), flush=True)
        delivered = sum(1 for r in results if r and r[0].startswith(b"250"))
        check("every message delivered in the end", delivered == CLIENTS, [r for r in results])
        if MEASURE_ONLY:
            return 0
        # deploy/ndrguard.conf: at most about 2 x max_message_memory_mb (the content held, and
        # the copy reinjection sends) + one max_message_bytes (a buffer growing) + 2 MB a session.
        bound = base + 2 * MEMORY_MB * MB + MAX_MESSAGE + CLIENTS * 2 * MB
        check("peak RSS within the configured bound (%.0f MB)" % (bound / MB), hwm <= bound, "%.0f MB" % (hwm / MB))
        check("some sessions were told 452 and retried (the cap was reached)", retried > 0, retried)
        check("RSS given back afterwards (within 64 MB of the start)", after <= base + 64 * MB, "%.0f MB" % (after / MB))
    finally:
        serve.terminate()
        serve.wait()
        sink.shutdown()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
