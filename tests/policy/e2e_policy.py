#!/usr/bin/env python3
"""End to end: ndrguard serve's policy service (policy_listen) with a real PostgreSQL, a real
private Postfix using deploy/postfix/main.cf.policy.snippet as shipped (ports aside), and
Debian's postgrey beside it.

1. The protocol, against serve alone: answers, pipelined requests, a malformed request and an
   oversized line (closed unanswered), half a request and silence (closed after
   policy_request_timeout_seconds), 1,000 connections at once (all answered; serve's memory
   bounded) and one more (closed at once).
2. A storm the filter detected is refused at RCPT (550 5.7.1, reason=storm); a real sender, or
   another mailbox, gets DUNNO. PostgreSQL frozen (SIGSTOP) and then stopped: answers stay fast
   and become DUNNO (fail_open) once the state is older than policy_max_state_age_seconds; back
   to 550 when PostgreSQL is back.
3. Real Postfix, the same storm at one mailbox twice: without the policy line every bounce
   reaches DATA; with it, only those before storm mode, the rest get 550 at RCPT. Postfix's and
   serve's CPU per storm bounce in both runs are printed.
4. Postgrey after ndrguard in the same restrictions: a genuine bounce sent by a second real
   Postfix (which retries after greylisting) is delivered and verified; a storm's bounces get
   postgrey's 450 only until ndrguard refuses (policy_null_sender_limit), 550 ever after.
usage: e2e_policy.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import os
import re
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "postfix"))
sys.path.insert(0, os.path.join(HERE, ".."))
from postfix_instance import Instance  # noqa: E402
from e2e_common import (check, dsn_returning, failures, free_port, fresh_postgres, postfix_missing,  # noqa: E402
                        send, sink_files, wait_for, wait_port)

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
SINK = os.path.join(HERE, "..", "filter", "smtp_sink.py")
SNIPPET = os.path.join(HERE, "..", "..", "deploy", "postfix", "main.cf.policy.snippet")
THRESHOLD = 20


def request(sender, recipient, client="203.0.113.5", state="RCPT", queue_id=""):
    return ("request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\nclient_address=%s\n"
            "client_name=mx.remote.test\nhelo_name=mx.remote.test\nsender=%s\nrecipient=%s\nqueue_id=%s\n"
            "instance=%x\n\n" % (state, client, sender, recipient, queue_id, int(time.time() * 1e6))).encode()


def ask(port, payload, timeout=5.0):
    """Sends PAYLOAD on a new connection; returns (bytes received until the answer's empty line
    or the close, seconds taken, closed_by_server)."""
    start = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        try:
            while not got.endswith(b"\n\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return got, time.time() - start, True
                got += chunk
        except socket.timeout:
            return got, time.time() - start, False
        except ConnectionResetError:  # closed with our request unread
            return got, time.time() - start, True
        return got, time.time() - start, False


def action(port, sender, recipient, **kw):
    got, secs, _ = ask(port, request(sender, recipient, **kw))
    return got.decode().strip(), secs


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def cpu_seconds(pid, children=False):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t / ticks


def postfix_cpu(pf):
    """Postfix's CPU so far: its master with the children it reaped, and those still running."""
    with open(os.path.join(pf.root, "spool", "pid", "master.pid")) as f:
        master = int(f.read().split()[0])
    total = cpu_seconds(master, children=True)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == master:
                total += cpu_seconds(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return total


def metric(port, name):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Serve:
    def __init__(self, conninfo, ports, logpath, extra):
        self.ports, self.logpath = ports, logpath
        self.args = [ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                     "--set", "listen=127.0.0.1:%d" % ports["filter"],
                     "--set", "next_hop=127.0.0.1:%d" % ports["reinject"],
                     "--set", "outbound_listen=127.0.0.1:%d" % ports["outbound"],
                     "--set", "policy_listen=127.0.0.1:%d" % ports["policy"],
                     "--set", "metrics_listen=127.0.0.1:%d" % ports["metrics"],
                     "--set", "hostname=filter.test", "--set", "warm_up=off",
                     "--set", "our_networks=192.0.2.0/24", "--set", "database_timeout_ms=2000",
                     "--set", "storm_threshold=%d" % THRESHOLD, "--set", "storm_exit_threshold=5",
                     "--set", "policy_max_state_age_seconds=3", "--set", "policy_request_timeout_seconds=2",
                     "--set", "policy_max_connections=1000"]
        for kv in extra:
            self.args += ["--set", kv]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stderr=open(self.logpath, "a"))
        return wait_port(self.ports["policy"]) and wait_port(self.ports["filter"])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()


