#include <doctest/doctest.h>

#include <random>

#include "mime.hpp"
#include "ndrguard/detector/detector.hpp"
#include "ndrguard/digest/compose.hpp"
#include "ndrguard/digest/encode.hpp"

namespace dg = ndrguard::digest;
namespace mime = ndrguard::detector::mime;
using namespace std::chrono_literals;

namespace {

std::string lf(std::string s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
}

std::string unfold(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\r') continue;
        if (v[i] == '\n') continue;  // folding: CRLF then the blank that follows stays
        out += v[i];
    }
    return out;
}

// Every line ends in CRLF and none is longer than `max` characters.
bool crlf_lines_within(const std::string& s, std::size_t max) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n') {
            if (i == 0 || s[i - 1] != '\r') return false;
            if (i - 1 - start > max) return false;
            start = i + 1;
        } else if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) {
            return false;
        }
    }
    return s.size() - start <= max;
}

std::string field(const mime::entity& e, std::string_view name) {
    std::string_view v = e.headers.get(name);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    return unfold(v);
}

dg::clock_time at(const char* iso) {
    std::tm tm{};
    strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

dg::digest_input sample() {
    dg::digest_input in;
    in.mailbox = "alice@example.org";
    in.from = "Mail quarantine <postmaster@example.org>";
    in.message_id = "digest.1.abc@example.org";
    in.now = at("2026-11-30T07:00:00");
    in.digest_id = 1;
    in.links.release = [](std::int64_t id) { return "https://q.example.org/release/item" + std::to_string(id); };
    in.links.release_storm = [](std::int64_t id) { return "https://q.example.org/release-storm/storm" + std::to_string(id); };
    in.links.full_list = "https://q.example.org/held/list";
    in.links.valid_until = at("2026-12-14T12:00:00");
    // Two that may be genuine, outside storms; a storm of 3 held (one unverifiable); 2 forged.
    in.items.push_back({1, at("2026-11-29T14:02:00"), "dsn", "unverifiable", "", "mx.example.net", "Undelivered Mail",
                        "Quarterly report <draft>", "bob@example.net", {}, 0, {}});
    in.items.push_back({2, at("2026-11-29T15:00:00"), "autoreply", "unverifiable", "carol@example.com", "", "Out of office",
                        "Lunch?", "carol@example.com", {}, 0, {}});
    for (int i = 0; i < 3; ++i)
        in.items.push_back({10 + i, at("2026-11-29T02:30:00"), "dsn", i == 0 ? "unverifiable" : "forged", "", "mx1.spam.test",
                            "Undelivered", "Cheap watches", "x@spam.test", {"storm"}, 7, {}});
    in.items.push_back({20, at("2026-11-29T20:00:00"), "autoreply", "forged", "x@spam.test", "mx9.spam.test", "Re: offer", "Pills", "", {}, 0, {}});
    in.items.push_back({21, at("2026-11-29T21:00:00"), "autoreply", "forged", "x@spam.test", "mx9.spam.test", "Re: offer", "Pills", "", {}, 0, {}});
    in.storms.push_back({7, at("2026-11-29T02:00:00"), at("2026-11-29T04:00:00"), 1243, 1240,
                         {{"mx1.spam.test", 800}, {"mx2.spam.test", 443}}, {"Cheap watches", "Rolex <b>sale</b>"}});
    return in;
}

}  // namespace

TEST_CASE("header text: ASCII stays as it is, the rest becomes encoded words that decode back") {
    CHECK(dg::encode_header_text("3 bounces held for alice@example.org", 9) == "3 bounces held for alice@example.org");
    // "=?" would be read as an encoded word: it is encoded.
    CHECK(dg::encode_header_text("a =?x?= b", 9) != "a =?x?= b");
    const std::string text = "Zurückgehaltene Nachrichten für jürgen: 1 234 Rückläufer, 日本語のテキスト, ok";
    const std::string enc = dg::encode_header_text(text, 9);
    CHECK(enc.find("=?UTF-8?Q?") == 0);
    CHECK(mime::decode_rfc2047(unfold(enc)) == text);
    CHECK(crlf_lines_within("Subject: " + enc, 78));

    std::mt19937 rng(42);
    const std::vector<std::string> pieces = {"a", "Z", " ", "é", "€", "😀", "日", "=", "?", "_", "\t", "\x01", "\xff"};
    for (int round = 0; round < 500; ++round) {
        std::string s;
        const int n = static_cast<int>(rng() % 120);
        for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
        const std::string e = dg::encode_header_text(s, 9);
        REQUIRE_MESSAGE(crlf_lines_within("Subject: " + e, 78), s);
        // Invalid bytes (\xff) come back as U+FFFD; everything else exactly.
        std::string expected;
        for (std::size_t i = 0; i < s.size(); ++i) expected += s[i] == '\xff' ? std::string("\xef\xbf\xbd") : std::string(1, s[i]);
        CHECK_MESSAGE(mime::decode_rfc2047(unfold(e)) == expected, e);
    }
}

