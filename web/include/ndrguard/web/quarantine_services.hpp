// The web adapter (target ndrguard_web_quarantine): the release pages' and the admin API's view
// of ndrguard, the quarantine in PostgreSQL and releases to next_hop.
// /healthz, the pages and the admin API read through a small pool of connections
// (web_database_connections, each wait at most database_timeout_ms); a release opens its own
// (it may wait for the next hop for reinject_timeout_seconds, and holds no pooled connection).
#pragma once

#include "ndrguard/web/database_pool.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/release/release.hpp"
#include "ndrguard/quarantine/database.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/web/routes.hpp"

namespace ndrguard::web {

// A release as the configuration says (next_hop, hostname, reinject_timeout_seconds,
// verdict_header, release_lease_seconds); `who` and `via` for the audit. The pages' and the CLI's.
release::release_options release_options_of(const filter::serve_config& cfg, std::string who, std::string via);

// A held item as the pages and the JSON form (held_item_json) show it.
item_view view_of(const quarantine::item_summary& s);

class database_web_services : public web::web_services {
public:
    explicit database_web_services(const filter::serve_config& cfg)
        : cfg_(cfg), pool_(cfg.database, cfg.web_database_connections, std::chrono::milliseconds(cfg.database_timeout_ms)) {}
    bool database_ok() override;
    std::optional<web::item_view> item(std::int64_t id) override;
    web::release_outcome release(std::int64_t id, const std::string& who) override;
    std::vector<web::item_view> held_for(const std::string& mailbox, std::size_t limit, const std::string& search) override;
    std::optional<web::storm_view> storm(std::int64_t storm_id, const std::string& mailbox) override;
    web::storm_release_outcome release_storm(std::int64_t storm_id, const std::string& mailbox, const std::string& who) override;
    stats statistics() override;

private:
    std::optional<web::storm_view> storm_of(quarantine::database& db, std::int64_t storm_id, const std::string& mailbox);
    release::release_report release_one(quarantine::database& db, std::int64_t id, const std::string& who);
    const filter::serve_config& cfg_;
    database_pool pool_;
};

}  // namespace ndrguard::web
