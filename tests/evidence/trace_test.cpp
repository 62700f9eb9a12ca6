// The returned trace as evidence: Received lines as Postfix, Exim, Sendmail and Exchange write
// them, the receiver's Authentication-Results and Received-SPF, and the bounds.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/evidence/trace.hpp"

namespace ev = ndrguard::evidence;

namespace doctest {
template <>
struct StringMaker<std::vector<std::string_view>> {
    static String convert(const std::vector<std::string_view>& v) {
        std::string out = "{";
        for (auto s : v) out.append(out.size() > 1 ? ", " : "").append(s);
        return (out + "}").c_str();
    }
};
}  // namespace doctest

namespace {

const ev::trace_settings ours{{"mail.example.org", "192.0.2.10", "relay*.out.example.org"}, {"example.org"}};

std::vector<std::string_view> reasons(std::string_view headers, const ev::trace_settings& s = ours) {
    return ev::read_trace(headers, s).reasons;
}

using tags = std::vector<std::string_view>;

// A genuine message: submitted to our relay, handed by it to the recipient's MX.
const char* genuine =
    "Return-Path: <alice@example.org>\n"
    "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4F2A8\n"
    "\tfor <bob@example.net>; Mon,  2 Mar 2026 09:15:01 +0000 (UTC)\n"
    "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.org;\n"
    "\tdkim=pass header.d=example.org; dmarc=pass header.from=example.org\n"
    "Received: from laptop.example.org (unknown [198.51.100.7])\n"
    "\tby mail.example.org (Postfix) with ESMTPSA id 4F2A81C0031\n"
    "\tfor <bob@example.net>; Mon,  2 Mar 2026 09:15:00 +0000 (UTC)\n"
    "From: Alice <alice@example.org>\n"
    "Message-ID: <20260302091500.4F2A81C0031@mail.example.org>\n";

// Backscatter: a bot used our domain in its From; the recipient's MX checked SPF and DMARC.
const char* forged =
    "Received: from bot.evil.test (dyn-203-0-113-5.evil.test [203.0.113.5])\r\n"
    "\tby mx.example.net (Postfix) with ESMTP id 9A0B1; Mon,  2 Mar 2026 09:20:00 +0000\r\n"
    "Authentication-Results: mx.example.net;\r\n"
    "\tspf=fail (sender IP is 203.0.113.5) smtp.mailfrom=alice@example.org;\r\n"
    "\tdkim=none;\r\n"
    "\tdmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=example.org\r\n"
    "From: \"Alice (our CEO)\" <alice@example.org>\r\n"
    "Subject: invoice\r\n"
    "\r\n"
    "Received: from mail.example.org by nothing after the blank line\r\n";

}  // namespace

TEST_CASE("a genuine trace: it left through our relay, nothing failed") {
    CHECK(reasons(genuine) == tags{"trace.our_relay"});
    const auto e = ev::read_trace(genuine, ours);
    REQUIRE(e.hops.size() == 2);
    CHECK(e.hops[0].from_helo == "mail.example.org");
    CHECK(e.hops[0].from_name == "mail.example.org");
    CHECK(e.hops[0].from_ip == "192.0.2.10");
    CHECK(e.hops[0].by == "mx.example.net");
    CHECK(e.hops[1].from_name.empty());  // Postfix's "unknown"
    CHECK(e.hops[1].by == "mail.example.org");
    CHECK(e.from_domain == "example.org");
}

TEST_CASE("our relay is found by the by host, the looked-up from name, or the IP") {
    CHECK(reasons(genuine, {{"mail.example.org"}, {"example.org"}}) == tags{"trace.our_relay"});
    CHECK(reasons(genuine, {{"192.0.2.10"}, {"example.org"}}) == tags{"trace.our_relay"});
    CHECK(reasons(genuine, {{"MAIL.Example.ORG"}, {"example.org"}}) == tags{"trace.our_relay"});
    CHECK(reasons(genuine, {{"m?il.*.org"}, {"example.org"}}) == tags{"trace.our_relay"});
    // Only the receiver's line names our relay, in its from clause.
    const char* last_hop_only =
        "Received: from relay3.out.example.org (relay3.out.example.org [192.0.2.33]) by mx.example.net; x\n"
        "From: alice@example.org\n";
    CHECK(reasons(last_hop_only) == tags{"trace.our_relay"});
    // No relay of ours configured: the genuine trace says nothing either way.
    CHECK(reasons(genuine, {{}, {"example.org"}}).empty());
}