TEST_CASE("quoted-printable: short CRLF lines that decode back to the text") {
    std::mt19937 rng(7);
    const std::vector<std::string> pieces = {"word ", "é", "=", " ", "\t", "\n", "From ", ".", "x", "€€€€€€€€€€€€€€€€€"};
    for (int round = 0; round < 500; ++round) {
        std::string s;
        const int n = static_cast<int>(rng() % 200);
        for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
        const std::string qp = dg::quoted_printable(s);
        REQUIRE_MESSAGE(crlf_lines_within(qp, 76), s);
        CHECK(qp.find("\nFrom ") == std::string::npos);
        std::uint32_t flags = 0;
        CHECK_MESSAGE(mime::decode_quoted_printable(lf(qp), flags) == s, qp);
        CHECK(flags == 0);
        // No blank at the end of an encoded line (mail systems strip them).
        CHECK(qp.find(" \r\n") == std::string::npos);
        CHECK(qp.find("\t\r\n") == std::string::npos);
    }
}

TEST_CASE("grouping: what may be genuine one by one, storms as groups, forged counted") {
    auto in = sample();
    auto g = dg::group_items(in);
    CHECK(g.total == 7);
    REQUIRE(g.maybe_genuine.size() == 2);
    CHECK(g.maybe_genuine[0]->id == 1);
    CHECK(g.maybe_genuine[1]->id == 2);
    REQUIRE(g.storms.size() == 1);
    CHECK(g.storms[0].held == 3);
    CHECK(g.storms[0].maybe_genuine == 1);
    CHECK(g.storms[0].release_all_link == "https://q.example.org/release-storm/storm7");
    CHECK(g.forged == 2);
    REQUIRE(g.forged_reporters.size() == 1);
    CHECK(g.forged_reporters[0] == std::pair<std::string, std::int64_t>("mx9.spam.test", 2));
    in.items[5].reporting_mta.clear();  // a reply names no MTA: its sender stands for it
    CHECK(dg::group_items(in).forged_reporters.size() == 2);

    in.max_listed = 1;
    g = dg::group_items(in);
    CHECK(g.maybe_genuine.size() == 1);
    CHECK(g.maybe_genuine_total == 2);
    CHECK(dg::with_thousands(1243) == "1,243");
    CHECK(dg::with_thousands(999) == "999");
    CHECK(dg::with_thousands(1000000) == "1,000,000");
}

