#!/usr/bin/env python3
"""The returned trace read from a real Postfix bounce: a private Postfix named relay.example.org
(our relay) takes a message from alice@example.org for bob@example.net, bounces it (local(8):
no such user) with its own RFC 3464 DSN returning the original, and hands the DSN to smtp_sink.py.
trace_check then reads it: a strong DSN whose returned trace shows our relay.
usage: trace_postfix.py TRACE_CHECK WORK_DIR      (exit 77: skipped, says why)"""
import os
import shutil
import smtplib
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
sys.path.insert(0, os.path.join(here, "..", "postfix"))
import e2e_common  # noqa: E402
from e2e_common import check, free_port, fresh_dir, postfix_missing, sink_files, wait_for, wait_port  # noqa: E402
from postfix_instance import MASTER_BASE  # noqa: E402

trace_check, work = sys.argv[1], sys.argv[2]
why = postfix_missing()
if why:
    print(why)
    sys.exit(77)

root = fresh_dir(work, "postfix")
for d in ("etc", "spool", "data", "log", "sink"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
shutil.chown(os.path.join(root, "data"), "postfix", "postfix")
public, sink_port = free_port(), free_port()
etc = os.path.join(root, "etc")
with open(os.path.join(etc, "main.cf"), "w") as f:
    f.write("\n".join([
        "compatibility_level = 3.6",
        "queue_directory = %s/spool" % root,
        "data_directory = %s/data" % root,
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "myhostname = relay.example.org",
        "mydomain = example.org",
        "myorigin = example.org",
        "mydestination = example.net",  # local(8) bounces bob: no such user on this host
        "local_recipient_maps =",
        "alias_maps =",
        "alias_database =",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "mynetworks = 127.0.0.0/8",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "relayhost = [127.0.0.1]:%d" % sink_port,
        "smtp_dns_support_level = disabled",
        "smtpd_peername_lookup = no",
        "smtputf8_enable = no",
        "maillog_file = %s/log/maillog" % root,
        "maillog_file_prefixes = %s" % root,
    ]) + "\n")
with open(os.path.join(etc, "master.cf"), "w") as f:
    f.write(MASTER_BASE + "127.0.0.1:%d inet n - n - - smtpd\n" % public)

sink_dir = os.path.join(root, "sink")
sink = subprocess.Popen([sys.executable, os.path.join(here, "..", "filter", "smtp_sink.py"), str(sink_port), sink_dir])
postfix = lambda *a: subprocess.run(["postfix", "-c", etc] + list(a), capture_output=True, text=True)  # noqa: E731
try:
    r = postfix("start")
    if r.returncode != 0:
        sys.exit("postfix start failed: " + r.stdout + r.stderr)
    if not (wait_port(sink_port) and wait_port(public)):
        sys.exit("the sink or Postfix did not listen")
    message = ("From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: the report\r\n"
               "Message-ID: <trace-e2e.1@example.org>\r\nDate: Mon, 2 Mar 2026 09:15:00 +0000\r\n\r\nHello.\r\n")
    s = smtplib.SMTP("127.0.0.1", public, timeout=60, local_hostname="laptop.example.org")
    s.sendmail("alice@example.org", ["bob@example.net"], message)
    s.quit()
    if not wait_for(lambda: sink_files(sink_dir), timeout=60):
        sys.exit("no bounce reached the sink; maillog:\n" + open(os.path.join(root, "log", "maillog")).read()[-3000:])
    dsn = sorted(n for n in os.listdir(sink_dir) if n.endswith(".eml"))[0]
    dsn_path = os.path.join(sink_dir, dsn)

    def evidence(relays, domains):
        out = subprocess.run([trace_check, dsn_path, relays, domains], capture_output=True, text=True, check=True).stdout
        lines = out.splitlines()
        return lines, [l.split(" ", 1)[1] for l in lines if l.startswith("reason ")]

    lines, reasons = evidence("relay.example.org", "example.org")
    check("Postfix's bounce is a DSN, strong", "class dsn" in lines and "strength strong" in lines, "\n".join(lines))
    check("its returned trace shows our relay", reasons == ["trace.our_relay"], "\n".join(lines))
    check("the hop as Postfix wrote it (HELO, no reverse lookup, IP, by)",
                "hop laptop.example.org||127.0.0.1|relay.example.org" in lines, "\n".join(lines))
    _, reasons = evidence("127.0.0.1", "example.org")
    check("our relay found by its IP too", reasons == ["trace.our_relay"], str(reasons))
    _, reasons = evidence("mail.elsewhere.test", "example.org")
    check("another relay list: no relay, and a host of our domain is no foreign origin", reasons == [], str(reasons))
    _, reasons = evidence("mail.elsewhere.test", "example.com")
    check("not our From: nothing", reasons == [], str(reasons))
    sys.exit(1 if e2e_common.failures else 0)
finally:
    postfix("stop")
    sink.terminate()
    sink.wait()