TEST_CASE("a forged trace: the receiver's SPF and DMARC failed, and it started elsewhere") {
    CHECK(reasons(forged) == tags{"trace.spf_fail", "trace.dmarc_fail", "trace.foreign_origin"});
    const auto e = ev::read_trace(forged, ours);
    REQUIRE(e.hops.size() == 1);  // the line after the blank line is the body
    CHECK(e.hops[0].from_name == "dyn-203-0-113-5.evil.test");
    CHECK(e.hops[0].from_ip == "203.0.113.5");
}

TEST_CASE("a HELO naming our relay proves nothing, and spares the message the foreign origin") {
    const char* helo_lie =
        "Received: from mail.example.org (unknown [203.0.113.5]) by mx.example.net (Postfix); x\n"
        "From: <alice@example.org>\n";
    CHECK(reasons(helo_lie).empty());
}

TEST_CASE("Received lines as the common MTAs write them") {
    struct row {
        const char* what;
        const char* value;
        ev::received_hop want;
    };
    const row rows[] = {
        {"Postfix", " from mail.example.org (mail.example.org [192.0.2.10])\tby mx.example.net (Postfix) with ESMTPS id 4F; Mon, 2 Mar 2026",
         {"mail.example.org", "mail.example.org", "192.0.2.10", "mx.example.net"}},
        {"Postfix, no reverse DNS", " from helo.test (unknown [203.0.113.5]) by mx.example.net (Postfix); x",
         {"helo.test", "", "203.0.113.5", "mx.example.net"}},
        {"Postfix, IPv6", " from mail.example.org (mail.example.org [IPv6:2001:db8::10]) by mx.example.net; x",
         {"mail.example.org", "mail.example.org", "2001:db8::10", "mx.example.net"}},
        {"Exim", " from mail.example.org ([192.0.2.10] helo=smtp.example.org) by mx.example.net with esmtps (Exim 4.96) id 1s; x",
         {"mail.example.org", "mail.example.org", "192.0.2.10", "mx.example.net"}},
        {"Exim, no reverse DNS", " from [203.0.113.5] (helo=mail.example.org) by mx.example.net with esmtp (Exim 4.96); x",
         {"", "", "203.0.113.5", "mx.example.net"}},
        {"Sendmail", " from host.evil.test (host.evil.test [203.0.113.5]) by mx.example.net (8.17.1/8.17.1) with ESMTP id 1; x",
         {"host.evil.test", "host.evil.test", "203.0.113.5", "mx.example.net"}},
        {"Sendmail, HELO differs", " from x.test (HELO y.test) (host.evil.test [203.0.113.5]) by mx.example.net; x",
         {"x.test", "host.evil.test", "203.0.113.5", "mx.example.net"}},
        {"Exchange", " from EXCH01.corp.example.net (10.0.0.5) by EXCH02.corp.example.net (10.0.0.6) with Microsoft SMTP Server id 15.1.2507.39; x",
         {"exch01.corp.example.net", "", "10.0.0.5", "exch02.corp.example.net"}},
        {"local pickup, no from", " by mail.example.org (Postfix, from userid 1000) id 4F2A81C0031; Mon, 2 Mar 2026",
         {"", "", "", "mail.example.org"}},
        {"nested comments and a quoted pair", " from a.test (b.test (c \\) d) [203.0.113.9]) by e.test; x",
         {"a.test", "b.test", "203.0.113.9", "e.test"}},
        {"garbage", " ((((( from by", {"", "", "", ""}},
        {"empty", "", {"", "", "", ""}},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        const auto got = ev::parse_received(r.value);
        CHECK(got.from_helo == r.want.from_helo);
        CHECK(got.from_name == r.want.from_name);
        CHECK(got.from_ip == r.want.from_ip);
        CHECK(got.by == r.want.by);
    }
}

