"""A private Postfix instance for the tests (../shared/notes/postfix.md, section 1): its own
config, queue, log and ports under one directory, started with `postfix -c DIR/etc`. Nothing
touches /etc/postfix or port 25."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from e2e_common import fresh_dir  # noqa: E402

MASTER_BASE = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

REINJECT = """\
127.0.0.1:{reinject} inet n  -       n       -       10      smtpd
    -o syslog_name=postfix/reinject
    -o content_filter=
    -o smtpd_proxy_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_helo_restrictions=
    -o smtpd_client_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_relay_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_data_restrictions=
    -o mynetworks=127.0.0.0/8
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
"""

AFTER_QUEUE = """\
127.0.0.1:{public} inet n - n - - smtpd
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
"""

# The lines we ship (deploy/postfix/), used as they are but for the ports: what the tests run
# is what administrators paste.
DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "postfix")


def shipped(name, filter_port, reinject):
    with open(os.path.join(DEPLOY, name)) as f:
        text = f.read()
    return text.replace("127.0.0.1:10026", "127.0.0.1:%d" % reinject).replace(
        "[127.0.0.1]:10025", "[127.0.0.1]:%d" % filter_port).replace("127.0.0.1:10025", "127.0.0.1:%d" % filter_port)

BEFORE_QUEUE = """\
127.0.0.1:{public} inet n - n - 20 smtpd
    -o smtpd_proxy_filter=[127.0.0.1]:{filter}
    -o smtpd_proxy_options=speed_adjust
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
"""


class Instance:
    def __init__(self, root, mode, public, filter_port, reinject, sink, extra_main=()):
        """extra_main: more main.cf lines (say, a virtual mailbox domain delivered locally)."""
        self.extra_main = list(extra_main)
        self.path, self.root, self.mode = root, root, mode
        self.public, self.filter_port, self.reinject, self.sink = public, filter_port, reinject, sink
        self.etc = os.path.join(root, "etc")
        self.log = os.path.join(root, "log", "maillog")

    def write(self):
        # Postfix's daemons (user postfix) and delivery agents (other users) must reach the
        # queue, the log and the mailboxes: somewhere else when the checkout is out of reach.
        self.root = fresh_dir(self.path, "postfix")
        self.etc = os.path.join(self.root, "etc")
        self.log = os.path.join(self.root, "log", "maillog")
        for d in ("etc", "spool", "data", "log"):
            os.makedirs(os.path.join(self.root, d))
        shutil.chown(os.path.join(self.root, "data"), "postfix", "postfix")
        main = [
            "compatibility_level = 3.6",
            "queue_directory = %s/spool" % self.root,
            "data_directory = %s/data" % self.root,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = pftest.localdomain",
            "mydomain = localdomain",
            "mydestination =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "relayhost = [127.0.0.1]:%d" % self.sink,
            "smtp_dns_support_level = disabled",
            "smtpd_peername_lookup = no",
            "smtputf8_enable = no",
            "maillog_file = %s" % self.log,
            "maillog_file_prefixes = %s" % self.root,
            "queue_run_delay = 5s",
            "minimal_backoff_time = 5s",
            "maximal_backoff_time = 10s",
        ]
        if self.mode == "after_queue":
            main += [l for l in shipped("main.cf.snippet", self.filter_port, self.reinject).splitlines()
                     if l.strip() and not l.startswith("#")]
        main += self.extra_main
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join(main) + "\n")
        extra = AFTER_QUEUE if self.mode == "after_queue" else BEFORE_QUEUE
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_BASE + extra.format(public=self.public, filter=self.filter_port) +
                    shipped("master.cf.snippet", self.filter_port, self.reinject))

    def postfix(self, *args):
        return subprocess.run(["postfix", "-c", self.etc] + list(args), capture_output=True, text=True)

    def start(self):
        self.write()
        r = self.postfix("start")
        if r.returncode != 0:
            # postfix prints its reasons only to a terminal: ask again under script(1) when
            # there is a pseudo-terminal to be had, and add what reached the log.
            why = r.stdout + r.stderr
            if shutil.which("script"):
                t = subprocess.run(["script", "-qec", "postfix -c %s check" % self.etc, "/dev/null"],
                                   capture_output=True, text=True)
                why += t.stdout + t.stderr
            raise RuntimeError("postfix start failed: " + why + self.maillog()[-2000:])

    def stop(self):
        self.postfix("stop")

    def flush(self):
        subprocess.run(["postqueue", "-c", self.etc, "-f"], capture_output=True)

    def queue_size(self):
        r = subprocess.run(["postqueue", "-c", self.etc, "-j"], capture_output=True, text=True)
        return len([l for l in r.stdout.splitlines() if l.strip()])

    def maillog(self):
        try:
            with open(self.log) as f:
                return f.read()
        except FileNotFoundError:
            return ""
