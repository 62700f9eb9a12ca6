#include "web_services.hpp"

#include <ctime>

#include "ndrguard/filter/release.hpp"
#include "ndrguard/quarantine/store.hpp"
#include "ndrguard/web/release_token.hpp"

namespace ndrguard::app {

namespace q = ndrguard::quarantine;

bool database_web_services::database_ok() {
    try {
        q::database db(cfg_.database);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

namespace {

web::item_view view_of(const q::item_summary& s) {
    web::item_view v;
    v.id = s.id;
    v.mailbox = s.mailbox;
    v.state = s.state;
    std::time_t t = std::chrono::system_clock::to_time_t(s.held_at);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    v.held_at = buf;
    v.reporting_mta = s.reporting_mta;
    v.subject = s.subject;
    v.original_subject = s.original_subject;
    v.verification = s.verification;
    v.reasons = s.reasons;
    return v;
}

}  // namespace

std::optional<web::item_view> database_web_services::item(std::int64_t id) {
    q::database db(cfg_.database);
    auto it = q::get_item(db, id);
    if (!it) return std::nullopt;
    return view_of(it->summary);
}

std::vector<web::item_view> database_web_services::held_for(const std::string& mailbox, std::size_t limit) {
    q::database db(cfg_.database);
    q::list_filter f;
    f.mailbox = mailbox;
    f.limit = limit;
    std::vector<web::item_view> out;
    for (const auto& s : q::list_items(db, f)) out.push_back(view_of(s));
    return out;
}

web::release_outcome database_web_services::release(std::int64_t id, const std::string& who) {
    using k = web::release_outcome::kind;
    using o = filter::release_report::outcome;
    q::database db(cfg_.database);
    filter::release_options opt;
    opt.next_hop = cfg_.next_hop;
    opt.hostname = cfg_.hostname;
    opt.timeout_seconds = cfg_.reinject_timeout_seconds;
    opt.lease = std::chrono::seconds(cfg_.release_lease_seconds);
    opt.who = who;
    opt.via = "web";
    auto r = filter::release_item(db, id, opt);
    switch (r.what) {
        case o::released: return {k::released, r.detail};
        case o::already_released: return {k::already_released, r.detail};
        case o::in_progress: return {k::in_progress, r.detail};
        case o::uncertain: return {k::uncertain, r.detail};
        case o::deleted: return {k::deleted, r.detail};
        case o::unknown_item: return {k::unknown_item, r.detail};
        default: return {k::failed, r.detail};
    }
}

web::web_services::stats database_web_services::statistics() {
    q::database db(cfg_.database);
    auto t = q::totals(db);
    return {t.held_items, t.mailboxes, t.storms_open};
}

std::string release_link(const filter::serve_config& cfg, const std::string& secret, std::int64_t id, const std::string& mailbox) {
    const auto expires = static_cast<std::int64_t>(std::time(nullptr)) + std::int64_t(cfg.link_ttl_days) * 86400;
    return web::signed_link(cfg.web_base_url, {web::token_action::release, id, mailbox, expires}, secret);
}

std::string list_link(const filter::serve_config& cfg, const std::string& secret, const std::string& mailbox) {
    const auto expires = static_cast<std::int64_t>(std::time(nullptr)) + std::int64_t(cfg.link_ttl_days) * 86400;
    return web::signed_link(cfg.web_base_url, {web::token_action::list, 0, mailbox, expires}, secret);
}

}  // namespace ndrguard::app
