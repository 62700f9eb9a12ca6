#include <doctest/doctest.h>

#include "ndrguard/smtp/message_edit.hpp"

using namespace ndrguard::smtp;

TEST_CASE("headers: find, read folded values, add on top, make ids") {
    const std::string m = "From: a@example.org\r\nMessage-Id:\r\n <x.1@example.org>\r\nSubject : s\r\n\r\nMessage-ID: <body@x>\r\n";
    CHECK(header_section(m) == "From: a@example.org\r\nMessage-Id:\r\n <x.1@example.org>\r\nSubject : s\r\n");
    CHECK(has_header(m, "message-id"));
    CHECK(has_header(m, "Subject"));  // obsolete "Name :" form
    CHECK_FALSE(has_header(m, "To"));
    CHECK_FALSE(has_header("From: a\r\n\r\nTo: b\r\n", "To"));  // only the header section counts
    CHECK(header_value(m, "Message-ID") == "<x.1@example.org>");
    CHECK(header_value(m, "To").empty());
    CHECK(with_header_on_top("A: b\r\n\r\nx", "X-NDRGuard", "verified") == "X-NDRGuard: verified\r\nA: b\r\n\r\nx");
    auto id = make_message_id(std::chrono::sys_days(std::chrono::year(2026) / 3 / 2) + std::chrono::hours(9), 0xabcULL,
                              "mail.example.org");
    CHECK(id == "<20260302T090000.0000000000000abc@mail.example.org>");
}

TEST_CASE("remove_fields: every field of ours goes, folded lines too; nothing else changes") {
    struct {
        const char* name;
        std::string in, want;
        std::size_t removed;
    } cases[] = {
        {"none of ours: unchanged", "From: a\r\nSubject: s\r\n\r\nbody\r\n", "From: a\r\nSubject: s\r\n\r\nbody\r\n", 0},
        {"forged verdict", "X-NDRGuard: verified msgid=<x>\r\nFrom: a\r\n\r\nb\r\n", "From: a\r\n\r\nb\r\n", 1},
        {"any case", "From: a\r\nx-ndrguard: verified\r\nX-NDRGUARD-RELEASED: id=1\r\n\r\nb\r\n", "From: a\r\n\r\nb\r\n", 2},
        {"folded continuation lines",
         "From: a\r\nX-NDRGuard: verified\r\n msgid=<x>\r\n\treasons=y\r\nSubject: s\r\n\r\nb\r\n", "From: a\r\nSubject: s\r\n\r\nb\r\n", 1},
        {"obsolete 'Name :' form", "X-NDRGuard : verified\r\nFrom: a\r\n\r\nb\r\n", "From: a\r\n\r\nb\r\n", 1},
        {"several, the last one at the end of the header",
         "X-NDRGuard: a\r\nFrom: a\r\nX-NDRGuard: b\r\n  more\r\n\r\nb\r\n", "From: a\r\n\r\nb\r\n", 2},
        {"a longer name of the same start stays", "X-NDRGuard-Other: x\r\nX-NDRGuardian: y\r\n\r\nb\r\n",
         "X-NDRGuard-Other: x\r\nX-NDRGuardian: y\r\n\r\nb\r\n", 0},
        {"ours in the body only stays", "From: a\r\n\r\nX-NDRGuard: verified\r\nX-NDRGuard-Released: id=1\r\n",
         "From: a\r\n\r\nX-NDRGuard: verified\r\nX-NDRGuard-Released: id=1\r\n", 0},
        {"a returned message's header (in the body) stays",
         "X-NDRGuard: forged\r\nContent-Type: message/rfc822\r\n\r\nX-NDRGuard: verified\r\n\r\nx\r\n",
         "Content-Type: message/rfc822\r\n\r\nX-NDRGuard: verified\r\n\r\nx\r\n", 1},
        {"bare LF lines", "X-NDRGuard: v\n x\nFrom: a\n\nb\n", "From: a\n\nb\n", 1},
        {"no body", "From: a\r\nX-NDRGuard: v\r\n", "From: a\r\n", 1},
        {"only ours", "X-NDRGuard: v\r\n\r\nb", "\r\nb", 1},
        {"empty message", "", "", 0},
    };
    for (auto& c : cases) {
        CAPTURE(c.name);
        std::string m = c.in;
        CHECK(remove_fields(m, {"X-NDRGuard", "X-NDRGuard-Released"}) == c.removed);
        CHECK(m == c.want);
    }
    std::string m = "X-Verdict: v\r\nX-NDRGuard: kept\r\n\r\n";  // the configured name, not ours by default
    CHECK(remove_fields(m, {"X-Verdict", "X-NDRGuard-Released"}) == 1);
    CHECK(m == "X-NDRGuard: kept\r\n\r\n");
}
