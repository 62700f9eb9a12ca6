// Storm counters and the quarantine against a real PostgreSQL (the throwaway cluster of
// pg_cluster.sh). Skips (exit 77) when no cluster was started. Every test uses its own
// mailboxes, so the tests share one database without seeing each other's rows.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "ndrguard/quarantine/async_lookup.hpp"
#include "frozen_backend.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/digest_ledger.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/metrics_queries.hpp"
#include "ndrguard/quarantine/release_ledger.hpp"
#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace q = ndrguard::quarantine;
using namespace std::chrono;

namespace {

std::string conninfo;

q::ndr_tally tally_of(int verified, int forged, int unverifiable) {
    q::ndr_tally t;
    t.verified = verified;
    t.forged = forged;
    t.unverifiable = unverifiable;
    return t;
}

// One filter instance: its own connection and tracker, synced as serve's loop does.
struct instance {
    instance(const q::storm_settings& s) : db(conninfo), tracker(s) {}
    void sync(system_clock::time_point now) {
        auto states = q::storm_sync(db, tracker.settings(), tracker.take_pending(), tracker.watched_mailboxes(), now);
        tracker.apply_sync(states);
    }
    q::database db;
    q::storm_tracker tracker;
};

q::held_message held(const std::string& mailbox, bool forged, system_clock::time_point at, std::string queue_id = "") {
    q::held_message m;
    m.mailbox = mailbox;
    m.sender = "";
    m.client = "192.0.2.7";
    m.queue_id = std::move(queue_id);
    m.klass = "dsn";
    m.verification = forged ? "forged" : "unverifiable";
    m.reasons = {"dsn.rfc3464"};
    m.notes = {"storm"};
    m.message_ids = forged ? std::vector<std::string>{"never-sent@example.org"} : std::vector<std::string>{};
    m.reporting_mta = "mx.remote.example";
    m.subject = "Undelivered Mail Returned to Sender";
    m.original_subject = "Cheap watches \xc3\xa9";  // UTF-8 kept
    m.forged = forged;
    m.message = "From: MAILER-DAEMON\r\nSubject: Undelivered\r\n\r\nbody with a NUL \0 byte";
    m.message.push_back('\0');
    m.held_at = at;
    return m;
}

void migrate_once() {
    static bool done = false;
    if (done) return;
    q::database db(conninfo);
    q::migrate(db, NDRGUARD_DEFAULT_SQL_DIR);
    done = true;
}

}  // namespace

TEST_CASE("two filter instances counting the same storm agree on it and on its counts") {
    migrate_once();
    q::storm_settings s;
    s.threshold = 100;
    s.exit_threshold = 10;
    const auto now = system_clock::now();
    instance a(s), b(s);
    const std::string victim = "agree-victim@example.org";
    // 60 each: neither alone reaches 100, together they do.
    for (int i = 0; i < 60; ++i) {
        CHECK_FALSE(a.tracker.observe(victim, tally_of(0, 1, 0), "mx" + std::to_string(i % 3) + ".spam.example", "Buy now", now));
        CHECK_FALSE(b.tracker.observe(victim, tally_of(0, 0, 1), "mx9.spam.example", "Cheap meds", now));
    }
    a.sync(now);
    CHECK_FALSE(a.tracker.in_storm(victim));  // 60 in the database so far
    b.sync(now);
    CHECK(b.tracker.in_storm(victim));
    a.sync(now + milliseconds(250));
    CHECK(a.tracker.in_storm(victim));
    REQUIRE(a.tracker.storm_id(victim) != 0);
    CHECK(a.tracker.storm_id(victim) == b.tracker.storm_id(victim));

    // More bounces during the storm, from both: counted once each.
    for (int i = 0; i < 7; ++i) a.tracker.observe(victim, tally_of(0, 1, 0), "mx0.spam.example", "", now);
    for (int i = 0; i < 5; ++i) b.tracker.observe(victim, tally_of(1, 0, 0), "", "", now);
    a.sync(now + seconds(1));
    b.sync(now + seconds(1));

    auto list = q::storms(a.db, victim, now - hours(1));
    REQUIRE(list.size() == 1);
    const auto& st = list.front();
    CHECK_FALSE(st.ended_at.has_value());
    CHECK(st.tally.forged == 67);
    CHECK(st.tally.unverifiable == 60);
    CHECK(st.tally.verified == 5);
    CHECK(st.sample_subjects.size() >= 1);
    // Reporters are counted from the sync that opened the storm: b's 60, then a's 7.
    REQUIRE(st.top_reporters.size() == 2);
    CHECK(st.top_reporters[0] == std::make_pair(std::string("mx9.spam.example"), std::int64_t(60)));
    CHECK(st.top_reporters[1] == std::make_pair(std::string("mx0.spam.example"), std::int64_t(7)));
}

