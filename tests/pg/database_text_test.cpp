// The pure text work of the database layer, no server: the UTF-8 check and the reversible text
// escape of sql_text.hpp, mailboxes as stored, and the deadlines added to a connection string
// (over libpq's own parser).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>
#include <string>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sql_text.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace q = ndrguard::quarantine;

TEST_CASE("UTF-8 mailboxes as stored: unchanged, and still two (issue 13 item 4)") {
    const std::string joerg = "J\xc3\xb6rg@Example.ORG", juerg = "j\xc3\xbcrg@example.org";
    // As stored: unchanged, and still two.
    CHECK(q::to_db_text(q::mailbox_key(joerg)) == q::mailbox_key(joerg));
    CHECK(q::to_db_text(q::mailbox_key(joerg)) != q::to_db_text(q::mailbox_key(juerg)));
}

TEST_CASE("well-formed UTF-8, as PostgreSQL checks it (RFC 3629)") {
    CHECK(q::valid_utf8(""));
    CHECK(q::valid_utf8("plain ascii"));
    CHECK(q::valid_utf8("j\xc3\xb6rg \xe2\x82\xac \xf0\x9f\x93\xa7 \xf4\x8f\xbf\xbf"));  // ö € 📧 U+10FFFF
    CHECK(q::valid_utf8(std::string("a\0b", 3)));  // NUL is UTF-8 (refused separately where it matters)
    const char* bad[] = {
        "\x80",                  // a lone continuation byte
        "\xc3",                  // truncated
        "\xc3(",                 // bad continuation
        "\xc0\xaf",             // overlong '/'
        "\xc1\xbf",             // overlong
        "\xe0\x80\xaf",        // overlong, three bytes
        "\xf0\x80\x80\xaf",   // overlong, four bytes
        "\xed\xa0\x80",        // surrogate U+D800
        "\xed\xbf\xbf",        // surrogate U+DFFF
        "\xf4\x90\x80\x80",   // above U+10FFFF
        "\xf5\x80\x80\x80",   // F5..FF never appear
        "\xff",
        "\xe2\x82",             // truncated €
    };
    for (const char* b : bad) {
        CAPTURE(std::string(b));
        CHECK_FALSE(q::valid_utf8(b));
    }
    CHECK(q::valid_utf8("\xed\x9f\xbf"));  // U+D7FF, just below the surrogates
    CHECK(q::valid_utf8("\xee\x80\x80"));  // U+E000, just above
}

TEST_CASE("the database text escape: valid UTF-8 without NUL, reversible, injective (issue 13 item 3)") {
    auto round_trips = [](const std::string& raw) {
        const std::string stored = q::to_db_text(raw);
        CHECK(q::valid_utf8(stored));
        CHECK(stored.find('\0') == std::string::npos);
        CHECK(stored.find('\x1f') == std::string::npos);
        CHECK(q::from_db_text(stored) == raw);
    };
    // Well-formed UTF-8 is kept as it is; the rest is written \xHH, the backslash "\\".
    CHECK(q::to_db_text("a@example.org") == "a@example.org");
    CHECK(q::to_db_text("j\xc3\xb6rg@x") == "j\xc3\xb6rg@x");
    CHECK(q::to_db_text(std::string("id\0x@y", 6)) == "id\\x00x@y");
    CHECK(q::to_db_text("a\xff@x") == "a\\xFF@x");
    CHECK(q::to_db_text("a\\b") == "a\\\\b");
    CHECK(q::to_db_text("a\x1f" "b") == "a\\x1Fb");
    CHECK(q::to_db_text("\xc0\xaf") == "\\xC0\\xAF");          // overlong: each byte
    CHECK(q::to_db_text("\xed\xa0\x80") == "\\xED\\xA0\\x80");  // surrogate: each byte
    CHECK(q::to_db_text("\xe2\x82") == "\\xE2\\x82");          // truncated sequence
    // An escape-looking text of the input stays distinct from the byte it looks like.
    CHECK(q::to_db_text("\\xFF") != q::to_db_text("\xff"));
    CHECK(q::from_db_text(q::to_db_text("\\xFF")) == "\\xFF");
    // Every byte value alone, and in every pair (65,536 strings): round trip, and no two alike.
    std::set<std::string> seen;
    for (int a = 0; a < 256; ++a) {
        const std::string one(1, static_cast<char>(a));
        round_trips(one);
        CHECK(seen.insert(q::to_db_text(one)).second);
        for (int b = 0; b < 256; ++b) {
            std::string two{static_cast<char>(a), static_cast<char>(b)};
            const std::string stored = q::to_db_text(two);
            if (q::from_db_text(stored) != two || !q::valid_utf8(stored)) {
                FAIL_CHECK("pair " << a << "," << b);
            }
            CHECK(seen.insert(stored).second);
        }
    }
    // Random strings, biased to the bytes that matter (backslash, 'x', hex digits, NUL, 0x80+).
    std::mt19937 rng(13);
    const char alphabet[] = {'\\', 'x', 'F', '0', 'a', '\0', '\x1f', '\x80', '\xbf', '\xc3', '\xb6', '\xe2', '\xed', '\xf0', '\xf4', '\xff'};
    std::map<std::string, std::string> stored_of;
    for (int i = 0; i < 20000; ++i) {
        std::string raw;
        const auto len = rng() % 12;
        for (unsigned k = 0; k < len; ++k)
            raw.push_back((rng() & 1) ? alphabet[rng() % sizeof alphabet] : static_cast<char>(rng() & 0xFF));
        round_trips(raw);
        auto [it, fresh] = stored_of.emplace(q::to_db_text(raw), raw);
        if (!fresh && it->second != raw) FAIL_CHECK("two raw strings share a stored text");
    }
}

// conninfo_with_deadlines: pure text work over libpq's own parser (no server).
TEST_CASE("every connection string gets client-side deadlines, and the caller's own settings win") {
    const std::string plain = q::conninfo_with_deadlines("host=/tmp dbname=x", 2500);
    CHECK(plain.find("host='/tmp'") != std::string::npos);
    CHECK(plain.find("connect_timeout='3'") != std::string::npos);  // seconds, rounded up
    CHECK(plain.find("tcp_user_timeout='2500'") != std::string::npos);
    CHECK(plain.find("keepalives='1'") != std::string::npos);
    CHECK(plain.find("statement_timeout=2500") != std::string::npos);
    CHECK(plain.find("lock_timeout=2500") != std::string::npos);
    // A URI is read too; the caller's connect_timeout and options stay, theirs after ours.
    const std::string uri = q::conninfo_with_deadlines("postgresql://u@h:5433/db?connect_timeout=30&options=-c%20work_mem%3D8MB", 200);
    CHECK(uri.find("connect_timeout='30'") != std::string::npos);
    CHECK(uri.find("port='5433'") != std::string::npos);
    CHECK(uri.find("-c statement_timeout=200 -c lock_timeout=200 -c work_mem=8MB") != std::string::npos);
    // Empty: libpq's defaults and PG* variables still apply; only the deadlines are named.
    CHECK(q::conninfo_with_deadlines("", 10000).find("host=") == std::string::npos);
    // Applying twice changes nothing; values are quoted so that spaces and quotes survive.
    CHECK(q::conninfo_with_deadlines(plain, 2500) == plain);
    CHECK(q::conninfo_with_deadlines("password='a b\\'c'", 1000).find("password='a b\\'c'") != std::string::npos);
    CHECK_THROWS_AS(q::conninfo_with_deadlines("nonsense", 1000), q::database_error);
}
