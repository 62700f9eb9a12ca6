// The decision core as a table: every cell of the default policy under each mode, sender, shadow
// and warm-up; per-recipient splits; the transaction-wide rules (5xx only if every recipient
// rejects, never a 5xx after queue for a non-null sender); what is held, delivered and counted.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/decision.hpp"

using namespace ndrguard::filter;
using mc = ndrguard::detector::message_class;
using ndrguard::smtp::reply_id;

namespace {

constexpr auto D = action::deliver, R = action::reject, Q = action::quarantine;
constexpr auto aq = filter_mode::after_queue, bq = filter_mode::before_queue;
constexpr auto ver = verification::verified, fgd = verification::forged, unv = verification::unverifiable,
               sus = verification::suspect;

bounce_facts facts(mc k, verification v, filter_mode mode, bool null_sender, std::vector<bounce_facts::recipient> rcpts = {{}},
                   bool shadow = false, bool warm_up = false) {
    bounce_facts f;
    f.klass = k;
    f.verdict = v;
    f.mode = mode;
    f.null_sender = null_sender;
    f.shadow = shadow;
    f.warm_up = warm_up;
    f.recipients = std::move(rcpts);
    return f;
}

std::string notes_of(const bounce_plan& p) {
    std::string out;
    for (auto n : p.notes) out += (out.empty() ? "" : ",") + std::string(n);
    return out;
}

}  // namespace

TEST_CASE("one recipient: every cell of the default policy, by mode, sender, shadow and warm-up") {
    struct row {
        mc klass;
        verification v;
        filter_mode mode;
        bool null_sender, shadow, warm_up, storm;
        action act;        // what is done
        action intended;   // what would be done without shadow mode
        const char* notes;
    };
    // DESIGN.md's table: bounces (dsn, ndr) verified deliver, forged reject, unverifiable
    // deliver; replies (autoreply, challenge, virus_notice) forged quarantine; reports (mdn,
    // feedback) always deliver.
    const row rows[] = {
        // after queue, null sender: the table as it is
        {mc::dsn, ver, aq, true, false, false, false, D, D, ""},
        {mc::dsn, fgd, aq, true, false, false, false, R, R, ""},
        {mc::dsn, unv, aq, true, false, false, false, D, D, ""},
        {mc::ndr, ver, aq, true, false, false, false, D, D, ""},
        {mc::ndr, fgd, aq, true, false, false, false, R, R, ""},
        {mc::ndr, unv, aq, true, false, false, false, D, D, ""},
        {mc::autoreply, ver, aq, true, false, false, false, D, D, ""},
        {mc::autoreply, fgd, aq, true, false, false, false, Q, Q, ""},
        {mc::autoreply, unv, aq, true, false, false, false, D, D, ""},
        {mc::challenge, fgd, aq, true, false, false, false, Q, Q, ""},
        {mc::challenge, unv, aq, true, false, false, false, D, D, ""},
        {mc::virus_notice, fgd, aq, true, false, false, false, Q, Q, ""},
        {mc::virus_notice, ver, aq, true, false, false, false, D, D, ""},
        {mc::mdn, ver, aq, true, false, false, false, D, D, ""},
        {mc::mdn, fgd, aq, true, false, false, false, D, D, ""},
        {mc::mdn, unv, aq, true, false, false, false, D, D, ""},
        {mc::feedback, ver, aq, true, false, false, false, D, D, ""},
        {mc::feedback, fgd, aq, true, false, false, false, D, D, ""},
        {mc::feedback, unv, aq, true, false, false, false, D, D, ""},
        // after queue, non-null sender: a 5xx would make Postfix bounce (backscatter): held
        {mc::dsn, fgd, aq, false, false, false, false, Q, Q, "non_null_sender_after_queue"},
        {mc::ndr, fgd, aq, false, false, false, false, Q, Q, "non_null_sender_after_queue"},
        {mc::dsn, ver, aq, false, false, false, false, D, D, ""},
        {mc::autoreply, fgd, aq, false, false, false, false, Q, Q, ""},
        // before queue the client hears the 5xx: nothing is bounced by us
        {mc::dsn, fgd, bq, false, false, false, false, R, R, ""},
        {mc::ndr, fgd, bq, true, false, false, false, R, R, ""},
        {mc::autoreply, fgd, bq, false, false, false, false, Q, Q, ""},
        {mc::dsn, unv, bq, false, false, false, false, D, D, ""},
        // warm-up: "forged" may only mean "sent before the log began"
        {mc::dsn, fgd, aq, true, false, true, false, Q, Q, "warm_up"},
        {mc::dsn, fgd, bq, false, false, true, false, Q, Q, "warm_up"},
        {mc::dsn, ver, aq, true, false, true, false, D, D, ""},
        {mc::autoreply, fgd, aq, true, false, true, false, Q, Q, ""},
        // storm: what cannot be verified waits in quarantine (not reports)
        {mc::dsn, unv, aq, true, false, false, true, Q, Q, "storm"},
        {mc::ndr, unv, bq, false, false, false, true, Q, Q, "storm"},
        {mc::autoreply, unv, aq, false, false, false, true, Q, Q, "storm"},
        {mc::feedback, unv, aq, true, false, false, true, D, D, ""},
        {mc::mdn, unv, aq, true, false, false, true, D, D, ""},
        {mc::dsn, ver, aq, true, false, false, true, D, D, ""},
        {mc::dsn, fgd, aq, true, false, false, true, R, R, ""},
        // shadow: decided and recorded, everything delivered
        {mc::dsn, fgd, aq, true, true, false, false, D, R, "shadow"},
        {mc::dsn, fgd, aq, false, true, false, false, D, Q, "non_null_sender_after_queue,shadow"},
        {mc::dsn, fgd, bq, false, true, false, false, D, R, "shadow"},
        {mc::dsn, unv, aq, true, true, false, true, D, Q, "shadow,storm"},
        {mc::dsn, fgd, aq, true, true, true, false, D, Q, "shadow,warm_up"},
        {mc::dsn, ver, aq, true, true, false, false, D, D, ""},
    };
    policy p;
    for (const auto& r : rows) {
        CAPTURE(to_string(r.klass));
        CAPTURE(to_string(r.v));
        CAPTURE(r.mode == bq);
        CAPTURE(r.null_sender);
        CAPTURE(r.shadow);
        CAPTURE(r.warm_up);
        CAPTURE(r.storm);
        const auto plan = plan_bounce(p, facts(r.klass, r.v, r.mode, r.null_sender, {{false, r.storm}}, r.shadow, r.warm_up));
        REQUIRE(plan.recipients.size() == 1);
        CHECK(plan.recipients[0].act == r.act);
        CHECK(plan.recipients[0].intended == r.intended);
        CHECK(plan.recipients[0].policy_act == p.cell(r.klass, r.v));
        CHECK(notes_of(plan) == r.notes);
        CHECK(plan.reject_all == (r.act == R));
        CHECK(plan.reply() == (r.act == R ? std::optional(reply_id::backscatter_rejected) : std::nullopt));
        CHECK(plan.to_hold().size() == (r.act == Q ? 1u : 0u));
        CHECK(plan.delivers_any() == (r.act == D));
        CHECK(plan.storm_mailboxes == (r.storm ? 1u : 0u));
        CHECK(plan.counted == (r.klass != mc::mdn && r.klass != mc::feedback));
    }
}