TEST_CASE("a storm goes quiet under the exit threshold and ends after the cool-down (hysteresis)") {
    migrate_once();
    q::storm_settings s;
    s.threshold = 20;
    s.exit_threshold = 5;
    s.window = seconds(60);
    s.cool_down = seconds(120);
    const std::string victim = "hysteresis@example.org";
    const auto t = system_clock::now();
    instance a(s);
    for (int i = 0; i < 25; ++i) a.tracker.observe(victim, tally_of(0, 0, 1), "", "", t);
    a.sync(t);
    const auto id = a.tracker.storm_id(victim);
    REQUIRE(id != 0);
    // Below the threshold but above the exit threshold: still a storm.
    a.sync(t + seconds(30));
    CHECK(a.tracker.storm_id(victim) == id);
    // The window has slid past every bounce: quiet, but the cool-down has not passed.
    a.sync(t + seconds(90));
    CHECK(a.tracker.storm_id(victim) == id);
    // Loud again (6 >= exit threshold, < threshold): the same storm, quiet cleared.
    for (int i = 0; i < 6; ++i) a.tracker.observe(victim, tally_of(0, 0, 1), "", "", t + seconds(100));
    a.sync(t + seconds(100));
    CHECK(a.tracker.storm_id(victim) == id);
    a.sync(t + seconds(200));  // window empty again: quiet from here
    a.sync(t + seconds(310));  // 110 s quiet
    CHECK(a.tracker.storm_id(victim) == id);
    a.sync(t + seconds(330));  // 130 s quiet: over
    CHECK(a.tracker.storm_id(victim) == 0);
    CHECK_FALSE(a.tracker.in_storm(victim));
    auto list = q::storms(a.db, victim, t - hours(1));
    REQUIRE(list.size() == 1);
    CHECK(list[0].ended_at.has_value());
    CHECK(list[0].tally.unverifiable == 31);
    // Retention: an ended storm goes once it ended before the cut; open ones never do.
    CHECK(q::expire_storms(a.db, t + seconds(300)) == 0);
    CHECK(q::expire_storms(a.db, t + seconds(400)) >= 1);
    CHECK(q::storms(a.db, victim, t - hours(1)).empty());
}

TEST_CASE("a storm's sample subjects are kept once, also when one sync carries two counter buckets") {
    migrate_once();
    q::storm_settings s;
    s.threshold = 1;
    const auto now = floor<seconds>(system_clock::now());
    instance a(s);
    const std::string victim = "subjects-victim@example.org";
    a.tracker.observe(victim, tally_of(0, 0, 1), "mx.spam.example", "Opening", now);
    a.sync(now);
    REQUIRE(a.tracker.storm_id(victim) != 0);
    // Two bounces with one subject in two 10-second buckets, written by one sync.
    a.tracker.observe(victim, tally_of(0, 0, 1), "mx.spam.example", "Cheap watches", now);
    a.tracker.observe(victim, tally_of(0, 0, 1), "mx.spam.example", "Cheap watches", now + seconds(10));
    a.sync(now + seconds(10));
    auto list = q::storms(a.db, victim, now - hours(1));
    REQUIRE(list.size() == 1);
    CHECK(std::count(list[0].sample_subjects.begin(), list[0].sample_subjects.end(), "Cheap watches") == 1);
    CHECK(list[0].tally.unverifiable == 3);
}

