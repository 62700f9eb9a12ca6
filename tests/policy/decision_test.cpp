// The policy service's decision (policy/decision.hpp) as a table: request x what is known of the
// mailbox x settings -> what Postfix is told and why; and the null-sender rate over time.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ndrguard/policy/decision.hpp"

using namespace ndrguard::policy;
using ndrguard::filter::network;

namespace {

policy_request rcpt(std::string sender, std::string recipient, std::string client = "203.0.113.5", std::string state = "RCPT") {
    policy_request r;
    r.request = "smtpd_access_policy";
    r.has_request = true;
    r.protocol_state = std::move(state);
    r.has_sender = true;
    r.sender = std::move(sender);
    r.has_recipient = true;
    r.recipient = std::move(recipient);
    r.client_address = std::move(client);
    return r;
}

service_settings base() {
    service_settings s;
    s.storm_text = "storm text";
    s.rate_text = "rate text";
    s.exempt_mailboxes = {"postmaster@example.org"};
    s.exempt_networks = {*network::parse("198.51.100.0/24"), *network::parse("2001:db8::/32")};
    return s;
}

mailbox_facts facts(bool fresh, bool storm, std::int64_t null_senders = 1) { return {fresh, storm, storm ? 7 : 0, null_senders}; }

}  // namespace

TEST_CASE("the decision table") {
    auto no_sender = rcpt("", "victim@example.org");
    no_sender.has_sender = false;
    auto bad_utf8 = rcpt("", "vict\xffim@example.org");
    service_settings shadow = base();
    shadow.shadow = true;
    service_settings defer = base();
    defer.on_storm = storm_action::defer_to_data;
    service_settings rate = base();
    rate.null_sender_limit = 5;
    service_settings rate_defer = rate;
    rate_defer.on_storm = storm_action::defer_to_data;
    service_settings rate_shadow = rate;
    rate_shadow.shadow = true;

    struct row {
        const char* name;
        policy_request req;
        mailbox_facts f;
        service_settings s;
        result want;
        std::string_view reason;
        std::string action;
    };
    const row rows[] = {
        {"storm, null sender: refused", rcpt("", "victim@example.org"), facts(true, true), base(), result::reject, "storm",
         "550 5.7.1 storm text"},
        {"no storm: nothing to say", rcpt("", "victim@example.org"), facts(true, false), base(), result::dunno, "quiet", "DUNNO"},
        {"a real sender in a storm is not ours to refuse", rcpt("bob@remote.example", "victim@example.org"), facts(true, true),
         base(), result::dunno, "sender_not_null", "DUNNO"},
        {"no sender attribute at all is not the null sender", no_sender, facts(true, true), base(), result::dunno,
         "sender_not_null", "DUNNO"},
        {"only at RCPT", rcpt("", "victim@example.org", "203.0.113.5", "DATA"), facts(true, true), base(), result::dunno,
         "not_rcpt", "DUNNO"},
        {"no recipient", rcpt("", ""), facts(true, true), base(), result::dunno, "no_recipient", "DUNNO"},
        {"a recipient that is not UTF-8 is never a mailbox", bad_utf8, facts(true, true), base(), result::dunno,
         "malformed_recipient", "DUNNO"},
        {"exempt mailbox, in any case", rcpt("", "PostMaster@Example.ORG"), facts(true, true), base(), result::dunno,
         "exempt_mailbox", "DUNNO"},
        {"exempt network (IPv4)", rcpt("", "victim@example.org", "198.51.100.77"), facts(true, true), base(), result::dunno,
         "exempt_network", "DUNNO"},
        {"exempt network (IPv6)", rcpt("", "victim@example.org", "2001:db8::25"), facts(true, true), base(), result::dunno,
         "exempt_network", "DUNNO"},
        {"storm state stale (PostgreSQL away): fail open", rcpt("", "victim@example.org"), facts(false, true), base(),
         result::fail_open, "state_stale", "DUNNO"},
        {"shadow: DUNNO, logged as a refusal", rcpt("", "victim@example.org"), facts(true, true), shadow, result::would_reject,
         "storm", "DUNNO"},
        {"defer_to_data: the filter decides", rcpt("", "victim@example.org"), facts(true, true), defer, result::deferred,
         "defer_to_data", "DUNNO"},
        {"rate: at the limit still passes", rcpt("", "victim@example.org"), facts(true, false, 5), rate, result::dunno, "quiet",
         "DUNNO"},
        {"rate: past the limit refused", rcpt("", "victim@example.org"), facts(true, false, 6), rate, result::reject, "rate",
         "550 5.7.1 rate text"},
        {"rate: without PostgreSQL too (it is counted here)", rcpt("", "victim@example.org"), facts(false, false, 6), rate,
         result::reject, "rate", "550 5.7.1 rate text"},
        {"rate and storm: the storm is the reason", rcpt("", "victim@example.org"), facts(true, true, 6), rate, result::reject,
         "storm", "550 5.7.1 storm text"},
        {"rate applies in defer_to_data mode", rcpt("", "victim@example.org"), facts(true, true, 6), rate_defer, result::reject,
         "rate", "550 5.7.1 rate text"},
        {"rate under shadow", rcpt("", "victim@example.org"), facts(true, false, 6), rate_shadow, result::would_reject, "rate",
         "DUNNO"},
        {"rate off (0) counts nothing", rcpt("", "victim@example.org"), facts(true, false, 1000000), base(), result::dunno,
         "quiet", "DUNNO"},
        {"rate: exempt mailboxes are never refused", rcpt("", "postmaster@example.org"), facts(true, false, 100), rate,
         result::dunno, "exempt_mailbox", "DUNNO"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.name);
        const answer a = decide(r.req, r.f, r.s);
        CHECK(a.outcome == r.want);
        CHECK(a.reason == r.reason);
        CHECK(a.action == r.action);
        CHECK(a.count_refusal == (r.want == result::reject));
        CHECK(wire_answer(a) == "action=" + r.action + "\n\n");
        // A candidate is exactly a request whose reason is about the mailbox, not the request.
        const bool candidate = candidate_mailbox(r.req, r.s).has_value();
        const std::string_view reason = a.reason;
        CHECK(candidate == (reason == "storm" || reason == "rate" || reason == "quiet" || reason == "state_stale" ||
                            reason == "defer_to_data"));
    }
    CHECK(*candidate_mailbox(rcpt("", "<Victim@Example.ORG>"), base()) == "victim@example.org");
}

