// Unit tests of the detector's small pure pieces: id normalisation, mbox splitting, class
// names, and the MIME helpers that the classification stands on.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "mime.hpp"
#include "ndrguard/detector/detector.hpp"
#include "ndrguard/detector/mbox.hpp"
#include "phrase_scanner.hpp"
#include "references.hpp"
#include "text.hpp"

namespace det = ndrguard::detector;

TEST_CASE("normalize_message_id") {
    CHECK(det::normalize_message_id("<Abc.1@Mail.Example.COM>") == "Abc.1@mail.example.com");
    CHECK(det::normalize_message_id("  <abc@example.org> (sent by the gateway)") == "abc@example.org");
    CHECK(det::normalize_message_id("(comment) <abc@example.org>") == "abc@example.org");
    CHECK(det::normalize_message_id("<abc@exa\r\n mple.org>") == "abc@example.org");  // folded inside
    CHECK(det::normalize_message_id("abc@Example.org") == "abc@example.org");          // no brackets
    CHECK(det::normalize_message_id("<CaSe@example.org>") != det::normalize_message_id("<case@example.org>"));
    CHECK(det::normalize_message_id("<\"a b\"@example.org>") == "\"a b\"@example.org");
    // Ids without a domain, as broken mailers write them, are kept when they look like ids.
    CHECK(det::normalize_message_id("<8A6111E4-DE55-49BA-B773-FCB9A9A77AC4example.jp>") ==
          "8A6111E4-DE55-49BA-B773-FCB9A9A77AC4example.jp");
    CHECK(det::normalize_message_id("20140913142357") == "20140913142357");
    // Garbage gives nothing.
    CHECK(det::normalize_message_id("").empty());
    CHECK(det::normalize_message_id("<>").empty());
    CHECK(det::normalize_message_id("not an id").empty());
    CHECK(det::normalize_message_id("undisclosed").empty());
    CHECK(det::normalize_message_id("<@example.org>").empty());
    CHECK(det::normalize_message_id("<abc@>").empty());
}

TEST_CASE("references: ids in a References-like value, hosts in Received") {
    auto ids = det::refs::message_ids_in("<a@x.example> <B@X.Example>\r\n <a@x.example>");
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == "a@x.example");
    CHECK(ids[1] == "B@x.example");
    auto hosts = det::refs::received_hosts("from mail.example.org (mail.example.org [192.0.2.1]) by mx.example.net "
                                           "(Postfix) with ESMTP id 4F2A8");
    CHECK(std::find(hosts.begin(), hosts.end(), "mail.example.org") != hosts.end());
    CHECK(std::find(hosts.begin(), hosts.end(), "mx.example.net") != hosts.end());
}

TEST_CASE("message classes: names round trip, is_bounce") {
    using mc = det::message_class;
    for (auto c : {mc::not_bounce, mc::dsn, mc::ndr, mc::autoreply, mc::challenge, mc::virus_notice, mc::mdn,
                   mc::feedback}) {
        auto parsed = det::parse_message_class(det::to_string(c));
        REQUIRE(parsed.has_value());
        CHECK(*parsed == c);
    }
    CHECK_FALSE(det::parse_message_class("bounce").has_value());
    CHECK(det::is_bounce(mc::dsn));
    CHECK(det::is_bounce(mc::feedback));
    CHECK(det::is_bounce(mc::virus_notice));
    CHECK_FALSE(det::is_bounce(mc::not_bounce));
    CHECK_FALSE(det::is_bounce(mc::mdn));
}

TEST_CASE("mbox splitting: LF, CRLF, lone CR and .eml files") {
    const std::string lf = "From a@x Mon Mar  2 10:00:00 2026\nSubject: one\n\nbody\n>From quoted\n\n"
                           "From b@x Mon Mar  2 10:01:00 2026\nSubject: two\n\nbody two\n";
    CHECK(det::looks_like_mbox(lf));
    auto m = det::split_mbox(lf);
    REQUIRE(m.size() == 2);
    CHECK(m[0].substr(0, 13) == "Subject: one\n");
    CHECK(m[0].find(">From quoted") != std::string_view::npos);
    CHECK(m[1].substr(0, 13) == "Subject: two\n");

    std::string crlf;
    for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    CHECK(det::split_mbox(crlf).size() == 2);
    std::string cr = lf;
    for (char& c : cr) if (c == '\n') c = '\r';
    CHECK(det::split_mbox(cr).size() == 2);

    CHECK(det::messages_in_file(lf, "box").size() == 2);
    auto one = det::messages_in_file(lf, "message.EML");  // a .eml file is one message
    REQUIRE(one.size() == 1);
    CHECK(one[0].substr(0, 13) == "Subject: one\n");
    CHECK(det::messages_in_file("Subject: x\n\ny\n", "box").size() == 1);
    CHECK(det::split_mbox(lf, 1).size() == 1);  // bounded
    CHECK_FALSE(det::looks_like_mbox("From: a@x\n\n"));
}