TEST_CASE("the per-mailbox cap drops forged bounces and keeps unverifiable ones") {
    migrate_once();
    q::database db(conninfo);
    q::quarantine_caps caps;
    caps.max_items = 3;
    const auto now = system_clock::now();
    const std::string mailbox = "capped@example.org";
    std::vector<q::held_message> batch;
    for (int i = 0; i < 5; ++i) batch.push_back(held(mailbox, true, now));
    for (int i = 0; i < 2; ++i) batch.push_back(held(mailbox, false, now));
    auto results = q::hold_messages(db, caps, batch);
    int kept = 0, dropped = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i].what == q::hold_result::outcome::held) ++kept;
        if (results[i].what == q::hold_result::outcome::dropped_over_cap) {
            ++dropped;
            CHECK(batch[i].forged);
        }
    }
    CHECK(kept == 5);  // 3 forged up to the cap, then both unverifiable past it
    CHECK(dropped == 2);
    auto usage = q::usage_of(db, mailbox);
    CHECK(usage.held_items == 5);
    CHECK(usage.dropped_over_cap == 2);
    // A later batch: still over the cap for forged ones.
    auto later = q::hold_messages(db, caps, {held(mailbox, true, now)});
    CHECK(later[0].what == q::hold_result::outcome::dropped_over_cap);

    // The byte cap works the same way.
    q::quarantine_caps bytes_cap;
    bytes_cap.max_bytes = 100;
    auto big = held("bytes-capped@example.org", true, now);
    big.message.assign(150, 'x');
    CHECK(q::hold_messages(db, bytes_cap, {big})[0].what == q::hold_result::outcome::dropped_over_cap);
}

TEST_CASE("a message Postfix offers again after a 451 is held once") {
    migrate_once();
    q::database db(conninfo);
    const auto now = system_clock::now();
    auto first = q::hold_messages(db, {}, {held("retried@example.org", false, now, "4XyZ123")});
    auto again = q::hold_messages(db, {}, {held("retried@example.org", false, now + seconds(300), "4XyZ123")});
    REQUIRE(first[0].what == q::hold_result::outcome::held);
    CHECK(again[0].what == q::hold_result::outcome::already_held);
    CHECK(again[0].id == first[0].id);
    // Another mailbox of the same message is its own item.
    auto other = q::hold_messages(db, {}, {held("retried2@example.org", false, now, "4XyZ123")});
    CHECK(other[0].what == q::hold_result::outcome::held);
    CHECK(q::usage_of(db, "retried@example.org").held_items == 1);
}

TEST_CASE("what is held reads back exactly: bytes, UTF-8, reasons") {
    migrate_once();
    q::database db(conninfo);
    const auto now = system_clock::now();
    auto m = held("readback@example.org", true, now, "Q1");
    auto id = q::hold_messages(db, {}, {m})[0].id;
    auto item = q::get_item(db, id);
    REQUIRE(item.has_value());
    CHECK(item->message == m.message);
    CHECK(item->summary.original_subject == m.original_subject);
    CHECK(item->summary.reasons == m.reasons);
    CHECK(item->summary.message_ids == m.message_ids);
    CHECK(item->summary.state == "held");
    CHECK(item->queue_id == "Q1");
    q::list_filter f;
    f.mailbox = "ReadBack@Example.org";  // case-blind
    auto listed = q::list_items(db, f);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == id);
    CHECK_FALSE(q::get_item(db, 999999999).has_value());
}