TEST_CASE("the receiver's SPF and DMARC results: the table") {
    struct row {
        const char* what;
        std::string headers;
        tags want;
    };
    const std::string from = "From: alice@example.org\n";
    const row rows[] = {
        {"spf=fail for our mail-from", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=alice@example.org\n",
         {"trace.spf_fail"}},
        {"spf=fail for our domain alone", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=example.org\n",
         {"trace.spf_fail"}},
        {"spf=fail for a subdomain of ours", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=x@eu.example.org\n",
         {"trace.spf_fail"}},
        {"a BATV-tagged mail-from", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=prvs=1431abcdef=alice@example.org\n",
         {"trace.spf_fail"}},
        {"CFWS around '=' and a quoted value",
         "Authentication-Results: mx.example.net 1;\n spf = fail (not permitted)\n smtp.mailfrom = \"alice@example.org\"\n",
         {"trace.spf_fail"}},
        {"a method version", "Authentication-Results: mx.example.net; spf/1=fail smtp.mailfrom=example.org\n",
         {"trace.spf_fail"}},
        {"upper case", "AUTHENTICATION-RESULTS: MX.EXAMPLE.NET; SPF=FAIL SMTP.MAILFROM=ALICE@EXAMPLE.ORG\n",
         {"trace.spf_fail"}},
        {"softfail is not fail", "Authentication-Results: mx.example.net; spf=softfail smtp.mailfrom=example.org\n", {}},
        {"fail for a domain not ours", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=example.com\n", {}},
        {"a look-alike is not ours", "Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=badexample.org\n", {}},
        {"fail of the HELO identity", "Authentication-Results: mx.example.net; spf=fail smtp.helo=example.org\n", {}},
        {"our own relay's results are not the receiver's",
         "Authentication-Results: mail.example.org; spf=fail smtp.mailfrom=example.org; dmarc=fail header.from=example.org\n", {}},
        {"dmarc=fail for our From", "Authentication-Results: mx.example.net; dkim=fail header.d=example.org; dmarc=fail header.from=example.org\n",
         {"trace.dmarc_fail"}},
        {"dmarc=fail for another From", "Authentication-Results: mx.example.net; dmarc=fail header.from=example.com\n", {}},
        {"dmarc=pass", "Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\n", {}},
        {"none", "Authentication-Results: mx.example.net; none\n", {}},
        {"no results at all", "Authentication-Results: mx.example.net\n", {}},
        {"Received-SPF: Fail with our envelope-from",
         "Received-SPF: Fail (mailfrom) identity=mailfrom; client-ip=203.0.113.5; helo=bot.evil.test;\n envelope-from=alice@example.org; receiver=<UNKNOWN>\n",
         {"trace.spf_fail"}},
        {"Received-SPF: fail with a comment and <>",
         "Received-SPF: fail (mx.example.net: domain of alice@example.org does not designate 203.0.113.5 as permitted sender) client-ip=203.0.113.5; envelope-from=<alice@example.org>;\n",
         {"trace.spf_fail"}},
        {"Received-SPF: softfail", "Received-SPF: softfail client-ip=203.0.113.5; envelope-from=alice@example.org\n", {}},
        {"Received-SPF: fail of the HELO", "Received-SPF: fail identity=helo; envelope-from=alice@example.org\n", {}},
        {"Received-SPF: fail, no envelope-from", "Received-SPF: fail (domain of alice@example.org does not designate)\n", {}},
        {"Received-SPF written by our relay", "Received-SPF: fail envelope-from=alice@example.org; receiver=mail.example.org\n", {}},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        CHECK(reasons(r.headers + from) == r.want);
    }
}

TEST_CASE("foreign origin needs our From, a trace, and no host of ours at its start") {
    const std::string bot = "Received: from bot.evil.test (bot.evil.test [203.0.113.5]) by mx.example.net; x\n";
    CHECK(reasons(bot + "From: alice@example.org\n") == tags{"trace.foreign_origin"});
    CHECK(reasons(bot + "From: Alice <alice@eu.example.org>, bob@example.com\n") == tags{"trace.foreign_origin"});
    CHECK(reasons(bot + "From: mallory@example.com\n").empty());  // not our From
    CHECK(reasons(bot).empty());                                   // no From
    CHECK(reasons("From: alice@example.org\n").empty());           // no trace
    // Our user, a host of our domain (not a listed relay) straight to their MX: a path that
    // bypasses our relays, not a forgery.
    CHECK(reasons("Received: from mail2.example.org (mail2.example.org [192.0.2.20]) by mx.example.net; x\n"
                  "From: alice@example.org\n")
              .empty());
    // The oldest line is what counts: submitted to a host of ours, then through a stranger.
    CHECK(reasons("Received: from smarthost.isp.test (smarthost.isp.test [198.51.100.1]) by mx.example.net; x\n"
                  "Received: from laptop (unknown [10.0.0.7]) by mx1.example.org; x\n"
                  "From: alice@example.org\n")
              .empty());
    // The From in a comment is not an address.
    CHECK(reasons(bot + "From: (alice@example.org) mallory@example.com\n").empty());
}

TEST_CASE("bounds: many Received lines, long fields, a large section") {
    std::string many;
    for (int i = 0; i < 150; ++i) many += "Received: from bot.evil.test ([203.0.113.5]) by hop" + std::to_string(i) + ".test; x\n";
    many += "From: alice@example.org\n";
    auto e = ev::read_trace(many, ours);
    CHECK(e.hops.size() == 100);
    CHECK(e.truncated);
    CHECK(e.reasons == tags{"trace.truncated"});  // the oldest line was not read: no origin claimed

    const std::string long_field = "Authentication-Results: mx.example.net; " + std::string(20000, 'x') +
                                   "; spf=fail smtp.mailfrom=example.org\nFrom: alice@example.org\n";
    e = ev::read_trace(long_field, ours);
    CHECK(e.truncated);
    CHECK_FALSE(e.spf_fail);  // past the field's bound

    std::string folded = "Received: from a.test (a.test [203.0.113.1])\n";
    for (int i = 0; i < 5000; ++i) folded += "  (comment)\n";
    folded += "From: alice@example.org\n";
    e = ev::read_trace(folded, ours);
    CHECK(e.truncated);

    ev::trace_limits small;
    small.max_header_bytes = 64;
    e = ev::read_trace(genuine, ours, small);
    CHECK(e.truncated);
    small = {};
    small.max_fields = 2;
    e = ev::read_trace(genuine, ours, small);
    CHECK(e.truncated);
    CHECK(e.hops.size() == 1);
}

TEST_CASE("VBounce-style globs") {
    struct row {
        const char* pattern;
        const char* host;
        bool match;
    };
    const row rows[] = {
        {"mail.example.org", "mail.example.org", true}, {"mail.example.org", "MAIL.EXAMPLE.ORG", true},
        {"mail.example.org", "mail.example.org.evil.test", false}, {"relay*.example.org", "relay12.example.org", true},
        {"relay*.example.org", "relay.example.org", true}, {"relay*.example.org", "relay1.example.com", false},
        {"*.example.org", "example.org", false}, {"*", "anything", true}, {"r?lay", "relay", true},
        {"r?lay", "rlay", false}, {"", "", false}, {"192.0.2.*", "192.0.2.10", true},
        {"a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    };
    for (const auto& r : rows) {
        INFO(r.pattern);
        INFO(r.host);
        CHECK(ev::host_glob_match(r.pattern, r.host) == r.match);
    }
}

TEST_CASE("the reason tags are a fixed set") {
    CHECK(ev::trace_reason_tags() ==
          tags{"trace.our_relay", "trace.spf_fail", "trace.dmarc_fail", "trace.foreign_origin", "trace.truncated"});
}
