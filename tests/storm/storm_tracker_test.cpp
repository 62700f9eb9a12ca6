// storm_tracker, the pure half of storm mode: counting, thresholds, what a sync hands over and
// takes back. Links only ndrguard_storm_tracker: no database, no libpqxx (the SQL side, storms.cpp,
// is tested against PostgreSQL in tests/pg/quarantine_test.cpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

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
