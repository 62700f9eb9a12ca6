#!/usr/bin/env python3
"""End to end: ndrguard's Prometheus metrics, with a real Prometheus scraping `ndrguard serve`
(throwaway PostgreSQL, smtp_sink.py as next hop) and the deploy/ files that use them.
  - traffic of every kind: outbound mail, genuine (verified) bounces and an auto-reply of it,
    forged bounces (rejected, and held), unverifiable ones, ordinary mail, a storm at one mailbox,
    a release, a digest pass, the next hop down, PostgreSQL down for a moment;
  - /metrics: `promtool check metrics` lint-clean, and the contract: every family with its type
    and labels, label values from their sets, no address in any label, the traffic counted;
  - deploy/prometheus: `promtool check config`, `check rules`, `test rules`;
  - Prometheus (1 s scrapes, the rules loaded): the target up; every query of every panel of
    deploy/grafana/ndrguard-dashboard.json returns data (template variables substituted); the
    storm alert pending or firing during the storm.
usage: e2e_prometheus.py NDRGUARD PG_CLUSTER_SH SQL_DIR WORK_DIR      (exit 77: skipped)"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, ".."))
from e2e_common import check, dsn_returning, failures, free_port, fresh_postgres, send, wait_for, wait_port  # noqa: E402

RULES = os.path.join(ROOT, "deploy", "prometheus", "ndrguard-rules.yml")
RULES_TEST = os.path.join(ROOT, "deploy", "prometheus", "ndrguard-rules.test.yml")
EXAMPLE_CONFIG = os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "ndrguard-dashboard.json")
SINK = os.path.join(ROOT, "tests", "filter", "smtp_sink.py")
REMOTE = "203.0.113.5"  # XFORWARD ADDR of a remote MTA: inbound. No XFORWARD from 127.0.0.1: outbound.

# The contract: family -> (type, label names, {label: allowed values}).
DIRECTIONS = {"inbound", "outbound"}
CLASSES = {"dsn", "ndr", "autoreply", "challenge", "virus_notice", "mdn", "feedback", "not_bounce", "none"}
VERIFICATIONS = {"verified", "forged", "unverifiable", "suspect", "none"}
EVIDENCE_TAGS = {"sent_log.found", "sent_log.missing", "dkim.verified", "dkim.fail", "batv.valid", "batv.bad_hash",
                 "batv.unknown_key", "batv.expired", "trace.our_relay", "trace.spf_fail", "trace.dmarc_fail",
                 "trace.foreign_origin", "detector.weak"}
ACTIONS = {"deliver", "reject", "quarantine", "tempfail", "dropped"}
CONTRACT = {
    "ndrguard_build_info": ("gauge", {"version": None}),
    "ndrguard_messages_total": ("counter", {"direction": DIRECTIONS, "class": CLASSES, "verification": VERIFICATIONS,
                                            "action": ACTIONS}),
    "ndrguard_evidence_total": ("counter", {"tag": EVIDENCE_TAGS}),
    "ndrguard_storms_started_total": ("counter", {}),
    "ndrguard_storms_ended_total": ("counter", {}),
    "ndrguard_sent_log_lookups_total": ("counter", {"result": {"found", "not_found", "error"}}),
    "ndrguard_sent_log_lookup_queries_total": ("counter", {}),
    "ndrguard_sent_log_lookup_duration_seconds": ("histogram", {}),
    "ndrguard_sent_log_records_total": ("counter", {}),
    "ndrguard_smtp_sessions_total": ("counter", {}),
    "ndrguard_smtp_sessions_active": ("gauge", {}),
    "ndrguard_message_duration_seconds": ("histogram", {}),
    "ndrguard_next_hop_failures_total": ("counter", {}),
    "ndrguard_database_errors_total": ("counter", {"operation": {"lookup", "record", "hold", "storm_sync", "scrape"}}),
    "ndrguard_storm_mailboxes": ("gauge", {}),
    "ndrguard_quarantine_items": ("gauge", {}),
    "ndrguard_quarantine_oldest_item_age_seconds": ("gauge", {}),
    "ndrguard_releases_total": ("counter", {"result": {"released", "failed", "in_progress", "uncertain"}}),
    "ndrguard_digests_total": ("counter", {"result": {"sent", "failed", "abandoned", "uncertain"}}),
    "ndrguard_digest_last_success_timestamp_seconds": ("gauge", {}),
    "ndrguard_policy_requests_total": ("counter", {"result": {"dunno", "reject", "would_reject", "fail_open", "deferred",
                                                              "malformed"}}),
    "ndrguard_policy_request_duration_seconds": ("histogram", {}),
    "ndrguard_policy_connections_active": ("gauge", {}),
}


def unverifiable_dsn(tag, to="victim@example.org"):
    """A DSN that names no message: nothing to verify it against."""
    return ("From: MAILER-DAEMON@mx.spam.test (Mail Delivery System)\r\nTo: %s\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <%s@mx.spam.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered. [%s]\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.spam.test\r\n\r\n"
            "Final-Recipient: rfc822; nobody@spam.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: %s\r\nTo: nobody@spam.test\r\n"
            "Subject: Cheap watches\r\n\r\n--B--\r\n") % (to, tag, tag, to)


def outbound(n):
    return ("From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: hello %d\r\n"
            "Message-ID: <out.%d@example.org>\r\n\r\nhi\r\n") % (n, n)


def autoreply_to(msgid):
    return ("From: Bob <bob@remote.test>\r\nTo: alice@example.org\r\nSubject: Auto: hello\r\n"
            "Message-ID: <auto.1@remote.test>\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\n"
            "Auto-Submitted: auto-replied (vacation)\r\nContent-Type: text/plain\r\n\r\n"
            "I am away until Monday.\r\n") % (msgid, msgid)


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def parse_exposition(text):
    """Prometheus text format -> ({family: type}, [(name, {label: value}, value)])."""
    types, samples = {}, []
    label_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind.strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            samples.append(("<unparsable>", {"line": line}, float("nan")))
            continue
        labels = {}
        body = m.group(3) or ""
        pos = 0
        while pos < len(body):
            lm = label_re.match(body, pos)
            if not lm:
                labels["<unparsable>"] = body
                break
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(4))))
    return types, samples


class Metrics:
    def __init__(self, text):
        self.types, self.samples = parse_exposition(text)

    def family_of(self, name):
        for fam, (kind, _) in CONTRACT.items():
            if name == fam or (kind == "histogram" and name in (fam + "_bucket", fam + "_sum", fam + "_count")):
                return fam
        return None

    def value(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum(v for n, l, v in self.samples if n == name and all(l.get(k) == x for k, x in labels.items()))

    def has(self, name, **labels):
        return any(n == name and all(l.get(k) == x for k, x in labels.items()) for n, l, v in self.samples)


def check_contract(text, expect):
    m = Metrics(text)
    for fam, (kind, labels) in CONTRACT.items():
        declared = m.types.get(fam, m.types.get(fam[:-len("_total")] if fam.endswith("_total") else fam))
        check("contract: %s is a %s" % (fam, kind), declared == kind, "TYPE %s" % declared)
        names = [fam + s for s in ("_bucket", "_sum", "_count")] if kind == "histogram" else [fam]
        rows = [(n, l) for n, l, v in m.samples if n in names]
        check("contract: %s has samples" % fam, rows, "missing from /metrics")
        want = set(labels) | ({"le"} if kind == "histogram" else set())
        bad = [l for n, l in rows if set(l) != (want if n.endswith("_bucket") or kind != "histogram" else set(labels))]
        check("contract: %s labels are exactly %s" % (fam, sorted(want) or "none"), not bad, bad[:3])
        for label, allowed in labels.items():
            if allowed is None:
                continue
            seen = {l.get(label) for n, l in rows}
            check("contract: %s{%s} values within %s" % (fam, label, "|".join(sorted(allowed))), seen <= allowed,
                  sorted(x for x in seen - allowed if x is not None))
    ours = [n for n, l, v in m.samples if n.startswith("ndrguard_")]
    extra = sorted({n for n in ours if m.family_of(n) is None})
    check("contract: no ndrguard_ metric outside the contract", not extra, extra)
    addresses = [(n, l) for n, l, v in m.samples if any("@" in x for x in l.values())]
    check("contract: no label carries an address", not addresses, addresses[:3])
    check("contract: ndrguard_build_info is 1 with a version",
          [v for n, l, v in m.samples if n == "ndrguard_build_info" and l.get("version")] == [1.0],
          [(l, v) for n, l, v in m.samples if n == "ndrguard_build_info"])

    # What the traffic must have produced.
    msgs = lambda **l: m.value("ndrguard_messages_total", **l)  # noqa: E731
    for labels, at_least in expect["messages"]:
        check("counted: messages %s >= %d" % (",".join("%s=%s" % kv for kv in sorted(labels.items())), at_least),
              msgs(**labels) >= at_least, msgs(**labels))
    check("counted: sent-log records >= %d" % expect["records"],
          m.value("ndrguard_sent_log_records_total") >= expect["records"], m.value("ndrguard_sent_log_records_total"))
    for result, at_least in expect["lookups"].items():
        check("counted: sent-log lookups result=%s >= %d" % (result, at_least),
              m.value("ndrguard_sent_log_lookups_total", result=result) >= at_least,
              m.value("ndrguard_sent_log_lookups_total", result=result))
    lookups_asked = sum(m.value("ndrguard_sent_log_lookups_total", result=r) for r in ("found", "not_found", "error"))
    # At most one query per lookup, plus the one asked again on a fresh connection after the
    # PostgreSQL restart below.
    check("counted: sent-log queries, at least one and at most one per lookup",
          1 <= m.value("ndrguard_sent_log_lookup_queries_total") <= lookups_asked + 1,
          (m.value("ndrguard_sent_log_lookup_queries_total"), lookups_asked))
    check("counted: lookup histogram has every lookup",
          m.value("ndrguard_sent_log_lookup_duration_seconds_count") >= expect["lookups"]["found"] + expect["lookups"]["not_found"],
          m.value("ndrguard_sent_log_lookup_duration_seconds_count"))
    check("counted: SMTP sessions >= %d" % expect["sessions"], m.value("ndrguard_smtp_sessions_total") >= expect["sessions"],
          m.value("ndrguard_smtp_sessions_total"))
    check("counted: no SMTP session left active", m.value("ndrguard_smtp_sessions_active") == 0,
          m.value("ndrguard_smtp_sessions_active"))
    check("counted: message histogram has every answered message (>= %d)" % expect["answered"],
          m.value("ndrguard_message_duration_seconds_count") >= expect["answered"],
          m.value("ndrguard_message_duration_seconds_count"))
    inf = m.value("ndrguard_message_duration_seconds_bucket", le="+Inf")
    check("counted: message histogram +Inf bucket == count", inf == m.value("ndrguard_message_duration_seconds_count"), inf)
    check("counted: a storm started (and none ended)", m.value("ndrguard_storms_started_total") >= 1 and
          m.value("ndrguard_storms_ended_total") == 0,
          (m.value("ndrguard_storms_started_total"), m.value("ndrguard_storms_ended_total")))
    check("counted: next-hop failures >= 1", m.value("ndrguard_next_hop_failures_total") >= 1,
          m.value("ndrguard_next_hop_failures_total"))
    for op in ("lookup", "record", "storm_sync"):
        check("counted: database errors operation=%s >= 1" % op, m.value("ndrguard_database_errors_total", operation=op) >= 1,
              m.value("ndrguard_database_errors_total", operation=op))
    check("database-wide: mailboxes in storm mode == 1", m.value("ndrguard_storm_mailboxes") == 1,
          m.value("ndrguard_storm_mailboxes"))
    check("database-wide: quarantine items == %d" % expect["held"], m.value("ndrguard_quarantine_items") == expect["held"],
          m.value("ndrguard_quarantine_items"))
    age = m.value("ndrguard_quarantine_oldest_item_age_seconds")
    check("database-wide: oldest held item's age within the test", 0 < age < time.time() - expect["start"] + 5, age)
    check("database-wide: releases result=released == 1", m.value("ndrguard_releases_total", result="released") == 1,
          m.value("ndrguard_releases_total", result="released"))
    check("database-wide: digests result=sent == %d" % expect["digests"],
          m.value("ndrguard_digests_total", result="sent") == expect["digests"], m.value("ndrguard_digests_total", result="sent"))
    last = m.value("ndrguard_digest_last_success_timestamp_seconds")
    check("database-wide: last successful digest within the test", expect["start"] - 1 <= last <= time.time() + 1, last)


def dashboard_queries(path):
    """[(panel title, refId, expr)] of every target of every panel, rows' panels included."""
    with open(path) as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t.get("refId", "?"), t.get("expr", "")))
    walk(d.get("panels", []))
    return d, out


