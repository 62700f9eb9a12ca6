// Every deadline of `ndrguard serve` in one place (issue 13: no wait without a bound), built
// from serve_config by one function. The I/O code takes its bounds from here only.
#pragma once

#include <chrono>

#include "ndrguard/filter/config.hpp"

namespace ndrguard::filter {

struct deadlines {
    // Every wait of a message on PostgreSQL (lookup, sent-log record, hold: connect, query,
    // commit) ends within it, with 451 (database_timeout_ms).
    std::chrono::milliseconds database{10000};
    // Each connect, read or write to the next hop (reinject_timeout_seconds); then 451.
    std::chrono::seconds reinject{120};
    // A client session: between two reads or writes, and as a whole (idle_timeout_seconds,
    // session_timeout_seconds); then 421 and closed.
    std::chrono::seconds idle{300};
    std::chrono::seconds session{3600};
    // An idle pooled next-hop connection is closed (QUIT) after this (next_hop_idle_seconds);
    // those beyond next_hop_max_idle after next_hop_burst_grace.
    std::chrono::seconds next_hop_idle{60};
    std::chrono::seconds next_hop_burst_grace{1};
    // A busy filter's lookup waits this long for others to share its query (lookup_gather_microseconds).
    std::chrono::microseconds lookup_gather{300};
    // Storm counts written and read back this often (storm_sync_ms).
    std::chrono::milliseconds storm_sync{250};
    // The retention loop's period (sent log, quarantine, storms).
    std::chrono::hours retention_period{1};
    // After stop(): running sessions may finish their message this long (Postfix retries what is
    // cut off), then deciders this long.
    std::chrono::seconds stop_grace{30};
    std::chrono::seconds deciders_stop_grace{5};
    // An idle decider thread ends after this.
    std::chrono::seconds decider_idle{60};
};

deadlines deadlines_of(const serve_config& c);

}  // namespace ndrguard::filter
