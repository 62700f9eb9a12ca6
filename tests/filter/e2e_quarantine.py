#!/usr/bin/env python3
"""End to end: storms and the quarantine, with `ndrguard serve` (two instances on one
throwaway PostgreSQL), smtp_sink.py next hops and the `ndrguard quarantine` command.
  - a storm at one mailbox: bounces delivered until the threshold, quarantined after it; another
    mailbox is not affected; the storm is recorded with its counts, reporters and subjects;
  - two filter instances counting the same mailbox agree on its storm;
  - releases: two at once deliver once; again says already released; a release killed after
    handing the message over is not repeated on retry (only --force does); one killed before
    the hand-over delivers once after its lease;
  - the release pages: GET shows and releases nothing, POST releases once, altered and expired
    links refused, /healthz, the mailbox's page, the admin API;
  - delete, unknown ids, show;
  - every component runs as its least-privileged role of deploy/postgres/roles.sql, and a role
    cannot do what it was not granted;
  - digests: a pass killed before handing its mail over is taken over after its lease and sends
    once; one killed after the hand-over is never repeated (no item in two digests).
usage: e2e_quarantine.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR      (exit 77: skipped)"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, failures, free_port, fresh_postgres, send, sink_files, wait_for, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
sink_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_sink.py")
CLIENT = "203.0.113.5"  # XFORWARD ADDR: a remote MTA, so the mail is inbound


def unverifiable_dsn(tag, subject="Cheap watches"):
    """A DSN that names no message: nothing to verify it against."""
    return ("From: MAILER-DAEMON@mx%d.spam.test (Mail Delivery System)\r\nTo: victim@example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <%s@mx.spam.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [%s]\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx%d.spam.test\r\n\r\n"
            "Final-Recipient: rfc822; nobody@spam.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: victim@example.org\r\nTo: nobody@spam.test\r\n"
            "Subject: %s\r\n\r\n--B--\r\n") % (len(tag) % 3, tag, tag, len(tag) % 3, subject)


def tagged(sink_dir, tag):
    return [m for m in sink_files(sink_dir) if "[%s]" % tag in m]


class Sink:
    def __init__(self, name, **pauses):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.port = free_port()
        env = dict(os.environ, **{k: str(v) for k, v in pauses.items()})
        self.proc = subprocess.Popen([sys.executable, sink_script, str(self.port), self.dir], env=env)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    # Each component as its least-privileged role (deploy/postgres/roles.sql), the schema
    # migrated by its owner first: what the roles grant is what the test exercises.
    subprocess.run([ndrguard, "migrate", "--db", conninfo, "--sql-dir", sql_dir], check=True, capture_output=True)
    roles_sql = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "postgres", "roles.sql")
    subprocess.run(["psql", conninfo, "-q", "-v", "ON_ERROR_STOP=1", "-f", roles_sql], check=True)
    as_role = lambda role: ["--db", conninfo.replace("user=postgres", "user=" + role)]
    db = as_role("ndrguard_admin")

    def quarantine(*args, **kw):
        return subprocess.run([ndrguard, "quarantine", *args, *db, "--set", "release_lease_seconds=2"] + web,
                              capture_output=True, text=True, **kw)

    def held(mailbox):
        r = quarantine("list", "--mailbox", mailbox, "--json")
        return json.loads(r.stdout) if r.returncode == 0 else []

    sink = Sink("sink")
    ports = [free_port(), free_port()]
    web_port = free_port()
    secret_file = os.path.join(work, "web.secret")
    admin_file = os.path.join(work, "admin.token")
    web = ["--set", "web_listen=127.0.0.1:%d" % web_port, "--set", "web_base_url=http://127.0.0.1:%d" % web_port,
           "--set", "web_secret_file=" + secret_file, "--set", "admin_token_file=" + admin_file]
    logs = [open(os.path.join(work, "serve%d.log" % i), "w") for i in range(2)]
    serves = [subprocess.Popen([ndrguard, "serve", *as_role("ndrguard_filter"), "--sql-dir", sql_dir,
                                "--set", "listen=127.0.0.1:%d" % p, "--set", "next_hop=127.0.0.1:%d" % sink.port,
                                "--set", "warm_up=off", "--set", "storm_threshold=5", "--set", "storm_exit_threshold=1",
                                "--set", "storm_sync_ms=100"] + (web if p == ports[0] else []), stderr=log)
              for p, log in zip(ports, logs)]
    procs = []
    try:
        check("sink and two filter instances listen", wait_port(sink.port) and wait_port(ports[0]) and wait_port(ports[1]))

        # A storm at victim@: 4 delivered, from the 5th (the threshold) on held.
        answers = [send(ports[0], "", ["victim@example.org"], unverifiable_dsn("storm-%d" % i), CLIENT) for i in range(8)]
        check("storm: 4 bounces delivered before the threshold",
              all(code == 250 and "queued as SINK" in text for code, text in answers[:4]), answers[:4])
        check("storm: from the threshold on, held in quarantine",
              all(code == 250 and "held in quarantine" in text for code, text in answers[4:]), answers[4:])
        check("storm: the held ones are not delivered", all(not tagged(sink.dir, "storm-%d" % i) for i in range(4, 8)))
        delivered = tagged(sink.dir, "storm-0")
        check("storm: delivered ones say unverifiable", delivered and delivered[0].startswith("X-NDRGuard: unverifiable"),
              delivered[0][:100] if delivered else "none")
        code, text = send(ports[0], "", ["bystander@example.org"], unverifiable_dsn("bystander"), CLIENT)
        check("storm: another mailbox is not in storm mode", code == 250 and "queued as SINK" in text, text)

        items = held("victim@example.org")
        check("quarantine list: 4 items for the mailbox", len(items) == 4, items)

        def storms():
            r = quarantine("storms", "--json")
            return json.loads(r.stdout) if r.returncode == 0 else []

        def victim_storm():
            return [s for s in storms() if s["mailbox"] == "victim@example.org"]
        check("storm recorded once, with every bounce counted", wait_for(
            lambda: len(victim_storm()) == 1 and victim_storm()[0]["unverifiable"] == 8 and victim_storm()[0]["quarantined"] == 4, 10),
            victim_storm())
        st = victim_storm()[0] if victim_storm() else {}
        check("storm: reporting MTAs and sample subjects", st.get("top_reporters") and st.get("sample_subjects") == ["Cheap watches"], st)
        items = held("victim@example.org")
        check("held items carry the storm and why", all(i["storm_id"] == st.get("id") and "storm" in i["notes"] and
                                                         i["verification"] == "unverifiable" for i in items), items)

        # Two instances: 3 bounces at each for victim2@; the sum passes the threshold and both see it.
        for i in range(3):
            send(ports[0], "", ["victim2@example.org"], unverifiable_dsn("v2-a%d" % i), CLIENT)
            send(ports[1], "", ["victim2@example.org"], unverifiable_dsn("v2-b%d" % i), CLIENT)
        time.sleep(0.5)  # a few syncs
        c0, t0 = send(ports[0], "", ["victim2@example.org"], unverifiable_dsn("v2-after-a"), CLIENT)
        c1, t1 = send(ports[1], "", ["victim2@example.org"], unverifiable_dsn("v2-after-b"), CLIENT)
        check("two instances agree: both hold the next bounce", "held in quarantine" in t0 and "held in quarantine" in t1, (t0, t1))
        v2 = [s for s in storms() if s["mailbox"] == "victim2@example.org"]
        check("two instances agree: one storm, every bounce counted once",
              len(v2) == 1 and wait_for(lambda: [s["unverifiable"] for s in storms() if s["mailbox"] == "victim2@example.org"] == [8], 5),
              v2)

        ids = [i["id"] for i in held("victim@example.org")]
        if len(ids) < 4:
            raise RuntimeError("not enough held items to go on: %s" % ids)
        release = lambda *a: [ndrguard, "quarantine", "release", *map(str, a), *db, "--set", "release_lease_seconds=2",
                              "--set", "next_hop=127.0.0.1:%d" % sink.port]

        # Two releases at once: one delivers, the other finds it running (or done).
        p1 = subprocess.Popen(release(ids[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p2 = subprocess.Popen(release(ids[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out1, out2 = p1.communicate(), p2.communicate()
        codes = sorted([p1.returncode, p2.returncode])
        both = out1[0] + out1[1] + out2[0] + out2[1]
        check("double release: exactly one succeeds", codes == [0, 1] and both.count(" released queue_id=") == 1, both)
        released = [m for m in sink_files(sink.dir) if "X-NDRGuard-Released: id=%d " % ids[0] in m]
        check("double release: delivered once, to its mailbox only", len(released) == 1, len(released))
        env = open(os.path.join(sink.dir, sorted(f for f in os.listdir(sink.dir) if f.endswith(".env"))[-1])).read()
        check("release: envelope is <> to victim@ only", env.startswith("MAIL FROM:<>") and env.count("RCPT") == 1 and
              "victim@example.org" in env, env)
        again = subprocess.run(release(ids[0]), capture_output=True, text=True)
        check("release again: 'already released', by whom", again.returncode == 1 and "already_released" in again.stderr and
              "by cli:" in again.stderr, again.stderr)

        # Killed after the hand-over (the sink stored it, its answer is late): a retry must not resend.
        late = Sink("late-sink", SINK_PAUSE_AFTER_DOT=30)
        wait_port(late.port)
        victim = subprocess.Popen(release(ids[1])[:-1] + ["next_hop=127.0.0.1:%d" % late.port],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(victim)
        check("crash after hand-over: the next hop has the message", wait_for(lambda: len(sink_files(late.dir)) == 1, 20))
        victim.kill()
        victim.wait()
        retry = subprocess.run(release(ids[1]), capture_output=True, text=True)
        check("crash after hand-over: the retry refuses to resend ('uncertain')",
              retry.returncode == 1 and "uncertain" in retry.stderr, retry.stdout + retry.stderr)
        time.sleep(0.5)
        check("crash after hand-over: delivered once, not twice",
              len(sink_files(late.dir)) == 1 and not [m for m in sink_files(sink.dir) if "Released: id=%d " % ids[1] in m])
        forced = subprocess.run(release(ids[1]) + ["--force"], capture_output=True, text=True)
        check("--force sends it anyway", forced.returncode == 0 and
              len([m for m in sink_files(sink.dir) if "Released: id=%d " % ids[1] in m]) == 1, forced.stdout + forced.stderr)
        late.stop()

        # Killed before the hand-over (the next hop is slow to accept DATA): nothing was handed
        # over; the release runs again once its lease is over, and delivers once.
        slow = Sink("slow-sink", SINK_PAUSE_BEFORE_354=30)
        wait_port(slow.port)
        victim = subprocess.Popen(release(ids[2])[:-1] + ["next_hop=127.0.0.1:%d" % slow.port],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(victim)
        time.sleep(1.0)
        victim.kill()
        victim.wait()
        soon = subprocess.run(release(ids[2]), capture_output=True, text=True)
        check("crash before hand-over: within the lease, 'in progress'", soon.returncode == 1 and "in_progress" in soon.stderr,
              soon.stderr)
        time.sleep(2.5)
        later = subprocess.run(release(ids[2]), capture_output=True, text=True)
        check("crash before hand-over: after the lease, released", later.returncode == 0 and "released" in later.stdout,
              later.stdout + later.stderr)
        slow.stop()
        check("crash before hand-over: delivered exactly once",
              len([m for m in sink_files(sink.dir) if "Released: id=%d " % ids[2] in m]) == 1 and not sink_files(slow.dir))

        # The release pages: a link from `quarantine link`, GET shows and releases nothing, POST
        # releases once, then says so; altered and expired links are refused.
        check("release pages listen", wait_port(web_port))
        fresh = [i["id"] for i in held("victim2@example.org")]
        out = quarantine("link", str(fresh[0]))
        url = out.stdout.split()[1] if out.returncode == 0 else ""
        check("quarantine link prints a release link", url.startswith("http://127.0.0.1:%d/release/v1." % web_port), out.stdout + out.stderr)
        check("the secret file was created for its owner only", oct(os.stat(secret_file).st_mode & 0o777) == "0o600")

        def http(method, target, headers=None):
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", web_port, timeout=30)
            c.request(method, target, headers=headers or {})
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
            c.close()
            return r.status, body
        path = url[len("http://127.0.0.1:%d" % web_port):]
        status, body = http("GET", path)
        check("GET: a confirmation page with a button", status == 200 and "<form method=\"post\"" in body and
              "victim2@example.org" in body, (status, body[:300]))
        released_by_link = lambda: [m for m in sink_files(sink.dir) if "Released: id=%d " % fresh[0] in m]
        time.sleep(0.5)
        check("GET releases nothing", not released_by_link())
        status, body = http("POST", path)
        check("POST releases", status == 200 and "<h1>Released</h1>" in body, (status, body[:300]))
        check("... delivered once to its mailbox", wait_for(lambda: len(released_by_link()) == 1, 10))
        status, body = http("POST", path)
        check("POST again: already released, not twice", status == 200 and "Already released" in body and
              len(released_by_link()) == 1, (status, body[:200]))
        tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        check("an altered link: 403", http("POST", tampered)[0] == 403)
        import base64, hashlib, hmac as hmac_lib
        key = open(secret_file).read().strip().encode()
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        signed = "v1." + b64(b"release\n%d\n%d\nvictim2@example.org" % (fresh[1], int(time.time()) - 60))
        expired = "/release/" + signed + "." + b64(hmac_lib.new(key, signed.encode(), hashlib.sha256).digest())
        check("an expired link: 410", http("POST", expired)[0] == 410)
        check("healthz: 200", http("GET", "/healthz") == (200, "ok\n"))
        admin = {"Authorization": "Bearer " + open(admin_file).read().strip()}
        check("admin API: refused without the token", http("GET", "/api/stats")[0] == 401)
        status, body = http("GET", "/api/held?mailbox=victim2%40example.org", admin)
        listed = json.loads(body) if status == 200 else []
        check("admin API: the held items of a mailbox, as JSON", len(listed) == len(held("victim2@example.org")) >= 1 and
              all(i["mailbox"] == "victim2@example.org" for i in listed), (status, body[:300]))
        status, body = http("GET", "/api/stats", admin)
        check("admin API: stats", status == 200 and json.loads(body)["storms_open"] >= 1, body)
        page_link = quarantine("link", "--mailbox", "Victim2@Example.org").stdout.split()
        page_path = page_link[1][len("http://127.0.0.1:%d" % web_port):] if len(page_link) == 2 else ""
        status, body = http("GET", page_path)
        still_held = len(held("victim2@example.org"))
        check("the mailbox's page lists what it holds, each with a release link",
              page_path.startswith("/held/v1.") and status == 200 and body.count('href="/release/v1.') == still_held and
              still_held >= 1, (page_path, status, still_held, body[:300]))

        # Delete, unknown ids, show.
        gone = quarantine("delete", str(ids[3]), "--by", "admin")
        check("delete: done", gone.returncode == 0 and "%d deleted" % ids[3] in gone.stdout, gone.stdout + gone.stderr)
        twice = quarantine("delete", str(ids[3]))
        check("delete again: refused, says why", twice.returncode == 1 and "it is deleted" in twice.stderr, twice.stderr)
        rel = subprocess.run(release(ids[3]), capture_output=True, text=True)
        check("release of a deleted item: refused", rel.returncode == 1 and "deleted" in rel.stderr, rel.stderr)
        unknown = subprocess.run(release(987654321), capture_output=True, text=True)
        check("release of an unknown id: clear error", unknown.returncode == 1 and "unknown_item" in unknown.stderr and
              "no quarantined message has this id" in unknown.stderr, unknown.stderr)
        show = quarantine("show", str(ids[1]))
        check("show: envelope, verdict, reasons, headers", show.returncode == 0 and "verification:   unverifiable" in show.stdout and
              "dsn.rfc3464" in show.stdout and "Subject: Undelivered Mail Returned to Sender" in show.stdout, show.stdout)
        check("show of an unknown id: exit 1", quarantine("show", "987654321").returncode == 1)
        check("bad usage: exit 2", quarantine("release").returncode == 2 and quarantine("frobnicate").returncode == 2)
        states = {i["id"]: i["state"] for i in json.loads(quarantine("list", "--state", "all", "--json").stdout)}
        check("states after all that", [states.get(i) for i in ids] == ["released", "released", "released", "deleted"], states)

        # Least privilege: a role has what it needs and nothing more.
        def psql_as(role, sql):
            return subprocess.run(["psql", conninfo.replace("user=postgres", "user=" + role), "-c", sql],
                                  capture_output=True, text=True)
        for role, sql in (("ndrguard_digest", "INSERT INTO sent_log (sent_day, id_hash, message_id, sender, recipients, sent_at) "
                                              "VALUES (current_date, 1, 'x', '', '{}', now())"),
                          ("ndrguard_digest", "UPDATE quarantine SET state = 'released'"),
                          ("ndrguard_filter", "DELETE FROM quarantine"),
                          ("ndrguard_filter", "DROP TABLE storms"),
                          ("ndrguard_admin", "CREATE TABLE x (i int)"),
                          ("ndrguard_filter", "UPDATE digests SET state = 'sent'")):
            r = psql_as(role, sql)
            check("least privilege: %s may not %s" % (role, sql.split(" (")[0][:40]),
                  r.returncode != 0 and ("permission denied" in r.stderr or "must be owner" in r.stderr), r.stdout + r.stderr)

        r = psql_as("ndrguard_filter", "SELECT ndrguard_create_day_partition('quarantine', '2001-01-01'); "
                                       "SELECT ndrguard_drop_day_partition('quarantine', '2001-01-01')")
        check("least privilege: serve creates and drops day partitions through the functions", r.returncode == 0, r.stderr)
        r = psql_as("ndrguard_filter", "SELECT ndrguard_create_day_partition('storms', '2001-01-01')")
        check("... of the partitioned tables only", r.returncode != 0 and "has no day partitions" in r.stderr, r.stderr)
        r = psql_as("ndrguard_digest", "SELECT ndrguard_drop_day_partition('quarantine', '2001-01-01')")
        check("... and the digest's role may not", r.returncode != 0 and "permission denied" in r.stderr, r.stderr)
        r = quarantine("purge", "--expired")  # nothing is that old here: it drops nothing
        check("least privilege: the admin's role applies the whole retention (purge --expired)",
              r.returncode == 0 and "counter_buckets=0" in r.stdout, r.stdout + r.stderr)

        # Digests, killed half-way. Before the hand-over (the next hop is slow to accept DATA):
        # the items stay claimed for the lease, then a pass takes them over and sends once.
        def digest(port, *extra):
            return [ndrguard, "digest", *as_role("ndrguard_digest"), "--set", "next_hop=127.0.0.1:%d" % port, "--set", "web_secret_file=" + secret_file,
                    *extra]

        def digests_at(d, mailbox):
            return [m for m in sink_files(d) if "X-NDRGuard-Digest:" in m and "To: <%s>" % mailbox in m]
        slow = Sink("slow-digest-sink", SINK_PAUSE_BEFORE_354=30)
        wait_port(slow.port)
        victim = subprocess.Popen(digest(slow.port, "--mailbox", "victim2@example.org"), stderr=subprocess.PIPE)
        procs.append(victim)
        time.sleep(1.0)
        victim.kill()
        victim.wait()
        soon = subprocess.run(digest(sink.port, "--mailbox", "victim2@example.org"), capture_output=True, text=True)
        check("digest killed before the hand-over: within its lease, nothing is sent again",
              soon.returncode == 0 and "result=nothing" in soon.stderr and not digests_at(sink.dir, "victim2@example.org"),
              soon.stderr)
        time.sleep(1.5)
        later = subprocess.run(digest(sink.port, "--mailbox", "victim2@example.org", "--set", "digest_lease_seconds=1"),
                               capture_output=True, text=True)
        check("... after the lease, the next pass takes the items over and sends the digest",
              later.returncode == 0 and "result=sent" in later.stderr and "taken over" in later.stderr and
              len(digests_at(sink.dir, "victim2@example.org")) == 1, later.stderr)
        slow.stop()
        check("... once: the killed pass handed nothing over", not sink_files(slow.dir))

        # After the hand-over (the next hop stored it, its answer is late): never sent again.
        for i in range(2):
            send(ports[0], "", ["victim@example.org"], unverifiable_dsn("storm-late-%d" % i), CLIENT)
        check("the storm at victim@ holds new bounces", wait_for(lambda: len(held("victim@example.org")) == 2, 10))
        late = Sink("late-digest-sink", SINK_PAUSE_AFTER_DOT=30)
        wait_port(late.port)
        victim = subprocess.Popen(digest(late.port, "--mailbox", "victim@example.org"), stderr=subprocess.PIPE)
        procs.append(victim)
        check("digest killed after the hand-over: the next hop has it",
              wait_for(lambda: len(digests_at(late.dir, "victim@example.org")) == 1, 20))
        victim.kill()
        victim.wait()
        time.sleep(1.5)
        retry = subprocess.run(digest(sink.port, "--set", "digest_lease_seconds=1"), capture_output=True, text=True)
        check("... the next pass does not report those items again",
              retry.returncode == 0 and not digests_at(sink.dir, "victim@example.org"), retry.stderr)
        history = {m: [d["state"] for d in json.loads(quarantine("digests", "--mailbox", m, "--json").stdout or "[]")]
                   for m in ("victim@example.org", "victim2@example.org")}
        check("quarantine digests: the history says what happened to each",
              history == {"victim@example.org": ["sending"], "victim2@example.org": ["sent", "abandoned"]}, history)
        late.stop()
    finally:
        for p in procs + serves:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        sink.stop()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        for log in logs:
            log.close()
        with open(os.path.join(work, "serve0.log")) as f:
            lines = f.read().splitlines()
        print("serve log (last 15 lines):")
        for line in lines[-15:]:
            print("  " + line)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
