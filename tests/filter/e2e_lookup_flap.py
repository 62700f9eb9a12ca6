#!/usr/bin/env python3
"""End to end: PostgreSQL that fails while a lookup connects must not stall anyone else.
`ndrguard serve` reaches a throwaway cluster through a TCP proxy that this test can make refuse
(accept, then close at once). A lookup connection that fails that way is closed by libpq while
the filter watches its socket; the filter must let go of that descriptor before an accepted
client can be given the same number, or taking it out of epoll later takes the client's socket
with it. So: lookups fail, idle clients connect, PostgreSQL comes back, a lookup reconnects, and
every idle client must still be answered.
usage: e2e_lookup_flap.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import os
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, dsn_returning, failures, free_port, fresh_postgres, send, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]


class FlakyProxy:
    """127.0.0.1:port -> the cluster's unix socket; when `refusing`, a new connection is
    accepted and closed at once, and the open ones are cut."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.refusing = False
        self.lock = threading.Lock()
        self.open = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            server = socket.socket(socket.AF_UNIX)
            try:
                server.connect(self.unix_path)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def refuse(self):
        self.refusing = True
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open = []

    def accept_again(self):
        self.refusing = False


def idle_client(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = c.makefile("rwb")
    f.readline()  # greeting
    f.write(b"EHLO idle.test\r\n")
    f.flush()
    while f.readline()[3:4] == b"-":
        pass
    return c, f


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    fields = dict(kv.split("=", 1) for kv in conninfo.split())
    proxy = FlakyProxy(os.path.join(fields["host"], ".s.PGSQL.%s" % fields["port"]))
    via_proxy = "host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=5" % (proxy.port, fields["dbname"], fields["user"])

    sink_dir = os.path.join(work, "sink")
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "smtp_sink.py"), str(sink_port), sink_dir])
    log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", "--db", via_proxy, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % port, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "hostname=filter.test", "--set", "warm_up=off",
                              "--set", "our_networks=127.0.0.1/32"], stderr=log)
    idle = []
    try:
        check("sink and filter listen", wait_port(sink_port) and wait_port(port))
        out_msg = "From: alice@example.org\r\nTo: bob@remote.test\r\nMessage-ID: <flap.1@example.org>\r\n\r\nhi\r\n"
        code, _ = send(port, "alice@example.org", ["bob@remote.test"], out_msg)
        code2, _ = send(port, "", ["alice@example.org"], dsn_returning("flap.1@example.org"), client_addr="203.0.113.5")
        check("before: outbound recorded, its bounce verified and delivered", code == 250 and code2 == 250, (code, code2))

        # PostgreSQL "fails while connecting": the kept lookup connection is cut, the new one
        # is accepted and closed. Each bounce is tempfailed.
        proxy.refuse()
        codes = [send(port, "", ["alice@example.org"], dsn_returning("flap.1@example.org", "flap.down.%d" % i),
                      client_addr="203.0.113.5")[0] for i in range(3)]
        check("PostgreSQL refusing: bounces tempfailed 451", codes == [451, 451, 451], codes)

        # Clients that connect now are given the lowest free descriptor numbers, the lookups'
        # old one among them.
        idle = [idle_client(port) for _ in range(8)]

        proxy.accept_again()
        code, text = send(port, "", ["alice@example.org"], dsn_returning("flap.1@example.org", "flap.back"),
                          client_addr="203.0.113.5")
        check("PostgreSQL back: the bounce is verified and delivered", code == 250, "%s %s" % (code, text))

        answered = 0
        for c, f in idle:
            try:
                f.write(b"NOOP\r\n")
                f.flush()
                answered += f.readline().startswith(b"250")
            except OSError:
                pass
        check("every client that connected while PostgreSQL failed is still answered", answered == len(idle),
              "%d of %d answered" % (answered, len(idle)))
    finally:
        for c, f in idle:
            c.close()
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        sink.terminate()
        sink.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        log.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