TEST_CASE("jörg@ and jürg@ are two mailboxes: held, listed, counted, stormed and digested apart (issue 13 item 4)") {
    migrate_once();
    q::database db(conninfo);
    const std::string joerg = "j\xc3\xb6rg@utf8.example", juerg = "j\xc3\xbcrg@utf8.example";
    const std::string odd_sender = "bounces+\xff\\x@remote.example";  // not UTF-8, with a backslash
    const auto now = system_clock::now();
    std::vector<q::held_message> batch = {held(joerg, false, now, "QJ1"), held(joerg, false, now, "QJ2"),
                                          held(juerg, false, now, "QJ3")};
    for (auto& m : batch) {
        m.sender = odd_sender;
        m.message_ids = {"caf\xe9@mail.example.org", std::string("n\0l@mail.example.org", 19)};
    }
    auto res = q::hold_messages(db, {}, batch);
    for (const auto& r : res) CHECK(r.what == q::hold_result::outcome::held);
    CHECK(q::usage_of(db, joerg).held_items == 2);
    CHECK(q::usage_of(db, juerg).held_items == 1);
    CHECK(q::usage_of(db, "j??rg@utf8.example").held_items == 0);
    q::list_filter f;
    f.mailbox = "J\xc3\xb6rg@UTF8.example";  // case-blind in ASCII only
    auto listed = q::list_items(db, f);
    REQUIRE(listed.size() == 2);
    for (const auto& it : listed) {
        CHECK(it.mailbox == joerg);
        CHECK(it.sender == odd_sender);  // exactly as received: the release's MAIL FROM
        CHECK(it.message_ids == batch[0].message_ids);
    }
    f.mailbox = juerg;
    CHECK(q::list_items(db, f).size() == 1);

    // Storm counts per mailbox: three bounces for jörg start a storm there, jürg's one does not.
    q::storm_settings s;
    s.threshold = 3;
    instance a(s);
    for (int i = 0; i < 3; ++i) a.tracker.observe(joerg, tally_of(0, 0, 1), "mx.remote.example", "subject", now);
    a.tracker.observe(juerg, tally_of(0, 0, 1), "mx.remote.example", "subject", now);
    a.sync(now);
    CHECK(a.tracker.storm_id(joerg) != 0);
    CHECK(a.tracker.storm_id(juerg) == 0);
    auto st = q::storms(db, joerg, now - hours(1));
    REQUIRE(st.size() == 1);
    CHECK(st[0].mailbox == joerg);
    CHECK(st[0].tally.bounces() == 3);
    CHECK(q::storms(db, juerg, now - hours(1)).empty());

    // Digests: one per mailbox, each with its own items.
    auto mailboxes = q::mailboxes_to_report(db, seconds(300));
    CHECK(std::count(mailboxes.begin(), mailboxes.end(), joerg) == 1);
    CHECK(std::count(mailboxes.begin(), mailboxes.end(), juerg) == 1);
    auto dj = q::claim_digest(db, joerg, seconds(300));
    REQUIRE(dj.items.size() == 2);
    for (const auto& it : dj.items) CHECK(it.mailbox == joerg);
    auto du = q::claim_digest(db, juerg, seconds(300));
    REQUIRE(du.items.size() == 1);
    CHECK(du.items[0].mailbox == juerg);
    CHECK(q::digests_of(db, joerg, 10).at(0).mailbox == joerg);

    // A release goes to exactly that mailbox, from exactly that sender.
    auto claim = q::begin_release(db, res[2].id, "link:" + juerg, "web", seconds(300), false);
    REQUIRE(claim.what == q::release_claim::outcome::claimed);
    CHECK(claim.mailbox == juerg);
    CHECK(claim.sender == odd_sender);
    q::finish_release(db, claim.attempt_id, true, "250 2.0.0 Ok: queued as X");
    CHECK(q::usage_of(db, juerg).held_items == 0);
    CHECK(q::usage_of(db, joerg).held_items == 2);
}

