#include "ndrguard/quarantine/metrics_queries.hpp"

#include "pg_util.hpp"

namespace ndrguard::quarantine {

using pg::guarded;

void pg::add_total(pqxx::work& txn, const char* name, std::int64_t n) {
    if (n == 0) return;
    txn.exec_params("INSERT INTO ndrguard_totals (name, value) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET value = ndrguard_totals.value + excluded.value",
                    name, n);
}

quarantine_totals totals(database& db) {
    return guarded("counting the quarantine", [&] {
        pqxx::read_transaction txn(db.native().conn);
        auto r = txn.exec1("SELECT coalesce(sum(held_items), 0)::bigint, count(*) FILTER (WHERE held_items > 0), "
                           "(SELECT count(*) FROM storms WHERE ended_at IS NULL) FROM quarantine_mailboxes");
        return quarantine_totals{r[0].as<std::int64_t>(), r[1].as<std::int64_t>(), r[2].as<std::int64_t>()};
    });
}

metrics_snapshot metrics_totals(database& db) {
    return guarded("reading metrics", [&] {
        pqxx::read_transaction txn(db.native().conn);
        metrics_snapshot m;
        auto r = txn.exec1(
            "SELECT (SELECT coalesce(sum(held_items), 0)::bigint FROM quarantine_mailboxes), "
            "(SELECT count(*) FROM storms WHERE ended_at IS NULL), "
            "(SELECT coalesce(extract(epoch FROM now() - min(held_at)), 0)::float8 FROM quarantine WHERE state = 'held'), "
            "(SELECT coalesce(extract(epoch FROM max(finished_at)), 0)::float8 FROM digests WHERE state = 'sent')");
        m.held_items = r[0].as<std::int64_t>();
        m.storms_open = r[1].as<std::int64_t>();
        m.oldest_held_age_seconds = r[2].as<double>();
        m.last_digest_sent = r[3].as<double>();
        for (auto row : txn.exec("SELECT name, value FROM ndrguard_totals")) {
            const std::string name = row[0].as<std::string>();
            const auto value = row[1].as<std::int64_t>();
            if (name.rfind("releases_", 0) == 0) m.releases[name.substr(9)] = value;
            if (name.rfind("digests_", 0) == 0) m.digests[name.substr(8)] = value;
        }
        // A hand-over unanswered for an hour will not finish: it is uncertain (never resent).
        m.releases["uncertain"] = txn.exec1("SELECT count(*) FROM quarantine_releases WHERE state = 'sent' AND "
                                            "started_at < now() - interval '1 hour'")[0]
                                      .as<std::int64_t>();
        m.digests["uncertain"] =
            txn.exec1("SELECT count(*) FROM digests WHERE state = 'sending' AND started_at < now() - interval '1 hour'")[0]
                .as<std::int64_t>();
        return m;
    });
}

}  // namespace ndrguard::quarantine
