// The mail log join (backfill/maillog.hpp), pure: tables of lines in the formats Postfix and
// syslog daemons write. Where each comes from:
//  [pf]   written by the private Postfix 3.7.11 of tests/postfix (maillog_file, postlogd's
//         "Mon DD HH:MM:SS" header), copied from its log/maillog;
//  [sasl] Postfix's SASL_README ("client=..., sasl_method=PLAIN, sasl_username=...", what
//         smtpd logs for an authenticated client);
//  [pick] pickup's "uid=N from=<sender>" for a sendmail(1) submission (Postfix's pickup(8));
//  [3164] the BSD syslog header of RFC 3164 4.1.2 ("Mmm dd hh:mm:ss", day space-padded), as
//         rsyslog's RSYSLOG_TraditionalFileFormat writes it;
//  [file] rsyslog's RSYSLOG_FileFormat template ("%TIMESTAMP:::date-rfc3339% %HOSTNAME%
//         %syslogtag%%msg%");
//  [5424] rsyslog's RSYSLOG_SyslogProtocol23Format ("<%PRI%>1 %TIMESTAMP:::date-rfc3339%
//         %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%"), RFC 5424 6.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ndrguard/backfill/maillog.hpp"

namespace bf = ndrguard::backfill;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {

bf::time_point at(int y, unsigned mo, unsigned d, int h, int mi, int s) {
    return sys_days{year{y} / month{mo} / day{d}} + hours(h) + minutes(mi) + seconds(s);
}

const bf::clock_context noon_dec_2{at(2026, 12, 2, 12, 0, 0), 0s};

bool ours(std::string_view addr) { return addr.substr(0, 4) == "127." || addr.substr(0, 8) == "192.0.2."; }

struct parse_row {
    const char* source;
    std::string line;
    bf::line_kind kind;
    std::string program, queue_id, value;
    bf::time_point when;
    bool authenticated = false, reinjected = false;
};

}  // namespace

