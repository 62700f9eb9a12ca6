// Retention, in one place: everything ndrguard keeps for a time and then drops. The filter runs
// it every hour (serve); `ndrguard quarantine purge --expired` runs it on demand. Every failure
// is a database_error (what was dropped before it stays dropped).
#pragma once

#include <chrono>
#include <cstddef>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace ndrguard::quarantine {

// How long things are kept (the configuration's keys in parentheses).
struct retention_policy {
    int sent_log_days = 30;                  // days of the sent log (sent_log_retention_days)
    int quarantine_days = 14;                // held days, then dropped whole with their release attempts
                                             // and digests; storms that ended before go too
                                             // (quarantine_retention_days)
    std::chrono::seconds storm_window{600};  // storm counters go an hour after leaving the window
                                             // (storm_window_seconds)
};

// What one application dropped.
struct retention_report {
    day sent_log_first_kept{}, quarantine_first_kept{};
    std::size_t sent_log_days_dropped = 0;
    expiry_report quarantine;                // days dropped, and the items among them still held
    std::size_t storms_dropped = 0;
    std::size_t counter_buckets_dropped = 0;
};

// Drops, as of `now`: the sent log's days before now - sent_log_days, the quarantine's days
// before now - quarantine_days (expire_quarantine), the storms that ended before that time
// (expire_storms: storms are kept as long as what they held), and the storm counter buckets
// older than the window and an hour (expire_counters). Idempotent.
retention_report apply_retention(database& db, const retention_policy& policy, clock_time now);

}  // namespace ndrguard::quarantine