def substitute(expr):
    """Grafana's template variables, as an instant query needs them."""
    expr = re.sub(r"\$\{?__rate_interval\}?", "1m", expr)
    expr = re.sub(r"\$\{?__interval\}?", "15s", expr)
    expr = re.sub(r"\$\{?__range\}?", "5m", expr)
    expr = re.sub(r"\$\{?instance(:[a-z]+)?\}?", ".+", expr)
    return expr


def main():
    t_start = time.time()
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            print("SKIP: %s is not installed (Debian package prometheus)" % tool)
            return 77
    work = sys.argv[4]
    ndrguard, pg_cluster, sql_dir = sys.argv[1:4]
    pg_dir, conninfo = fresh_postgres(work, pg_cluster)
    if conninfo is None:
        return 77
    db = ["--db", conninfo]
    # promtool on the deploy files meanwhile (test rules takes a few seconds).
    rules_test = subprocess.Popen(["promtool", "test", "rules", RULES_TEST], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)

    sink_dir = os.path.join(work, "sink")
    os.makedirs(sink_dir)
    sink_port, port, metrics_port, web_port, prom_port, policy_port = (free_port() for _ in range(6))
    web = ["--set", "web_listen=127.0.0.1:%d" % web_port, "--set", "web_base_url=http://127.0.0.1:%d" % web_port,
           "--set", "web_secret_file=" + os.path.join(work, "web.secret")]
    procs = {}
    logs = {}

    def start(name, argv):
        logs[name] = open(os.path.join(work, name + ".log"), "w")
        procs[name] = subprocess.Popen(argv, stdout=logs[name], stderr=subprocess.STDOUT)

    start("sink", [sys.executable, SINK, str(sink_port), sink_dir])
    start("serve", [ndrguard, "serve", *db, "--sql-dir", sql_dir, "--set", "listen=127.0.0.1:%d" % port,
                    "--set", "next_hop=127.0.0.1:%d" % sink_port, "--set", "metrics_listen=127.0.0.1:%d" % metrics_port,
                    "--set", "hostname=filter.test", "--set", "warm_up=off", "--set", "our_networks=127.0.0.0/8",
                    "--set", "storm_threshold=5", "--set", "storm_exit_threshold=1", "--set", "storm_sync_ms=100",
                    "--set", "policy_listen=127.0.0.1:%d" % policy_port] + web)
    prom_config = os.path.join(work, "prometheus.yml")
    with open(prom_config, "w") as f:  # JSON is YAML
        json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                   "rule_files": [RULES],
                   "scrape_configs": [{"job_name": "ndrguard", "static_configs": [{"targets": ["127.0.0.1:%d" % metrics_port]}]}]},
                  f, indent=1)
    start("prometheus", ["prometheus", "--config.file=" + prom_config, "--storage.tsdb.path=" + os.path.join(work, "prom"),
                         "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"])
    prom = "http://127.0.0.1:%d" % prom_port

    def query(expr):
        status, body = http_get(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        return json.loads(body)["data"]["result"]

    def target_up():
        try:
            return [r["value"][1] for r in query('up{job="ndrguard"}')] == ["1"]
        except Exception:
            return False

    def ready():
        try:
            return http_get(prom + "/-/ready", 2)[0] == 200
        except Exception:
            return False
    try:
        check("sink, serve (SMTP and metrics) and Prometheus listen",
              wait_port(sink_port) and wait_port(port) and wait_port(metrics_port) and wait_for(ready, 20, 0.1))
        # Traffic only once Prometheus has scraped serve: the rates compare with a sample before it.
        check("Prometheus: target job=ndrguard scraped before the traffic",
              wait_for(target_up, 10, 0.1))
        answers = {}

        # Outbound: recorded in the sent log, then delivered.
        for n in range(1, 6):
            answers["outbound %d" % n] = send(port, "alice@example.org", ["bob@remote.test"], outbound(n))
        # Genuine bounces of it and an auto-reply to it: verified, delivered. (Each mailbox but
        # victim@ gets fewer bounces than storm_threshold: one storm only.)
        for n in range(1, 4):
            answers["genuine bounce %d" % n] = send(port, "", ["alice@example.org"], dsn_returning("out.%d@example.org" % n), REMOTE)
        answers["auto-reply"] = send(port, "", ["alice@example.org"], autoreply_to("out.4@example.org"), REMOTE)
        # Forged: from <> rejected, from a real sender held (never 5xx after queue).
        answers["forged from <>"] = send(port, "", ["carol@example.org"], dsn_returning("never.1@example.org"), REMOTE)
        answers["forged from a sender"] = send(port, "postmaster@remote.test", ["carol@example.org"],
                                               dsn_returning("never.2@example.org"), REMOTE)
        # Unverifiable (names no message) and ordinary mail: delivered.
        answers["unverifiable"] = send(port, "", ["bob@example.org"], unverifiable_dsn("lone", "bob@example.org"), REMOTE)
        answers["ordinary"] = send(port, "dave@remote.test", ["bob@example.org"],
                                   "From: dave@remote.test\r\nSubject: lunch\r\nMessage-ID: <d.1@remote.test>\r\n\r\nFriday?\r\n", REMOTE)
        # A storm at victim@: 4 delivered, held from the 5th (storm_threshold) on.
        for i in range(8):
            answers["storm %d" % i] = send(port, "", ["victim@example.org"], unverifiable_dsn("storm-%d" % i), REMOTE)
        # The policy service (check_policy_service at RCPT): a null sender to the storm mailbox
        # refused, one to another mailbox not.
        def policy(recipient):
            with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as s:
                s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=%s\nsender=\n"
                           "recipient=%s\n\n" % (REMOTE, recipient)).encode())
                got = b""
                while not got.endswith(b"\n\n"):
                    chunk = s.recv(1000)
                    if not chunk:
                        break
                    got += chunk
                return got.decode()
        check("policy service: a null sender to the storm mailbox gets 550",
              wait_for(lambda: policy("victim@example.org").startswith("action=550 5.7.1"), 10, 0.2))
        check("policy service: to another mailbox DUNNO", policy("alice@example.org") == "action=DUNNO\n\n")
        expected = {"outbound": "queued as SINK", "genuine": "queued as SINK", "auto-reply": "queued as SINK",
                    "forged from <>": "backscatter", "forged from a sender": "held in quarantine",
                    "unverifiable": "queued as SINK", "ordinary": "queued as SINK"}
        for name, (code, text) in answers.items():
            want = next((v for k, v in expected.items() if name.startswith(k)), None)
            if name.startswith("storm"):
                want = "queued as SINK" if int(name.split()[1]) < 4 else "held in quarantine"
            check("traffic: %s answered as expected" % name, want in text, "%s %s" % (code, text))

        # One release, one digest pass.
        listed = subprocess.run([ndrguard, "quarantine", "list", "--mailbox", "victim@example.org", "--json", *db],
                                capture_output=True, text=True)
        ids = [i["id"] for i in json.loads(listed.stdout)] if listed.returncode == 0 else []
        check("quarantine: 4 held for the storm's mailbox", len(ids) == 4, listed.stdout + listed.stderr)
        rel = subprocess.run([ndrguard, "quarantine", "release", str(ids[0] if ids else 0), *db,
                              "--set", "next_hop=127.0.0.1:%d" % sink_port], capture_output=True, text=True)
        check("release: one held item released", rel.returncode == 0 and " released queue_id=" in rel.stdout, rel.stdout + rel.stderr)
        dig = subprocess.run([ndrguard, "digest", *db, "--set", "next_hop=127.0.0.1:%d" % sink_port] + web,
                             capture_output=True, text=True)
        digests = dig.stderr.count("result=sent")
        check("digest: one pass, sent to victim@ and carol@", dig.returncode == 0 and digests == 2, dig.stderr)

        # The next hop down: outbound and inbound mail tempfailed.
        procs["sink"].terminate()
        procs["sink"].wait()
        code, text = send(port, "alice@example.org", ["bob@remote.test"], outbound(6))
        check("next hop down: outbound 451", code == 451, "%s %s" % (code, text))
        code, text = send(port, "erin@remote.test", ["bob@example.org"], "From: erin@remote.test\r\nSubject: hi\r\n\r\nhi\r\n", REMOTE)
        check("next hop down: inbound 451", code == 451, "%s %s" % (code, text))

        # PostgreSQL down for a moment: lookups and records fail (451), storm syncs fail.
        subprocess.run([pg_cluster, "pause", pg_dir], check=True, capture_output=True)
        code, text = send(port, "", ["frank@example.org"], dsn_returning("out.5@example.org"), REMOTE)
        check("database down: bounce 451", code == 451, "%s %s" % (code, text))
        code, text = send(port, "alice@example.org", ["bob@remote.test"], outbound(7))
        check("database down: outbound 451", code == 451, "%s %s" % (code, text))
        time.sleep(0.5)  # a few failed storm syncs
        subprocess.run([pg_cluster, "resume", pg_dir], check=True, capture_output=True)
        sends = len(answers) + 4

        # /metrics: lint-clean and as the contract says (database-wide values settle after a sync).
        expect = {"start": t_start, "held": 4, "digests": 2, "records": 5, "sessions": sends, "answered": len(answers),
                  "lookups": {"found": 4, "not_found": 2, "error": 1},
                  "messages": [({"direction": "outbound", "class": "none", "verification": "none", "action": "deliver"}, 5),
                               ({"direction": "outbound", "action": "tempfail"}, 2),
                               ({"direction": "inbound", "class": "dsn", "verification": "verified", "action": "deliver"}, 3),
                               ({"direction": "inbound", "class": "autoreply", "verification": "verified", "action": "deliver"}, 1),
                               ({"direction": "inbound", "class": "dsn", "verification": "forged", "action": "reject"}, 1),
                               ({"direction": "inbound", "class": "dsn", "verification": "forged", "action": "quarantine"}, 1),
                               ({"direction": "inbound", "class": "dsn", "verification": "unverifiable", "action": "deliver"}, 5),
                               ({"direction": "inbound", "class": "dsn", "verification": "unverifiable", "action": "quarantine"}, 4),
                               ({"direction": "inbound", "class": "not_bounce", "verification": "none", "action": "deliver"}, 1),
                               ({"direction": "inbound", "action": "tempfail"}, 2)]}

        def metrics_text():
            try:
                return http_get("http://127.0.0.1:%d/metrics" % metrics_port)[1]
            except Exception as e:
                return "# unreachable: %s\n" % e
        settled = lambda m: m.value("ndrguard_storm_mailboxes") == 1 and m.value("ndrguard_quarantine_items") == 4  # noqa: E731
        wait_for(lambda: settled(Metrics(metrics_text())), 8, 0.2)  # read at scrape, cached 5 s
        text = metrics_text()
        with open(os.path.join(work, "metrics.txt"), "w") as f:
            f.write(text)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        check("promtool check metrics: lint-clean", lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
              lint.stdout + lint.stderr)
        check_contract(text, expect)
        m = Metrics(text)
        # Every bounce weighed counts once per evidence tag: the four verified ones by the sent
        # log, the two forged ones by its miss (the 451 while PostgreSQL paused was never weighed).
        check("evidence: sent_log.found and sent_log.missing count the bounces weighed",
              m.value("ndrguard_evidence_total", tag="sent_log.found") == 4 and
              m.value("ndrguard_evidence_total", tag="sent_log.missing") == 2 and
              m.value("ndrguard_evidence_total", tag="dkim.verified") == 0,
              [m.value("ndrguard_evidence_total", tag=t) for t in ("sent_log.found", "sent_log.missing", "dkim.verified")])

        # The deploy files.
        for argv in (["promtool", "check", "config", EXAMPLE_CONFIG], ["promtool", "check", "rules", RULES]):
            r = subprocess.run(argv, capture_output=True, text=True)
            check(" ".join(argv[:3]) + " " + os.path.relpath(argv[3], ROOT), r.returncode == 0, r.stdout + r.stderr)
        out = rules_test.communicate()[0]
        check("promtool test rules deploy/prometheus/ndrguard-rules.test.yml", rules_test.returncode == 0, out)
        with open(RULES) as f:
            alerts = re.findall(r"^\s*- alert: (\S+)", f.read(), re.M)
        with open(RULES_TEST) as f:
            tests = f.read()
        firing = set(re.findall(r"alertname: (\S+)\n\s*exp_alerts:\n\s*- exp_labels", tests))
        quiet = set(re.findall(r"alertname: (\S+)\n\s*exp_alerts: \[\]", tests))
        check("rule tests: every alert tested firing and not firing", alerts and set(alerts) <= firing & quiet,
              "untested: %s" % sorted(set(alerts) - (firing & quiet)))

        # Prometheus: the target, every dashboard query, the storm alert.
        check("Prometheus: target job=ndrguard up", wait_for(target_up, 10, 0.2), query('up{job="ndrguard"}'))
        dash, queries = dashboard_queries(DASHBOARD)
        check("dashboard: %d queries, each on ${DS_PROMETHEUS}" % len(queries), len(queries) >= 20 and all(
            t.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}" for p in dash["panels"] for t in p.get("targets", [])))
        check("dashboard: DS_PROMETHEUS is a data source variable", any(
            v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource" and v.get("query") == "prometheus"
            for v in dash.get("templating", {}).get("list", [])))

        def has_data(expr):
            try:
                res = query(expr)
            except Exception as e:
                return False, str(e)
            values = [float(r["value"][1]) for r in res]
            return any(not math.isnan(v) for v in values), res[:4]
        deadline = time.time() + 15
        pending = list(queries)
        results = {}
        while pending and time.time() < deadline:  # each kind of data shows after the next scrape or two
            for q in list(pending):
                ok, detail = has_data(substitute(q[2]))
                results[q] = (ok, detail)
                if ok:
                    pending.remove(q)
            if pending:
                time.sleep(0.5)
        for title, ref, expr in queries:
            ok, detail = results.get((title, ref, expr), (False, "not run"))
            sub = substitute(expr)
            check("panel %r query %s returns data: %s" % (title, ref, sub), ok and "$" not in sub, detail)

        def storm_alert():
            _, body = http_get(prom + "/api/v1/alerts")
            return [a["state"] for a in json.loads(body)["data"]["alerts"] if a["labels"].get("alertname") == "NdrguardBackscatterStorm"]
        check("alert NdrguardBackscatterStorm pending or firing during the storm",
              wait_for(lambda: set(storm_alert()) & {"pending", "firing"}, 10, 0.2), storm_alert())
    finally:
        for name in ("prometheus", "serve", "sink"):
            p = procs.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if rules_test.poll() is None:
            rules_test.kill()
            rules_test.wait()
        subprocess.run([pg_cluster, "stop", pg_dir], capture_output=True)
        for log in logs.values():
            log.close()
        for name, n in (("serve", 12), ("prometheus", 5)):
            path = os.path.join(work, name + ".log")
            if os.path.exists(path):
                with open(path) as f:
                    lines = f.read().splitlines()
                print("%s log (last %d lines):" % (name, n))
                for line in lines[-n:]:
                    print("  " + line)
    print("wall time %.1f s" % (time.time() - t_start))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