def postgres_pids(pg_dir):
    with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def bounce(tag):
    return dsn_returning("never.sent.%s@example.org" % tag, tag)


# --- 1. the protocol -------------------------------------------------------------------------

def protocol(serve):
    port = serve.ports["policy"]
    got, _ = action(port, "bob@remote.test", "alice@example.org")
    check("a request is answered DUNNO", got == "action=DUNNO", got)
    two = request("bob@remote.test", "alice@example.org") + request("", "alice@example.org")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(two)
        data = b""
        while data.count(b"\n\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    check("two requests in one write get two answers, in order", data == b"action=DUNNO\n\naction=DUNNO\n\n", data)

    got, secs, closed = ask(port, b"request=smtpd_access_policy\nthis line has no equals sign\n\n")
    check("a malformed request: closed without an answer", closed and got == b"", (got, closed))
    got, secs, closed = ask(port, b"request=smtpd_access_policy\nsender=" + b"x" * 5000 + b"\n\n")
    check("a line over 4096 bytes: closed without an answer", closed and got == b"", (got, closed))
    got, secs, closed = ask(port, b"request=smtpd_access_policy\nsender=\nrecipient=a", timeout=15)
    check("half a request, then silence: closed after policy_request_timeout_seconds (2 s)",
          closed and got == b"" and 1.5 <= secs <= 8, (got, closed, secs))
    # A byte now and then does not keep a request open.
    start = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        closed_at = None
        for i in range(12):
            try:
                s.sendall(b"x")
            except OSError:
                closed_at = time.time() - start
                break
            time.sleep(0.5)
            try:
                s.setblocking(False)
                if s.recv(10) == b"":
                    closed_at = time.time() - start
                    break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
    check("a byte every half second: still closed within the request timeout", closed_at is not None and closed_at < 6,
          closed_at)

    check("the connections above are closed on serve's side too",
          wait_for(lambda: metric(serve.ports["metrics"], "ndrguard_policy_connections_active") == 0, 10))
    before = rss_kb(serve.proc.pid)
    conns = []
    try:
        for i in range(1000):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=20))
        for i, c in enumerate(conns):
            c.sendall(request("bob@remote.test", "user%d@example.org" % i))
        answered = 0
        for c in conns:
            data = b""
            while not data.endswith(b"\n\n"):
                chunk = c.recv(100)
                if not chunk:
                    break
                data += chunk
            answered += data == b"action=DUNNO\n\n"
        during = rss_kb(serve.proc.pid)
        check("1,000 connections at once: every one answered", answered == 1000, answered)
        check("... serve's memory grew by under 40 MB (%d -> %d kB)" % (before, during), during - before < 40 * 1024)
        active = metric(serve.ports["metrics"], "ndrguard_policy_connections_active")
        check("... ndrguard_policy_connections_active says 1000", active == 1000, active)
        got, secs, closed = ask(port, request("bob@remote.test", "alice@example.org"))
        check("connection 1,001 (policy_max_connections): closed at once, unanswered", closed and got == b"" and secs < 2,
              (got, closed, secs))
    finally:
        for c in conns:
            c.close()
    check("... and after they close, connections are taken again",
          wait_for(lambda: action(port, "bob@remote.test", "alice@example.org")[0] == "action=DUNNO", 10))
    for what in ("error=malformed_line", "error=line_too_long", "policy timeout", "policy busy"):
        # serve writes its log lines together, every 100 ms (and a loaded machine is slower).
        check("logged: " + what, wait_for(lambda: what in serve.log(), 10))


# --- 2. storm refused at RCPT; PostgreSQL frozen and stopped ----------------------------------