TEST_CASE("settings from the configuration: exempt mailboxes as keys, the shadow switch, the action") {
    ndrguard::filter::serve_config c;
    CHECK(c.set("policy_exempt_mailboxes", "Abuse@Example.org, postmaster@example.org").empty());
    CHECK(c.set("policy_storm_action", "defer_to_data").empty());
    CHECK(c.set("shadow", "yes").empty());
    CHECK(c.set("policy_null_sender_limit", "20").empty());
    const auto s = settings_of(c);
    CHECK(s.exempt_mailboxes == std::vector<std::string>{"abuse@example.org", "postmaster@example.org"});
    CHECK(s.on_storm == storm_action::defer_to_data);
    CHECK(s.shadow);
    CHECK(s.null_sender_limit == 20);
    CHECK_FALSE(c.set("policy_storm_text", "bad\ttext").empty());
    CHECK_FALSE(c.set("policy_exempt_mailboxes", "not-an-address").empty());
    CHECK_FALSE(c.set("policy_exempt_networks", "300.1.2.3").empty());
}

TEST_CASE("null-sender rate: a sliding window of ten slots, per mailbox") {
    using namespace std::chrono;
    const auto t0 = system_clock::time_point(seconds(1'800'000'000));
    null_sender_rate r(seconds(60), 1000);
    for (int i = 1; i <= 10; ++i) CHECK(r.hit("a@example.org", t0 + seconds(i)) == i);
    CHECK(r.hit("b@example.org", t0 + seconds(11)) == 1);  // another mailbox counts apart
    // Past the window the old slots no longer count: at t0+70 s only what came after t0+12 s.
    CHECK(r.hit("a@example.org", t0 + seconds(70)) == 1);
    CHECK(r.hit("a@example.org", t0 + seconds(75)) == 2);
    // Back in time (a clock step) still counts within the slots it finds.
    CHECK(r.hit("a@example.org", t0 + seconds(74)) == 3);
}

TEST_CASE("null-sender rate: bounded mailboxes; quiet ones forgotten, busy ones kept") {
    using namespace std::chrono;
    const auto t0 = system_clock::time_point(seconds(1'800'000'000));
    null_sender_rate r(seconds(60), 3);
    CHECK(r.hit("a@x", t0) == 1);
    CHECK(r.hit("b@x", t0) == 1);
    CHECK(r.hit("c@x", t0) == 1);
    CHECK(r.hit("d@x", t0) == 1);  // full of busy mailboxes: d is not counted
    CHECK(r.mailboxes() == 3);
    CHECK(r.hit("a@x", t0 + seconds(1)) == 2);  // a kept its count
    // A window later a, b and c are quiet: a new mailbox takes their place.
    CHECK(r.hit("e@x", t0 + seconds(70)) == 1);
    CHECK(r.hit("e@x", t0 + seconds(71)) == 2);
    CHECK(r.mailboxes() == 1);
}
