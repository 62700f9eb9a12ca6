// The release ledger (quarantine_releases): who released which held item, when, and whether the
// hand-over to the next hop finished. Every failure is a database_error.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

// Exactly-once release, in three steps around the SMTP transaction (filter/release.cpp):
//   begin_release: 'held' -> 'releasing', an attempt recorded as 'started' (who, how);
//   mark_release_sent: just before the final dot; false if the attempt was taken over;
//   finish_release: 'done' (item 'released') or 'failed' (item 'held' again).
// An attempt left 'started' by a crash is taken over after `lease`; one left 'sent' may have
// reached Postfix and is never retried unless `force`.
struct release_claim {
    enum class outcome {
        claimed,           // go ahead: attempt_id is ours
        unknown_item,
        already_released,  // by whom and when in `detail`
        deleted,
        in_progress,       // another attempt is running
        uncertain,         // an earlier attempt crashed after handing the message over
    } what = outcome::claimed;
    std::int64_t attempt_id = 0;
    std::string detail;
    std::string mailbox, sender, message;  // when claimed
};
release_claim begin_release(database& db, std::int64_t item_id, const std::string& who, const std::string& via,
                            std::chrono::seconds lease, bool force);
bool mark_release_sent(database& db, std::int64_t attempt_id);
void finish_release(database& db, std::int64_t attempt_id, bool delivered, const std::string& reply);

}  // namespace ndrguard::quarantine