namespace {

// The messages mbox_stream gives for `data` fed in chunks of `chunk` bytes (0: all at once).
std::vector<std::pair<std::string, std::size_t>> streamed(std::string_view data, std::size_t chunk, std::size_t max_bytes) {
    std::vector<std::pair<std::string, std::size_t>> out;
    det::mbox_stream s(max_bytes);
    auto sink = [&](std::string_view m, std::size_t full) { out.emplace_back(std::string(m), full); };
    if (chunk == 0) chunk = data.size() + 1;
    for (std::size_t i = 0; i < data.size(); i += chunk) s.feed(data.substr(i, chunk), sink);
    s.finish(sink);
    return out;
}

}  // namespace

TEST_CASE("mbox_stream gives split_mbox's messages whatever the chunks, cut to its bound") {
    // A table of the edge cases, then pseudo-random mboxes made of the tokens that matter.
    std::vector<std::string> inputs = {
        "From a\n", "From a", "From a\r", "From a\r\n", "From a\r\r", "From a\nx", "From a\n\nFrom b\n",
        "From a\nx\nFrom b\n", "From a\n\nFrom", "From a\n\nFrom b", "From a\r\n\r\nFrom b\r\nbody\r\n",
        "From a\rSubject: x\r\rFrom b\rbody\r", "From a\n\n>From b\n\nFrom c\n", "From a\n\r\nFrom b\n",
        "From a\nFrom b\n\n\nFrom c\nx", "From a\n\nFrom \n\nFrom x"};
    unsigned seed = 12345;
    const char* tokens[] = {"From ", "From", "\n", "\r", "\r\n", "x", ">From ", " ", "F", "\n\n"};
    for (int n = 0; n < 400; ++n) {
        std::string s = "From x";
        for (int k = 0; k < 40; ++k) {
            seed = seed * 1103515245u + 12345u;
            s += tokens[(seed >> 16) % 10];
        }
        inputs.push_back(s);
    }
    for (const auto& in : inputs) {
        auto expected = det::split_mbox(in);
        for (std::size_t chunk : {0u, 1u, 2u, 3u, 5u, 7u}) {
            for (std::size_t cap : {std::size_t(1) << 20, std::size_t(4)}) {
                auto got = streamed(in, chunk, cap);
                REQUIRE_MESSAGE(got.size() == expected.size(), "input=" << in << " chunk=" << chunk);
                for (std::size_t i = 0; i < got.size(); ++i) {
                    CHECK_MESSAGE(got[i].first == std::string(expected[i].substr(0, cap)), "input=" << in << " chunk=" << chunk);
                    CHECK(got[i].second == expected[i].size());
                }
            }
        }
    }
}

TEST_CASE("MIME helpers") {
    std::uint32_t flags = 0;
    CHECK(det::mime::decode_base64("SGVsbG8sIHdvcmxk\nIQ==", flags) == "Hello, world!");
    CHECK(flags == 0);
    CHECK(det::mime::decode_quoted_printable("caf=C3=A9 =\nsoft break", flags) == "caf\xc3\xa9 soft break");
    CHECK(det::mime::decode_rfc2047("=?ISO-8859-1?Q?f=FCr?= =?UTF-8?B?TcOkcno=?=") == "f\xc3\xbcrM\xc3\xa4rz");
    CHECK(det::mime::decode_rfc2047("plain text") == "plain text");
    auto ct = det::mime::parse_content_type("multipart/report; report-type=\"delivery-status\";\r\n boundary=\"a;b\"");
    CHECK(ct.is("multipart", "report"));
    CHECK(ct.param("report-type") == "delivery-status");
    CHECK(ct.param("boundary") == "a;b");
    auto ct2231 = det::mime::parse_content_type("text/plain; name*=utf-8''r%C3%A9sum%C3%A9.txt");
    CHECK(ct2231.param("name") == "r\xc3\xa9sum\xc3\xa9.txt");
    std::string text = det::mime::html_to_text("<p>Delivery&nbsp;has <b>failed</b></p><br>to bob@example.net");
    CHECK(text.find("failed") != std::string::npos);
    CHECK(text.find("<b>") == std::string::npos);
}

