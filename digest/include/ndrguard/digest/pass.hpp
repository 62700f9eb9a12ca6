// One digest pass: for each mailbox with held items not yet reported, claim them, compose the
// digest and hand it to the next hop (Postfix's reinjection port, which bypasses the filter).
// Exactly once per item: the claim is a row lock in PostgreSQL, the hand-over is
// smtp::deliver_exactly_once, which records it just before the final dot
// (sql/0003_digests.sql says what a crash at each point leaves).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ndrguard/smtp/handover.hpp"
#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::digest {

// Filled from the configuration (next_hop, hostname, reinject_timeout_seconds, digest_*,
// web_base_url, link_ttl_days): no defaults here.
struct pass_options {
    smtp::handover_options hop;
    std::string envelope_sender;  // "" = postmaster@hop.hostname
    std::string from;             // "" = "Mail quarantine <envelope sender>"
    std::string web_base_url;
    std::string secret;           // signs the links
    int link_ttl_days = 0;
    std::size_t max_listed = 0;
    std::chrono::seconds lease{};
    std::string only_mailbox;     // "" = every mailbox with something to report
    bool dry_run = false;         // compose, claim nothing, send nothing
};

struct mailbox_report {
    enum class outcome {
        sent,        // the next hop answered 250
        dry_run,     // composed only (message set)
        nothing,     // nothing unreported (or another pass has it)
        refused,     // the next hop said no, or could not be reached: the items wait for the next pass
        taken_over,  // our claim passed its lease and another pass took the items
        uncertain,   // handed over, then no answer: maybe delivered; never sent again
        failed,      // database
    } what = outcome::nothing;
    std::string mailbox;
    std::int64_t digest_id = 0, items = 0;
    std::string detail;   // the next hop's reply, or the error
    std::string message;  // dry_run: the composed mail
};
std::string_view to_string(mailbox_report::outcome o);

// Calls `report` after each mailbox (for logging as it goes); returns them all.
std::vector<mailbox_report> run_pass(quarantine::database& db, const pass_options& o,
                                     const std::function<void(const mailbox_report&)>& report = {});

}  // namespace ndrguard::digest