TEST_CASE("the evidence's rules: suspect is held, never rejected; a weak detection is never rejected") {
    struct row {
        mc klass;
        verification v;
        filter_mode mode;
        bool weak, storm, shadow;
        action act, intended;
        const char* notes;
    };
    const row rows[] = {
        // suspect (a sent-log miss with evidence of our origin): held by default, in every mode
        {mc::dsn, sus, aq, false, false, false, Q, Q, ""},
        {mc::ndr, sus, bq, false, false, false, Q, Q, ""},
        {mc::autoreply, sus, aq, false, false, false, Q, Q, ""},
        {mc::feedback, sus, aq, false, false, false, D, D, ""},
        {mc::dsn, sus, aq, false, false, true, D, Q, "shadow"},
        {mc::dsn, sus, aq, true, false, false, Q, Q, ""},
        // weak and forged: held instead of rejected
        {mc::ndr, fgd, aq, true, false, false, Q, Q, "weak_detection"},
        {mc::ndr, fgd, bq, true, false, false, Q, Q, "weak_detection"},
        {mc::dsn, fgd, aq, false, false, false, R, R, ""},
        {mc::ndr, fgd, aq, true, false, true, D, Q, "shadow,weak_detection"},
        {mc::autoreply, fgd, aq, true, false, false, Q, Q, ""},  // held anyway: no note
        {mc::ndr, ver, aq, true, false, false, D, D, ""},
        // a storm holds suspect ones too, even where the cell delivers (reports aside)
        {mc::feedback, sus, aq, false, true, false, D, D, ""},
    };
    policy p;
    for (const auto& r : rows) {
        CAPTURE(to_string(r.klass));
        CAPTURE(to_string(r.v));
        CAPTURE(r.weak);
        auto f = facts(r.klass, r.v, r.mode, true, {{false, r.storm}}, r.shadow);
        f.weak = r.weak;
        const auto plan = plan_bounce(p, f);
        CHECK(plan.recipients[0].act == r.act);
        CHECK(plan.recipients[0].intended == r.intended);
        CHECK(notes_of(plan) == r.notes);
    }
    // An administrator who delivers suspect bounces still has them held in a storm.
    policy deliver_suspect;
    REQUIRE(deliver_suspect.set_from_text("dsn.suspect", "deliver"));
    auto plan = plan_bounce(deliver_suspect, facts(mc::dsn, sus, aq, true, {{false, true}}));
    CHECK(plan.recipients[0].act == Q);
    CHECK(notes_of(plan) == "storm");
    plan = plan_bounce(deliver_suspect, facts(mc::dsn, sus, aq, true, {{false, false}}));
    CHECK(plan.recipients[0].act == D);
    // Rejecting them cannot be configured; set() (code) can, and decide() holds them anyway.
    CHECK_FALSE(deliver_suspect.set_from_text("dsn.suspect", "reject"));
    deliver_suspect.set(mc::dsn, sus, R);
    plan = plan_bounce(deliver_suspect, facts(mc::dsn, sus, bq, true, {{false, false}}));
    CHECK(plan.recipients[0].act == Q);
    CHECK(notes_of(plan) == "suspect");
}

