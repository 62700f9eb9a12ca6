// Storms in PostgreSQL (sql/0002_storms_quarantine.sql): the shared counters every instance writes,
// the storm records they open and end, and their expiry. The pure half is storm.hpp. Every failure
// is a database_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/storm.hpp"

namespace ndrguard::quarantine {

// Writes one instance's deltas and reads back the state of those mailboxes and of `watched`
// ones, in one transaction: counters upserted per (mailbox, bucket), storms entered, gone quiet
// or ended by the thresholds, deltas added to the open storms.
// `events`, when given, counts the storms this call opened and ended (exactly one instance's sync
// opens or ends each storm).
struct storm_sync_events {
    std::int64_t started = 0, ended = 0;
};
std::vector<mailbox_storm_state> storm_sync(database& db, const storm_settings& s, const std::vector<storm_delta>& deltas,
                                            const std::vector<std::string>& watched, clock_time now,
                                            storm_sync_events* events = nullptr);

struct storm_record {
    std::int64_t id = 0;
    std::string mailbox;
    clock_time started_at;
    std::optional<clock_time> quiet_since, ended_at;
    ndr_tally tally;
    std::vector<std::string> sample_subjects;
    std::vector<std::pair<std::string, std::int64_t>> top_reporters;  // most messages first (at most 10)
};
std::vector<storm_record> storms(database& db, const std::string& mailbox_or_all, clock_time since);

// Drops counter buckets older than `before` (they are outside every window).
std::size_t expire_counters(database& db, clock_time before);

// Drops storms that ended before `before` (with their reporters); returns how many.
std::size_t expire_storms(database& db, clock_time before);

}  // namespace ndrguard::quarantine