def storm_and_failure(serve, pg_dir):
    port, victim = serve.ports["policy"], "victim.a@example.org"
    for i in range(THRESHOLD):
        code, _ = send(serve.ports["filter"], "", [victim], bounce("storm-a-%d" % i), "203.0.113.5")
    check("a storm at %s seen by the filter" % victim, wait_for(lambda: "storm started" in serve.log(), 20))
    got, _ = action(port, "", victim)
    check("a null sender to the storm mailbox: 550 5.7.1 at RCPT",
          got.startswith("action=550 5.7.1 Bounces to this mailbox are refused"), got)
    got, _ = action(port, "", victim.upper())
    check("... in any case of the address", got.startswith("action=550 5.7.1"), got)
    got, _ = action(port, "bob@remote.test", victim)
    check("a real sender to it: DUNNO", got == "action=DUNNO", got)
    got, _ = action(port, "", "alice@example.org")
    check("a null sender to another mailbox: DUNNO", got == "action=DUNNO", got)
    got, _ = action(port, "", victim, state="DATA")
    check("not at RCPT: DUNNO", got == "action=DUNNO", got)
    check("the answer is logged with queue id and client (the log is written every 100 ms)",
          wait_for(lambda: re.search(r"policy queue_id=- client=203\.0\.113\.5 .*to=<victim\.a@example\.org> state=RCPT result=reject "
                    r"reason=storm storm_id=\d+", serve.log()) is not None, 5))

    frozen = postgres_pids(pg_dir)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        answers, slowest = [], 0.0
        end = time.time() + 12
        while time.time() < end:
            got, secs = action(port, "", victim)
            answers.append(got)
            slowest = max(slowest, secs)
            if got == "action=DUNNO":
                break
            time.sleep(0.2)
        check("PostgreSQL frozen: the storm mailbox gets DUNNO (fail open) once the state is stale",
              answers and answers[-1] == "action=DUNNO", answers[-3:])
        check("... every answer meanwhile within 0.5 s (slowest %.3f s)" % slowest, slowest < 0.5)
        got, secs = action(port, "", victim)
        check("... and it stays DUNNO while frozen", got == "action=DUNNO" and secs < 0.5, (got, secs))
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    check("PostgreSQL thawed: 550 again",
          wait_for(lambda: action(port, "", victim)[0].startswith("action=550"), 30))
    subprocess.run([pg_cluster, "pause", pg_dir], check=True, capture_output=True)
    try:
        check("PostgreSQL stopped: DUNNO within policy_max_state_age_seconds and the sync's wait",
              wait_for(lambda: action(port, "", victim)[0] == "action=DUNNO", 15))
        got, secs = action(port, "", victim)
        check("... answered at once (%.3f s)" % secs, got == "action=DUNNO" and secs < 0.5)
    finally:
        subprocess.run([pg_cluster, "resume", pg_dir], check=True, capture_output=True)
    check("PostgreSQL started again: 550 again", wait_for(lambda: action(port, "", victim)[0].startswith("action=550"), 40))
    check("the metric counts the results",
          metric(serve.ports["metrics"], 'ndrguard_policy_requests_total{result="reject"}') >= 2 and
          metric(serve.ports["metrics"], 'ndrguard_policy_requests_total{result="fail_open"}') >= 1)


# --- 3 and 4: real Postfix ---------------------------------------------------------------------

def snippet_lines(policy_port, postgrey_port, with_policy, with_postgrey):
    out = []
    with open(SNIPPET) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            if ":10040" in line and not with_policy:
                continue
            if ":10023" in line and not with_postgrey:
                continue
            out.append(line.rstrip("\n").replace("127.0.0.1:10040", "127.0.0.1:%d" % policy_port)
                       .replace("127.0.0.1:10023", "127.0.0.1:%d" % postgrey_port))
    # The last restriction kept must not end in a comma.
    text = "\n".join(out)
    return re.sub(r",\n(smtpd_delay_reject)", r"\n\1", text).splitlines()


def set_restrictions(pf, lines):
    """Rewrites main.cf's smtpd_recipient_restrictions (and what follows it) and reloads."""
    path = os.path.join(pf.etc, "main.cf")
    with open(path) as f:
        text = f.read()
    text = text.split("smtpd_recipient_restrictions =")[0].rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    r = pf.postfix("reload")
    if r.returncode != 0:
        raise RuntimeError("postfix reload: " + r.stdout + r.stderr)
    time.sleep(1.5)