TEST_CASE("release bookkeeping: claimed once, in progress, uncertain after the hand-over, released once") {
    migrate_once();
    q::database db(conninfo);
    const auto id = q::hold_messages(db, {}, {held("release@example.org", false, system_clock::now())})[0].id;
    using o = q::release_claim::outcome;
    auto first = q::begin_release(db, id, "alice", "test", seconds(300), false);
    REQUIRE(first.what == o::claimed);
    CHECK(first.mailbox == "release@example.org");
    // A second request while the first runs sends nothing.
    CHECK(q::begin_release(db, id, "bob", "test", seconds(300), false).what == o::in_progress);
    CHECK(q::mark_release_sent(db, first.attempt_id));
    // After the hand-over, a retry may not resend on its own (crash between 250 and bookkeeping).
    auto retry = q::begin_release(db, id, "bob", "test", seconds(0), false);
    CHECK(retry.what == o::uncertain);
    CHECK(retry.detail.find("alice") != std::string::npos);
    q::finish_release(db, first.attempt_id, true, "250 2.0.0 Ok: queued as X");
    auto after = q::begin_release(db, id, "bob", "test", seconds(300), false);
    CHECK(after.what == o::already_released);
    CHECK(after.detail.find("alice") != std::string::npos);
    CHECK(q::usage_of(db, "release@example.org").held_items == 0);
    CHECK(q::begin_release(db, 999999999, "bob", "test", seconds(300), false).what == o::unknown_item);
}

TEST_CASE("a release that crashed before the hand-over is taken over after its lease; the old attempt is fenced") {
    migrate_once();
    q::database db(conninfo);
    const auto id = q::hold_messages(db, {}, {held("lease@example.org", false, system_clock::now())})[0].id;
    using o = q::release_claim::outcome;
    auto crashed = q::begin_release(db, id, "alice", "test", seconds(300), false);
    REQUIRE(crashed.what == o::claimed);
    std::this_thread::sleep_for(milliseconds(1100));
    auto takeover = q::begin_release(db, id, "bob", "test", seconds(1), false);
    REQUIRE(takeover.what == o::claimed);
    CHECK_FALSE(q::mark_release_sent(db, crashed.attempt_id));  // the old attempt may not send
    CHECK(q::mark_release_sent(db, takeover.attempt_id));
    q::finish_release(db, takeover.attempt_id, false, "451 try later");  // refused: held again
    auto item = q::get_item(db, id);
    CHECK(item->summary.state == "held");
    CHECK(q::begin_release(db, id, "carol", "test", seconds(300), false).what == o::claimed);
}

TEST_CASE("digests: each held item claimed by one digest, even by two passes at once") {
    migrate_once();
    const std::string mailbox = "digest-race@example.org";
    {
        q::database db(conninfo);
        std::vector<q::held_message> batch;
        for (int i = 0; i < 200; ++i) batch.push_back(held(mailbox, i % 2 == 0, system_clock::now(), "QD" + std::to_string(i)));
        batch[1].original_recipient = "bob@example.net";
        q::hold_messages(db, {}, batch);
    }
    std::vector<std::int64_t> a, b;
    auto pass = [&](std::vector<std::int64_t>& out) {
        q::database db(conninfo);
        for (const auto& it : q::claim_digest(db, mailbox, seconds(300)).items) out.push_back(it.id);
    };
    std::thread t1(pass, std::ref(a)), t2(pass, std::ref(b));
    t1.join();
    t2.join();
    CHECK(a.size() + b.size() == 200);
    CHECK((a.empty() || b.empty()));  // one pass has them all, the other none
    q::database db(conninfo);
    auto again = q::claim_digest(db, mailbox, seconds(300));
    CHECK(again.digest_id == 0);
    CHECK(again.items.empty());
    const auto all = q::list_items(db, {mailbox, std::nullopt, "held", 0, "bob@example", 1000});
    REQUIRE(all.size() == 1);
    CHECK(all[0].original_recipient == "bob@example.net");
    auto mailboxes = q::mailboxes_to_report(db, seconds(300));
    CHECK(std::find(mailboxes.begin(), mailboxes.end(), mailbox) == mailboxes.end());
}

