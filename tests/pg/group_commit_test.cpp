// group_commit without a database: a Session that records its batches, fails for one item, or
// blocks until told (as a call on a frozen server would, until the watchdog ends it).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "ndrguard/quarantine/group_commit.hpp"

namespace q = ndrguard::quarantine;
using namespace std::chrono_literals;

namespace {

struct backend {
    std::mutex mu;
    std::condition_variable changed;
    std::vector<std::vector<int>> batches;  // as process() saw them
    int connects = 0;
    int poison = -1;               // process() throws for a batch with it (the item's fault)
    bool connection_down = false;  // process() throws a connection failure
    int blocks_on = -1;            // process() waits for `released` on a batch with it
    bool released = false;
    std::map<int, int> answers;  // item -> callbacks run
    std::map<int, bool> ok;
    std::map<int, std::string> errors;

    void answered(int item, bool good, const std::string& error) {
        std::lock_guard lock(mu);
        ++answers[item];
        ok[item] = good;
        errors[item] = error;
        changed.notify_all();
    }
    bool wait_answers(std::size_t n) {
        std::unique_lock lock(mu);
        return changed.wait_for(lock, 30s, [&] { return answers.size() >= n; });
    }
    bool wait_blocked() {
        std::unique_lock lock(mu);
        return changed.wait_for(lock, 30s, [&] { return !batches.empty(); });
    }
    void release() {
        std::lock_guard lock(mu);
        released = true;
        changed.notify_all();
    }
};

struct fake_session {
    using item = int;
    using result = int;
    struct settings {
        std::shared_ptr<backend> b;
    };
    fake_session(const std::string&, const settings& s) : b(s.b) {
        std::lock_guard lock(b->mu);
        ++b->connects;
    }
    std::vector<int> process(const std::vector<int>& items) {
        std::unique_lock lock(b->mu);
        b->batches.push_back(items);
        b->changed.notify_all();
        std::vector<int> out;
        for (int i : items) {
            if (i == b->blocks_on) b->changed.wait(lock, [&] { return b->released; });
            if (i == b->poison) throw std::runtime_error("bad item " + std::to_string(i));
            out.push_back(i * 10);
        }
        if (b->connection_down) throw q::database_error("server went away", q::database_error::kind::connection);
        return out;
    }
    std::shared_ptr<backend> b;
};

using committer = q::group_commit<fake_session>;

// Item 0 holds the writer until released, so that the items submitted meanwhile make one batch.
void submit_behind_a_blocked_batch(committer& c, const std::shared_ptr<backend>& b, const std::vector<int>& items) {
    b->blocks_on = 0;
    c.submit_async(0, [b](bool ok, int&&, const std::string& e) { b->answered(0, ok, e); });
    REQUIRE(b->wait_blocked());
    for (int i : items) c.submit_async(i, [b, i](bool ok, int&&, const std::string& e) { b->answered(i, ok, e); });
}

}  // namespace

TEST_CASE("group commit: a batch failing for one item's sake is tried item by item, and only that item fails") {
    auto b = std::make_shared<backend>();
    b->poison = 3;
    {
        committer c("", {b});
        submit_behind_a_blocked_batch(c, b, {1, 2, 3, 4});
        b->release();
        REQUIRE(b->wait_answers(5));
    }
    for (int i : {0, 1, 2, 4}) CHECK_MESSAGE(b->ok[i], i);
    CHECK_FALSE(b->ok[3]);
    CHECK(b->errors[3].find("bad item 3") != std::string::npos);
    for (const auto& [item, n] : b->answers) CHECK_MESSAGE(n == 1, item);  // each answered once
    CHECK(b->connects == 1);  // the connection was never at fault: kept
    REQUIRE(b->batches.size() == 6);
    CHECK(b->batches[1] == std::vector<int>{1, 2, 3, 4});
    CHECK(b->batches[2] == std::vector<int>{1});
    CHECK(b->batches[4] == std::vector<int>{3});
}

