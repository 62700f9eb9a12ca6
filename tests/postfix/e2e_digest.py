#!/usr/bin/env python3
"""End to end: the digest and the release pages, with a real Postfix (private instance, after
queue, example.org delivered into local Maildirs), a real PostgreSQL, `ndrguard serve` with its
pages on, and headless Chromium.

  - bounces held for alice@example.org: one that may be hers (listed one by one), a storm
    (grouped, with a release-all link) and a forged one (counted);
  - `ndrguard digest` sends one digest through Postfix's reinjection port into alice's Maildir;
    it is parsed back (multipart/alternative, UTF-8 text and HTML, the subject, the links);
    a second pass sends nothing; `--dry-run` prints without marking;
  - Chromium follows the digest's release link: the confirmation page releases nothing (GET),
    the button releases it, Postfix delivers it once into the Maildir; the same link again says
    "already released"; the storm's release-all link releases the storm's messages once each;
    the full-list link shows what is left; forged, altered and expired links are refused;
  - screenshots of the digest's HTML and of every page, saved in WORK/screenshots for review.
usage: e2e_digest.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR        (exit 77: skipped)"""
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from postfix_instance import Instance  # noqa: E402
sys.path.insert(0, os.path.join(HERE, ".."))
from e2e_common import check, failures, free_port, fresh_postgres, postfix_missing, send, wait_for, wait_port  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "web"))
from browser import Browser, BrowserUnavailable  # noqa: E402

ndrguard, pg_cluster, sql_dir, work = sys.argv[1:5]
sink_script = os.path.join(HERE, "..", "filter", "smtp_sink.py")
CLIENT = "203.0.113.5"  # XFORWARD ADDR: a remote MTA, so the mail is inbound
ALICE = "alice@example.org"


def unverifiable_dsn(tag, subject):
    return ("From: MAILER-DAEMON@mx%d.spam.test (Mail Delivery System)\r\nTo: %s\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <%s@mx.spam.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [%s]\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx%d.spam.test\r\n\r\n"
            "Final-Recipient: rfc822; nobody@spam.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: %s\r\nTo: nobody@spam.test\r\n"
            "Subject: %s\r\n\r\n--B--\r\n") % (len(tag) % 3, ALICE, tag, tag, len(tag) % 3, ALICE, subject)


def autoreply(tag, in_reply_to=None):
    """An out-of-office reply; with in_reply_to it names a message (never sent from here)."""
    refs = "In-Reply-To: <%s>\r\n" % in_reply_to if in_reply_to else ""
    return ("From: Bob Remote <bob@partner.test>\r\nTo: %s\r\nSubject: Out of office: Quarterly report\r\n"
            "Message-ID: <%s@partner.test>\r\nAuto-Submitted: auto-replied\r\n%s\r\n"
            "I am away until Monday. [%s]\r\n") % (ALICE, tag, refs, tag)


