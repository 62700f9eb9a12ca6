#!/usr/bin/env python3
"""End to end: `ndrguard serve` between an SMTP client (as Postfix would connect) and a next
hop (smtp_sink.py), on a throwaway PostgreSQL. Checks the VBounce core and that nothing is
lost: outbound recorded, a genuine bounce delivered with the verdict header, a forged null-
sender bounce rejected, a forged non-null-sender bounce never 5xx'd after queue (quarantined), database down
-> 451 and delivered once it is back, next hop down -> 451.
usage: e2e_serve.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import check, dsn_returning, failures, free_port, fresh_postgres, send, wait_port  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]














def sink_messages(sink_dir):
    out = {}
    for name in sorted(os.listdir(sink_dir)):
        if name.endswith(".eml"):
            with open(os.path.join(sink_dir, name), "rb") as f:
                out[name[:-4]] = f.read().decode("utf-8", "replace")
    return out





def main():
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77

    sink_dir = os.path.join(work, "sink")
    sink_port, port, out_port = free_port(), free_port(), free_port()
    sink = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "smtp_sink.py"), str(sink_port), sink_dir])
    log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", "--db", conninfo, "--sql-dir", sql_dir,
                              "--set", "listen=127.0.0.1:%d" % port, "--set", "next_hop=127.0.0.1:%d" % sink_port,
                              "--set", "hostname=filter.test", "--set", "warm_up=off",
                              "--set", "our_networks=127.0.0.0/8", "--set", "idle_timeout_seconds=2",
                              "--set", "outbound_listen=127.0.0.1:%d" % out_port], stderr=log)
    try:
        check("sink and filter listen", wait_port(sink_port) and wait_port(port) and wait_port(out_port))

        # Outbound (client 127.0.0.1 is ours): recorded, then reinjected; the queue id passes on.
        out_msg = "From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: hello\r\nMessage-ID: <out.1@example.org>\r\n\r\nhi\r\n"
        code, text = send(port, "alice@example.org", ["bob@remote.test"], out_msg)
        check("outbound accepted with the next hop's queue id", code == 250 and "queued as SINK" in text, "%s %s" % (code, text))
        msgs = sink_messages(sink_dir)
        check("outbound reinjected unchanged", any("Message-ID: <out.1@example.org>" in m and "X-NDRGuard" not in m for m in msgs.values()))

        code, text = send(port, "alice@example.org", ["bob@remote.test"], "From: alice@example.org\r\nSubject: no id\r\n\r\nx\r\n")
        added = [m for m in sink_messages(sink_dir).values() if "Subject: no id" in m]
        check("outbound without Message-ID gets one", code == 250 and added and added[0].startswith("Message-ID: <") and "@filter.test>" in added[0])

        # The outbound listener: mail there is ours even from a foreign address (a SASL user).
        code, text = send(out_port, "dave@example.org", ["x@remote.test"], out_msg.replace("out.1", "sasl.1"),
                          client_addr="198.51.100.77")
        code2, _ = send(port, "", ["dave@example.org"], dsn_returning("sasl.1@example.org"), client_addr="203.0.113.5")
        check("outbound listener: recorded whatever the client address; its bounce verified",
              code == 250 and code2 == 250 and any(m.startswith("X-NDRGuard: verified msgid=<sasl.1@example.org>")
                                                    for m in sink_messages(sink_dir).values()), "%s %s" % (code, code2))

        # A genuine bounce of out.1: delivered, marked verified.
        code, text = send(port, "", ["alice@example.org"], dsn_returning("out.1@example.org"), client_addr="203.0.113.5")
        delivered = [m for m in sink_messages(sink_dir).values() if "bounce.out.1.example.org" in m]
        check("genuine bounce delivered", code == 250 and len(delivered) == 1, "%s %s" % (code, text))
        check("verdict header says verified", delivered and delivered[0].startswith("X-NDRGuard: verified msgid=<out.1@example.org>"),
              delivered[0][:120] if delivered else "none")

        # A forged bounce from <>: rejected (after queue Postfix drops it as a double bounce).
        before = len(sink_messages(sink_dir))
        code, text = send(port, "", ["alice@example.org"], dsn_returning("never.sent@example.org"), client_addr="203.0.113.5")
        check("forged null-sender bounce rejected 5xx", code == 550 and "backscatter" in text, "%s %s" % (code, text))
        check("forged bounce not delivered", len(sink_messages(sink_dir)) == before)

        # Many bounces at once, genuine and forged mixed: their lookups share queries (a busy
        # filter gathers them), and each still gets its own verdict.
        barrier = threading.Barrier(16)
        results = {}

        def one_of_many(i):
            genuine = i % 2 == 0
            tag = "many.%d.%s" % (i, "genuine" if genuine else "forged")
            msg = dsn_returning("out.1@example.org" if genuine else "never.many.%d@example.org" % i, tag)
            barrier.wait(timeout=30)
            results[i] = (genuine, tag, send(port, "", ["alice@example.org"], msg, client_addr="203.0.113.5"))

        threads = [threading.Thread(target=one_of_many, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        delivered = sink_messages(sink_dir).values()
        wrong = [(tag, code) for genuine, tag, (code, _) in results.values()
                 if code != (250 if genuine else 550) or any(tag in m for m in delivered) != genuine]
        check("16 bounces at once: each genuine one delivered, each forged one rejected", len(results) == 16 and not wrong, wrong)

        # The same forged bounce from a non-null sender: never 5xx after queue.
        code, text = send(port, "postmaster@remote.test", ["alice@example.org"], dsn_returning("never.2@example.org"),
                          client_addr="203.0.113.5")
        check("non-null sender never 5xx'd after queue: held in quarantine", code == 250 and "held in quarantine" in text,
              "%s %s" % (code, text))
        check("... and not delivered", not [m for m in sink_messages(sink_dir).values() if "bounce.never.2.example.org" in m])
        listed = subprocess.run([ndrguard, "quarantine", "list", "--json", "--db", conninfo], capture_output=True, text=True)
        items = json.loads(listed.stdout) if listed.returncode == 0 else []
        check("... and listed by ndrguard quarantine list", len(items) == 1 and items[0]["verification"] == "forged" and
              items[0]["message_ids"] == ["never.2@example.org"] and items[0]["sender"] == "postmaster@remote.test", listed.stdout + listed.stderr)

        # Ordinary inbound mail passes untouched.
        code, text = send(port, "carol@remote.test", ["alice@example.org"],
                          "From: carol@remote.test\r\nSubject: lunch\r\nMessage-ID: <c.1@remote.test>\r\n\r\nFriday?\r\n", client_addr="203.0.113.9")
        lunch = [m for m in sink_messages(sink_dir).values() if "Subject: lunch" in m]
        check("ordinary inbound delivered without header", code == 250 and lunch and not lunch[0].startswith("X-NDRGuard"))

        # PostgreSQL down: 451 (Postfix keeps the message); back up: the retry is delivered.
        subprocess.run([pg_cluster, "pause", pg_dir], check=True, capture_output=True)
        code, text = send(port, "", ["alice@example.org"], dsn_returning("out.1@example.org"), client_addr="203.0.113.5")
        check("database down: bounce tempfailed 451", code == 451, "%s %s" % (code, text))
        code, text = send(port, "alice@example.org", ["bob@remote.test"], out_msg.replace("out.1", "out.2"))
        check("database down: outbound tempfailed 451", code == 451, "%s %s" % (code, text))
        subprocess.run([pg_cluster, "resume", pg_dir], check=True, capture_output=True)
        code, text = send(port, "alice@example.org", ["bob@remote.test"], out_msg.replace("out.1", "out.2"))
        check("database back: the retried outbound is delivered", code == 250, "%s %s" % (code, text))
        code, text = send(port, "", ["alice@example.org"], dsn_returning("out.2@example.org"), client_addr="203.0.113.5")
        check("database back: its bounce is verified", code == 250 and any(
            m.startswith("X-NDRGuard: verified msgid=<out.2@example.org>") for m in sink_messages(sink_dir).values()), "%s %s" % (code, text))

        # Next hop down: 451, nothing accepted.
        sink.terminate()
        sink.wait()
        code, text = send(port, "alice@example.org", ["bob@remote.test"], out_msg.replace("out.1", "out.3"))
        check("next hop down: 451", code == 451, "%s %s" % (code, text))

        # The idle timeout (2 s here) counts from the last command: a client that talks now and
        # then keeps its session well past it; one that falls silent gets 421 and is let go.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            f = c.makefile("rwb")
            f.readline()
            answers = []
            for _ in range(4):  # 4 x 1.2 s: more than twice the timeout in all
                time.sleep(1.2)
                f.write(b"NOOP\r\n")
                f.flush()
                answers.append(f.readline())
            check("idle timeout: a session that keeps talking outlives it", all(a.startswith(b"250") for a in answers), answers)
            t0 = time.time()
            goodbye = f.readline()
            waited = time.time() - t0
            check("idle timeout: a silent client gets 421 after about 2 s, then the connection closes",
                  goodbye.startswith(b"421 4.4.2") and 1.5 < waited < 4 and f.readline() == b"", "%r after %.1f s" % (goodbye, waited))

        # Garbage gets 5xx, and the filter stays up.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            f = c.makefile("rwb")
            f.readline()
            f.write(b"FROBNICATE\r\n")
            f.flush()
            check("garbage command answered 500", f.readline().startswith(b"500 5.5.2"))
            # This connection stays open, idle: SIGTERM must still stop the filter at once.
            serve.send_signal(signal.SIGTERM)
            t0 = time.time()
            rc = None
            try:
                rc = serve.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
            check("serve stops on SIGTERM with status 0, idle sessions closed", rc == 0 and time.time() - t0 < 10,
                  "status %s after %.1f s" % (rc, time.time() - t0))
            f.close()
    finally:
        if serve.poll() is None:  # an earlier step failed: stop it anyway
            serve.kill()
            serve.wait()
        if sink.poll() is None:
            sink.terminate()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        log.close()
        with open(os.path.join(work, "serve.log")) as f:
            lines = f.read().splitlines()
        print("serve log (last 20 lines):")
        for l in lines[-20:]:
            print("  " + l)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