TEST_CASE("digests: sent items are not reported again; refused ones are; a stopped pass is taken over after its lease") {
    migrate_once();
    q::database db(conninfo);
    const std::string mailbox = "digest-life@example.org";
    q::hold_messages(db, {}, {held(mailbox, false, system_clock::now()), held(mailbox, true, system_clock::now())});
    auto mailboxes = q::mailboxes_to_report(db, seconds(300));
    CHECK(std::find(mailboxes.begin(), mailboxes.end(), mailbox) != mailboxes.end());

    // A dry run claims nothing.
    CHECK(q::claim_digest(db, mailbox, seconds(300), true).items.size() == 2);
    auto first = q::claim_digest(db, mailbox, seconds(300));
    REQUIRE(first.items.size() == 2);
    CHECK(first.storms.empty());
    CHECK(q::mark_digest_sending(db, first.digest_id));
    q::finish_digest(db, first.digest_id, true, "250 2.0.0 Ok: queued as D1");
    CHECK(q::claim_digest(db, mailbox, seconds(300)).items.empty());

    // One more held: only it is in the next digest; the next hop refuses, so it comes back.
    q::hold_messages(db, {}, {held(mailbox, false, system_clock::now())});
    auto second = q::claim_digest(db, mailbox, seconds(300));
    REQUIRE(second.items.size() == 1);
    q::finish_digest(db, second.digest_id, false, "451 4.3.0 try later");
    auto third = q::claim_digest(db, mailbox, seconds(300));
    REQUIRE(third.items.size() == 1);
    CHECK(third.items[0].id == second.items[0].id);

    // `third` stops while building: after the lease another pass takes its items, and `third`
    // may no longer send.
    std::this_thread::sleep_for(milliseconds(1100));
    auto fourth = q::claim_digest(db, mailbox, seconds(1));
    REQUIRE(fourth.items.size() == 1);
    CHECK(fourth.taken_over == 1);
    CHECK_FALSE(q::mark_digest_sending(db, third.digest_id));
    CHECK(q::mark_digest_sending(db, fourth.digest_id));
    // `fourth` stops after handing over: it may have been delivered, so never again.
    std::this_thread::sleep_for(milliseconds(1100));
    CHECK(q::claim_digest(db, mailbox, seconds(1)).items.empty());
    auto history = q::digests_of(db, mailbox, 10);
    REQUIRE(history.size() == 4);
    CHECK(history[0].state == "sending");
    CHECK(history[1].state == "abandoned");
    CHECK(history[2].state == "failed");
    CHECK(history[3].state == "sent");
}

TEST_CASE("delete: held items only, content gone, audited") {
    migrate_once();
    q::database db(conninfo);
    auto r = q::hold_messages(db, {}, {held("delete@example.org", true, system_clock::now()),
                                       held("delete@example.org", true, system_clock::now())});
    auto gone = q::delete_items(db, {r[0].id, 999999999}, "alice");
    CHECK(gone == std::vector<std::int64_t>{r[0].id});
    CHECK(q::delete_items(db, {r[0].id}, "alice").empty());  // already deleted
    auto item = q::get_item(db, r[0].id);
    CHECK(item->summary.state == "deleted");
    CHECK(item->message.empty());
    CHECK(q::usage_of(db, "delete@example.org").held_items == 1);
}

TEST_CASE("expiry drops whole days and gives the mailbox its room back") {
    migrate_once();
    q::database db(conninfo);
    const auto now = system_clock::now();
    const std::string mailbox = "expiry@example.org";
    q::hold_messages(db, {}, {held(mailbox, true, now - days(20)), held(mailbox, true, now - days(20)), held(mailbox, true, now)});
    CHECK(q::usage_of(db, mailbox).held_items == 3);
    auto report = q::expire_quarantine(db, q::utc_day(now) - days(14));
    CHECK(report.days_dropped >= 1);
    CHECK(report.items_dropped >= 2);
    CHECK(q::usage_of(db, mailbox).held_items == 1);
    q::list_filter f;
    f.mailbox = mailbox;
    CHECK(q::list_items(db, f).size() == 1);
    CHECK(q::expire_quarantine(db, q::utc_day(now) - days(14)).days_dropped == 0);  // nothing left to drop
}

