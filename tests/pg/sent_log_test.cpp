// The sent log against a real PostgreSQL (the throwaway cluster of pg_cluster.sh), and the
// pure SQL-text helpers. Skips (exit 77) when no cluster was started.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "frozen_backend.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/sql_text.hpp"

namespace q = ndrguard::quarantine;
using namespace std::chrono;

namespace {

std::string conninfo;

system_clock::time_point at(int y, unsigned m, unsigned d, int hour = 12) {
    return sys_days(year(y) / month(m) / day(d)) + hours(hour);
}

}  // namespace

TEST_CASE("sql text: hashes, days, names and array literals") {
    CHECK(q::message_id_hash("") == static_cast<std::int64_t>(14695981039346656037ull));  // FNV-1a offset basis
    CHECK(q::message_id_hash("a@example.org") == q::message_id_hash("a@example.org"));
    CHECK(q::message_id_hash("a@example.org") != q::message_id_hash("b@example.org"));
    auto d = q::utc_day(at(2026, 3, 2, 23));
    CHECK(q::iso_date(d) == "2026-03-02");
    CHECK(q::partition_name(d) == "sent_log_20260302");
    REQUIRE(q::partition_day("sent_log_20260302").has_value());
    CHECK(*q::partition_day("sent_log_20260302") == d);
    CHECK_FALSE(q::partition_day("sent_log_20260231").has_value());
    CHECK_FALSE(q::partition_day("sent_log_2026030x").has_value());
    CHECK_FALSE(q::partition_day("other_20260302").has_value());
    CHECK(q::text_array_literal({"a", "b\"c", "d\\e", ""}) == R"({"a","b\"c","d\\e",""})");
    CHECK(q::text_array_literal({}) == "{}");
    CHECK(q::bigint_array_literal({1, -2, 3}) == "{1,-2,3}");
}

TEST_CASE("migrations apply once and record their versions") {
    q::database db(conninfo);
    auto first = q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    CHECK(first.schema_version >= 1);
    auto again = q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    CHECK(again.applied.empty());
    CHECK(again.schema_version == first.schema_version);
}

TEST_CASE("record, look up, normalise, retain by day") {
    q::database db(conninfo);
    q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    q::sent_log log(db);

    std::vector<q::sent_message> batch = {
        {"<20260302.A1@Mail.Example.ORG>", "alice@example.org", {"bob@example.net", "carol@example.net"}, at(2026, 3, 2)},
        {"<old.1@mail.example.org>", "alice@example.org", {"dave@example.net"}, at(2026, 2, 20)},
        {"not an id", "alice@example.org", {"x@example.net"}, at(2026, 3, 2)},
    };
    CHECK(log.record(batch) == 2);  // the unnormalisable id is skipped

    // The same id in another spelling (brackets, domain case, a comment) is found.
    auto found = log.lookup({"20260302.A1@mail.example.org (resent)", "<unknown@example.org>"}, at(2026, 2, 25, 0));
    REQUIRE(found.size() == 1);
    CHECK(found[0].message_id == "20260302.A1@mail.example.org");
    CHECK(found[0].sent_at == at(2026, 3, 2));
    CHECK(log.lookup({"<unknown@example.org>"}, at(2026, 1, 1)).empty());

    // Outside the window: the old message is not a match.
    CHECK(log.lookup({"<old.1@mail.example.org>"}, at(2026, 2, 25, 0)).empty());
    CHECK(log.lookup({"<old.1@mail.example.org>"}, at(2026, 2, 1, 0)).size() == 1);

    // Sent again (bulk mailers send one id in a transaction per recipient): one match, its
    // latest send; a send earlier the same day but before the window does not hide a later one.
    CHECK(log.record({{"<twice@mail.example.org>", "alice@example.org", {"x@example.net"}, at(2026, 3, 4, 6)},
                      {"<twice@mail.example.org>", "alice@example.org", {"y@example.net"}, at(2026, 3, 4, 18)},
                      {"<twice@mail.example.org>", "alice@example.org", {"z@example.net"}, at(2026, 3, 4, 20)}}) == 3);
    auto twice = log.lookup({"<twice@mail.example.org>"}, at(2026, 3, 4, 12));
    REQUIRE(twice.size() == 1);
    CHECK(twice[0].sent_at == at(2026, 3, 4, 20));
    CHECK(log.lookup({"<twice@mail.example.org>"}, at(2026, 3, 4, 19) + minutes(59)).size() == 1);
    CHECK(log.lookup({"<twice@mail.example.org>"}, at(2026, 3, 4, 21)).empty());

    auto days = log.days();
    REQUIRE(days.size() >= 2);
    CHECK(log.drop_days_before(q::utc_day(at(2026, 3, 1))) >= 1);
    CHECK(log.lookup({"<old.1@mail.example.org>"}, at(2026, 1, 1)).empty());  // its day is gone
    CHECK(log.lookup({"<20260302.A1@mail.example.org>"}, at(2026, 1, 1)).size() == 1);  // kept
}

TEST_CASE("a batch of 10,000 goes in one call") {
    q::database db(conninfo);
    q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    q::sent_log log(db);
    std::vector<q::sent_message> batch;
    for (int i = 0; i < 10000; ++i)
        batch.push_back({"<bulk." + std::to_string(i) + "@mail.example.org>", "news@example.org",
                         {"r" + std::to_string(i) + "@example.net"}, at(2026, 3, 3) + seconds(i)});
    auto t0 = steady_clock::now();
    CHECK(log.record(batch) == 10000);
    double secs = duration<double>(steady_clock::now() - t0).count();
    MESSAGE("recorded 10000 in " << secs << " s (" << 10000 / secs << " rows/s, informational)");
    auto found = log.lookup({"<bulk.0@mail.example.org>", "<bulk.9999@mail.example.org>", "<bulk.10000@mail.example.org>"},
                            at(2026, 3, 1));
    CHECK(found.size() == 2);
}

