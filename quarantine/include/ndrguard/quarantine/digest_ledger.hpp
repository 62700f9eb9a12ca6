// The digest ledger (sql/0003_digests.sql): which held items each digest reported, claimed and
// finished exactly once. Every failure is a database_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace ndrguard::quarantine {

// Digests (sql/0003_digests.sql): every held item is reported in at most one digest.
// Mailboxes with held items not claimed by a live digest (one 'building' for less than `lease`).
std::vector<std::string> mailboxes_to_report(database& db, std::chrono::seconds lease);

struct digest_claim {
    std::int64_t digest_id = 0;             // 0: nothing to report
    std::vector<item_summary> items;        // oldest first
    std::vector<storm_record> storms;       // the storms those items came in
    std::int64_t taken_over = 0;            // items reclaimed from digests that crashed while building
};
// Claims the mailbox's unreported held items for a new digest (state 'building'). With
// `dry_run` nothing is written: what a claim would take now.
digest_claim claim_digest(database& db, const std::string& mailbox, std::chrono::seconds lease, bool dry_run = false);
// 'building' -> 'sending', just before the final dot; false when the claim was taken over
// meanwhile (the lease passed) and the mail must not be sent.
bool mark_digest_sending(database& db, std::int64_t digest_id);
// 'sent', or 'failed' (its items become unreported again, for the next pass).
void finish_digest(database& db, std::int64_t digest_id, bool sent, const std::string& reply);

struct digest_record {
    std::int64_t id = 0;
    std::string mailbox, state, reply;
    clock_time started_at;
    std::int64_t items = 0;
};
std::vector<digest_record> digests_of(database& db, const std::string& mailbox_or_all, std::size_t limit);

}  // namespace ndrguard::quarantine