namespace {

// Drives async_sent_lookups as an event loop would, until nothing is left to wait for: its
// socket, and its deadline.
void drive(q::async_sent_lookups& l) {
    for (int rounds = 0; rounds < 10000; ++rounds) {
        auto w = l.advance();
        if (w == q::async_sent_lookups::wait::none) return;
        int wait_ms = 5000;
        if (l.deadline() != q::async_sent_lookups::clock::time_point::max())
            wait_ms = static_cast<int>(std::clamp<long long>(
                duration_cast<milliseconds>(l.deadline() - q::async_sent_lookups::clock::now()).count() + 1, 0, 5000));
        pollfd p{l.socket(), static_cast<short>(w == q::async_sent_lookups::wait::read ? POLLIN : POLLOUT), 0};
        ::poll(&p, 1, wait_ms);
    }
}

int backend_pid(const std::string& app) { return ndrguard::test::backend_pid(conninfo, app); }
using ndrguard::test::frozen_backend;

}  // namespace

TEST_CASE("non-blocking lookups: many requests, few queries, each gets its own matches") {
    migrate_once();
    q::database db(conninfo);
    q::sent_log log(db);
    const auto now = system_clock::now();
    log.record({{"<async.1@example.org>", "a@example.org", {"x@remote.test"}, now},
                {"<async.2@example.org>", "a@example.org", {"x@remote.test"}, now - days(3)}});
    q::async_sent_lookups lookups(conninfo);
    std::vector<std::vector<std::string>> got(4);
    int answered = 0;
    auto collect = [&](int i) {
        return [&, i](bool ok, std::vector<q::sent_match>&& found, const std::string& error) {
            CHECK_MESSAGE(ok, error);
            for (auto& f : found) got[static_cast<std::size_t>(i)].push_back(f.message_id);
            ++answered;
        };
    };
    lookups.submit({{"async.1@example.org"}, now - days(7)}, collect(0));
    lookups.submit({{"<async.2@Example.ORG>", "never@example.org"}, now - days(7)}, collect(1));
    lookups.submit({{"async.2@example.org"}, now - days(1)}, collect(2));  // outside its own window
    lookups.submit({{}, now - days(7)}, collect(3));
    drive(lookups);
    CHECK(answered == 4);
    CHECK(got[0] == std::vector<std::string>{"async.1@example.org"});
    CHECK(got[1] == std::vector<std::string>{"async.2@example.org"});
    CHECK(got[2].empty());
    CHECK(got[3].empty());
    CHECK(lookups.queries() == 1);  // all four in one query
    // The connection is kept for the next ones.
    const auto connection = lookups.connection();
    lookups.submit({{"async.1@example.org"}, now - days(7)}, collect(0));
    drive(lookups);
    CHECK(answered == 5);
    CHECK(lookups.connection() == connection);
}

TEST_CASE("non-blocking lookups: no server means a clear failure for each request, and no hang") {
    q::async_sent_lookups lookups("host=/nonexistent port=1 dbname=x user=x connect_timeout=2");
    int failed = 0;
    std::string why;
    for (int i = 0; i < 3; ++i)
        lookups.submit({{"a@b.c"}, system_clock::now()}, [&](bool ok, std::vector<q::sent_match>&&, const std::string& error) {
            if (!ok) ++failed;
            why = error;
        });
    drive(lookups);
    CHECK(failed == 3);
    CHECK(why.find("connecting to PostgreSQL") != std::string::npos);
}

TEST_CASE("non-blocking lookups: a frozen server fails each request within the timeout and drops the connection") {
    migrate_once();
    q::async_sent_lookups lookups(conninfo + " application_name=ndrguard_async_frozen", milliseconds(300));
    int ok = 0, failed = 0;
    std::string why;
    auto count = [&](bool good, std::vector<q::sent_match>&&, const std::string& error) {
        (good ? ok : failed) += 1;
        if (!good) why = error;
    };
    lookups.submit({{"frozen.1@example.org"}, system_clock::now() - days(7)}, count);
    drive(lookups);
    REQUIRE(ok == 1);
    const int pid = backend_pid("ndrguard_async_frozen");
    REQUIRE(pid > 0);
    const auto connection = lookups.connection();
    {
        frozen_backend frozen(pid);
        lookups.submit({{"frozen.2@example.org"}, system_clock::now() - days(7)}, count);
        lookups.submit({{"frozen.3@example.org"}, system_clock::now() - days(7)}, count);
        drive(lookups);
        CHECK(failed == 2);
        CHECK(ok == 1);
        CHECK(lookups.socket() == -1);  // dropped: nothing waits on that server any more
    }
    CHECK(why.find("no answer from PostgreSQL within 300 ms") != std::string::npos);
    // Thawed: the next request connects again and is answered.
    lookups.submit({{"frozen.4@example.org"}, system_clock::now() - days(7)}, count);
    drive(lookups);
    CHECK(ok == 2);
    CHECK(lookups.connection() != connection);
}