TEST_CASE("lines of every format, and what the join takes from each") {
    const std::vector<parse_row> rows = {
        {"[pf]", "Dec 02 04:42:55 pftest postfix/smtpd[26780]: E069B52A54E: client=unknown[127.0.0.1]",
         bf::line_kind::client, "smtpd", "E069B52A54E", "127.0.0.1", at(2026, 12, 2, 4, 42, 55)},
        {"[pf]", "Dec 02 04:42:55 pftest postfix/cleanup[26783]: E069B52A54E: message-id=<aq.out.1@example.org>",
         bf::line_kind::message_id, "cleanup", "E069B52A54E", "<aq.out.1@example.org>", at(2026, 12, 2, 4, 42, 55)},
        {"[pf]", "Dec 02 04:42:55 pftest postfix/qmgr[26778]: E069B52A54E: from=<alice@example.org>, size=325, nrcpt=1 (queue active)",
         bf::line_kind::envelope, "qmgr", "E069B52A54E", "alice@example.org", at(2026, 12, 2, 4, 42, 55)},
        {"[pf]", "Dec 02 04:42:56 pftest postfix/smtp[26807]: EC10852A557: to=<bob@remote.test>, relay=127.0.0.1[127.0.0.1]:56227, "
                 "delay=0.07, delays=0/0.02/0/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as SINK00001)",
         bf::line_kind::sent, "smtp", "EC10852A557", "bob@remote.test", at(2026, 12, 2, 4, 42, 56)},
        {"[pf]", "Dec 02 04:42:55 pftest postfix/qmgr[26778]: E069B52A54E: removed", bf::line_kind::removed, "qmgr",
         "E069B52A54E", "", at(2026, 12, 2, 4, 42, 55)},
        {"[pf] behind a content filter: the real client is orig_client",
         "Dec 02 04:42:56 pftest postfix/smtpd[26781]: 2060252A557: client=unknown[127.0.0.1], orig_client=mx.remote.test[203.0.113.5]",
         bf::line_kind::client, "smtpd", "2060252A557", "203.0.113.5", at(2026, 12, 2, 4, 42, 56)},
        {"[pf] the filter's re-injection", "Dec 02 04:42:55 pftest postfix/reinject/smtpd[26806]: EC10852A557: client=unknown[127.0.0.1], "
                                           "orig_queue_id=E069B52A54E, orig_client=unknown[127.0.0.1]",
         bf::line_kind::client, "smtpd", "EC10852A557", "127.0.0.1", at(2026, 12, 2, 4, 42, 55), false, true},
        {"[pf] bounced: not sent", "Dec 02 04:42:56 pftest postfix/smtp[26788]: 525E352A55A: to=<alice@example.org>, "
                                   "relay=127.0.0.1[127.0.0.1]:39141, delay=0, delays=0/0/0/0, dsn=5.7.1, status=bounced (host said: 550 5.7.1 no)",
         bf::line_kind::other_postfix, "smtp", "525E352A55A", "", at(2026, 12, 2, 4, 42, 56)},
        {"[sasl][3164]", "Dec  1 22:10:01 mail postfix/submission/smtpd[4711]: 3F2A61E2B9: client=dsl.example.net[198.51.100.23], "
                         "sasl_method=PLAIN, sasl_username=alice@example.org",
         bf::line_kind::client, "smtpd", "3F2A61E2B9", "198.51.100.23", at(2026, 12, 1, 22, 10, 1), true},
        {"[pick][3164]", "Dec  1 22:10:02 mail postfix/pickup[812]: 4B1C71E2BA: uid=1000 from=<alice>", bf::line_kind::pickup,
         "pickup", "4B1C71E2BA", "alice", at(2026, 12, 1, 22, 10, 2)},
        {"[3164] local delivery", "Dec  1 22:10:03 mail postfix/local[900]: 4B1C71E2BA: to=<bob@mail.example.org>, orig_to=<bob>, "
                                  "relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to mailbox)",
         bf::line_kind::sent, "local", "4B1C71E2BA", "bob@mail.example.org", at(2026, 12, 1, 22, 10, 3)},
        {"[file] ISO, zone +01:00", "2026-12-01T23:10:04.123456+01:00 mail postfix/cleanup[901]: 4B1C71E2BA: message-id=<x.1@example.org>",
         bf::line_kind::message_id, "cleanup", "4B1C71E2BA", "<x.1@example.org>", at(2026, 12, 1, 22, 10, 4)},
        {"[file] ISO, Z", "2026-12-01T22:10:05Z mail postfix/qmgr[902]: 4B1C71E2BA: removed", bf::line_kind::removed, "qmgr",
         "4B1C71E2BA", "", at(2026, 12, 1, 22, 10, 5)},
        {"[5424]", "<22>1 2026-12-01T22:10:06.5+00:00 mail postfix/smtp 903 - - 4B1C71E2BA: to=<carol@remote.test>, "
                   "relay=mx.remote.test[203.0.113.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)",
         bf::line_kind::sent, "smtp", "4B1C71E2BA", "carol@remote.test", at(2026, 12, 1, 22, 10, 6)},
        {"[5424] structured data", "<22>1 2026-12-01T22:10:07-05:00 mail postfix/cleanup 904 - [origin ip=\"10.0.0.1\" x=\"a\\]b\"] "
                                   "5C2D81E2BB: message-id=<y.2@example.org>",
         bf::line_kind::message_id, "cleanup", "5C2D81E2BB", "<y.2@example.org>", at(2026, 12, 2, 3, 10, 7)},
        {"long queue ids (enable_long_queue_ids)", "Dec  1 22:10:08 mail postfix/cleanup[905]: 4Lq2Kx0fWsz9sWm: message-id=<z@example.org>",
         bf::line_kind::message_id, "cleanup", "4Lq2Kx0fWsz9sWm", "<z@example.org>", at(2026, 12, 1, 22, 10, 8)},
        {"a warning is no queue id", "Dec  1 22:10:09 mail postfix/smtpd[906]: warning: hostname example.net does not resolve",
         bf::line_kind::other_postfix, "smtpd", "", "", at(2026, 12, 1, 22, 10, 9)},
        {"multi-instance syslog_name", "Dec  1 22:10:10 mail postfix-out/qmgr[907]: 5C2D81E2BB: removed", bf::line_kind::removed,
         "qmgr", "5C2D81E2BB", "", at(2026, 12, 1, 22, 10, 10)},
    };
    for (const auto& r : rows) {
        CAPTURE(r.source);
        CAPTURE(r.line);
        bf::skip_reason why{};
        const auto l = bf::parse_line(r.line, noon_dec_2, {}, why);
        REQUIRE(l.has_value());
        CHECK(l->kind == r.kind);
        CHECK(std::string(l->program) == r.program);
        CHECK(std::string(l->queue_id) == r.queue_id);
        CHECK(std::string(l->value) == r.value);
        CHECK(l->at == r.when);
        CHECK(l->authenticated == r.authenticated);
        CHECK(l->reinjected == r.reinjected);
    }
}

