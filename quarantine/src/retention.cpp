#include "ndrguard/quarantine/retention.hpp"

#include "ndrguard/quarantine/sent_log.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace ndrguard::quarantine {

retention_report apply_retention(database& db, const retention_policy& policy, clock_time now) {
    retention_report r;
    r.sent_log_first_kept = utc_day(now) - std::chrono::days(policy.sent_log_days);
    r.sent_log_days_dropped = sent_log(db).drop_days_before(r.sent_log_first_kept);
    r.quarantine_first_kept = utc_day(now) - std::chrono::days(policy.quarantine_days);
    r.quarantine = expire_quarantine(db, r.quarantine_first_kept);
    r.storms_dropped = expire_storms(db, now - std::chrono::days(policy.quarantine_days));
    r.counter_buckets_dropped = expire_counters(db, now - policy.storm_window - std::chrono::hours(1));
    return r;
}

}  // namespace ndrguard::quarantine