TEST_CASE("phrase_scanner counts distinct phrases per list, in one pass") {
    static constexpr std::string_view a[] = {"could not be delivered", "mailbox full", "user unknown"};
    static constexpr std::string_view b[] = {"original message", "copy of the message"};
    det::phrase_scanner s({a, b});
    auto hits = s.count("your message could not be delivered: user unknown. user unknown. a copy of the message");
    REQUIRE(hits.size() == 2);
    CHECK(hits[0] == 2);
    CHECK(hits[1] == 1);
    auto none = s.count("nothing to see");
    CHECK(none[0] == 0);
    CHECK(none[1] == 0);
    CHECK(s.count("us")[0] == 0);  // shorter than any phrase
    CHECK(s.count("user unknown")[0] == 1);  // a phrase that ends the text
}

TEST_CASE("the envelope's null sender is one signal, not a verdict") {
    const std::string personal = "From: carol@example.net\nTo: alice@example.org\nSubject: lunch\n\nFriday?\n";
    CHECK(det::classify(personal, det::envelope{std::string()}).klass == det::message_class::not_bounce);
    const std::string ndr_text =
        "From: someone@example.net\nTo: alice@example.org\nSubject: Undeliverable: report\n\n"
        "Your message could not be delivered to bob@example.net.\n";
    auto with_null = det::classify(ndr_text, det::envelope{std::string("<>")});
    CHECK(with_null.klass == det::message_class::ndr);
    CHECK(std::find(with_null.reasons.begin(), with_null.reasons.end(), "envelope.null_sender") != with_null.reasons.end());
}

TEST_CASE("to_lower_utf8 folds the capitals of the phrase tables' scripts and keeps every offset") {
    namespace t = ndrguard::detector::text;
    const std::pair<std::string, std::string> table[] = {
        {"Réponse AUTOMATIQUE", "réponse automatique"},
        {"Odpowiedź ŁÓDŹ ŚĆŃĄĘ", "odpowiedź łódź śćńąę"},
        {"Automatická ODPOVĚĎ ŘŠŽŮ", "automatická odpověď řšžů"},
        {"Автоматический ОТВЕТ Ёж", "автоматический ответ ёж"},
        {"ΑΥΤΌΜΑΤΗ", "αυτόματη"},  // Ό (U+038C) is outside the folded block: kept
        {"Otomatik YANIT ŞĞ İ", "otomatik yanit şğ İ"},
        {"ŸÉ ŽŹĹ ĸŉ", "ÿé žźĺ ĸŉ"},  // the odd/even blocks and the small letters without capitals  // İ has no one-byte-pair small form: kept
        {"自動応答 자동 응답", "自動応答 자동 응답"},
        {std::string("broken \xC3", 8), std::string("broken \xC3", 8)},
        {"\xD0\x41", "\xD0\x61"},  // a lead byte without its continuation: only the ASCII folds
    };
    for (const auto& [in, want] : table) {
        CAPTURE(in);
        std::string got = t::to_lower_utf8(in);
        CHECK(got.size() == in.size());
        if (in.find("\xCE\x8C") == std::string::npos) CHECK(got == want);
    }
}

TEST_CASE("addresses as reports write them: type prefixes, X.400, IMCEA, trailing junk") {
    namespace t = ndrguard::detector::text;
    const std::pair<std::string_view, std::string_view> table[] = {
        {"<mailto:bob@Example.NET>", "bob@example.net"},
        {"Bob Example<mailto:bob@example.net>", "bob@example.net"},
        {"SMTP:bob@example.net", "bob@example.net"},
        {"c=US;a= ;p=Example;o=Mail;dda:SMTP=bob@example.com;", "bob@example.com"},
        {"rfc822;IMCEASMTP-bob+40example+2Enet@ex.example.com", "bob@example.net"},
        {"rfc822;IMCEAEX-_O=EX_CN=RECIPIENTS_CN=CAROL@EX.example.com", "IMCEAEX-_O=EX_CN=RECIPIENTS_CN=CAROL@ex.example.com"},
        {"IMCEASMTP-nothing+40@gw.example", "IMCEASMTP-nothing+40@gw.example"},  // no address inside: kept
        {"IMCEASMTP-a+0Ab+40x.example@gw.example", "IMCEASMTP-a+0Ab+40x.example@gw.example"},  // a line break inside: kept
        {"IMCEASMTP-IMCEASMTP-a+2B40b+40c.example@gw.example", "IMCEASMTP-a+40b@c.example"},  // unwrapped once only
        {"kijitora@example.jp!", "kijitora@example.jp"},
        {"<bob@[192.0.2.1]>", "bob@[192.0.2.1]"},
        {"mailto:@example.net", ""},
    };
    for (const auto& [in, want] : table) {
        CAPTURE(in);
        CHECK(t::extract_address(in) == want);
    }
}