TEST_CASE("lines that are skipped, and why") {
    struct row {
        std::string line;
        bf::skip_reason why;
    };
    const std::vector<row> rows = {
        {"Dec  1 22:10:01 mail postfix/smtpd[1]: 3F2A61E2B9: client=a[1.2.3.4]" + std::string(9000, 'x'), bf::skip_reason::too_long},
        {std::string("Dec  1 22:10:01 mail postfix/smtpd[1]: 3F2A\0" "61E2B9: x", 50), bf::skip_reason::not_text},
        {"Dec  1 22:10:01 mail sshd[77]: Accepted publickey for root", bf::skip_reason::not_postfix},
        {"Dec  1 22:10:01 mail kernel: eth0 up", bf::skip_reason::not_postfix},
        {"", bf::skip_reason::no_header},
        {"Dec", bf::skip_reason::no_header},
        {"Dec  1 22:10", bf::skip_reason::no_header},
        {"Dec 32 22:10:01 mail postfix/smtpd[1]: x", bf::skip_reason::no_header},
        {"Foo  1 22:10:01 mail postfix/smtpd[1]: x", bf::skip_reason::no_header},
        {"9999-12-01T22:10:05Z mail postfix/qmgr[902]: 4B1C71E2BA: removed", bf::skip_reason::no_header},  // past system_clock
        {"2026-13-01T22:10:05Z mail postfix/qmgr[902]: 4B1C71E2BA: removed", bf::skip_reason::no_header},
        {"2026-12-01T22:10:05 mail postfix/qmgr[902]: 4B1C71E2BA: removed", bf::skip_reason::no_header},  // no zone
        {"<22>1 2026-12-01T22:10:06Z mail", bf::skip_reason::no_header},
        {"<22>1 2026-12-01T22:10:06Z mail postfix/smtp 903 - [unterminated", bf::skip_reason::no_header},
        {"<2222>1 2026-12-01T22:10:06Z mail postfix/smtp 903 - - x", bf::skip_reason::no_header},
        {"Dec  1 22:10:01 mail postfix/smtpd[1 x", bf::skip_reason::no_header},
    };
    for (const auto& r : rows) {
        CAPTURE(r.line);
        bf::skip_reason why{};
        CHECK_FALSE(bf::parse_line(r.line, noon_dec_2, {}, why).has_value());
        CHECK(bf::skip_reason_name(why) == bf::skip_reason_name(r.why));
    }
}