TEST_CASE("group commit: a connection failure fails the whole batch at once, without a retry per item") {
    auto b = std::make_shared<backend>();
    {
        committer c("", {b});
        submit_behind_a_blocked_batch(c, b, {1, 2, 3});
        {
            std::lock_guard lock(b->mu);
            b->connection_down = true;  // from the next batch on; item 0's batch too, as it ends
        }
        b->release();
        REQUIRE(b->wait_answers(4));
    }
    for (int i : {1, 2, 3}) CHECK_FALSE(b->ok[i]);
    // Whole batches only: item 0's, then 1-3's (no retry: the connection had never worked).
    for (const auto& batch : b->batches) CHECK((batch == std::vector<int>{0} || batch == std::vector<int>{1, 2, 3}));
    CHECK(b->connects >= 2);  // reconnected after the failure
}

TEST_CASE("group commit: a wait longer than the timeout is answered failed, once, and the item is never written after") {
    auto b = std::make_shared<backend>();
    {
        committer c("", {b}, 1000, 100ms);
        submit_behind_a_blocked_batch(c, b, {});  // the writer is stuck in item 0's batch
        int out = 0;
        std::string error;
        CHECK_FALSE(c.submit(1, out, error));  // blocking submitter
        CHECK(error.find("no answer from PostgreSQL within 100 ms") != std::string::npos);
        c.submit_async(2, [b](bool ok, int&&, const std::string& e) { b->answered(2, ok, e); });
        REQUIRE(b->wait_answers(2));  // 0 and 2, by their timeouts, the writer still stuck
        CHECK_FALSE(b->ok[0]);
        CHECK_FALSE(b->ok[2]);
        CHECK(b->errors[2].find("no answer from PostgreSQL") != std::string::npos);
        b->release();  // item 0's batch completes now: too late, it was answered already
        c.submit_async(5, [b](bool ok, int&&, const std::string& e) { b->answered(5, ok, e); });
        REQUIRE(b->wait_answers(3));
        CHECK(b->ok[5]);  // the writer serves later batches
    }
    for (const auto& [item, n] : b->answers) CHECK_MESSAGE(n == 1, item);  // never a second answer
    for (const auto& batch : b->batches)
        for (int i : batch) CHECK_MESSAGE((i == 0 || i == 5), i);  // 1 and 2 were dropped from the queue, not written
}

TEST_CASE("failures are told apart by SQLSTATE: the request's, the connection's, the time's") {
    using kind = q::database_error::kind;
    const std::vector<std::pair<const char*, kind>> table = {
        {"22021", kind::request},     // invalid byte sequence for UTF8: one item's data
        {"23505", kind::request},     // unique violation
        {"42P01", kind::request},     // undefined table
        {"40P01", kind::request},     // deadlock: trying again is fine
        {"", kind::request},          // no SQLSTATE: the statement's
        {"57014", kind::timeout},     // statement_timeout
        {"55P03", kind::timeout},     // lock_timeout
        {"08006", kind::connection},  // connection failure
        {"08001", kind::connection},  // cannot connect
        {"57P01", kind::connection},  // admin shutdown
        {"57P03", kind::connection},  // cannot connect now (starting up)
        {"53300", kind::connection},  // too many connections
    };
    for (const auto& [state, expected] : table) CHECK_MESSAGE(q::failure_of_sqlstate(state) == expected, state);
}

TEST_CASE("a database's operation timeout is the statement_timeout its connection string carries") {
    CHECK(q::operation_timeout_of(q::conninfo_with_deadlines("host=/tmp dbname=x", 1500)) == 1500ms);
    CHECK(q::operation_timeout_of("host=/tmp dbname=x") == 0ms);  // none: nothing is cut
    CHECK(q::operation_timeout_of("host=/tmp options='-c statement_timeout=100 -c statement_timeout=700'") == 700ms);
    CHECK(q::operation_timeout_of("nonsense") == 0ms);
}

TEST_CASE("the lookups' connection string keeps the generic plan beside the deadlines and the caller's own options") {
    // As serve builds it: config_args adds the deadlines, async_sent_lookups adds its plan mode.
    const std::string cfg = q::conninfo_with_deadlines("host=/tmp dbname=x options='-c work_mem=8MB'", 1000);
    const std::string lookups = q::conninfo_with_deadlines(cfg, 1000, "-c plan_cache_mode=force_generic_plan");
    CHECK(lookups.find("-c plan_cache_mode=force_generic_plan") != std::string::npos);
    CHECK(lookups.find("-c work_mem=8MB") != std::string::npos);
    CHECK(lookups.rfind("-c work_mem=8MB") > lookups.find("plan_cache_mode"));  // the caller's last: theirs win
    CHECK(q::operation_timeout_of(lookups) == 1000ms);
}
