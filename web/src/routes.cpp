#include "ndrguard/web/routes.hpp"

#include <openssl/crypto.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "ndrguard/web/held_item_json.hpp"
#include "ndrguard/web/release_token.hpp"
#include "ndrguard/web/url.hpp"

namespace ndrguard::web {

namespace {

std::string page(std::string_view title, std::string_view body_html) {
    std::string out =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\"><title>";
    out += html_escape(title);
    out += "</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;"
           "line-height:1.5;color:#222}dt{font-weight:600}dd{margin:0 0 .5rem 0;overflow-wrap:anywhere}"
           "button{font-size:1.1rem;padding:.6rem 1.2rem}</style></head><body><h1>";
    out += html_escape(title);
    out += "</h1>";
    out += body_html;
    out += "</body></html>\n";
    return out;
}

http_response answer(int status, std::string_view title, std::string_view text) {
    return {status, "text/html; charset=utf-8", page(title, "<p>" + html_escape(text) + "</p>")};
}

// A DSN names the server that reports it; a reply has only its sender.
std::string_view reported_by(const item_view& it) { return it.reporting_mta.empty() ? it.sender : it.reporting_mta; }

std::string describe(const item_view& it) {
    std::string out = "<dl>";
    auto row = [&](std::string_view name, std::string_view value) {
        out += "<dt>" + html_escape(name) + "</dt><dd>" + html_escape(value.empty() ? "-" : value) + "</dd>";
    };
    row("For", it.mailbox);
    row("Held at", it.held_at);
    row("Reported by", reported_by(it));
    row("Subject of the bounce", it.subject);
    row("Subject of the message it returns", it.original_subject);
    std::string why = it.verification == "forged"         ? "it names a message that was never sent from here"
                      : it.verification == "unverifiable" ? "it names no message that could be checked"
                      : it.verification == "suspect"
                          ? "it names a message this server has no record of sending, but it shows signs of having been "
                            "sent from here: it may be a genuine bounce"
                          : "it was held by a policy setting";
    row("Why it was held", why);
    std::string evidence;
    for (std::size_t i = 0; i < it.evidence.size(); ++i) evidence += (i ? ", " : "") + it.evidence[i];
    row("Evidence", evidence);
    std::string reasons;
    for (std::size_t i = 0; i < it.reasons.size(); ++i) reasons += (i ? ", " : "") + it.reasons[i];
    row("Detector's reasons", reasons);
    out += "</dl>";
    return out;
}

http_response json(int status, const nlohmann::json& j) {
    return {status, "application/json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

std::optional<std::int64_t> parse_id(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

http_response admin_api(const http_request& req, std::string_view path, std::string_view query, web_services& services,
                        std::string_view admin_token) {
    if (admin_token.empty()) return json(404, {{"error", "the admin API is off"}});
    constexpr std::string_view bearer = "Bearer ";
    const std::string_view given = std::string_view(req.authorization).substr(0, 1024);
    if (given.substr(0, bearer.size()) != bearer || given.size() - bearer.size() != admin_token.size() ||
        CRYPTO_memcmp(given.data() + bearer.size(), admin_token.data(), admin_token.size()) != 0)
        return json(401, {{"error", "want Authorization: Bearer <admin token>"}});
    if (path == "/api/stats" && req.method == "GET") {
        auto st = services.statistics();
        return json(200, {{"held_items", st.held_items}, {"mailboxes", st.mailboxes}, {"storms_open", st.storms_open}});
    }
    if (path == "/api/held" && req.method == "GET") {
        // A value that does not decode is refused: taken as absent, mailbox= would list every mailbox.
        for (const char* name : {"mailbox", "q", "limit"})
            if (query_value_malformed(query, name))
                return json(400, {{"error", std::string(name) + ": bad %-encoding (want %XX with two hex digits)"}});
        std::size_t limit = 100;
        if (auto l = query_value(query, "limit")) {
            auto n = parse_id(*l);
            if (!n || *n > 10000) return json(400, {{"error", "limit: want 1..10000"}});
            limit = static_cast<std::size_t>(*n);
        }
        std::string mailbox = query_value(query, "mailbox").value_or("");
        for (char& c : mailbox)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        const std::string search = query_value(query, "q").value_or("").substr(0, 200);
        nlohmann::json out = nlohmann::json::array();
        for (const auto& it : services.held_for(mailbox, limit, search)) out.push_back(held_item_json(it));
        return json(200, out);
    }
    constexpr std::string_view items = "/api/items/";
    if (path.substr(0, items.size()) == items) {
        std::string_view rest = path.substr(items.size());
        const bool release = rest.size() > 8 && rest.substr(rest.size() - 8) == "/release";
        if (release) rest.remove_suffix(8);
        auto id = parse_id(rest);
        if (!id) return json(404, {{"error", "no such path"}});
        if (!release && req.method == "GET") {
            auto it = services.item(*id);
            if (!it) return json(404, {{"error", "no quarantined message has this id"}});
            return json(200, held_item_json(*it));
        }
        if (release && req.method == "POST") {
            auto r = services.release(*id, "api");
            using k = release_outcome::kind;
            static const char* names[] = {"released", "already_released", "in_progress", "uncertain", "deleted", "unknown_item", "failed"};
            const int status = r.what == k::released || r.what == k::already_released ? 200
                               : r.what == k::unknown_item                           ? 404
                               : r.what == k::failed                                 ? 503
                                                                                      : 409;
            return json(status, {{"result", names[static_cast<int>(r.what)]}, {"detail", r.detail}});
        }
        return json(405, {{"error", "method not allowed"}});
    }
    return json(404, {{"error", "no such path"}});
}

// The page for a link that is not good for `wanted`, or nothing when it is.
std::optional<http_response> refusal(const token_check& check, token_action wanted) {
    if (check.error == token_error::expired)
        return answer(410, "This link has expired", "Links from the digest work for a limited time. What they name may still be "
                                                    "in quarantine: your next digest brings a new link, or ask your mail "
                                                    "administrator.");
    if (check.error != token_error::none || check.claims.action != wanted)
        return answer(403, "This link is not valid", "The link is incomplete or was altered. Copy it again from the digest.");
    return std::nullopt;
}

http_response storm_page(const http_request& req, std::string_view token, web_services& services, std::string_view secret,
                         std::int64_t now) {
    if (req.method != "GET" && req.method != "POST") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
    const token_check check = verify_token(token, secret, now);
    if (auto refused = refusal(check, token_action::release_storm)) return *refused;
    const auto storm = services.storm(check.claims.target, check.claims.mailbox);
    if (!storm) return answer(404, "Storm not found", "It may have expired from the quarantine.");
    if (req.method == "GET") {
        if (storm->held == 0) return answer(200, "Nothing left to release", "Everything this storm held for you was released or has expired.");
        std::string body = "<p>During this storm, bounces for mail you did not send arrived for " + html_escape(storm->mailbox) +
                           ". Release them only if you expect some to be yours.</p><dl>";
        auto row = [&](std::string_view name, std::string_view value) {
            body += "<dt>" + html_escape(name) + "</dt><dd>" + html_escape(value.empty() ? "-" : value) + "</dd>";
        };
        row("Started", storm->started_at);
        row("Ended", storm->ended_at.empty() ? "still going on" : storm->ended_at);
        row("Bounces counted", std::to_string(storm->bounces));
        row("Held for you", std::to_string(storm->held));
        std::string list;
        for (std::size_t i = 0; i < storm->top_reporters.size() && i < 5; ++i) list += (i ? ", " : "") + storm->top_reporters[i];
        row("Top reporting MTAs", list);
        list.clear();
        for (std::size_t i = 0; i < storm->sample_subjects.size() && i < 5; ++i) list += (i ? ", " : "") + storm->sample_subjects[i];
        row("Sample subjects", list);
        body += "</dl><form method=\"post\" action=\"/release-storm/" + html_escape(token) +
                "\"><button type=\"submit\">Release all " + std::to_string(storm->held) + " to my mailbox</button></form>";
        return {200, "text/html; charset=utf-8", page("Release this storm's messages?", body)};
    }
    const storm_release_outcome r = services.release_storm(check.claims.target, check.claims.mailbox, "link:" + check.claims.mailbox);
    std::string text = std::to_string(r.released) + " released to your mailbox";
    if (r.already) text += ", " + std::to_string(r.already) + " released before";
    if (r.failed) text += ", " + std::to_string(r.failed) + " could not be released just now (nothing was lost; try again later)";
    text += ".";
    if (r.remaining) text += " More remain: use the link again to release the next ones.";
    return answer(r.failed && !r.released ? 503 : 200, r.failed ? "Partly released" : "Released", text);
}

}  // namespace

http_response route(const http_request& req, web_services& services, std::string_view secret, std::int64_t now,
                    std::string_view admin_token) {
    std::string_view path = req.target;
    std::string_view query;
    if (auto q = path.find('?'); q != std::string_view::npos) {
        query = path.substr(q + 1);
        path = path.substr(0, q);
    }
    if (path.substr(0, 5) == "/api/") return admin_api(req, path, query, services, admin_token);

    if (path == "/healthz") {
        if (req.method != "GET" && req.method != "HEAD") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        bool ok = services.database_ok();
        return {ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "database unreachable\n"};
    }

    constexpr std::string_view held_prefix = "/held/";
    if (path.substr(0, held_prefix.size()) == held_prefix) {
        if (req.method != "GET") return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        const token_check check = verify_token(path.substr(held_prefix.size()), secret, now);
        if (auto refused = refusal(check, token_action::list)) return *refused;
        constexpr std::size_t shown = 500;
        const auto items = services.held_for(check.claims.mailbox, shown + 1);
        std::string body = "<p>Messages held for " + html_escape(check.claims.mailbox) + ", oldest first.</p>";
        if (items.empty()) body += "<p>Nothing is held.</p>";
        body += "<ul>";
        const mailbox_links links("", check.claims.mailbox, std::string(secret), check.claims.expires_at);  // the list's expiry
        for (std::size_t i = 0; i < items.size() && i < shown; ++i) {
            const item_view& it = items[i];
            body += "<li><a href=\"" + html_escape(links.release(it.id)) + "\">" +
                    html_escape(it.original_subject.empty() ? it.subject : it.original_subject) + "</a><br><small>" +
                    html_escape(it.held_at) + " &middot; " +
                    html_escape(reported_by(it).empty() ? "-" : reported_by(it)) +
                    " &middot; " + html_escape(it.verification) + "</small></li>";
        }
        body += "</ul>";
        if (items.size() > shown) body += "<p>Only the oldest " + std::to_string(shown) + " are listed.</p>";
        return {200, "text/html; charset=utf-8", page("Held messages", body)};
    }

    constexpr std::string_view storm_prefix = "/release-storm/";
    if (path.substr(0, storm_prefix.size()) == storm_prefix) return storm_page(req, path.substr(storm_prefix.size()), services, secret, now);

    constexpr std::string_view prefix = "/release/";
    if (path.substr(0, prefix.size()) != prefix) return answer(404, "Not found", "There is nothing at this address.");
    if (req.method != "GET" && req.method != "POST")
        return {405, "text/plain; charset=utf-8", "method not allowed\n"};

    const std::string_view token = path.substr(prefix.size());
    const token_check check = verify_token(token, secret, now);
    if (auto refused = refusal(check, token_action::release)) return *refused;

    const std::int64_t id = check.claims.target;
    auto it = services.item(id);
    // An item of another mailbox is as unknown as a missing one: the link names both.
    if (!it || it->mailbox != check.claims.mailbox)
        return answer(404, "Message not found", "It may have expired from the quarantine.");

    if (req.method == "GET") {
        if (it->state == "released") return answer(200, "Already released", "This message was released before; it is in your mailbox.");
        if (it->state == "deleted") return answer(410, "Deleted", "This message was deleted from the quarantine.");
        std::string body = "<p>This bounce was held because it may not be for mail you sent.</p>" + describe(*it) +
                           "<form method=\"post\" action=\"" + html_escape(std::string(prefix) + std::string(token)) +
                           "\"><button type=\"submit\">Release it to my mailbox</button></form>";
        return {200, "text/html; charset=utf-8", page("Release this message?", body)};
    }

    const release_outcome r = services.release(id, "link:" + check.claims.mailbox);
    using k = release_outcome::kind;
    switch (r.what) {
        case k::released: return answer(200, "Released", "The message is on its way to your mailbox.");
        case k::already_released: return answer(200, "Already released", "This message was released before; it is in your mailbox.");
        case k::in_progress: return answer(409, "Being released", "This message is being released right now.");
        case k::uncertain:
            return answer(409, "Release needs an administrator",
                          "An earlier release may have delivered it already; your mail administrator can check.");
        case k::deleted: return answer(410, "Deleted", "This message was deleted from the quarantine.");
        case k::unknown_item: return answer(404, "Message not found", "It may have expired from the quarantine.");
        case k::failed: break;
    }
    return answer(503, "Try again later", "The message could not be released just now; nothing was lost.");
}

}  // namespace ndrguard::web