TEST_CASE("per recipient: a bounce to two mailboxes, one in a storm") {
    policy p;
    // Unverifiable: held for the mailbox in a storm, delivered to the other, in one transaction.
    auto plan = plan_bounce(p, facts(mc::dsn, unv, aq, true, {{false, true}, {false, false}}));
    CHECK(plan.recipients[0].act == Q);
    CHECK(plan.recipients[1].act == D);
    CHECK(plan.to_hold() == std::vector<std::size_t>{0});
    CHECK(plan.delivers_any());
    CHECK_FALSE(plan.reply());
    CHECK(plan.storm_mailboxes == 1);
    CHECK(notes_of(plan) == "storm");
    auto d = plan_delivery(plan, 1, 0);
    CHECK(d.to_deliver == std::vector<std::size_t>{1});
    CHECK(d.header_from == 1);
    CHECK(d.log_action == "mixed");
    CHECK(d.counted == counted_action::quarantine);
    CHECK_FALSE(d.reply);

    // Forged, after queue, null sender: both reject; one 5xx for the transaction.
    plan = plan_bounce(p, facts(mc::ndr, fgd, aq, true, {{false, true}, {false, false}}));
    CHECK(plan.reject_all);
    CHECK(plan.reply() == reply_id::backscatter_rejected);
    CHECK(plan.to_hold().empty());
    CHECK_FALSE(plan.delivers_any());
}

TEST_CASE("a 5xx only if every recipient rejects: the others' rejects are held") {
    policy p;
    p.set(mc::dsn, verification::unverifiable, action::reject);
    auto plan = plan_bounce(p, facts(mc::dsn, unv, aq, true, {{false, false}, {false, false}}));
    CHECK(plan.reject_all);  // both reject
    // One recipient malformed (delivered unfiltered), the other rejects: no 5xx, the reject held.
    plan = plan_bounce(p, facts(mc::dsn, unv, aq, true, {{true, false}, {false, false}}));
    CHECK_FALSE(plan.reject_all);
    CHECK(plan.recipients[0].act == D);
    CHECK(plan.recipients[1].act == Q);
    CHECK(plan.recipients[1].intended == Q);
    CHECK(notes_of(plan) == "malformed_recipient,mixed_recipients");
    CHECK(plan.to_hold() == std::vector<std::size_t>{1});
    // Three recipients, the third malformed: the two rejects are held, the third delivered.
    plan = plan_bounce(policy{}, facts(mc::dsn, fgd, aq, true, {{false, false}, {false, false}, {true, false}}));
    CHECK_FALSE(plan.reject_all);
    CHECK(plan.recipients[0].act == Q);
    CHECK(plan.recipients[1].act == Q);
    CHECK(plan.recipients[2].act == D);
}

TEST_CASE("a recipient that cannot be a mailbox key is delivered unfiltered") {
    policy p;
    auto plan = plan_bounce(p, facts(mc::dsn, unv, aq, true, {{true, true}}));
    CHECK(plan.recipients[0].act == D);
    CHECK(notes_of(plan) == "malformed_recipient,storm");
    auto d = plan_delivery(plan, 0, 0);
    CHECK(d.log_action == "deliver");
    CHECK(d.to_deliver == std::vector<std::size_t>{0});
}