TEST_CASE("the digest mail: multipart/alternative, UTF-8 text and HTML, links, escaped, not a bounce itself") {
    auto in = sample();
    in.items[1].original_subject = "Mittagessen? Grüße";
    const dg::digest_mail mail = dg::compose_digest(in);
    CHECK(mail.subject == "7 bounces held for alice@example.org: 2 may be yours");
    CHECK(crlf_lines_within(mail.message, 998));

    const std::string msg = lf(mail.message);
    ndrguard::detector::limits lim;
    mime::mime_document doc(msg, lim);
    REQUIRE(doc.entities().size() == 3);
    const auto& top = doc.entities()[0];
    CHECK(top.type.is("multipart", "alternative"));
    CHECK(field(top, "MIME-Version") == "1.0");
    CHECK(field(top, "Auto-Submitted") == "auto-generated");
    CHECK(field(top, "Message-ID") == "<digest.1.abc@example.org>");
    CHECK(field(top, "To") == "<alice@example.org>");
    CHECK(mime::decode_rfc2047(field(top, "Subject")) == mail.subject);
    CHECK(top.headers.has("Date"));

    const auto& text = doc.entities()[1];
    const auto& html = doc.entities()[2];
    CHECK(text.type.is("text", "plain"));
    CHECK(text.type.param("charset") == "utf-8");
    CHECK(html.type.is("text", "html"));
    const std::string text_body(doc.decoded_body(text));
    const std::string html_body(doc.decoded_body(html));
    CHECK(text_body == mail.text);
    CHECK(html_body == mail.html);

    // May be yours first, then the storm, then the forged ones, then the full list.
    const auto first = text_body.find("MAY BE YOURS (2)");
    const auto storm = text_body.find("STORM: 1,243 bounces for mail you did not send, 2026-11-29 02:00-04:00 UTC");
    const auto forged = text_body.find("FORGED: 2 bounces");
    const auto list = text_body.find("https://q.example.org/held/list");
    CHECK(first != std::string::npos);
    CHECK(storm != std::string::npos);
    CHECK(forged != std::string::npos);
    CHECK(list != std::string::npos);
    CHECK((first < storm && storm < forged && forged < list));
    CHECK(text_body.find("Your message: \"Quarterly report <draft>\" to bob@example.net") != std::string::npos);
    CHECK(text_body.find("Mittagessen? Grüße") != std::string::npos);
    CHECK(text_body.find("2026-11-29 14:02 UTC, from mx.example.net") != std::string::npos);
    CHECK(text_body.find("2026-11-29 15:00 UTC, from carol@example.com") != std::string::npos);
    CHECK(text_body.find("Release: https://q.example.org/release/item1") != std::string::npos);
    CHECK(text_body.find("Release: https://q.example.org/release/item2") != std::string::npos);
    // Items of the storm and forged ones have no link of their own.
    CHECK(text_body.find("release/item10") == std::string::npos);
    CHECK(text_body.find("release/item20") == std::string::npos);
    CHECK(text_body.find("Top reporting MTAs: mx1.spam.test (800), mx2.spam.test (443)") != std::string::npos);
    CHECK(text_body.find("Release all 3: https://q.example.org/release-storm/storm7") != std::string::npos);
    CHECK(text_body.find("1,240 refused outright") != std::string::npos);

    // HTML: every subject escaped, the links in attributes.
    CHECK(html_body.find("Quarterly report &lt;draft&gt;") != std::string::npos);
    CHECK(html_body.find("<draft>") == std::string::npos);
    CHECK(html_body.find("Rolex &lt;b&gt;sale&lt;/b&gt;") != std::string::npos);
    CHECK(html_body.find("href=\"https://q.example.org/release-storm/storm7\"") != std::string::npos);
    CHECK(html_body.find("<meta name=\"viewport\"") != std::string::npos);

    // The digest must not look like backscatter to the detector.
    const auto r = ndrguard::detector::classify(mail.message);
    CHECK(r.klass == ndrguard::detector::message_class::not_bounce);
}

TEST_CASE("a non-ASCII display name in From: is encoded") {
    auto in = sample();
    in.from = "Quarantäne <postmaster@example.org>";
    const std::string msg = lf(dg::compose_digest(in).message);
    ndrguard::detector::limits lim;
    mime::mime_document doc(msg, lim);
    const std::string from = field(doc.entities()[0], "From");
    CHECK(from.find("=?UTF-8?Q?Quarant=C3=A4ne?= <postmaster@example.org>") == 0);
}

TEST_CASE("a suspect item (missing from the sent log, of ours by its evidence) says it may be genuine") {
    ndrguard::digest::held_item it;
    it.klass = "dsn";
    it.verification = "suspect";
    it.evidence = {"sent_log.missing", "trace.our_relay"};
    CHECK(ndrguard::digest::plain_reason(it) ==
          "a delivery failure notice that may be genuine: it is about a message with no record here, but it passed through our "
          "mail server; check it");
    it.evidence = {"sent_log.missing", "dkim.fail"};
    CHECK(ndrguard::digest::plain_reason(it).find("it carries our signature") != std::string::npos);
    it.verification = "forged";
    CHECK(ndrguard::digest::plain_reason(it) == "a delivery failure notice about a message that was never sent from here");
}
