#include "server_impl.hpp"

namespace ndrguard::filter {

// Housekeeping, each on a thread of its own: the retention loop (sent log, quarantine and storms
// older than their retention) and the storm sync (counts written, every instance's read back).
// Applies the retention (quarantine/retention.hpp), now and every hour, until stop().
void filter_server::impl::retention_loop() {
    while (!stopping) {
        try {
            q::database db(cfg.database);
            const auto r = q::apply_retention(db, retention_policy_of(cfg), std::chrono::system_clock::now());
            if (r.sent_log_days_dropped > 0)
                write_log("ndrguard: retention dropped_days=" + std::to_string(r.sent_log_days_dropped) +
                          " first_kept=" + q::iso_date(r.sent_log_first_kept));
            if (r.quarantine.days_dropped > 0)
                write_log("ndrguard: quarantine expiry dropped_days=" + std::to_string(r.quarantine.days_dropped) +
                          " still_held_items=" + std::to_string(r.quarantine.items_dropped) +
                          " first_kept=" + q::iso_date(r.quarantine_first_kept));
        } catch (const std::exception& e) {
            write_log("ndrguard: retention error=" + log_safe(e.what(), 300));
        }
        std::unique_lock lock(mu);
        sessions_done.wait_for(lock, limits.retention_period, [&] { return stopping.load(); });
    }
}

// Writes this instance's storm counts and reads back every instance's, every storm_sync_ms,
// until run() says stop (after the last session, so that every count is written).
void filter_server::impl::storm_sync_loop() {
    std::unique_ptr<q::database> db;
    std::set<std::int64_t> open_storms;  // to log starts and ends once
    auto last_first_day = std::chrono::steady_clock::time_point{};
    bool failing = false;
    while (true) {
        const bool last_round = storm_sync_stop.load();
        std::vector<q::storm_delta> deltas;
        std::vector<std::string> watched;
        {
            std::lock_guard lock(storms_mu);
            deltas = storms.take_pending();
            watched = storms.watched_mailboxes();
        }
        try {
            if (!db) db = std::make_unique<q::database>(cfg.database);
            const auto now = std::chrono::system_clock::now();
            q::storm_sync_events events;
            auto states = q::storm_sync(*db, storms.settings(), deltas, watched, now, &events);
            metrics.storms_started.fetch_add(static_cast<std::uint64_t>(events.started), std::memory_order_relaxed);
            metrics.storms_ended.fetch_add(static_cast<std::uint64_t>(events.ended), std::memory_order_relaxed);
            {
                std::lock_guard lock(storms_mu);
                storms.apply_sync(states);
            }
            storm_synced_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch()).count();
            std::set<std::int64_t> open_now;
            for (const auto& st : states)
                if (st.storm_id) {
                    open_now.insert(st.storm_id);
                    if (!open_storms.count(st.storm_id))
                        write_log("ndrguard: storm started storm_id=" + std::to_string(st.storm_id) + " mailbox=<" +
                                  log_safe(st.mailbox) + "> window_count=" + std::to_string(st.window_count));
                }
            for (auto id : open_storms)
                if (!open_now.count(id)) write_log("ndrguard: storm ended storm_id=" + std::to_string(id));
            open_storms = std::move(open_now);
            if (cfg.warm_up_auto && std::chrono::steady_clock::now() - last_first_day > std::chrono::minutes(1)) {
                auto days = q::sent_log(*db).days();
                first_sent_day = days.empty() ? -2 : static_cast<long long>(days.front().time_since_epoch().count());
                last_first_day = std::chrono::steady_clock::now();
            }
            if (failing) write_log("ndrguard: storm counters written again");
            failing = false;
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(storms_mu);
                storms.restore(std::move(deltas));  // written with the next sync
            }
            db.reset();
            metrics.count_database_error(3);  // storm_sync
            if (!failing) write_log("ndrguard: storm counters not written, kept for the next try: error=" + log_safe(e.what(), 300));
            failing = true;
        }
        if (last_round) break;
        std::unique_lock lock(mu);
        sessions_done.wait_for(lock, limits.storm_sync, [&] { return storm_sync_stop.load(); });
    }
}

}  // namespace ndrguard::filter
