// What the admin commands and the metrics endpoint read of the quarantine, storms, releases and
// digests as a whole. Every failure is a database_error.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::quarantine {

struct quarantine_totals {
    std::int64_t held_items = 0, mailboxes = 0, storms_open = 0;
};
quarantine_totals totals(database& db);

// What the metrics endpoint reads at each scrape (cheap: indexed or small tables).
struct metrics_snapshot {
    std::int64_t held_items = 0, storms_open = 0;
    double oldest_held_age_seconds = 0;
    std::map<std::string, std::int64_t> releases;  // released, failed, uncertain
    std::map<std::string, std::int64_t> digests;   // sent, failed, abandoned, uncertain
    double last_digest_sent = 0;                   // Unix time, 0: never
};
metrics_snapshot metrics_totals(database& db);

}  // namespace ndrguard::quarantine