TEST_CASE("non-blocking lookups: a batch whose query fails for one request's data is asked again request by request") {
    migrate_once();
    q::database db(conninfo);
    q::sent_log log(db);
    const auto now = system_clock::now();
    log.record({{"<isolate.1@example.org>", "a@example.org", {"x@remote.test"}, now},
                {"<isolate.2@example.org>", "a@example.org", {"x@remote.test"}, now}});
    q::async_sent_lookups lookups(conninfo);
    std::vector<std::vector<std::string>> got(3);
    std::vector<int> answers(3, 0);
    std::vector<bool> good(3, false);
    auto collect = [&](std::size_t i) {
        return [&, i](bool ok, std::vector<q::sent_match>&& found, const std::string&) {
            good[i] = ok;
            ++answers[i];
            for (auto& f : found) got[i].push_back(f.message_id);
        };
    };
    // Bytes that are not UTF-8 (a hostile bounce's Message-ID): the server refuses them as text,
    // unless they were made safe before; either way only that request may fail.
    lookups.submit({{"isolate.1@example.org"}, now - days(7)}, collect(0));
    lookups.submit({{std::string("bad.\xff\xfe@example.org")}, now - days(7)}, collect(1));
    lookups.submit({{"isolate.2@example.org"}, now - days(7)}, collect(2));
    drive(lookups);
    CHECK(answers == std::vector<int>{1, 1, 1});
    CHECK(good[0]);
    CHECK(good[2]);
    CHECK(got[0] == std::vector<std::string>{"isolate.1@example.org"});
    CHECK(got[2] == std::vector<std::string>{"isolate.2@example.org"});
    CHECK(got[1].empty());
}

TEST_CASE("a migration is held to migration_timeout, not to the per-statement database_timeout_ms") {
    migrate_once();
    // A migration that takes longer than the connection's statement bound (as 0007's scan of a
    // big sent log does): serve's start must not fail on it.
    const auto dir = std::filesystem::temp_directory_path() / ("ndrguard-slow-migration-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "9001_slow.sql") << "SELECT pg_sleep(0.6);\n";
    {
        q::database db(q::conninfo_with_deadlines(conninfo, 200), q::migration_timeout);
        auto report = q::migrate(db, dir);
        CHECK(report.applied == std::vector<int>{9001});
    }
    q::database cleanup(conninfo);
    q::migrate(cleanup, NDRGUARD_DEFAULT_SQL_DIR);  // (the connection works)
    const int rc = std::system(("psql -X -q '" + conninfo + "' -c 'DELETE FROM schema_migrations WHERE version = 9001' >/dev/null").c_str());
    CHECK(rc == 0);
    std::filesystem::remove_all(dir);
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

// Last in this file: it expires every day held so far.
TEST_CASE("expiry prunes release attempts and digests with their days; the metrics' totals stay") {
    migrate_once();
    q::database db(conninfo);
    const auto before = q::metrics_totals(db);
    CHECK(before.digests.at("sent") >= 1);       // the digest tests above sent one
    CHECK(before.digests.at("abandoned") >= 1);  // ... and had one taken over
    CHECK(before.releases.at("released") >= 1);  // the release tests released one
    q::expire_quarantine(db, q::utc_day(system_clock::now()) + days(2));
    for (const auto& d : q::digests_of(db, "", 1000)) CHECK((d.state == "sending" || d.state == "building"));
    const auto after = q::metrics_totals(db);
    CHECK(after.digests == before.digests);
    CHECK(after.releases == before.releases);
    CHECK(after.held_items == 0);
}