TEST_CASE("the year of a syslog line: the reference's, or the one before for a line in its future") {
    struct row {
        const char* line;
        bf::time_point reference, expected;
        std::chrono::seconds offset{0};
    };
    const std::vector<row> rows = {
        {"Dec 31 23:59:59 h postfix/qmgr[1]: ABCDEF1: removed", at(2027, 1, 1, 10, 0, 0), at(2026, 12, 31, 23, 59, 59)},
        {"Jan  1 09:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2027, 1, 1, 10, 0, 0), at(2027, 1, 1, 9, 0, 0)},
        {"Jan  2 09:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2027, 1, 1, 10, 0, 0), at(2027, 1, 2, 9, 0, 0)},  // a day ahead: a skewed clock
        {"Jan  3 09:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2027, 1, 1, 10, 0, 0), at(2026, 1, 3, 9, 0, 0)},
        {"Feb 29 12:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2027, 3, 1, 0, 0, 0), at(2024, 2, 29, 12, 0, 0)},
        {"Feb 29 12:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2028, 3, 1, 0, 0, 0), at(2028, 2, 29, 12, 0, 0)},
        {"Dec  2 09:00:00 h postfix/qmgr[1]: ABCDEF1: removed", at(2026, 12, 2, 12, 0, 0), at(2026, 12, 2, 8, 0, 0), 3600s},  // CET
    };
    for (const auto& r : rows) {
        CAPTURE(r.line);
        bf::skip_reason why{};
        const auto l = bf::parse_line(r.line, {r.reference, r.offset}, {}, why);
        REQUIRE(l.has_value());
        CHECK(l->at == r.expected);
    }
}

namespace {

struct joined {
    std::vector<bf::outbound> out;
    bf::join_counts counts;
};

joined join(const std::vector<std::string>& lines, bf::limits lim = {}) {
    bf::joiner j(ours, noon_dec_2, lim);
    joined r;
    for (const auto& l : lines) j.feed(l, r.out);
    j.finish(r.out);
    r.counts = j.counts();
    return r;
}

std::uint64_t dropped(const joined& r, bf::drop_reason why) { return r.counts.dropped[static_cast<std::size_t>(why)]; }

// One message's lines as Postfix logs them, with the client line given.
std::vector<std::string> message(const std::string& qid, const std::string& origin, const std::string& id,
                                 const std::string& status = "sent") {
    return {"Dec  2 10:00:00 mail postfix/" + origin.substr(0, origin.find('|')) + "[10]: " + qid + ": " + origin.substr(origin.find('|') + 1),
            "Dec  2 10:00:01 mail postfix/cleanup[11]: " + qid + ": message-id=<" + id + ">",
            "Dec  2 10:00:01 mail postfix/qmgr[12]: " + qid + ": from=<alice@example.org>, size=300, nrcpt=2 (queue active)",
            "Dec  2 10:00:02 mail postfix/smtp[13]: " + qid + ": to=<b@remote.test>, relay=mx[203.0.113.9]:25, delay=1, "
                                                             "delays=0/0/0.5/0.5, dsn=2.0.0, status=" + status + " (250 ok)",
            "Dec  2 10:00:03 mail postfix/smtp[13]: " + qid + ": to=<c@remote.test>, relay=mx[203.0.113.9]:25, delay=2, "
                                                             "delays=0/0/0.5/0.5, dsn=2.0.0, status=" + status + " (250 ok)",
            "Dec  2 10:00:04 mail postfix/qmgr[12]: " + qid + ": removed"};
}

std::vector<std::string> without_first(std::vector<std::string> v) {
    v.erase(v.begin());
    return v;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

TEST_CASE("a message from our networks, delivered: one outbound on the day of its first status=sent") {
    const auto r = join(message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "m1@example.org"));
    REQUIRE(r.out.size() == 1);
    CHECK(r.out[0].message_id == "<m1@example.org>");
    CHECK(r.out[0].sender == "alice@example.org");
    CHECK(r.out[0].recipients == std::vector<std::string>{"b@remote.test", "c@remote.test"});
    CHECK(r.out[0].sent_at == at(2026, 12, 2, 10, 0, 2));
    CHECK(r.counts.outbound == 1);
    CHECK(r.counts.lines == 6);
}

TEST_CASE("which messages are ours, and why the others are dropped") {
    struct row {
        const char* what;
        std::vector<std::string> lines;
        std::size_t outbound;
        std::optional<bf::drop_reason> drop;
    };
    const std::vector<row> rows = {
        {"from outside", message("ABCDEF01", "smtpd|client=mx[203.0.113.5]", "in@remote.test"), 0, bf::drop_reason::not_ours},
        {"authenticated from outside", message("ABCDEF01", "smtpd|client=dsl[198.51.100.2], sasl_method=PLAIN, sasl_username=al", "a@x"),
         1, std::nullopt},
        {"local submission", message("ABCDEF01", "pickup|uid=1000 from=<alice>", "p@example.org"), 1, std::nullopt},
        {"Postfix's own bounce (no client line)",
         without_first(message("ABCDEF01", "smtpd|client=x[192.0.2.1]", "b@x")),
         0, bf::drop_reason::origin_unknown},
        {"bounced, never sent", message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "m@x", "bounced"), 0, bf::drop_reason::never_sent},
        {"deferred until it expired", message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "m@x", "deferred"), 0,
         bf::drop_reason::never_sent},
        {"a filter's re-injection",
         message("ABCDEF02", "reinject/smtpd|client=unknown[127.0.0.1], orig_queue_id=ABCDEF01, orig_client=ws[192.0.2.10]", "m@x"), 0,
         bf::drop_reason::reinjected},
        {"inbound, then released by the quarantine from 127.0.0.1",
         message("ABCDEF01", "smtpd|client=mx[203.0.113.5]", "in@remote.test") +
             message("ABCDEF02", "reinject/smtpd|client=unknown[127.0.0.1]", "in@remote.test"),
         0, bf::drop_reason::seen_inbound},
    };
    for (const auto& r : rows) {
        CAPTURE(r.what);
        const auto j = join(r.lines);
        CHECK(j.out.size() == r.outbound);
        if (r.drop) CHECK(dropped(j, *r.drop) == 1);
    }
}

TEST_CASE("a message without a message-id line is dropped as such") {
    auto lines = message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "m@x");
    lines.erase(lines.begin() + 1);
    const auto r = join(lines);
    CHECK(r.out.empty());
    CHECK(dropped(r, bf::drop_reason::no_message_id) == 1);
}

TEST_CASE("a Message-ID longer than the bound is dropped, not cut") {
    const auto r = join(message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", std::string(1200, 'a') + "@x"));
    CHECK(r.out.empty());
    CHECK(dropped(r, bf::drop_reason::no_message_id) == 1);
}

TEST_CASE("a queue id reused after removed is a new message") {
    const auto r = join(message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "one@x") +
                        message("ABCDEF01", "smtpd|client=mx[203.0.113.5]", "two@x") +
                        message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "three@x"));
    REQUIRE(r.out.size() == 2);
    CHECK(r.out[0].message_id == "<one@x>");
    CHECK(r.out[1].message_id == "<three@x>");
}

TEST_CASE("the input ends before removed: a complete message is handed out, an incomplete one counted") {
    auto a = message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "done@x");
    a.pop_back();
    auto b = message("ABCDEF02", "smtpd|client=ws[192.0.2.10]", "waiting@x");
    b.resize(3);  // no delivery yet
    const auto r = join(a + b);
    REQUIRE(r.out.size() == 1);
    CHECK(r.out[0].message_id == "<done@x>");
    CHECK(dropped(r, bf::drop_reason::incomplete_at_end) == 1);
}

TEST_CASE("bounded: queue ids held open, recipients kept") {
    bf::limits lim;
    lim.max_open = 2;
    lim.max_recipients = 1;
    std::vector<std::string> lines;
    for (int i = 0; i < 5; ++i)  // five messages whose lines never complete
        lines.push_back("Dec  2 10:00:00 mail postfix/smtpd[10]: ABCDEF0" + std::to_string(i) + ": client=ws[192.0.2.10]");
    lines = lines + message("ABCDEF10", "smtpd|client=ws[192.0.2.10]", "m@x");
    bf::joiner j(ours, noon_dec_2, lim);
    std::vector<bf::outbound> out;
    for (const auto& l : lines) {
        j.feed(l, out);
        CHECK(j.open() <= 2);
    }
    j.finish(out);
    REQUIRE(out.size() == 1);
    CHECK(out[0].recipients.size() == 1);
    CHECK(j.counts().dropped[static_cast<std::size_t>(bf::drop_reason::evicted)] == 4);
    CHECK(j.counts().dropped[static_cast<std::size_t>(bf::drop_reason::incomplete_at_end)] == 1);
}

TEST_CASE("skipped lines are counted by reason and change nothing") {
    const auto r = join(std::vector<std::string>{std::string(20000, 'A'), std::string("\x01\x02\xff", 3), "garbage",
                                                 "Dec  2 10:00:00 mail dovecot: imap-login: Login"} +
                        message("ABCDEF01", "smtpd|client=ws[192.0.2.10]", "m@x"));
    CHECK(r.out.size() == 1);
    CHECK(r.counts.skipped[static_cast<std::size_t>(bf::skip_reason::too_long)] == 1);
    CHECK(r.counts.skipped[static_cast<std::size_t>(bf::skip_reason::not_text)] == 1);
    CHECK(r.counts.skipped[static_cast<std::size_t>(bf::skip_reason::no_header)] == 1);
    CHECK(r.counts.skipped[static_cast<std::size_t>(bf::skip_reason::not_postfix)] == 1);
}
