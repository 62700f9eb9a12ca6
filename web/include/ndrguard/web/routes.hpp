// The release pages, as a pure function from a request to a response: what ndrguard serve's
// HTTP listener answers (http_server.hpp) for the links in digests.
//
//   GET  /healthz                 200 "ok" when the database answers, else 503
//   GET  /release/TOKEN           a confirmation page: what will be released, and a button
//   POST /release/TOKEN           releases it (link scanners only GET, so they release nothing)
//   GET  /release-storm/TOKEN     what a storm holds for the mailbox, and a button
//   POST /release-storm/TOKEN     releases all of it (each message exactly once)
//   GET  /held/TOKEN              the mailbox's held messages (a "list" link), each with its own
//                                 release link, valid as long as the list link
//
// The admin API (JSON; "Authorization: Bearer ADMIN_TOKEN"; off when no admin token is set):
//   GET  /api/stats                         held items, mailboxes holding some, open storms
//   GET  /api/held?mailbox=M&q=TEXT&limit=N held items, oldest first (mailbox optional; q: a
//                                           case-insensitive part of a subject, the reporting MTA,
//                                           the sender or the original's recipient)
//   GET  /api/items/ID                      one item
//   POST /api/items/ID/release              release it (exactly once, audited as "api")
//
// A bad token gets 403, an expired one 410, an unknown item 404; no page says more than needed
// (nothing about other mailboxes, nothing from the database for a bad token). Pages have no
// JavaScript, escape everything they show and fit a phone's screen.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ndrguard/web/url.hpp"

namespace ndrguard::web {

struct http_request {
    http_request(std::string m, std::string t, std::string auth = {})
        : method(std::move(m)), target(std::move(t)), authorization(std::move(auth)) {}
    std::string method;         // "GET", "POST", ...
    std::string target;         // "/release/v1.xxx.yyy?..."
    std::string authorization;  // the Authorization header, for the admin API
};

struct http_response {
    int status = 200;
    std::string content_type = "text/html; charset=utf-8";
    std::string body;
};

// What the pages show of a held item, and what its JSON form (held_item_json.hpp) gives.
struct item_view {
    std::int64_t id = 0;
    std::string mailbox, state, held_at, reporting_mta, sender, subject, original_subject, verification;
    std::vector<std::string> reasons;
    // The JSON form's further fields (the pages do not show them).
    std::string held_at_iso;  // "2026-11-22T02:00:00Z" (held_at is "2026-11-22 02:00 UTC", for people)
    std::string klass, original_recipient;
    std::vector<std::string> notes, message_ids;
    std::vector<std::string> evidence;  // the verdict's evidence tags (the page shows them too)
    std::int64_t storm_id = 0, size = 0;
};

// What the pages show of a storm, for one mailbox.
struct storm_view {
    std::int64_t id = 0;
    std::string mailbox, started_at, ended_at;  // ended_at "" while it lasts
    std::int64_t bounces = 0, held = 0;         // all it counted; still held for the mailbox
    std::vector<std::string> top_reporters, sample_subjects;
};

struct storm_release_outcome {
    std::int64_t released = 0, already = 0, failed = 0, remaining = 0;  // remaining: past this request's bound
};

struct release_outcome {
    enum class kind { released, already_released, in_progress, uncertain, deleted, unknown_item, failed } what = kind::failed;
    std::string detail;
};

// What the pages need from the rest of ndrguard; the real one talks to PostgreSQL and the next
// hop (app/web_services.cpp), tests use a fake.
class web_services {
public:
    virtual ~web_services() = default;
    virtual bool database_ok() = 0;
    virtual std::optional<item_view> item(std::int64_t id) = 0;
    virtual release_outcome release(std::int64_t id, const std::string& who) = 0;
    virtual std::vector<item_view> held_for(const std::string& mailbox, std::size_t limit,
                                            const std::string& search = {}) = 0;  // oldest first; "" = all
    virtual std::optional<storm_view> storm(std::int64_t storm_id, const std::string& mailbox) = 0;
    virtual storm_release_outcome release_storm(std::int64_t storm_id, const std::string& mailbox, const std::string& who) = 0;
    struct stats {
        std::int64_t held_items = 0, mailboxes = 0, storms_open = 0;
    };
    virtual stats statistics() = 0;
};

// `admin_token` empty: the admin API answers 404.
http_response route(const http_request& req, web_services& services, std::string_view secret, std::int64_t now,
                    std::string_view admin_token = {});


}  // namespace ndrguard::web
