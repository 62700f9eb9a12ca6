#include "ndrguard/filter/deadlines.hpp"

namespace ndrguard::filter {

deadlines deadlines_of(const serve_config& c) {
    deadlines d;
    d.database = std::chrono::milliseconds(c.database_timeout_ms);
    d.reinject = std::chrono::seconds(c.reinject_timeout_seconds);
    d.idle = std::chrono::seconds(c.idle_timeout_seconds);
    d.session = std::chrono::seconds(c.session_timeout_seconds);
    d.next_hop_idle = std::chrono::seconds(c.next_hop_idle_seconds);
    d.lookup_gather = std::chrono::microseconds(c.lookup_gather_microseconds);
    d.storm_sync = std::chrono::milliseconds(c.storm_sync_ms);
    return d;
}

}  // namespace ndrguard::filter
