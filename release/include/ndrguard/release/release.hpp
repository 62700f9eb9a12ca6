// Releasing a held message: back to Postfix (the next hop, which bypasses the filter) for its
// one mailbox, exactly once.
//
// The database records the attempt before anything is sent (begin_release: the claim), and
// smtp::deliver_exactly_once records it again just before the final dot: a crash before that
// point left nothing in Postfix's queue and the release can simply run again (after the
// attempt's lease); a crash after it may have left the message queued, so a retry refuses to
// send it again and says so ("uncertain"), unless forced. Two concurrent requests: the second
// finds the first's attempt and sends nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::release {

// Filled from the configuration (next_hop, hostname, reinject_timeout_seconds, verdict_header,
// release_lease_seconds): no defaults here.
struct release_options {
    std::string next_hop;                 // host:port
    std::string hostname;                 // our EHLO name
    int timeout_seconds = 0;              // per connect, read or write towards the next hop
    std::string verdict_header;           // removed from the message, as X-NDRGuard-Released is
    std::chrono::seconds lease{};         // after this, an attempt that never handed over is stale
    bool force = false;                   // send even when an earlier attempt may have delivered
    std::string who = "unknown";          // for the audit: an admin's login, "digest link", ...
    std::string via = "cli";
};

struct release_report {
    enum class outcome {
        released,          // the next hop answered 250; queue_id set
        refused,           // the next hop refused (4xx/5xx): the item is held again
        unreachable,       // no connection or no answer before the hand-over: held again
        uncertain,         // handed over, then no answer: it may be queued; not resent
        unknown_item,
        already_released,
        deleted,
        in_progress,
        database_failure,
    } what = outcome::released;
    std::string detail;    // for people: who released it when, the next hop's reply, ...
    std::string queue_id;  // the next hop's, when released
};

std::string_view to_string(release_report::outcome o);

release_report release_item(quarantine::database& db, std::int64_t item_id, const release_options& o);

}  // namespace ndrguard::release
