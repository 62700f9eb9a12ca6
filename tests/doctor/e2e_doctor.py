#!/usr/bin/env python3
"""`ndrguard doctor` against real Postfix configuration directories, read by the real
`postconf -c DIR` (and postmap/postalias -s), broken and then fixed.

Configurations (each a main.cf and master.cf in a directory of its own; nothing runs, nothing
touches /etc/postfix):
  debian     Debian 12's default: /usr/share/postfix/main.cf.debian plus the lines Debian's
             postinst adds for "Internet Site" (as on a fresh bookworm install), and
             /usr/share/postfix/master.cf.dist as it is. Expected: ndrguard is not wired (error),
             nothing else.
  strict     the strict configuration of the administrators' guides (strict HELO and envelope
             checks, every reject code 5xx, reject_unauth_destination after permit_mynetworks
             and permit_sasl_authenticated, RBLs, ndrguard's policy service before postgrey's),
             with ndrguard's deploy/postfix snippets applied and Debian's submission service
             sending to outbound_listen. Expected: no finding at all.
  tests      the private instances tests/postfix runs (postfix_instance.Instance, after and
             before queue), as written for the end-to-end tests.
Then, from `strict`, one broken copy per finding: the break is made with postconf itself
(-e, -X, -M, -MX, -P, -PX), the finding must appear with its severity and exit status; then
the fix lines the doctor printed are run as printed (with -c DIR added) and the finding must be
gone. Last, the command's own bounds: a postconf that hangs, one that prints too much, one
that prints garbage; usage errors; --help.
usage: e2e_doctor.py NDRGUARD WORK_DIR        (exit 77: skipped)"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
from e2e_common import check, failures  # noqa: E402

ndrguard, work = sys.argv[1:3]
DEPLOY = os.path.join(here, "..", "..", "deploy", "postfix")
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
if not os.path.exists(POSTCONF) or not os.path.exists("/usr/share/postfix/master.cf.dist"):
    print("SKIP: Postfix is not installed (Debian package postfix)")
    sys.exit(77)

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

# Debian's postinst (postfix 3.7.11-0+deb12u1, "Internet Site") appends these to main.cf.debian.
DEBIAN_POSTINST = """\
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_security_level=may
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = mx.example.org
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = /etc/mailname
mydestination = $myhostname, example.org, mx, localhost.localdomain, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all
"""

STRICT_MAIN = """\
compatibility_level = 3.6
myhostname = mx.example.org
mydomain = example.org
mydestination = $myhostname, example.org, localhost
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_helo_required = yes
disable_vrfy_command = yes
strict_rfc821_envelopes = yes
smtpd_helo_restrictions = permit_mynetworks, reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname,
    reject_unknown_helo_hostname
smtpd_sender_restrictions = permit_mynetworks, reject_non_fqdn_sender, reject_unknown_sender_domain
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_non_fqdn_recipient,
    reject_unknown_recipient_domain, reject_unlisted_recipient, reject_rbl_client zen.spamhaus.org,
    reject_rhsbl_sender dbl.spamhaus.org, check_policy_service inet:127.0.0.1:10040,
    check_policy_service inet:127.0.0.1:10023
smtpd_data_restrictions = reject_unauth_pipelining
unknown_local_recipient_reject_code = 550
unknown_client_reject_code = 554
unknown_hostname_reject_code = 554
unknown_address_reject_code = 554
invalid_hostname_reject_code = 554
non_fqdn_reject_code = 554
"""

# Debian's submission service (master.cf.dist's commented template), authenticated users only,
# to ndrguard's outbound listener (deploy/postfix/master.cf.snippet, part 3).
SUBMISSION = """\
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
  -o content_filter=ndrguard:[127.0.0.1]:10027
