#include <doctest/doctest.h>

#include "ndrguard/filter/message_edit.hpp"

using namespace ndrguard::filter;

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
