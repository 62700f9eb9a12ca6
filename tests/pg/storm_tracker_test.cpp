// storm_tracker, the pure half of storm mode: counting, thresholds, what a sync hands over and
// takes back. No database (store.cpp is tested against PostgreSQL in quarantine_test.cpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>
#include <string>

#include "ndrguard/quarantine/sql_text.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace q = ndrguard::quarantine;
using namespace std::chrono;

namespace {

q::ndr_tally one_unverifiable() {
    q::ndr_tally t;
    t.unverifiable = 1;
    return t;
}

const system_clock::time_point t0 = sys_days(year(2026) / 11 / 22) + hours(2);

q::storm_settings small() {
    q::storm_settings s;
    s.threshold = 5;
    s.exit_threshold = 2;
    return s;
}

}  // namespace

TEST_CASE("a mailbox enters storm mode on the bounce that reaches the threshold, not before") {
    q::storm_tracker t(small());
    for (int i = 1; i <= 4; ++i) CHECK_FALSE(t.observe("victim@example.org", one_unverifiable(), "mx.a", "", t0 + seconds(i)));
    CHECK(t.observe("victim@example.org", one_unverifiable(), "mx.a", "", t0 + seconds(5)));
    CHECK(t.in_storm("victim@example.org"));
    CHECK_FALSE(t.in_storm("other@example.org"));
    CHECK(t.storm_id("victim@example.org") == 0);  // not written yet
}

TEST_CASE("pending deltas are per mailbox and bucket, with reporters and subjects bounded") {
    q::storm_settings s = small();
    s.max_reporters_per_delta = 2;
    s.max_sample_subjects = 2;
    q::storm_tracker t(s);
    t.observe("a@x", one_unverifiable(), "mx1", "Subject one", t0);
    t.observe("a@x", one_unverifiable(), "mx2", "Subject one", t0 + seconds(1));
    t.observe("a@x", one_unverifiable(), "mx3", "Subject two", t0 + seconds(2));
    t.observe("a@x", one_unverifiable(), "mx1", "Subject three", t0 + seconds(3));
    t.observe("a@x", one_unverifiable(), "mx1", "", t0 + seconds(15));  // the next 10 s bucket
    t.observe("b@x", one_unverifiable(), "", "", t0);
    auto d = t.take_pending();
    REQUIRE(d.size() == 3);
    CHECK(d[0].mailbox == "a@x");
    CHECK(d[0].tally.unverifiable == 4);
    REQUIRE(d[0].reporters.size() == 2);  // mx3 was one too many
    CHECK(d[0].reporters[0] == std::make_pair(std::string("mx1"), std::int64_t(2)));
    CHECK(d[0].sample_subjects == std::vector<std::string>{"Subject one", "Subject two"});
    CHECK(d[1].tally.unverifiable == 1);
    CHECK(d[1].bucket == d[0].bucket + seconds(10));
    CHECK(d[2].mailbox == "b@x");
    CHECK(t.take_pending().empty());  // handed over once
}

TEST_CASE("a failed write gives the deltas back: nothing lost, nothing counted twice") {
    q::storm_tracker t(small());
    t.observe("a@x", one_unverifiable(), "mx1", "", t0);
    auto d = t.take_pending();
    t.observe("a@x", one_unverifiable(), "mx1", "", t0 + seconds(1));  // meanwhile
    t.restore(std::move(d));
    auto again = t.take_pending();
    REQUIRE(again.size() == 1);
    CHECK(again[0].tally.unverifiable == 2);
    CHECK(again[0].reporters[0].second == 2);
}

TEST_CASE("the database's view replaces the local count after a sync; unsynced bounces still count") {
    q::storm_tracker t(small());
    for (int i = 0; i < 3; ++i) t.observe("a@x", one_unverifiable(), "", "", t0);
    auto d = t.take_pending();
    t.observe("a@x", one_unverifiable(), "", "", t0);  // after the hand-over, before the answer
    // Another instance saw more: the sum is 3 (ours) + 1 (theirs).
    t.apply_sync({{"a@x", 4, 0}});
    CHECK(t.in_storm("a@x"));  // 4 synced + 1 pending = 5
    t.apply_sync({{"a@x", 4, 0}, {"c@x", 9, 42}});
    CHECK(t.storm_id("c@x") == 42);  // a storm another instance opened
    CHECK(t.in_storm("c@x"));
    CHECK(t.watched_mailboxes() == std::vector<std::string>{"c@x"});
    CHECK(t.storms_open() == 1);
    t.apply_sync({{"c@x", 1, 0}});  // ended
    CHECK_FALSE(t.in_storm("c@x"));
}

TEST_CASE("negative tallies take back a count (a message answered 451 is offered again)") {
    q::storm_tracker t(small());
    for (int i = 0; i < 5; ++i) t.observe("a@x", one_unverifiable(), "", "", t0);
    CHECK(t.in_storm("a@x"));
    q::ndr_tally back;
    back.unverifiable = -1;
    CHECK_FALSE(t.observe("a@x", back, "", "", t0));
    auto d = t.take_pending();
    REQUIRE(d.size() == 1);
    CHECK(d[0].tally.unverifiable == 4);
}

TEST_CASE("mailboxes are counted case-blind and without brackets") {
    CHECK(q::mailbox_key("<Victim@Example.ORG>") == "victim@example.org");
    CHECK(q::mailbox_key("plain@x") == "plain@x");
    // Not cut: two long addresses that share a prefix stay two mailboxes.
    CHECK(q::mailbox_key(std::string(1000, 'A')) == std::string(1000, 'a'));
    CHECK(q::mailbox_key(std::string(400, 'a') + "1@x") != q::mailbox_key(std::string(400, 'a') + "2@x"));
}

TEST_CASE("UTF-8 mailboxes stay themselves: jörg@ and jürg@ are two mailboxes (issue 13 item 4)") {
    const std::string joerg = "J\xc3\xb6rg@Example.ORG", juerg = "j\xc3\xbcrg@example.org";
    CHECK(q::mailbox_key(joerg) == "j\xc3\xb6rg@example.org");  // ASCII lowered, UTF-8 bytes kept
    CHECK(q::mailbox_key(juerg) == "j\xc3\xbcrg@example.org");
    CHECK(q::mailbox_key(joerg) != q::mailbox_key(juerg));
    CHECK(q::mailbox_key("\xc3\x96") == "\xc3\x96");  // Ö is not lowered bytewise
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

TEST_CASE("the remembered mailboxes are bounded; open storms are never forgotten") {
    q::storm_settings s = small();
    s.max_mailboxes = 10;
    q::storm_tracker t(s);
    t.apply_sync({{"storm@x", 50, 7}});
    for (int i = 0; i < 100; ++i) {
        t.observe("m" + std::to_string(i) + "@x", one_unverifiable(), "", "", t0);
        t.take_pending();
        t.apply_sync({{"m" + std::to_string(i) + "@x", 1, 0}});
    }
    CHECK(t.storm_id("storm@x") == 7);
    CHECK(t.in_storm("storm@x"));
}

// conninfo_with_deadlines: pure text work over libpq's own parser (no server).
#include "ndrguard/quarantine/database.hpp"

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