def storm(port, victim, n, threads=4, tag="storm"):
    """n null-sender bounces to victim, one connection each (as n remote servers would), threads
    at once. Returns the RCPT reply codes in the order they were given."""
    codes, lock = [], threading.Lock()
    todo = list(range(n))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            try:
                s = smtplib.SMTP("127.0.0.1", port, timeout=60, local_hostname="mx.remote.test")
                s.ehlo("mx.remote.test")
                s.mail("")
                code, _ = s.rcpt(victim)
                with lock:
                    codes.append(code)
                if code == 250:
                    s.data(bounce("%s-%d" % (tag, i)))
                s.quit()
            except (smtplib.SMTPException, OSError) as e:
                with lock:
                    codes.append(str(e)[:60])
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return codes


def reached_filter(pf, victim, filter_port):
    """Messages to victim that Postfix handed to ndrguard (reached DATA and the content filter)."""
    pat = re.compile(r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d" % (re.escape(victim), filter_port))
    return len({l.split(": ")[1] for l in pf.maillog().splitlines() if pat.search(l)})


def measure_storm(pf, serve, victim, n):
    queued_before = reached_filter(pf, victim, serve.ports["filter"])
    cpu_pf, cpu_serve = postfix_cpu(pf), cpu_seconds(serve.proc.pid)
    start = time.time()
    codes = storm(pf.public, victim, n, tag=victim.split("@")[0])
    wait_for(lambda: pf.queue_size() == 0, 120)
    time.sleep(1)
    elapsed = time.time() - start
    d_pf, d_serve = postfix_cpu(pf) - cpu_pf, cpu_seconds(serve.proc.pid) - cpu_serve
    return codes, reached_filter(pf, victim, serve.ports["filter"]) - queued_before, d_pf, d_serve, elapsed


def postfix_runs(serve, ports, root):
    sink_dir = os.path.join(root, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, SINK, str(ports["sink"]), sink_dir])
    extra = ["relay_domains = example.org", "mynetworks = 192.0.2.0/24"]
    pf = Instance(os.path.join(root, "pf"), "after_queue", ports["public"], ports["filter"], ports["reinject"],
                  ports["sink"], extra_main=extra + snippet_lines(ports["policy"], ports["postgrey"], False, False))
    remote = Instance(os.path.join(root, "remote"), "after_queue", ports["remote"], free_port(), free_port(), ports["public"],
                      extra_main=["content_filter =", "myhostname = mx.remote-mta.test"])
    postgrey = None
    try:
        check("sink up", wait_port(ports["sink"]))
        pf.start()
        check("postfix up", wait_port(ports["public"]))
        n = 150

        # 3. Without the policy line: every storm bounce reaches DATA and ndrguard.
        codes, reached, d_pf, d_serve, secs = measure_storm(pf, serve, "victim.b1@example.org", n)
        check("without the policy service: all %d storm bounces accepted at RCPT" % n, codes.count(250) == n, codes[:10])
        check("... and all reached ndrguard (%d)" % reached, reached == n)
        print("FIGURE without_policy bounces=%d reached_data=%d postfix_cpu_ms_per_bounce=%.2f ndrguard_cpu_ms_per_bounce=%.2f "
              "seconds=%.1f" % (n, reached, 1000 * d_pf / n, 1000 * d_serve / n, secs), flush=True)

        set_restrictions(pf, snippet_lines(ports["policy"], ports["postgrey"], True, False))
        codes, reached, d_pf2, d_serve2, secs = measure_storm(pf, serve, "victim.b2@example.org", n)
        first_550 = next((i for i, c in enumerate(codes) if c == 550), None)
        # After queue, the filter counts a bounce only once Postfix's queue manager hands it over:
        # the bounces accepted at RCPT meanwhile are the queue's lag (about 4 on a quiet machine,
        # 40-80 on a loaded or fresh machine), so what is checked is that only those reached DATA, and
        # that after the first 550 only the sessions in flight were still accepted.
        check("with the policy service: the storm is refused at RCPT once storm mode starts",
              first_550 is not None, codes)
        check("... only what was accepted before it, at least storm_threshold (%d), reached DATA: %d" % (THRESHOLD, reached),
              THRESHOLD <= reached <= codes.count(250), codes.count(250))
        check("... after the first 550, at most the sessions in flight (4) got 250",
              first_550 is not None and codes[first_550:].count(250) <= 4, codes[first_550:] if first_550 else None)
        check("... Postfix logged the refusals with ndrguard's text",
              "550 5.7.1 <victim.b2@example.org>: Recipient address rejected: Bounces to this mailbox are refused" in pf.maillog())
        print("FIGURE with_policy bounces=%d reached_data=%d postfix_cpu_ms_per_bounce=%.2f ndrguard_cpu_ms_per_bounce=%.2f "
              "seconds=%.1f" % (n, reached, 1000 * d_pf2 / n, 1000 * d_serve2 / n, secs), flush=True)
        print("FIGURE cpu_ratio postfix=%.2f ndrguard=%.2f (with / without the policy service)"
              % (d_pf2 / d_pf if d_pf else float("nan"), d_serve2 / d_serve if d_serve else float("nan")), flush=True)

        # 4. Postgrey after ndrguard.
        serve.stop()
        serve.args += ["--set", "policy_null_sender_limit=10"]
        check("serve restarted with policy_null_sender_limit = 10", serve.start())
        pgdb = os.path.join(root, "postgrey")
        os.makedirs(pgdb)
        shutil.chown(pgdb, "postgrey")
        postgrey = subprocess.Popen(["postgrey", "--inet=127.0.0.1:%d" % ports["postgrey"], "--dbdir=" + pgdb, "--delay=15",
                                     "--auto-whitelist-clients=0", "--pidfile=" + os.path.join(pgdb, "pid")],
                                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "postgrey.log"), "w"))
        check("postgrey up", wait_port(ports["postgrey"]))
        set_restrictions(pf, snippet_lines(ports["policy"], ports["postgrey"], True, True))

        code, _ = send(ports["outbound"], "alice@example.org", ["bob@example.org"],
                       "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hello\r\n"
                       "Message-ID: <pg.sent.1@example.org>\r\n\r\nhi\r\n")
        check("alice's message recorded in the sent log (outbound_listen)", code == 250)
        remote.start()
        check("the remote MTA (a second Postfix) up", wait_port(ports["remote"]))
        code, _ = send(ports["remote"], "", ["alice@example.org"], dsn_returning("pg.sent.1@example.org", "genuine-pg"))
        check("a genuine bounce queued at the remote MTA", code == 250)
        check("... greylisted by postgrey at first (450)",
              wait_for(lambda: "450 4.2.0 <alice@example.org>: Recipient address rejected: Greylisted" in pf.maillog(), 60))
        check("... retried by the remote MTA, delivered and verified",
              wait_for(lambda: any("genuine-pg" in m and "X-NDRGuard: verified msgid=<pg.sent.1@example.org>" in m
                                   for m in sink_files(sink_dir)), 90))

        codes = storm(pf.public, "victim.c@example.org", 60, threads=1, tag="victim.c")
        first_550 = next((i for i, c in enumerate(codes) if c == 550), None)
        check("storm with postgrey: postgrey's 450 only until ndrguard refuses (the first 10)",
              codes[:10].count(450) == 10 and first_550 == 10, codes)
        check("... 550 from ndrguard ever after, never a 450", first_550 is not None and all(c == 550 for c in codes[10:]),
              codes[10:])
        check("... none reached DATA", reached_filter(pf, "victim.c@example.org", ports["filter"]) == 0)
    finally:
        if postgrey:
            postgrey.terminate()
            postgrey.wait()
        remote.stop()
        pf.stop()
        sink.terminate()


def main():
    why = postfix_missing()
    if why:
        print(why)
        return 77
    if shutil.which("postgrey") is None:
        print("SKIP: postgrey is not installed (Debian package postgrey; deploy/setup.sh)")
        return 77
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 1,000 connections, both ends
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192 if hard == resource.RLIM_INFINITY else min(8192, hard), hard))
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    root = os.path.dirname(pg_dir)
    ports = {k: free_port() for k in ("filter", "reinject", "outbound", "policy", "metrics", "sink", "public", "postgrey",
                                      "remote")}
    serve = Serve(conninfo, ports, os.path.join(root, "serve.log"), [])
    try:
        check("serve up with policy_listen", serve.start())
        protocol(serve)
        storm_and_failure(serve, pg_dir)
        postfix_runs(serve, ports, root)
    finally:
        serve.stop()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