TEST_CASE("exhaustively: never a 5xx after queue for a non-null sender; a 5xx only if every recipient rejects") {
    const mc classes[] = {mc::dsn, mc::ndr, mc::autoreply, mc::challenge, mc::virus_notice, mc::mdn, mc::feedback};
    const action actions[] = {D, R, Q};
    for (auto k : classes)
        for (auto v : {ver, fgd, unv, sus})
            for (auto cell : actions)
                for (auto mode : {aq, bq})
                    for (int bits = 0; bits < 128; ++bits) {
                        policy p;
                        p.set(k, v, cell);  // policy::set takes even suspect = reject (the text form refuses it)
                        const bool null_sender = bits & 1, shadow = bits & 2, warm_up = bits & 4, weak = bits & 64;
                        std::vector<bounce_facts::recipient> rcpts = {{bool(bits & 8), bool(bits & 16)}};
                        if (bits & 32) rcpts.push_back({false, false});
                        auto f = facts(k, v, mode, null_sender, rcpts, shadow, warm_up);
                        f.weak = weak;
                        const auto plan = plan_bounce(p, f);
                        std::size_t rejects = 0;
                        for (const auto& d : plan.recipients) rejects += d.act == R;
                        CHECK(plan.reject_all == (rejects == rcpts.size()));
                        CHECK((rejects == 0 || rejects == rcpts.size()));
                        if (mode == aq && !null_sender) CHECK(rejects == 0);
                        if (shadow) CHECK(rejects == 0);
                        if (warm_up) CHECK(rejects == 0);
                        if (weak) CHECK(rejects == 0);     // found by wording: never rejected
                        if (v == sus) CHECK(rejects == 0);  // the sent log's gap: never rejected
                        if (shadow) CHECK_FALSE(plan.to_hold().size());
                    }
}

TEST_CASE("after the holds: who is delivered, what Postfix is told, what is counted") {
    policy p;
    auto plan = plan_bounce(p, facts(mc::autoreply, fgd, aq, false, {{false, false}, {false, false}}));
    REQUIRE(plan.to_hold().size() == 2);
    struct {
        std::size_t held, dropped;
        std::string_view log_action;
        counted_action counted;
        std::optional<reply_id> reply;
    } rows[] = {
        {2, 0, "quarantine", counted_action::quarantine, reply_id::held_in_quarantine},
        {1, 1, "quarantine", counted_action::quarantine, reply_id::held_in_quarantine},
        {0, 2, "drop", counted_action::dropped, reply_id::dropped_quarantine_full},
    };
    for (const auto& r : rows) {
        auto d = plan_delivery(plan, r.held, r.dropped);
        CHECK(d.to_deliver.empty());
        CHECK(d.log_action == r.log_action);
        CHECK(d.counted == r.counted);
        CHECK(d.reply == r.reply);
    }
    auto delivered = plan_delivery(plan_bounce(p, facts(mc::dsn, ver, aq, true, {{}, {}})), 0, 0);
    CHECK(delivered.to_deliver == std::vector<std::size_t>{0, 1});
    CHECK(delivered.log_action == "deliver");
    CHECK(delivered.counted == counted_action::deliver);
    CHECK_FALSE(delivered.reply);
    // Delivered with a dropped copy beside: mixed.
    CHECK(plan_delivery(plan_bounce(p, facts(mc::dsn, unv, aq, true, {{false, true}, {}})), 0, 1).log_action == "mixed");
}

TEST_CASE("what Postfix was told decides what is counted") {
    CHECK(counted_for_answer("451 4.3.0 Error: sent log unavailable", counted_action::deliver) == counted_action::tempfail);
    CHECK(counted_for_answer("550 5.1.1 no such user", counted_action::deliver) == counted_action::reject);
    CHECK(counted_for_answer("250 2.0.0 Ok: queued as X", counted_action::quarantine) == counted_action::quarantine);
}

TEST_CASE("the route and what counts for storms") {
    auto net = network::parse("192.0.2.0/24");
    REQUIRE(net);
    CHECK(route_of("192.0.2.7", false, {*net}) == message_route::outbound);
    CHECK(route_of("198.51.100.1", false, {*net}) == message_route::inbound);
    CHECK(route_of("198.51.100.1", true, {*net}) == message_route::outbound);
    CHECK(counts_for_storms(mc::dsn));
    CHECK(counts_for_storms(mc::virus_notice));
    CHECK_FALSE(counts_for_storms(mc::mdn));
    CHECK_FALSE(counts_for_storms(mc::feedback));
    CHECK_FALSE(counts_for_storms(mc::not_bounce));
}