def maildir_messages(root):
    """alice's delivered messages (Postfix virtual(8) Maildir), oldest first, parsed."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def quarantine_json(db, *args):
    r = subprocess.run([ndrguard, "quarantine", "list", "--json", *db, *args], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def main():
    missing = postfix_missing()
    if missing:
        print(missing)
        return 77
    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")) and \
            not os.environ.get("NDRGUARD_CHROMIUM"):
        print("SKIP: Chromium is not installed (Debian packages chromium, chromium-driver)")
        return 77
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    shots = os.path.join(work, "screenshots")
    os.makedirs(shots)
    mail_root = os.path.join(os.path.realpath(work), "mail")  # (virtual delivers as nobody)
    os.makedirs(mail_root)
    shutil.chown(mail_root, "nobody", "nogroup")
    alice_maildir = os.path.join(mail_root, "alice")

    public, filter_port, reinject, sink_port, web_port = (free_port() for _ in range(5))
    sink_dir = os.path.join(work, "sink")
    os.makedirs(sink_dir)
    sink = subprocess.Popen([sys.executable, sink_script, str(sink_port), sink_dir])
    pf = Instance(os.path.join(work, "pf"), "after_queue", public, filter_port, reinject, sink_port, extra_main=[
        "virtual_mailbox_domains = example.org",
        "virtual_mailbox_base = " + mail_root,
        "virtual_mailbox_maps = inline:{ %s=alice/ }" % ALICE,
        "virtual_uid_maps = static:65534",
        "virtual_gid_maps = static:65534",
        "virtual_minimum_uid = 100",
    ])
    secret_file = os.path.join(work, "web.secret")
    base_url = "http://127.0.0.1:%d" % web_port
    db = ["--db", conninfo]
    common = [*db, "--sql-dir", sql_dir, "--set", "next_hop=127.0.0.1:%d" % reinject, "--set", "hostname=filter.test",
              "--set", "web_base_url=" + base_url, "--set", "web_secret_file=" + secret_file]
    serve_log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([ndrguard, "serve", *common, "--set", "listen=127.0.0.1:%d" % filter_port,
                              "--set", "web_listen=127.0.0.1:%d" % web_port, "--set", "warm_up=off",
                              "--set", "our_networks=127.0.0.0/8", "--set", "storm_threshold=4",
                              "--set", "storm_exit_threshold=1", "--set", "storm_sync_ms=100",
                              "--set", "policy.autoreply.unverifiable=quarantine"],
                             stderr=serve_log)
    try:
        pf.start()
        if not (wait_port(filter_port) and wait_port(web_port) and wait_port(public)):
            check("serve, its pages and Postfix start", False)
            return 1

        # 1. What alice gets held: one that may be hers, a forged one, then a storm.
        check("an unverifiable out-of-office reply is accepted",
              send(public, "bob@partner.test", [ALICE], autoreply("maybe-hers"), CLIENT)[0] == 250)
        check("a forged one (names a message never sent) is accepted, never refused",
              send(public, "bob@partner.test", [ALICE], autoreply("forged-1", "never-sent-1@example.org"), CLIENT)[0] == 250)
        check("both are held", wait_for(lambda: len(quarantine_json(db, "--mailbox", ALICE)) == 2, 60))
        for i in range(6):
            send(public, "", [ALICE], unverifiable_dsn("storm-a%d" % i, "Rolex <sale> %d" % i), CLIENT)
        time.sleep(1.5)  # a storm sync or more: the mailbox is in storm mode now
        for i in range(4):
            send(public, "", [ALICE], unverifiable_dsn("storm-b%d" % i, "Rolex <sale> %d" % i), CLIENT)

        def storm_items():
            return [i for i in quarantine_json(db, "--mailbox", ALICE) if i["storm_id"]]
        check("storm bounces are held with their storm", wait_for(lambda: len(storm_items()) >= 4, 60),
              quarantine_json(db, "--mailbox", ALICE))
        held = quarantine_json(db, "--mailbox", ALICE)
        maybe = [i for i in held if not i["storm_id"] and i["verification"] == "unverifiable"]
        storm_held = [i for i in held if i["storm_id"]]
        check("one held item may be alice's", len(maybe) == 1, held)

        # 2. The digest: dry run first (prints, marks nothing), then the real pass.
        dry = subprocess.run([ndrguard, "digest", *common, "--mailbox", ALICE, "--dry-run"], capture_output=True, text=True)
        check("digest --dry-run prints the mail", dry.returncode == 0 and "multipart/alternative" in dry.stdout and
              "X-NDRGuard-Digest:" in dry.stdout, dry.stderr)
        first = subprocess.run([ndrguard, "digest", *common], capture_output=True, text=True)
        check("digest pass: one digest sent", first.returncode == 0 and "result=sent" in first.stderr and
              "digests_sent=1 items_reported=%d" % len(held) in first.stderr, first.stderr)
        digests = lambda: [m for m in maildir_messages(alice_maildir) if m["X-NDRGuard-Digest"]]
        check("... and delivered by Postfix into alice's Maildir", wait_for(lambda: len(digests()) == 1, 60),
              pf.maillog()[-1500:])
        second = subprocess.run([ndrguard, "digest", *common], capture_output=True, text=True)
        check("a second pass sends nothing (every item reported once)",
              second.returncode == 0 and "digests_sent=0" in second.stderr, second.stderr)
        time.sleep(2)
        check("... still one digest in the Maildir", len(digests()) == 1)
        if not digests():
            return 1
        digest = digests()[0]
        check("the digest is multipart/alternative, auto-generated, for alice",
              digest.get_content_type() == "multipart/alternative" and digest["Auto-Submitted"] == "auto-generated" and
              ALICE in str(digest["To"]))
        subject = str(digest["Subject"])
        check("its subject counts what is held", subject == "%d bounces held for %s: 1 may be yours" % (len(held), ALICE),
              subject)
        text = digest.get_body(("plain",)).get_content()
        html = digest.get_body(("html",)).get_content()
        check("text and HTML parts in UTF-8", digest.get_body(("plain",)).get_content_charset() == "utf-8" and
              digest.get_body(("html",)).get_content_charset() == "utf-8")
        release_links = re.findall(r"Release: (http://\S+/release/\S+)", text)
        storm_links = re.findall(r"Release all \d+: (http://\S+/release-storm/\S+)", text)
        list_links = re.findall(r"Everything held for you, with a release link for each: (http://\S+/held/\S+)", text)
        check("the text lists the one that may be hers with its link, first", len(release_links) == 1 and
              text.find("MAY BE YOURS (1)") < text.find("STORM:") and
              'from bob@partner.test\n   Subject: "Out of office: Quarterly report"' in text,
              text[:1500])
        check("the storm is one group with a release-all link", len(storm_links) == 1 and "Top reporting MTAs" in text)
        check("the forged one is counted, not linked", "FORGED: 1 bounce" in text)
        check("the full list is linked", len(list_links) == 1)
        check("the HTML has the same links, escaped", all(l in html for l in release_links + storm_links + list_links) and
              "Rolex &lt;sale&gt;" in html and "Rolex <sale>" not in html)
        html_file = os.path.join(work, "digest.html")
        with open(html_file, "w") as f:
            f.write(html)
        if not (release_links and storm_links and list_links):
            return 1

        def delivered_releases():
            return [m for m in maildir_messages(alice_maildir) if m["X-NDRGuard-Released"]]

        key = open(secret_file).read().strip().encode()
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        def signed(claims, k=key):
            body = "v1." + b64(claims.encode())
            return body + "." + b64(hmac.new(k, body.encode(), hashlib.sha256).digest())

        # 3. The pages, in a phone-size headless Chromium.
        with Browser() as b:
            b.get("file://" + html_file)
            b.screenshot(os.path.join(shots, "01-digest.png"))
            check("the digest's HTML renders: its release button is there", b.text("a.release") == "Release")

            b.get(release_links[0])
            b.screenshot(os.path.join(shots, "02-release-confirm.png"))
            check("the release link shows a confirmation page: what, and who sent it",
                  b.text("h1") == "Release this message?" and "Out of office: Quarterly report" in b.text("body") and
                  "bob@partner.test" in b.text("body"), b.text("body")[:300])
            time.sleep(2)
            check("a GET alone releases nothing", not delivered_releases() and
                  any(i["id"] == maybe[0]["id"] for i in quarantine_json(db, "--mailbox", ALICE)))
            b.click("button[type=submit]")
            b.screenshot(os.path.join(shots, "03-released.png"))
            check("the button releases it", b.text("h1") == "Released", b.text("body")[:300])
            check("... Postfix delivers it into alice's Maildir, once",
                  wait_for(lambda: len(delivered_releases()) == 1, 60) and
                  "[maybe-hers]" in delivered_releases()[0].get_body(("plain",)).get_content())
            b.get(release_links[0])
            b.screenshot(os.path.join(shots, "04-already-released.png"))
            check("the link again: already released", b.text("h1") == "Already released")

            b.get(storm_links[0])
            b.screenshot(os.path.join(shots, "05-storm-confirm.png"))
            check("the storm's link shows the storm and a release-all button",
                  b.text("h1") == "Release this storm's messages?" and
                  b.text("button") == "Release all %d to my mailbox" % len(storm_held), b.text("body")[:400])
            b.click("button[type=submit]")
            b.screenshot(os.path.join(shots, "06-storm-released.png"))
            check("release all: every message of the storm released",
                  "%d released to your mailbox" % len(storm_held) in b.text("body"), b.text("body")[:300])
            check("... each delivered once", wait_for(lambda: len(delivered_releases()) == 1 + len(storm_held), 60) and
                  len({m["X-NDRGuard-Released"].split()[0] for m in delivered_releases()}) == 1 + len(storm_held),
                  [m["X-NDRGuard-Released"] for m in delivered_releases()])

            b.get(list_links[0])
            b.screenshot(os.path.join(shots, "07-full-list.png"))
            check("the full list shows what is still held (the forged one)", b.text("h1") == "Held messages" and
                  len(b.find_all("li")) == 1, b.text("body")[:400])

            token = release_links[0].rsplit("/", 1)[1]
            altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
            b.get(base_url + "/release/" + altered)
            b.screenshot(os.path.join(shots, "08-altered-link.png"))
            check("an altered link is refused", b.text("h1") == "This link is not valid")
            forged = signed("release\n%d\n%d\n%s" % (maybe[0]["id"], int(time.time()) + 3600, ALICE), b"not the secret")
            b.get(base_url + "/release/" + forged)
            check("a link signed with another key is refused", b.text("h1") == "This link is not valid")
            expired = signed("release\n%d\n%d\n%s" % (maybe[0]["id"], int(time.time()) - 60, ALICE))
            b.get(base_url + "/release/" + expired)
            b.screenshot(os.path.join(shots, "09-expired-link.png"))
            check("an expired link is refused", b.text("h1") == "This link has expired")
        check("nothing else was delivered by those links", len(delivered_releases()) == 1 + len(storm_held))
        print("screenshots for review: " + shots)
    except BrowserUnavailable as e:
        print("SKIP: " + str(e))
        return 77
    finally:
        serve.terminate()
        serve.wait()
        pf.stop()
        sink.terminate()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        if failures:
            for name, path in (("serve.log", os.path.join(work, "serve.log")), ("maillog", pf.log)):
                if os.path.exists(path):
                    print("---- %s (last 20 lines)" % name)
                    with open(path, errors="replace") as f:
                        for line in f.read().splitlines()[-20:]:
                            print("  " + line)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
