// apply_retention against a real PostgreSQL (the throwaway cluster of pg_cluster.sh), in a
// database of its own: retention drops whole days of every mailbox, so it must not meet the
// rows of the tests running beside it. Skips (exit 77) when no cluster was started.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/retention.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace q = ndrguard::quarantine;
using namespace std::chrono;

namespace {

std::string conninfo;  // of the test's own database

system_clock::time_point at(int y, unsigned m, unsigned d, int h = 12) {
    return sys_days(year(y) / static_cast<int>(m) / static_cast<int>(d)) + hours(h);
}

q::held_message held(const std::string& mailbox, system_clock::time_point when) {
    q::held_message m;
    m.mailbox = mailbox;
    m.klass = "dsn";
    m.verification = "forged";
    m.forged = true;
    m.message = "From: MAILER-DAEMON\r\nSubject: Undelivered\r\n\r\nbody";
    m.held_at = when;
    return m;
}

// A storm for `mailbox` that opens at `start` and, unless `leave_open`, ends a few minutes later.
void storm(q::database& db, const std::string& mailbox, system_clock::time_point start, bool leave_open) {
    q::storm_settings s;
    s.threshold = 5;
    s.exit_threshold = 2;
    s.window = seconds(60);
    s.cool_down = seconds(120);
    q::storm_tracker t(s);
    for (int i = 0; i < 5; ++i) t.observe(mailbox, q::ndr_tally{0, 1, 0}, "mx.remote.example", "Returned", start);
    auto sync = [&](system_clock::time_point now) { t.apply_sync(q::storm_sync(db, s, t.take_pending(), t.watched_mailboxes(), now)); };
    sync(start);
    REQUIRE(t.storm_id(mailbox) != 0);
    if (leave_open) return;
    sync(start + seconds(90));   // the window slid past every bounce: quiet
    sync(start + seconds(220));  // quiet for the whole cool-down: ended
    REQUIRE(t.storm_id(mailbox) == 0);
}

}  // namespace

TEST_CASE("one retention drops the sent log's, the quarantine's and the storms' old rows, and says what it dropped") {
    q::database db(conninfo);
    q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    const auto now = at(2026, 6, 15);
    const q::retention_policy policy{30, 14, seconds(600)};

    // The sent log: a day before now - 30 days goes, one after stays.
    q::sent_log log(db);
    CHECK(log.record({{"<old@mail.example.org>", "alice@example.org", {"bob@example.net"}, at(2026, 5, 1)},
                      {"<kept@mail.example.org>", "alice@example.org", {"bob@example.net"}, at(2026, 6, 10)}}) == 2);
    // The quarantine: two items held before now - 14 days (still held), one after.
    const std::string mailbox = "retention@example.org";
    q::hold_messages(db, {}, {held(mailbox, at(2026, 5, 20)), held(mailbox, at(2026, 5, 20, 13)), held(mailbox, at(2026, 6, 10))});
    REQUIRE(q::usage_of(db, mailbox).held_items == 3);
    // Storms: one that ended before now - 14 days, and one still open since long before.
    storm(db, "ended-storm@example.org", at(2026, 5, 20), false);
    storm(db, "open-storm@example.org", at(2026, 5, 21), true);

    const auto r = q::apply_retention(db, policy, now);
    CHECK(r.sent_log_first_kept == q::utc_day(at(2026, 5, 16)));
    CHECK(r.sent_log_days_dropped == 1);
    CHECK(r.quarantine_first_kept == q::utc_day(at(2026, 6, 1)));
    CHECK(r.quarantine.days_dropped == 1);
    CHECK(r.quarantine.items_dropped == 2);
    CHECK(r.storms_dropped == 1);
    CHECK(r.counter_buckets_dropped == 2);  // one bucket per storm's mailbox, both long past the window

    CHECK(log.days() == std::vector<q::day>{q::utc_day(at(2026, 6, 10))});
    CHECK(log.lookup({"<old@mail.example.org>", "<kept@mail.example.org>"}, at(2026, 1, 1)).size() == 1);
    CHECK(q::usage_of(db, mailbox).held_items == 1);
    q::list_filter f;
    f.mailbox = mailbox;
    CHECK(q::list_items(db, f).size() == 1);
    const auto left = q::storms(db, "", at(2000, 1, 1));
    REQUIRE(left.size() == 1);
    CHECK(left[0].mailbox == "open-storm@example.org");  // open storms never expire

    // Again: nothing left to drop.
    const auto again = q::apply_retention(db, policy, now);
    CHECK(again.sent_log_days_dropped == 0);
    CHECK(again.quarantine.days_dropped == 0);
    CHECK(again.storms_dropped == 0);
    CHECK(again.counter_buckets_dropped == 0);
}

int main(int argc, char** argv) {
    const char* file = std::getenv("NDRGUARD_TEST_CONNINFO_FILE");
    std::ifstream in(file ? file : "");
    std::string cluster;
    if (!std::getline(in, cluster) || cluster.empty()) {
        std::printf("SKIP: no test PostgreSQL cluster (NDRGUARD_TEST_CONNINFO_FILE unset or empty)\n");
        return 77;
    }
    const std::string name = "ndrguard_retention_test";
    const std::string cmd = "psql -X -q '" + cluster + "' -c 'DROP DATABASE IF EXISTS " + name + "' -c 'CREATE DATABASE " + name +
                            "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
        std::printf("could not create the database %s\n", name.c_str());
        return 1;
    }
    conninfo = cluster + " dbname=" + name;  // the last dbname wins
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
