// The reply table: every entry well formed, in the order of its ids, and the README's copy of it
// the same as the code's (so the two cannot drift).
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "ndrguard/smtp/replies.hpp"

using namespace ndrguard::smtp;

TEST_CASE("every reply in the table is well formed") {
    std::set<std::string_view> names;
    std::size_t i = 0;
    for (const auto& e : reply_table()) {
        CAPTURE(e.name);
        CHECK(static_cast<std::size_t>(e.id) == i++);  // reply_of() indexes by id
        CHECK(names.insert(e.name).second);
        CHECK(e.code >= 200);
        CHECK(e.code < 600);
        if (!e.enhanced.empty()) {  // RFC 3463: class.subject.detail, the class that of the code
            CHECK(e.enhanced.size() >= 5);
            CHECK(e.enhanced[0] == char('0' + e.code / 100));
            CHECK(e.enhanced[1] == '.');
            CHECK(e.enhanced.find_first_not_of("0123456789.") == std::string_view::npos);
            CHECK(std::count(e.enhanced.begin(), e.enhanced.end(), '.') == 2);
        }
        CHECK(e.text.find_first_of("\r\n") == std::string_view::npos);
        CHECK(e.when.find_first_of("\r\n|") == std::string_view::npos);
        CHECK(e.text.find('|') == std::string_view::npos);
        CHECK_FALSE(e.when.empty());
        const std::string line = render(e.id, "mx.example", "detail");
        CHECK(line.substr(0, 3) == std::to_string(e.code));
        CHECK(line.find('{') == std::string::npos);
    }
    CHECK(i == static_cast<std::size_t>(reply_id::next_hop_refused_connection) + 1);
}

TEST_CASE("rendering fills in the host and the detail, on one line") {
    CHECK(render(reply_id::greeting, "mx.example") == "220 mx.example ESMTP ndrguard");
    CHECK(render(reply_id::helo_syntax) == "501 Syntax: HELO hostname");
    CHECK(render(reply_id::queued, {}, "4F2A8") == "250 2.0.0 Ok: queued as 4F2A8");
    CHECK(render(reply_id::service_busy, "mx.example") == "421 4.3.2 mx.example Service busy, try again later");
    CHECK(render(reply_id::next_hop_unreachable, {}, "a\r\nb") == "451 4.3.0 Error: cannot reach the next hop: a  b");
    CHECK(render(reply_id::next_hop_refusal_kept, {}, "550 5.1.1 x", "4.1.1") ==
          "451 4.1.1 Error: next hop answered 550 5.1.1 x (not bounced after queue: the message stays queued)");
}

TEST_CASE("the README's reply table is the code's") {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/README.md");
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string readme = ss.str();
    const std::string begin = "<!-- reply table: generated from smtp/src/replies.cpp -->\n", end = "<!-- end of reply table -->";
    const auto b = readme.find(begin), e = readme.find(end);
    REQUIRE(b != std::string::npos);
    REQUIRE(e != std::string::npos);
    const std::string in_readme = readme.substr(b + begin.size(), e - b - begin.size());
    if (in_readme != reply_table_markdown())
        MESSAGE("README.md's reply table differs from the code; the table to paste:\n" << reply_table_markdown());
    CHECK(in_readme == reply_table_markdown());
}
