// The policy service's answer to one request, as a pure function of the request, what is known
// of its mailbox, and the settings; and the per-mailbox null-sender rate (time a parameter). No
// sockets, no clock, no database: the listener (filter/src/policy_listener.cpp) gathers the
// facts (the storm tracker, the rate) and carries the answer out.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ndrguard/filter/config.hpp"
#include "ndrguard/policy/request.hpp"

namespace ndrguard::policy {

enum class storm_action {
    reject,         // refuse every null sender to a storm mailbox at RCPT (cheapest; a genuine bounce too)
    defer_to_data,  // DUNNO: the content filter decides at DATA (before queue: verified ones pass)
};

struct service_settings {
    storm_action on_storm = storm_action::reject;
    std::int64_t null_sender_limit = 0;  // null-sender RCPTs per mailbox and window; past it refused (0: off)
    std::vector<std::string> exempt_mailboxes;      // mailbox keys (q::mailbox_key)
    std::vector<filter::network> exempt_networks;   // clients never refused
    bool shadow = false;                            // answer DUNNO, log what would have been refused
    std::string storm_text;                         // after "550 5.7.1 "
    std::string rate_text;
};
service_settings settings_of(const filter::serve_config& c);

// What the listener knows of the request's mailbox when it decides.
struct mailbox_facts {
    bool state_fresh = false;  // the storm state was read from PostgreSQL recently (policy_max_state_age_seconds)
    bool in_storm = false;
    std::int64_t storm_id = 0;
    std::int64_t null_senders = 0;  // null-sender RCPTs in the rate window, this one included
};

enum class result {
    dunno,           // nothing to say: Postfix goes on with the next restriction
    reject,          // 550 5.7.1
    would_reject,    // shadow: DUNNO, logged as a refusal
    fail_open,       // a storm known, but the state is stale (PostgreSQL away or slow): DUNNO
    deferred,        // a storm mailbox, policy_storm_action = defer_to_data: DUNNO
};
std::string_view to_string(result r);

struct answer {
    result outcome = result::dunno;
    std::string_view reason;   // a stable tag: storm, rate, not_rcpt, sender_not_null, ...
    std::string action;        // what Postfix is told: "DUNNO" or "550 5.7.1 TEXT"
    bool count_refusal = false;  // a refusal: counted into the storm tracker (its end sees it)
};

// The mailbox key a request is about when it may be refused: a null-sender RCPT to a well-formed
// recipient, neither exempt. nullopt: DUNNO whatever the counters say (decide() gives the reason).
std::optional<std::string> candidate_mailbox(const policy_request& r, const service_settings& s);

answer decide(const policy_request& r, const mailbox_facts& f, const service_settings& s);

// "action=...\n\n"
std::string wire_answer(const answer& a);

// Null-sender RCPTs per mailbox in a sliding window (ten slots of window/10: postfwd's
// rate(recipient/N/T) with a coarse slide). Bounded: at most max_mailboxes are remembered; when
// full, the ones quiet for a whole window are forgotten, and if none is, a new mailbox is not
// counted (its count is 1) until a slot later.
class null_sender_rate {
public:
    using clock_time = std::chrono::system_clock::time_point;
    null_sender_rate(std::chrono::seconds window, std::size_t max_mailboxes);
    // Counts one attempt; returns the attempts in the window, this one included.
    std::int64_t hit(const std::string& mailbox, clock_time now);
    std::size_t mailboxes() const { return counts_.size(); }

private:
    static constexpr int slots = 10;
    struct entry {
        std::int64_t slot_of[slots] = {};  // which slot number each cell counts
        std::int64_t count[slots] = {};
        std::int64_t last = 0;             // the newest slot number counted
    };
    std::int64_t slot_number(clock_time t) const;
    std::int64_t slot_ms_;
    std::size_t max_;
    std::int64_t no_sweep_before_ = 0;  // a sweep that freed nothing is not repeated within a slot
    std::unordered_map<std::string, entry> counts_;
};

}  // namespace ndrguard::policy