template <std::size_t N>
std::string bytes(const char (&s)[N]) { return std::string(s, N - 1); }  // NULs included

TEST_CASE("Message-IDs PostgreSQL cannot take as text: recorded, found again, never confused (issue 13 item 3)") {
    q::database db(conninfo);
    q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    q::sent_log log(db);
    const std::string latin1 = "<caf\xe9.13@mail.example.org>";          // a Latin-1 byte: not UTF-8
    const std::string nul = bytes("<nul\0.13@mail.example.org>");          // a NUL
    const std::string surrogate = "<s\xed\xa0\x80.13@mail.example.org>";   // CESU-8 surrogate
    // A quoted local part may hold a backslash: this id's raw text is the stored text of the
    // next one's, and the two must stay two ids.
    const std::string lookalike = "<\"caf\\xE9\"@mail.example.org>";
    const std::string quoted_latin1 = "<\"caf\xe9\"@mail.example.org>";
    const std::string ordinary = "<ordinary.13@mail.example.org>";
    // In one batch with an ordinary id, senders and recipients with bad bytes too: the whole
    // batch goes in (before, the statement failed: invalid byte sequence for encoding "UTF8").
    CHECK(log.record({{latin1, "s\xff@example.org", {"r\xfe@example.net", bytes("r\0@example.net")}, at(2026, 3, 5)},
                      {nul, bytes("s\0@example.org"), {"bob@example.net"}, at(2026, 3, 5)},
                      {surrogate, "s@example.org", {"bob@example.net"}, at(2026, 3, 5)},
                      {quoted_latin1, "s@example.org", {"bob@example.net"}, at(2026, 3, 5)},
                      {ordinary, "s@example.org", {"bob@example.net"}, at(2026, 3, 5)}}) == 5);
    auto found = log.lookup({latin1, nul, surrogate, ordinary, lookalike, quoted_latin1}, at(2026, 3, 1));
    std::set<std::string> ids;
    for (const auto& f : found) ids.insert(f.message_id);
    CHECK(ids == std::set<std::string>{"caf\xe9.13@mail.example.org", bytes("nul\0.13@mail.example.org"),
                                       "s\xed\xa0\x80.13@mail.example.org", "ordinary.13@mail.example.org",
                                       "\"caf\xe9\"@mail.example.org"});
    // The raw text of an escape is another id: not found until it is sent itself, then both are.
    CHECK(log.lookup({lookalike}, at(2026, 3, 1)).empty());
    CHECK(log.lookup({"<caf?.13@mail.example.org>"}, at(2026, 3, 1)).empty());  // nor the old lossy form
    CHECK(log.record({{lookalike, "s@example.org", {"bob@example.net"}, at(2026, 3, 6)}}) == 1);
    auto both = log.lookup({lookalike, quoted_latin1}, at(2026, 3, 1));
    REQUIRE(both.size() == 2);
    CHECK(log.lookup({lookalike}, at(2026, 3, 1))[0].sent_at == at(2026, 3, 6));
    CHECK(log.lookup({quoted_latin1}, at(2026, 3, 1))[0].sent_at == at(2026, 3, 5));
}

TEST_CASE("a server that is not there is a database_error, not a crash") {
    CHECK_THROWS_AS(q::database("host=/nonexistent port=1 dbname=x user=x connect_timeout=2"), q::database_error);
}

namespace {

int backend_pid(const std::string& app) { return ndrguard::test::backend_pid(conninfo, app); }
using ndrguard::test::frozen_backend;

}  // namespace

TEST_CASE("a frozen server: the watchdog ends a blocked call within the operation timeout; the next call reconnects") {
    q::database db(conninfo + " application_name=ndrguard_watchdog_test", milliseconds(300));
    q::sent_log log(db);
    CHECK_NOTHROW(log.lookup({"<frozen@example.org>"}, at(2026, 3, 1)));
    const int pid = backend_pid("ndrguard_watchdog_test");
    REQUIRE(pid > 0);
    std::string what = "no failure at all";
    bool timed_out = false;
    {
        frozen_backend frozen(pid);
        try {
            log.lookup({"<frozen@example.org>"}, at(2026, 3, 1));
        } catch (const q::database_error& e) {
            what = e.what();
            timed_out = e.failure == q::database_error::kind::timeout;
        }
    }
    CHECK_MESSAGE(timed_out, what);
    CHECK(what.find("within 300 ms") != std::string::npos);
    CHECK(db.broken());
    // The cut connection is replaced by the next operation, on a new backend.
    CHECK_NOTHROW(log.lookup({"<frozen@example.org>"}, at(2026, 3, 1)));
    CHECK_FALSE(db.broken());
    CHECK(backend_pid("ndrguard_watchdog_test") != pid);
}

int main(int argc, char** argv) {
    const char* file = std::getenv("NDRGUARD_TEST_CONNINFO_FILE");
    std::ifstream in(file ? file : "");
    if (!std::getline(in, conninfo) || conninfo.empty()) {
        std::printf("SKIP: no test PostgreSQL cluster (NDRGUARD_TEST_CONNINFO_FILE unset or empty)\n");
        return 77;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
