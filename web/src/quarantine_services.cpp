#include "ndrguard/web/quarantine_services.hpp"

#include "ndrguard/web/time_text.hpp"
#include "ndrguard/release/release.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/metrics_queries.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace ndrguard::web {

namespace q = ndrguard::quarantine;

bool database_web_services::database_ok() {
    try {
        // A real round trip (a pooled connection may have died), on a small table.
        pool_.read([](q::database& db) { return q::totals(db); });
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

namespace {

// One click releases at most this many (a request must end; the page offers the rest).
constexpr std::size_t storm_release_bound = 2000;

std::string utc_minutes(q::clock_time t) { return utc_text(t, "%Y-%m-%d %H:%M UTC"); }

}  // namespace

web::item_view view_of(const q::item_summary& s) {
    web::item_view v;
    v.id = s.id;
    v.mailbox = s.mailbox;
    v.state = s.state;
    v.held_at = utc_minutes(s.held_at);
    v.reporting_mta = s.reporting_mta;
    v.sender = s.sender;
    v.subject = s.subject;
    v.original_subject = s.original_subject;
    v.verification = s.verification;
    v.reasons = s.reasons;
    v.held_at_iso = utc_text(s.held_at, "%Y-%m-%dT%H:%M:%SZ");
    v.klass = s.klass;
    v.original_recipient = s.original_recipient;
    v.notes = s.notes;
    v.evidence = s.evidence;
    v.message_ids = s.message_ids;
    v.storm_id = s.storm_id;
    v.size = s.size;
    return v;
}

std::optional<web::item_view> database_web_services::item(std::int64_t id) {
    auto it = pool_.read([&](q::database& db) { return q::get_item(db, id); });
    if (!it) return std::nullopt;
    return view_of(it->summary);
}

std::vector<web::item_view> database_web_services::held_for(const std::string& mailbox, std::size_t limit, const std::string& search) {
    q::list_filter f;
    f.mailbox = mailbox;
    f.limit = limit;
    f.search = search;
    std::vector<web::item_view> out;
    for (const auto& s : pool_.read([&](q::database& db) { return q::list_items(db, f); })) out.push_back(view_of(s));
    return out;
}

release::release_options release_options_of(const filter::serve_config& cfg, std::string who, std::string via) {
    release::release_options opt;
    opt.next_hop = cfg.next_hop;
    opt.hostname = cfg.hostname;
    opt.timeout_seconds = cfg.reinject_timeout_seconds;
    opt.verdict_header = cfg.verdict_header;
    opt.lease = std::chrono::seconds(cfg.release_lease_seconds);
    opt.who = std::move(who);
    opt.via = std::move(via);
    return opt;
}

release::release_report database_web_services::release_one(q::database& db, std::int64_t id, const std::string& who) {
    return release::release_item(db, id, release_options_of(cfg_, who, "web"));
}

web::release_outcome database_web_services::release(std::int64_t id, const std::string& who) {
    using k = web::release_outcome::kind;
    using o = release::release_report::outcome;
    q::database db(cfg_.database);
    auto r = release_one(db, id, who);
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

std::optional<web::storm_view> database_web_services::storm(std::int64_t storm_id, const std::string& mailbox) {
    return pool_.read([&](q::database& db) { return storm_of(db, storm_id, mailbox); });
}

std::optional<web::storm_view> database_web_services::storm_of(q::database& db, std::int64_t storm_id, const std::string& mailbox) {
    for (const auto& s : q::storms(db, mailbox, q::clock_time{})) {
        if (s.id != storm_id) continue;
        web::storm_view v;
        v.id = s.id;
        v.mailbox = s.mailbox;
        v.started_at = utc_minutes(s.started_at);
        if (s.ended_at) v.ended_at = utc_minutes(*s.ended_at);
        v.bounces = s.tally.bounces();
        for (const auto& [mta, n] : s.top_reporters) v.top_reporters.push_back(mta + " (" + std::to_string(n) + ")");
        v.sample_subjects = s.sample_subjects;
        q::list_filter f;
        f.mailbox = mailbox;
        f.storm_id = storm_id;
        f.limit = storm_release_bound + 1;
        v.held = static_cast<std::int64_t>(q::list_items(db, f).size());
        return v;
    }
    return std::nullopt;
}

web::storm_release_outcome database_web_services::release_storm(std::int64_t storm_id, const std::string& mailbox,
                                                                const std::string& who) {
    using o = release::release_report::outcome;
    q::database db(cfg_.database);
    q::list_filter f;
    f.mailbox = mailbox;
    f.storm_id = storm_id;
    f.limit = storm_release_bound + 1;
    auto items = q::list_items(db, f);
    web::storm_release_outcome out;
    if (items.size() > storm_release_bound) {
        out.remaining = 1;  // at least; the page asks for another click
        items.resize(storm_release_bound);
    }
    for (const auto& it : items) {
        auto r = release_one(db, it.id, who);
        if (r.what == o::released) ++out.released;
        else if (r.what == o::already_released) ++out.already;
        else ++out.failed;
    }
    return out;
}

web::web_services::stats database_web_services::statistics() {
    auto t = pool_.read([](q::database& db) { return q::totals(db); });
    return {t.held_items, t.mailboxes, t.storms_open};
}

}  // namespace ndrguard::web
