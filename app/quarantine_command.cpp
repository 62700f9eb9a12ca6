#include "quarantine_command.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "config_args.hpp"
#include "ndrguard/web/time_text.hpp"
#include "ndrguard/web/quarantine_services.hpp"
#include "ndrguard/web/held_item_json.hpp"
#include "ndrguard/web/release_token.hpp"
#include "ndrguard/release/release.hpp"
#include "ndrguard/quarantine/digest_ledger.hpp"
#include "ndrguard/quarantine/held_items.hpp"
#include "ndrguard/quarantine/retention.hpp"
#include "ndrguard/quarantine/storms.hpp"

namespace ndrguard::app {

namespace q = ndrguard::quarantine;
using clock_time = std::chrono::system_clock::time_point;

const char* const quarantine_usage =
    "usage: ndrguard quarantine SUBCOMMAND [ARGS] [--config FILE] [--set KEY=VALUE] [--db CONNINFO]\n"
    "\n"
    "The messages ndrguard holds, and the storms it saw. Reads the serve configuration (database,\n"
    "next_hop, hostname, reinject_timeout_seconds, the retention and storm window).\n"
    "\n"
    "  list [--mailbox M] [--since T] [--state S] [--limit N] [--json]\n"
    "                       held messages, oldest first (--state held|releasing|released|deleted|all,\n"
    "                       default held; --limit default 1000)\n"
    "  show ID [--raw]      one message: envelope, verdict, reasons, storm, headers (--raw: all of it)\n"
    "  release ID... [--force] [--by WHO]\n"
    "                       reinject to next_hop for its mailbox only, exactly once. A release that\n"
    "                       handed the message over and then lost the answer is not repeated; --force\n"
    "                       sends it anyway. --by names the requester in the audit (default: cli:$USER)\n"
    "  delete ID... [--by WHO]  drop held messages (their content goes at once; audited)\n"
    "  link ID... | --mailbox M\n"
    "                       a release link for each held message (web_base_url/release/...), or\n"
    "                       the link to a mailbox's page of held messages (web_base_url/held/...);\n"
    "                       valid link_ttl_days; signed with web_secret_file, created if missing\n"
    "  purge --expired      apply the retention serve applies hourly: the held days older than\n"
    "                       quarantine_retention_days and the storms that ended before, the sent\n"
    "                       log's days older than sent_log_retention_days, stale storm counters\n"
    "  storms [--mailbox M] [--since T] [--json]\n"
    "                       storms: mailbox, start, end, counts by verdict and action, top reporting\n"
    "                       MTAs, sample subjects (--since default: 7d)\n"
    "  digests [--mailbox M] [--limit N] [--json]\n"
    "                       the digests sent (newest first): state sent, failed, abandoned (taken\n"
    "                       over), sending (handed over, no answer: never resent), items, reply\n"
    "\n"
    "T is a UTC date or time (2026-11-20, 2026-11-20T08:00:00) or an age (90m, 24h, 7d).\n"
    "Exit status: 0 done; 1 some ID was unknown, not released or not deleted, or the database\n"
    "failed (each says why on stderr); 2 usage error.\n";

namespace {

std::string iso(clock_time t) { return web::utc_text(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::optional<clock_time> parse_time(const std::string& v, clock_time now) {
    if (v.size() >= 2 && (v.back() == 'm' || v.back() == 'h' || v.back() == 'd')) {
        long n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size() - 1, n);
        if (ec == std::errc() && p == v.data() + v.size() - 1 && n >= 0) {
            long unit = v.back() == 'm' ? 60 : v.back() == 'h' ? 3600 : 86400;
            return now - std::chrono::seconds(n * unit);
        }
        if (v.back() != 'd') return std::nullopt;
    }
    std::tm tm{};
    const char* end = strptime(v.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end) {
        tm = {};
        end = strptime(v.c_str(), "%Y-%m-%dT%H:%M", &tm);
    }
    if (!end || *end) {
        tm = {};
        end = strptime(v.c_str(), "%Y-%m-%d", &tm);
    }
    if (!end || *end) return std::nullopt;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::optional<std::int64_t> parse_id(const std::string& v) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n <= 0) return std::nullopt;
    return n;
}

std::string default_requester() {
    const char* user = std::getenv("SUDO_USER");
    if (!user) user = std::getenv("USER");
    return std::string("cli:") + (user ? user : std::to_string(::getuid()).c_str());
}

std::string joined(const std::vector<std::string>& v, const char* sep = ",") {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
    return out;
}

// The one JSON form of a held item, the admin API's too.
nlohmann::json item_json(const q::item_summary& s) { return web::held_item_json(web::view_of(s)); }

// Text output is for a terminal: no control characters from the message get through.
std::string printable(std::string_view s, std::size_t max = 80) {
    std::string out;
    for (unsigned char c : s.substr(0, max)) out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
    return out;
}

int usage_error(const std::string& what) {
    std::cerr << "ndrguard quarantine: " << what << "\n\n" << quarantine_usage;
    return 2;
}

}  // namespace

int run_quarantine(const std::vector<std::string>& args) {
    config_args parsed = parse_config_args(args);
    if (!parsed.errors.empty()) {
        for (auto& e : parsed.errors) std::cerr << "ndrguard quarantine: " << e << "\n";
        return 2;
    }
    const filter::serve_config& cfg = parsed.cfg;
    std::vector<std::string> rest = parsed.rest;
    if (rest.empty()) return usage_error("which subcommand?");
    const std::string sub = rest.front();
    rest.erase(rest.begin());
    const auto now = std::chrono::system_clock::now();

    // Options of the subcommands, and their positional ids.
    std::string mailbox, state = "held", by = default_requester();
    std::optional<clock_time> since;
    std::size_t limit = 1000;
    bool json = false, raw = false, force = false, expired = false;
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < rest.size(); ++i) {
        const std::string& a = rest[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= rest.size()) return std::nullopt;
            return rest[++i];
        };
        if (a == "--json") json = true;
        else if (a == "--raw") raw = true;
        else if (a == "--force") force = true;
        else if (a == "--expired") expired = true;
        else if (a == "--mailbox" || a == "--state" || a == "--by" || a == "--since" || a == "--limit") {
            auto v = value();
            if (!v) return usage_error("'" + a + "' needs a value");
            if (a == "--mailbox") mailbox = *v;
            else if (a == "--state") state = *v == "all" ? "" : *v;
            else if (a == "--by") by = *v;
            else if (a == "--since") {
                since = parse_time(*v, now);
                if (!since) return usage_error("--since: want 2026-11-20, 2026-11-20T08:00:00 or 24h, got '" + *v + "'");
            } else {
                auto n = parse_id(*v);
                if (!n) return usage_error("--limit: want a positive number, got '" + *v + "'");
                limit = static_cast<std::size_t>(*n);
            }
        } else if (auto id = parse_id(a)) {
            ids.push_back(*id);
        } else {
            return usage_error("unknown argument '" + a + "'");
        }
    }
    if (!state.empty() && state != "held" && state != "releasing" && state != "released" && state != "deleted")
        return usage_error("--state: want held, releasing, released, deleted or all");

    try {
        q::database db(cfg.database);
        if (sub == "list") {
            q::list_filter f;
            f.mailbox = mailbox;
            f.since = since;
            f.state = state;
            f.limit = limit;
            auto items = q::list_items(db, f);
            if (json) {
                nlohmann::json out = nlohmann::json::array();
                for (const auto& s : items) out.push_back(item_json(s));
                std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a sender may be any bytes
            } else {
                for (const auto& s : items)
                    std::cout << s.id << "  " << iso(s.held_at) << "  " << printable(s.mailbox, 60) << "  " << s.klass << "/"
                              << s.verification << "  " << s.state << (s.storm_id ? "  storm=" + std::to_string(s.storm_id) : "")
                              << "  " << printable(s.reporting_mta, 40) << "  \"" << printable(s.original_subject.empty() ? s.subject : s.original_subject, 60)
                              << "\"\n";
                std::cout << items.size() << " message(s)";
                if (!mailbox.empty()) {
                    auto u = q::usage_of(db, mailbox);
                    std::cout << "; " << printable(mailbox, 60) << " holds " << u.held_items << " (" << u.held_bytes
                              << " bytes), forged bounces dropped over the cap: " << u.dropped_over_cap;
                }
                std::cout << "\n";
            }
            return 0;
        }
        if (sub == "show") {
            if (ids.size() != 1) return usage_error("show wants one ID");
            auto item = q::get_item(db, ids.front());
            if (!item) {
                std::cerr << "ndrguard quarantine: no quarantined message has id " << ids.front() << "\n";
                return 1;
            }
            if (raw) {
                std::cout << item->message;
                return 0;
            }
            const auto& s = item->summary;
            if (json) {
                auto j = item_json(s);
                j["client"] = item->client;
                j["queue_id"] = item->queue_id;
                std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a sender may be any bytes
                return 0;
            }
            std::cout << "id:             " << s.id << "\nstate:          " << s.state << "\nheld at:        " << iso(s.held_at)
                      << "\nmailbox:        " << printable(s.mailbox) << "\nsender:         <" << printable(s.sender)
                      << ">\nclient:         " << printable(item->client) << "\npostfix queue:  " << printable(item->queue_id)
                      << "\nclass:          " << s.klass << "\nverification:   " << s.verification
                      << "\nevidence:       " << joined(s.evidence) << "\nreasons:        " << joined(s.reasons)
                      << "\nnotes:          " << joined(s.notes)
                      << "\nnames:          " << printable(joined(s.message_ids, " "), 300)
                      << "\nreporting MTA:  " << printable(s.reporting_mta) << "\nstorm:          "
                      << (s.storm_id ? std::to_string(s.storm_id) : "-") << "\nsize:           " << s.size << " bytes\n\n";
            // The header section, as received.
            std::size_t end = item->message.find("\r\n\r\n");
            if (end == std::string::npos) end = item->message.find("\n\n");
            std::string_view headers(item->message.data(), std::min(end, item->message.size()));
            std::size_t pos = 0;
            while (pos < headers.size()) {
                std::size_t nl = headers.find('\n', pos);
                std::string_view line = headers.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                std::cout << printable(line, 998) << "\n";
                if (nl == std::string_view::npos) break;
                pos = nl + 1;
            }
            return 0;
        }
        if (sub == "release") {
            if (ids.empty()) return usage_error("release wants at least one ID");
            release::release_options o = web::release_options_of(cfg, by, "cli");
            o.force = force;
            int status = 0;
            for (auto id : ids) {
                auto r = release::release_item(db, id, o);
                const bool ok = r.what == release::release_report::outcome::released;
                (ok ? std::cout : std::cerr) << "ndrguard quarantine: " << id << " " << release::to_string(r.what)
                                             << (r.queue_id.empty() ? "" : " queue_id=" + r.queue_id) << ": " << r.detail << "\n";
                if (!ok) status = 1;
            }
            return status;
        }
        if (sub == "delete") {
            if (ids.empty()) return usage_error("delete wants at least one ID");
            auto done = q::delete_items(db, ids, by);
            int status = 0;
            for (auto id : ids) {
                if (std::find(done.begin(), done.end(), id) != done.end()) {
                    std::cout << "ndrguard quarantine: " << id << " deleted\n";
                    continue;
                }
                auto item = q::get_item(db, id);
                std::cerr << "ndrguard quarantine: " << id << " not deleted: "
                          << (item ? "it is " + item->summary.state + ", not held" : std::string("no quarantined message has this id"))
                          << "\n";
                status = 1;
            }
            return status;
        }
        if (sub == "link") {
            if (ids.empty() && mailbox.empty()) return usage_error("link wants IDs, or --mailbox M for the page of held messages");
            std::string secret;
            try {
                secret = web::load_or_create_secret(cfg.web_secret_file);
            } catch (const std::exception& e) {
                std::cerr << "ndrguard quarantine: " << e.what() << "\n";
                return 1;
            }
            int status = 0;
            const auto now_seconds = static_cast<std::int64_t>(std::time(nullptr));
            auto links_of = [&](const std::string& key) {
                return web::mailbox_links::valid_for_days(cfg.web_base_url, key, secret, cfg.link_ttl_days, now_seconds);
            };
            if (!mailbox.empty()) std::cout << q::mailbox_key(mailbox) << " " << links_of(q::mailbox_key(mailbox)).list() << "\n";
            for (auto id : ids) {
                auto item = q::get_item(db, id);
                if (!item) {
                    std::cerr << "ndrguard quarantine: no quarantined message has id " << id << "\n";
                    status = 1;
                    continue;
                }
                std::cout << id << " " << links_of(item->summary.mailbox).release(id) << "\n";
            }
            return status;
        }
        if (sub == "purge") {
            if (!expired) return usage_error("purge wants --expired");
            const auto r = q::apply_retention(db, {cfg.sent_log_retention_days, cfg.quarantine_retention_days,
                                                   std::chrono::seconds(cfg.storm_window_seconds)}, now);
            std::cout << "ndrguard quarantine: purged days=" << r.quarantine.days_dropped
                      << " still_held_items=" << r.quarantine.items_dropped << " storms=" << r.storms_dropped
                      << " first_kept=" << q::iso_date(r.quarantine_first_kept) << " sent_log_days=" << r.sent_log_days_dropped
                      << " sent_log_first_kept=" << q::iso_date(r.sent_log_first_kept)
                      << " counter_buckets=" << r.counter_buckets_dropped << "\n";
            return 0;
        }
        if (sub == "storms") {
            auto list = q::storms(db, q::mailbox_key(mailbox), since.value_or(now - std::chrono::days(7)));
            if (json) {
                nlohmann::json out = nlohmann::json::array();
                for (const auto& s : list) {
                    nlohmann::json reporters = nlohmann::json::array();
                    for (const auto& [mta, n] : s.top_reporters) reporters.push_back({{"reporting_mta", mta}, {"messages", n}});
                    out.push_back({{"id", s.id},
                                   {"mailbox", s.mailbox},
                                   {"started_at", iso(s.started_at)},
                                   {"quiet_since", s.quiet_since ? nlohmann::json(iso(*s.quiet_since)) : nlohmann::json()},
                                   {"ended_at", s.ended_at ? nlohmann::json(iso(*s.ended_at)) : nlohmann::json()},
                                   {"verified", s.tally.verified},
                                   {"forged", s.tally.forged},
                                   {"unverifiable", s.tally.unverifiable},
                                   {"delivered", s.tally.delivered},
                                   {"rejected", s.tally.rejected},
                                   {"quarantined", s.tally.quarantined},
                                   {"dropped", s.tally.dropped},
                                   {"top_reporters", reporters},
                                   {"sample_subjects", s.sample_subjects}});
                }
                std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a sender may be any bytes
            } else {
                for (const auto& s : list) {
                    std::cout << s.id << "  " << printable(s.mailbox, 60) << "  " << iso(s.started_at) << " - "
                              << (s.ended_at ? iso(*s.ended_at) : std::string("ongoing")) << "  bounces=" << s.tally.bounces()
                              << " (verified " << s.tally.verified << ", forged " << s.tally.forged << ", unverifiable "
                              << s.tally.unverifiable << ")  quarantined=" << s.tally.quarantined << " rejected=" << s.tally.rejected
                              << " delivered=" << s.tally.delivered << " dropped=" << s.tally.dropped << "\n";
                    for (const auto& [mta, n] : s.top_reporters) std::cout << "    " << n << "  " << printable(mta, 80) << "\n";
                    for (const auto& subj : s.sample_subjects) std::cout << "    \"" << printable(subj) << "\"\n";
                }
                std::cout << list.size() << " storm(s)\n";
            }
            return 0;
        }
        if (sub == "digests") {
            auto list = q::digests_of(db, mailbox, limit);
            if (json) {
                nlohmann::json out = nlohmann::json::array();
                for (const auto& d : list)
                    out.push_back({{"id", d.id}, {"mailbox", d.mailbox}, {"state", d.state}, {"started_at", iso(d.started_at)},
                                   {"items", d.items}, {"reply", d.reply}});
                std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";  // a sender may be any bytes
            } else {
                for (const auto& d : list)
                    std::cout << d.id << "  " << iso(d.started_at) << "  " << printable(d.mailbox, 60) << "  " << d.state
                              << "  items=" << d.items << "  " << printable(d.reply, 100) << "\n";
                std::cout << list.size() << " digest(s)\n";
            }
            return 0;
        }
        return usage_error("unknown subcommand '" + sub + "'");
    } catch (const q::database_error& e) {
        std::string what = e.what();
        std::cerr << "ndrguard quarantine: " << what << "\n";
        if (what.find("does not exist") != std::string::npos)
            std::cerr << "ndrguard quarantine: is the schema migrated? (ndrguard migrate, or start ndrguard serve once)\n";
        return 1;
    }
}

}  // namespace ndrguard::app