"""
OUTBOUND = ["--set", "outbound_listen=127.0.0.1:10027"]


def read(path):
    with open(path) as f:
        return f.read()


def snippet_lines(name):
    return "".join(l for l in read(os.path.join(DEPLOY, name)).splitlines(True) if l.strip() and not l.startswith("#"))


def make(name, main, master):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "main.cf"), "w") as f:
        f.write(main)
    with open(os.path.join(d, "master.cf"), "w") as f:
        f.write(master)
    return d


def doctor(d, *args, sbin=None):
    cmd = [ndrguard, "doctor", "-c", d, "--json"] + list(args)
    if sbin:
        cmd += ["--sbin", sbin]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    try:
        out = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        out = None
    return r.returncode, out, r.stderr


def human(d, *args):
    r = subprocess.run([ndrguard, "doctor", "-c", d] + list(args), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout


def ids(out):
    return [f["id"] for f in out["findings"]] if out else []


def postconf(d, *args):
    r = subprocess.run([POSTCONF, "-c", d] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("postconf %s: %s" % (args, r.stderr))


def apply_fix(d, lines):
    """Runs the doctor's postconf lines as printed, with -c DIR after the command's name.
    Returns False when a line is not a postconf command (left to the administrator)."""
    done = True
    for l in lines:
        if l.startswith("#"):
            continue
        if not l.startswith("postconf "):
            done = False
            continue
        r = subprocess.run(["sh", "-c", POSTCONF + " -c '%s' " % d + l[len("postconf "):]], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("fix %r: %s" % (l, r.stderr))
    return done


# --- the three kinds of configuration ------------------------------------------------------

debian = make("debian", read("/usr/share/postfix/main.cf.debian") + DEBIAN_POSTINST, read("/usr/share/postfix/master.cf.dist"))
rc, out, err = doctor(debian)
check("debian: postconf read (mail_version)", out is not None and out["mail_version"].startswith("3."), err)
check("debian: exactly one finding, ndrguard_not_wired", ids(out) == ["ndrguard_not_wired"], (ids(out), err))
check("debian: exit 1 (an error)", rc == 1, rc)
rc_h, text = human(debian)
print("---- ndrguard doctor on Debian's default ----\n" + text + "----")

strict_master = read("/usr/share/postfix/master.cf.dist") + SUBMISSION + read(os.path.join(DEPLOY, "master.cf.snippet"))
strict = make("strict", STRICT_MAIN + snippet_lines("main.cf.snippet"), strict_master)
rc, out, err = doctor(strict, *OUTBOUND)
check("strict + deploy snippets: no finding", out is not None and out["findings"] == [], (ids(out), err))
check("strict + deploy snippets: exit 0", rc == 0, rc)
rc_h, text = human(strict, *OUTBOUND)
print("---- ndrguard doctor on the strict guide configuration ----\n" + text + "----")
rc, out, err = doctor(strict)
check("strict without outbound_listen in ndrguard.conf: submission's filter is not ndrguard's",
      "submission_bypasses_ndrguard" in ids(out) and rc == 1, ids(out))

# The private instances of tests/postfix, as the end-to-end tests write them.
if os.geteuid() == 0:
    sys.path.insert(0, os.path.join(here, "..", "postfix"))
    from postfix_instance import Instance  # noqa: E402
    for mode in ("after_queue", "before_queue"):
        inst = Instance(os.path.join(work, "instance-" + mode), mode, 20025, 20026, 20027, 20028)
        inst.write()
        args = ["--set", "listen=127.0.0.1:20026", "--set", "next_hop=127.0.0.1:20027", "--set", "mode=" + mode]
        rc, out, err = doctor(inst.etc, *args)
        errors = [f["id"] for f in out["findings"] if f["severity"] == "error"] if out else ["(no output)"]
        check("tests' %s instance: no error" % mode, errors == [] and rc == 0, (ids(out), err))
        if mode == "before_queue":
            # True of that instance: sendmail(1) mail reaches no filter there.
            check("tests' before_queue instance: local submission passes ndrguard",
                  "local_submission_bypasses_ndrguard" in ids(out), ids(out))
        else:
            check("tests' after_queue instance: nothing at all", ids(out) == [], ids(out))
else:
    print("SKIP: the tests' Postfix instances (their directories need root)")

# --- one break per finding, made with postconf; then the doctor's own fix -----------------

R = "127.0.0.1:10026/inet"
cases = [
    # (finding, severity, postconf edits, extra doctor arguments)
    ("reject_code_4xx", "error", [["-e", "unknown_local_recipient_reject_code = 450"]], []),
    ("reject_code_4xx", "warning", [["-e", "maps_rbl_reject_code = 450"]], []),
    ("soft_bounce", "warning", [["-e", "soft_bounce = yes"]], []),
    ("local_recipient_maps_empty", "error", [["-e", "local_recipient_maps ="]], []),
    ("relay_recipients_unvalidated", "error", [["-e", "relay_domains = example.net"]], []),
    ("virtual_mailbox_unvalidated", "error", [["-e", "virtual_mailbox_domains = example.com"]], []),
    ("unlisted_recipient_accepted", "error", [["-e", "smtpd_reject_unlisted_recipient = no"],
                                             ["-e", "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination"]], []),
    ("unknown_recipient_checks_off", "error", [["-P", "smtp/inet/receive_override_options=no_unknown_recipient_checks,no_address_mappings"]], []),
    ("luser_relay", "warning", [["-e", "luser_relay = catchall"]], []),
    ("reject_unauth_destination_missing", "error", [["-e", "smtpd_relay_restrictions = permit_mynetworks"],
                                                   ["-e", "smtpd_recipient_restrictions = permit_mynetworks, reject_unlisted_recipient"]], []),
    ("sender_callouts", "warning", [["-e", "smtpd_sender_restrictions = reject_non_fqdn_sender, reject_unverified_sender"]], []),
    ("notify_classes", "warning", [["-e", "notify_classes = bounce, 2bounce, resource, software"],
                                   ["-e", "bounce_notice_recipient = pm@mail.example.net"]], []),
    ("content_filter_pipe", "warning", [["-e", "content_filter = filter:dummy"],
                                        ["-M", "filter/unix=filter unix - n n - 10 pipe flags=Rq user=nobody argv=/bin/cat"]], []),
    ("ndrguard_not_wired", "error", [["-X", "content_filter"], ["-PX", "submission/inet/content_filter"]], []),
    ("mode_mismatch", "error", [], ["--set", "mode=before_queue"]),
    ("filter_transport_missing", "error", [["-e", "content_filter = ndrguard2:[127.0.0.1]:10025"]], []),
    ("filter_transport_no_xforward", "error", [["-PX", "ndrguard/unix/smtp_send_xforward_command"]], []),
    ("reinjection_missing", "error", [["-MX", R]], []),
    ("reinjection_filtered_again", "error", [["-PX", R + "/content_filter"]], []),
    ("reinjection_override_options", "warning", [["-PX", R + "/receive_override_options"]], []),
    ("header_checks_after_queue", "warning", [["-PX", R + "/receive_override_options"],
                                              ["-e", "header_checks = regexp:/etc/postfix/header_checks"]], []),
    ("reinjection_xforward_not_authorised", "warning", [["-PX", R + "/smtpd_authorized_xforward_hosts"]], []),
    ("submission_bypasses_ndrguard", "error", [["-P", "submission/inet/content_filter="]], []),
    ("submission_not_outbound", "warning", [["-PX", "submission/inet/content_filter"]], []),
    ("smtpd_bypasses_ndrguard", "error", [["-M", "2525/inet=2525 inet n - n - - smtpd"], ["-P", "2525/inet/content_filter="]], []),
    ("smtpd_bypasses_ndrguard", "warning", [["-M", "127.0.0.1:10024/inet=127.0.0.1:10024 inet n - n - - smtpd"],
                                            ["-P", "127.0.0.1:10024/inet/content_filter="]], []),
    ("address_mappings_twice", "warning", [["-X", "receive_override_options"]], []),
    ("local_submission_bypasses_ndrguard", "warning",
     [["-X", "content_filter"], ["-X", "receive_override_options"], ["-P", "smtp/inet/smtpd_proxy_filter=127.0.0.1:10025"],
      ["-P", "submission/inet/receive_override_options=no_address_mappings"]], ["--set", "mode=before_queue"]),
    ("policy_after_greylisting", "warning",
     [["-e", "smtpd_recipient_restrictions = permit_mynetworks, reject_unlisted_recipient, "
             "check_policy_service inet:127.0.0.1:10023, check_policy_service inet:127.0.0.1:10040"]], []),
    ("policy_before_unauth_destination", "warning",
     [["-e", "smtpd_relay_restrictions ="],
      ["-e", "smtpd_recipient_restrictions = permit_mynetworks, check_policy_service inet:127.0.0.1:10040, reject_unauth_destination"]], []),
    ("greylisting_before_rejects", "warning",
     [["-e", "smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, "
             "check_policy_service inet:127.0.0.1:10023, reject_rbl_client zen.spamhaus.org"]], []),
]
for n, (want, level, edits, extra) in enumerate(cases):
    d = os.path.join(work, "broken-%02d-%s" % (n, want))
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(strict, d)
    for e in edits:
        postconf(d, *e)
    rc, out, err = doctor(d, *(OUTBOUND + extra))
    found = [f for f in (out["findings"] if out else []) if f["id"] == want]
    check("%s: found" % want, len(found) >= 1, (ids(out), err))
    if not found:
        continue
    check("%s: severity %s" % (want, level), found[0]["severity"] == level, found[0]["severity"])
    has_error = any(f["severity"] == "error" for f in out["findings"])
    check("%s: exit status says whether an error was found" % want, rc == (1 if has_error else 0), rc)
    check("%s: why, fix and source given" % want, all(found[0][k] for k in ("why", "fix", "source", "where")), found[0])
    fix = [l for f in found for l in f["fix"]]
    if not any(l.startswith("postconf ") for l in fix):
        print("note: %s's fix is not a postconf line (%s): not applied here" % (want, fix))
        continue
    complete = apply_fix(d, fix)
    rc2, out2, err2 = doctor(d, *(OUTBOUND + extra))
    if complete:
        check("%s: gone after the doctor's own fix" % want, want not in ids(out2), (fix, ids(out2), err2))
    else:
        print("note: %s's fix has steps beyond postconf (%s): checked only that its postconf lines run" % (want, fix))

# --- forwarding: an indexed virtual alias table read with postmap -s ------------------------

fwd = os.path.join(work, "forwarding")
shutil.rmtree(fwd, ignore_errors=True)
shutil.copytree(strict, fwd)
with open(os.path.join(fwd, "virtual"), "w") as f:
    f.write("info@example.org    alice\nbob@example.org     bob@mail.example.net\nteam@example.org    alice, carol@example.org\n")
postconf(fwd, "-e", "virtual_alias_maps = hash:%s/virtual" % fwd)
subprocess.run(["postmap", "-c", fwd, "hash:%s/virtual" % fwd], check=True)
rc, out, err = doctor(fwd, *OUTBOUND)
found = [f for f in (out["findings"] if out else []) if f["id"] == "forwarding_without_srs"]
check("forwarding: the outside alias target is found through postmap -s", len(found) == 1 and "bob@mail.example.net" in found[0]["why"]
      and "carol" not in found[0]["why"], (ids(out), err))
check("forwarding: the table was read", out is not None and out["tables_read"] is True, out)
if found:
    apply_fix(fwd, found[0]["fix"])  # apt-get install postsrsd is left to the administrator
    rc, out, err = doctor(fwd, *OUTBOUND)
    check("forwarding: no finding once postsrsd's lines are in main.cf", "forwarding_without_srs" not in ids(out), ids(out))
# The local aliases (postalias -s prints "key: value").
with open(os.path.join(fwd, "aliases"), "w") as f:
    f.write("postmaster: root\nroot: admin@mail.example.com\n")
postconf(fwd, "-X", "sender_canonical_maps")
postconf(fwd, "-X", "virtual_alias_maps")
postconf(fwd, "-e", "alias_maps = hash:%s/aliases" % fwd)
subprocess.run(["postalias", "-c", fwd, "hash:%s/aliases" % fwd], check=True)
rc, out, err = doctor(fwd, *OUTBOUND)
found = [f for f in (out["findings"] if out else []) if f["id"] == "forwarding_without_srs"]
check("forwarding: an alias to an outside mailbox is found through postalias -s",
      len(found) == 1 and "admin@mail.example.com" in found[0]["why"], (ids(out), err))
postconf(fwd, "-e", "alias_maps =")
postconf(fwd, "-e", "virtual_alias_maps = texthash:%s/virtual" % fwd)
rc, out, err = doctor(fwd, *OUTBOUND)
check("forwarding: a table postmap -s cannot list is said to be unchecked (a note)",
      "forwarding_unchecked" in ids(out) and out["tables_read"] is False and rc == 0, (ids(out), rc))

# --- the command's own bounds ----------------------------------------------------------------

fake = os.path.join(work, "fake-sbin")
os.makedirs(fake, exist_ok=True)


def fake_postconf(script):
    p = os.path.join(fake, "postconf")
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(p, 0o755)


fake_postconf("exec sleep 600\n")
t0 = time.monotonic()
rc, out, err = doctor(strict, "--timeout", "2", sbin=fake)
spent = time.monotonic() - t0
check("a postconf that hangs: exit 3, said so", rc == 3 and "did not finish in time" in err, (rc, err))
check("a postconf that hangs: stopped at the bound (well under a minute)", spent < 60, spent)

fake_postconf("exec head -c 6000000 /dev/zero | tr '\\\\0' x\n")
rc, out, err = doctor(strict, sbin=fake)
check("a postconf that prints 6 MB: exit 3, said so", rc == 3 and "more than 4 MiB" in err, (rc, err))

fake_postconf("head -c 300000 /dev/urandom; printf '\\nsoft_bounce = yes\\n'; exit 0\n")
rc, out, err = doctor(strict, sbin=fake)
check("a postconf that prints garbage: audited, no crash", rc in (0, 1) and out is not None, (rc, err[-500:]))
check("a postconf that prints garbage: what parses is still used", "soft_bounce" in ids(out), ids(out))

fake_postconf("echo 'postconf: fatal: open /nowhere/main.cf: No such file or directory' >&2; exit 1\n")
rc, out, err = doctor(strict, sbin=fake)
check("a postconf that fails: exit 3, its message passed on", rc == 3 and "/nowhere/main.cf" in err, (rc, err))

rc, out, err = doctor(os.path.join(work, "no-such-dir"))
check("a configuration directory that is not there: exit 3", rc == 3, (rc, err))

r = subprocess.run([ndrguard, "doctor", "--timeout", "0"], capture_output=True, text=True)
check("--timeout 0: usage error (2)", r.returncode == 2, r.returncode)
r = subprocess.run([ndrguard, "doctor", "--bogus"], capture_output=True, text=True)
check("an unknown option: usage error (2)", r.returncode == 2, r.returncode)
r = subprocess.run([ndrguard, "doctor", "--help"], capture_output=True, text=True)
check("--help: exit 0, names -c DIR and the exit statuses", r.returncode == 0 and "-c DIR" in r.stdout and "Exit status" in r.stdout,
      r.stdout[:200])
r = subprocess.run([ndrguard, "--help"], capture_output=True, text=True)
check("ndrguard --help lists doctor", re.search(r"^  doctor ", r.stdout, re.M) is not None, r.stdout)

if failures:
    print("FAILED: " + ", ".join(failures))
    sys.exit(1)
print("all passed")
