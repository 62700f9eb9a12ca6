#include "ndrguard/filter/config.hpp"

#include <arpa/inet.h>

#include <cassert>
#include <charconv>
#include <cstring>
#include <type_traits>

namespace ndrguard::filter {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

template <class T>
bool parse_number(std::string_view v, T& out, T min, T max) {
    T n{};
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < min || n > max) return false;
    out = n;
    return true;
}

bool parse_bool(std::string_view v, bool& out) {
    if (v == "yes" || v == "true" || v == "on" || v == "1") return out = true, true;
    if (v == "no" || v == "false" || v == "off" || v == "0") return out = false, true;
    return false;
}

bool parse_ip(std::string_view text, network& n) {
    std::string s(text);
    if (inet_pton(AF_INET, s.c_str(), n.bytes) == 1) {
        n.v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), n.bytes) == 1) {
        n.v6 = true;
        return true;
    }
    return false;
}

}  // namespace

std::optional<network> network::parse(std::string_view text) {
    network n;
    text = trim(text);
    std::size_t slash = text.find('/');
    if (!parse_ip(text.substr(0, slash), n)) return std::nullopt;
    const int max = n.v6 ? 128 : 32;
    n.prefix = max;
    if (slash != std::string_view::npos && !parse_number(text.substr(slash + 1), n.prefix, 0, max)) return std::nullopt;
    return n;
}

bool network::contains(std::string_view address) const {
    std::string_view a = trim(address);
    if (a.size() > 5 && (a.substr(0, 5) == "IPv6:" || a.substr(0, 5) == "ipv6:")) a.remove_prefix(5);  // Postfix's XFORWARD form
    network other;
    if (!parse_ip(a, other)) return false;
    if (other.v6 && !v6) {
        // ::ffff:192.0.2.1 is the IPv4 client seen on a dual-stack socket.
        static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(other.bytes, mapped, 12) != 0) return false;
        std::memmove(other.bytes, other.bytes + 12, 4);
        other.v6 = false;
    }
    if (other.v6 != v6) return false;
    int bits = prefix;
    for (int i = 0; bits > 0; ++i, bits -= 8) {
        std::uint8_t mask = bits >= 8 ? 0xff : std::uint8_t(0xff << (8 - bits));
        if ((bytes[i] & mask) != (other.bytes[i] & mask)) return false;
    }
    return true;
}

std::string network::text() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(prefix);
}

namespace {

// What a text value must look like; nullptr when it does, else what was wanted.
using text_check = const char* (*)(std::string_view value);

const char* any_text(std::string_view) { return nullptr; }
const char* host_port(std::string_view v) { return smtp::split_host_port(v) ? nullptr : "want host:port"; }
const char* host_port_or_nothing(std::string_view v) {
    return v.empty() || smtp::split_host_port(v) ? nullptr : "want host:port, or nothing";
}
const char* host_name(std::string_view v) {
    return v.empty() || v.find_first_of(" \t<>@") != std::string_view::npos ? "want a host name" : nullptr;
}
const char* header_name(std::string_view v) {
    return v.empty() || v.find_first_of(" \t:\r\n") != std::string_view::npos ? "want a header name" : nullptr;
}
const char* file_name(std::string_view v) { return v.empty() ? "want a file name" : nullptr; }
const char* address_or_nothing(std::string_view v) {
    return v.find_first_of(" \t<>\r\n") != std::string_view::npos || (!v.empty() && v.find('@') == std::string_view::npos)
               ? "want an address like postmaster@example.org, or nothing"
               : nullptr;
}
const char* one_line(std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos ? "want one line" : nullptr; }

template <class Member>
struct field_type;
template <class T>
struct field_type<T serve_config::*> {
    using type = T;
};
template <class T>
struct field_type<T smtp::server_limits::*> {
    using type = T;
};

template <auto M>
auto& field(serve_config& c) {
    if constexpr (std::is_same_v<decltype(M), std::size_t smtp::server_limits::*>) return c.limits.*M;
    else return c.*M;
}
template <auto M>
const auto& field(const serve_config& c) {
    if constexpr (std::is_same_v<decltype(M), std::size_t smtp::server_limits::*>) return c.limits.*M;
    else return c.*M;
}

template <auto M>
std::string apply_integer(serve_config& c, const config_key& k, std::string_view v) {
    using T = typename field_type<decltype(M)>::type;
    if (!parse_number<T>(v, field<M>(c), static_cast<T>(k.min), static_cast<T>(k.max)))
        return "want " + std::to_string(k.min) + ".." + std::to_string(k.max);
    return {};
}
template <auto M>
std::string show_integer(const serve_config& c) {
    return std::to_string(field<M>(c));
}
template <auto M>
config_key integer(std::string_view name, std::string_view unit, std::string_view def, std::int64_t min, std::int64_t max,
                   std::string_view doc) {
    return {name, "integer", unit, def, doc, min, max, apply_integer<M>, show_integer<M>};
}

template <auto M, text_check Check>
std::string apply_text(serve_config& c, const config_key&, std::string_view v) {
    if (const char* want = Check(v)) return want;
    c.*M = std::string(v);
    return {};
}
template <auto M>
std::string show_text(const serve_config& c) {
    return c.*M;
}
template <auto M, text_check Check>
config_key text(std::string_view name, std::string_view type, std::string_view def, std::string_view doc) {
    return {name, type, "", def, doc, 0, 0, apply_text<M, Check>, show_text<M>};
}

template <auto M>
std::string apply_yes_no(serve_config& c, const config_key&, std::string_view v) {
    return parse_bool(v, c.*M) ? std::string() : "want yes or no";
}
template <auto M>
std::string show_yes_no(const serve_config& c) {
    return c.*M ? "yes" : "no";
}

std::string apply_mode(serve_config& c, const config_key&, std::string_view v) {
    if (v == "after_queue") c.mode = filter_mode::after_queue;
    else if (v == "before_queue") c.mode = filter_mode::before_queue;
    else return "want after_queue or before_queue";
    return {};
}
std::string show_mode(const serve_config& c) { return c.mode == filter_mode::after_queue ? "after_queue" : "before_queue"; }

std::string apply_warm_up(serve_config& c, const config_key&, std::string_view v) {
    if (v == "auto") c.warm_up_auto = true;
    else if (v == "off") c.warm_up_auto = false;
    else return "want auto or off";
    return {};
}
std::string show_warm_up(const serve_config& c) { return c.warm_up_auto ? "auto" : "off"; }

// "a, b c": items separated by commas or blanks.
std::vector<std::string_view> list_items(std::string_view value) {
    std::vector<std::string_view> items;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t end = value.find_first_of(", \t", pos);
        std::string_view item = trim(value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
        if (!item.empty()) items.push_back(item);
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
    return items;
}

std::string parse_networks(std::string_view value, std::vector<network>& out) {
    std::vector<network> nets;
    for (auto item : list_items(value)) {
        auto n = network::parse(item);
        if (!n) return "want networks like 192.0.2.0/24, ::1";
        nets.push_back(*n);
    }
    out = std::move(nets);
    return {};
}

// The policy service's keys (issue 17): lists of networks and mailboxes, its storm action and
// the texts of its refusals (one line of printable ASCII: they become an SMTP reply).
template <auto M>
std::string apply_networks_to(serve_config& c, const config_key&, std::string_view value) {
    return parse_networks(value, c.*M);
}
template <auto M>
std::string show_networks_of(const serve_config& c) {
    std::string out;
    for (const auto& n : c.*M) out += (out.empty() ? "" : ", ") + n.text();
    return out;
}
std::string apply_mailboxes(serve_config& c, const config_key&, std::string_view value) {
    std::vector<std::string> out;
    for (auto item : list_items(value)) {
        if (item.find('@') == std::string_view::npos || item.find_first_of("<>\r\n\t") != std::string_view::npos)
            return "want mailboxes like alice@example.org, bob@example.org";
        out.emplace_back(item);
    }
    c.policy_exempt_mailboxes = std::move(out);
    return {};
}
std::string show_mailboxes(const serve_config& c) {
    std::string out;
    for (const auto& m : c.policy_exempt_mailboxes) out += (out.empty() ? "" : ", ") + m;
    return out;
}
std::string apply_storm_action(serve_config& c, const config_key&, std::string_view v) {
    if (v == "reject") c.policy_defer_to_data = false;
    else if (v == "defer_to_data") c.policy_defer_to_data = true;
    else return "want reject or defer_to_data";
    return {};
}
std::string show_storm_action(const serve_config& c) { return c.policy_defer_to_data ? "defer_to_data" : "reject"; }
const char* reply_text(std::string_view v) {
    if (v.empty() || v.size() > 200) return "want a text of 1..200 characters";
    for (char ch : v)
        if (ch < ' ' || ch > '~') return "want printable ASCII (it is an SMTP reply)";
    return nullptr;
}

std::string apply_base_url(serve_config& c, const config_key&, std::string_view v) {
    if (v.substr(0, 7) != "http://" && v.substr(0, 8) != "https://") return "want http://... or https://...";
    c.web_base_url = std::string(v);
    while (!c.web_base_url.empty() && c.web_base_url.back() == '/') c.web_base_url.pop_back();
    return {};
}

constexpr std::string_view policy_want =
    "want policy.<class>.<verified|forged|unverifiable|suspect> = deliver|reject|quarantine (suspect: never reject)";

std::string apply_policy(serve_config& c, const config_key& k, std::string_view v) {
    return c.verdicts.set_from_text(k.name.substr(7), v) ? std::string() : std::string(policy_want);
}

bool domain_like(std::string_view d, bool globs) {
    if (d.empty() || d.size() > 255 || d.front() == '.' || d.back() == '.') return false;
    for (char ch : d) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                        ch == '.' || ch == '_' || (globs && (ch == '*' || ch == '?' || ch == ':'));
        if (!ok) return false;
    }
    return true;
}

template <auto M, bool Globs>
std::string apply_names(serve_config& c, const config_key&, std::string_view value) {
    std::vector<std::string> names;
    for (auto item : list_items(value)) {
        if (!domain_like(item, Globs))
            return Globs ? "want host names (* and ? allowed) or IP addresses, like relay*.example.org, 192.0.2.25"
                         : "want domains like example.org, example.net";
        std::string lower(item);
        for (char& ch : lower) ch = ch >= 'A' && ch <= 'Z' ? char(ch - 'A' + 'a') : ch;
        names.push_back(std::move(lower));
    }
    c.*M = std::move(names);
    return {};
}
template <auto M>
std::string show_names(const serve_config& c) {
    std::string out;
    for (const auto& n : c.*M) out += (out.empty() ? "" : ", ") + n;
    return out;
}

// "A:B:FILE, ..." with `parts` fields, each non-empty; the first checked by `first_ok`.
template <std::size_t Parts>
bool colon_entries(std::string_view value, bool (*first_ok)(std::string_view)) {
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t comma = value.find(',', pos);
        std::string_view entry = trim(value.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        pos = comma == std::string_view::npos ? value.size() + 1 : comma + 1;
        if (entry.empty()) continue;
        std::size_t start = 0;
        for (std::size_t part = 0; part + 1 < Parts; ++part) {
            std::size_t colon = entry.find(':', start);
            if (colon == std::string_view::npos || colon == start) return false;
            if (part == 0 && !first_ok(entry.substr(0, colon))) return false;
            start = colon + 1;
        }
        if (start >= entry.size()) return false;
    }
    return true;
}
const char* dkim_key_list(std::string_view v) {
    return colon_entries<3>(v, [](std::string_view d) { return domain_like(d, false); })
               ? nullptr
               : "want DOMAIN:SELECTOR:FILE, ... (FILE: a PEM public key or the DNS TXT record's text)";
}
const char* batv_key_list(std::string_view v) {
    return colon_entries<2>(v, [](std::string_view k) { return k.size() == 1 && k[0] >= '0' && k[0] <= '9'; })
               ? nullptr
               : "want K:FILE, ... (K: the key number 0-9; FILE holds the secret)";
}
template <detector::message_class C, verification V>
std::string show_policy(const serve_config& c) {
    return std::string(to_string(c.verdicts.cell(C, V)));
}
// The policy's defaults are DESIGN.md's table, written once in policy::policy(); the
// configuration table shows them from there.
template <detector::message_class C, verification V>
config_key policy_cell(std::string_view name, std::string_view doc) {
    static const policy designed;
    return {name, "deliver|reject|quarantine", "", to_string(designed.cell(C, V)), doc, 0, 0, apply_policy, show_policy<C, V>};
}

using sc = serve_config;
using mc = detector::message_class;
using ver = verification;

std::vector<config_key> make_table() {
    return {
        text<&sc::listen, host_port>("listen", "host:port", "127.0.0.1:10025", "where Postfix hands us mail"),
        text<&sc::next_hop, host_port>("next_hop", "host:port", "127.0.0.1:10026", "where accepted mail is reinjected"),
        {"mode", "after_queue|before_queue", "", "after_queue", "after_queue (content_filter) or before_queue (smtpd_proxy_filter)", 0, 0,
         apply_mode, show_mode},
        text<&sc::hostname, host_name>("hostname", "host name", "localhost", "our name in the greeting and in added Message-IDs"),
        text<&sc::database, any_text>("database", "libpq conninfo", "",
                                      "the PostgreSQL database (empty: $NDRGUARD_DB, else libpq's defaults)"),
        integer<&sc::database_timeout_ms>("database_timeout_ms", "milliseconds", "10000", 100, 600000,
                                          "every wait on PostgreSQL ends within this (451, 503 past it)"),
        {"our_networks", "networks", "", "127.0.0.0/8, ::1/128", "clients whose mail is outbound (recorded in the sent log)", 0, 0,
         apply_networks_to<&sc::our_networks>, show_networks_of<&sc::our_networks>},
        text<&sc::outbound_listen, host_port_or_nothing>("outbound_listen", "host:port or nothing", "",
                                                         "a listener whose mail is all outbound (empty: off)"),
        {"shadow", "yes|no", "", "no", "decide and log everything, deliver everything", 0, 0, apply_yes_no<&sc::shadow>,
         show_yes_no<&sc::shadow>},
        {"warm_up", "auto|off", "", "auto", "auto: no rejection until the sent log covers bounce_window_days", 0, 0, apply_warm_up,
         show_warm_up},
        integer<&sc::bounce_window_days>("bounce_window_days", "days", "7", 1, 365, "how far back a bounce may refer"),
        integer<&sc::sent_log_retention_days>("sent_log_retention_days", "days", "30", 1, 3650,
                                              "days of sent log kept (at least bounce_window_days)"),
        integer<&sc::lookup_gather_microseconds>("lookup_gather_microseconds", "microseconds", "300", 0, 100000,
                                                 "when busy, a lookup waits this long for others to share its query (0: never)"),
        integer<&sc::max_sessions>("max_sessions", "sessions", "64", 1, 10000, "concurrent SMTP sessions (beyond: 421)"),
        integer<&sc::idle_timeout_seconds>("idle_timeout_seconds", "seconds", "300", 1, 3600, "between two client reads or writes"),
        integer<&sc::session_timeout_seconds>("session_timeout_seconds", "seconds", "3600", 1, 86400, "a whole session, however busy"),
        integer<&sc::reinject_timeout_seconds>("reinject_timeout_seconds", "seconds", "120", 1, 3600,
                                               "each connect, read or write towards the next hop"),
        integer<&sc::next_hop_max_idle>("next_hop_max_idle", "connections", "4", 0, 1000,
                                        "idle connections to the next hop kept (below its smtpd's process limit)"),
        integer<&sc::next_hop_idle_seconds>("next_hop_idle_seconds", "seconds", "60", 1, 3600,
                                            "how long an idle next-hop connection is kept (under its smtpd_timeout)"),
        integer<&smtp::server_limits::max_line_bytes>("max_line_bytes", "bytes", "2048", 512, 65536, "a command line, CRLF included"),
        integer<&smtp::server_limits::max_message_bytes>("max_message_bytes", "bytes", "52428800", 1024, std::int64_t(1) << 31,
                                                         "a message, after dot-unstuffing (advertised as SIZE; 552 beyond)"),
        integer<&smtp::server_limits::max_recipients>("max_recipients", "recipients", "1000", 1, 100000,
                                                      "recipients per message (452 beyond)"),
        integer<&sc::max_message_memory_mb>("max_message_memory_mb", "MB", "512", 1, 1 << 20,
                                            "message content all sessions may hold at once (452 beyond)"),
        text<&sc::verdict_header, header_name>("verdict_header", "header name", "X-NDRGuard", "the header added to delivered bounces"),
        policy_cell<mc::dsn, ver::verified>("policy.dsn.verified", "a bounce (dsn, ndr) that names a message we sent"),
        policy_cell<mc::dsn, ver::forged>("policy.dsn.forged", "a bounce that names only messages we never sent"),
        policy_cell<mc::dsn, ver::unverifiable>("policy.dsn.unverifiable", "a bounce that names no message"),
        policy_cell<mc::dsn, ver::suspect>("policy.dsn.suspect",
                                           "a bounce of a message missing from the sent log, with evidence that we sent it"),
        policy_cell<mc::autoreply, ver::verified>("policy.autoreply.verified", "an auto-reply (autoreply, challenge, virus_notice) to a message we sent"),
        policy_cell<mc::autoreply, ver::forged>("policy.autoreply.forged", "an auto-reply naming only messages we never sent"),
        policy_cell<mc::autoreply, ver::unverifiable>("policy.autoreply.unverifiable", "an auto-reply that names no message"),
        policy_cell<mc::autoreply, ver::suspect>("policy.autoreply.suspect", "an auto-reply to a message missing from the sent log, of ours by its evidence"),
        policy_cell<mc::feedback, ver::verified>("policy.feedback.verified", "a report (mdn, feedback) on a message we sent"),
        policy_cell<mc::feedback, ver::forged>("policy.feedback.forged", "a report naming only messages we never sent"),
        policy_cell<mc::feedback, ver::unverifiable>("policy.feedback.unverifiable", "a report that names no message"),
        policy_cell<mc::feedback, ver::suspect>("policy.feedback.suspect", "a report on a message missing from the sent log, of ours by its evidence"),
        {"our_domains", "domains", "", "", "the domains we send mail for (a subdomain is ours too): DKIM and trace evidence", 0, 0,
         apply_names<&sc::our_domains, false>, show_names<&sc::our_domains>},
        {"our_relays", "host names or IPs", "", "",
         "our outbound relays, as in Received lines (* and ? globs; empty: hostname)", 0, 0, apply_names<&sc::our_relays, true>,
         show_names<&sc::our_relays>},
        text<&sc::dkim_keys, dkim_key_list>("dkim_keys", "DOMAIN:SELECTOR:FILE, ...", "",
                                            "our DKIM public keys from files (PEM, or the TXT record's text), before DNS"),
        {"dkim_dns", "yes|no", "", "yes", "look up our selectors' keys in DNS when dkim_keys has none", 0, 0,
         apply_yes_no<&sc::dkim_dns>, show_yes_no<&sc::dkim_dns>},
        integer<&sc::dkim_dns_timeout_seconds>("dkim_dns_timeout_seconds", "seconds", "2", 1, 30,
                                               "each of the two tries of a key's DNS lookup (found keys are kept an hour)"),
        text<&sc::batv_keys, batv_key_list>("batv_keys", "K:FILE, ...", "",
                                            "the secrets of our relay's BATV prvs tags (empty: tags are not checked)"),
        integer<&sc::batv_validity_days>("batv_validity_days", "days", "7", 1, 100,
                                         "how long a tag is valid after it is made (Exim's prvs: 7)"),
        integer<&sc::storm_threshold>("storm_threshold", "bounces", "50", 1, 100000000,
                                      "bounces for one mailbox within the window that start a storm"),
        integer<&sc::storm_exit_threshold>("storm_exit_threshold", "bounces", "10", 0, 100000000,
                                           "under this the storm goes quiet (below storm_threshold)"),
        integer<&sc::storm_window_seconds>("storm_window_seconds", "seconds", "600", 10, 86400, "the sliding window of the counts"),
        integer<&sc::storm_cool_down_seconds>("storm_cool_down_seconds", "seconds", "1800", 0, 604800,
                                              "how long a quiet storm lasts before it ends"),
        integer<&sc::storm_sync_ms>("storm_sync_ms", "milliseconds", "250", 10, 60000,
                                    "how often counts are written to PostgreSQL and read back"),
        integer<&sc::quarantine_retention_days>("quarantine_retention_days", "days", "14", 1, 3650,
                                                "held days kept, then dropped whole"),
        integer<&sc::quarantine_max_items>("quarantine_max_items", "messages", "20000", 0, 100000000,
                                           "held per mailbox; past it forged bounces are dropped (counted)"),
        integer<&sc::quarantine_max_mb>("quarantine_max_mb", "MB", "500", 0, 10000000,
                                        "held per mailbox; past it forged bounces are dropped (counted)"),
        integer<&sc::release_lease_seconds>("release_lease_seconds", "seconds", "300", 1, 86400,
                                            "a release that stopped before the hand-over may be retried after this long"),
        text<&sc::web_listen, host_port_or_nothing>("web_listen", "host:port or nothing", "", "the release pages (empty: off)"),
        {"web_base_url", "http(s) URL", "", "http://127.0.0.1:8025", "how users reach web_listen (links start with it)", 0, 0,
         apply_base_url, show_text<&sc::web_base_url>},
        text<&sc::web_secret_file, file_name>("web_secret_file", "file", "/var/lib/ndrguard/web.secret",
                                              "the links' HMAC secret (created, mode 0600, if missing)"),
        integer<&sc::link_ttl_days>("link_ttl_days", "days", "14", 1, 365, "how long a release link works"),
        text<&sc::admin_token_file, any_text>("admin_token_file", "file or nothing", "",
                                              "bearer token of the admin API (empty: API off)"),
        text<&sc::metrics_listen, host_port_or_nothing>("metrics_listen", "host:port or nothing", "",
                                                        "Prometheus GET /metrics (empty: off)"),
        integer<&sc::web_header_timeout_seconds>("web_header_timeout_seconds", "seconds", "10", 1, 3600,
                                                 "an HTTP request's header, from the connection or its first byte"),
        integer<&sc::web_request_timeout_seconds>("web_request_timeout_seconds", "seconds", "30", 1, 3600,
                                                  "a whole HTTP request, and writing its answer"),
        integer<&sc::web_keepalive_timeout_seconds>("web_keepalive_timeout_seconds", "seconds", "15", 1, 3600,
                                                    "idle between two requests of a connection"),
        integer<&sc::web_max_connections>("web_max_connections", "connections", "256", 1, 100000,
                                          "open at once per listener (beyond: 503, closed)"),
        integer<&sc::web_workers>("web_workers", "threads", "8", 1, 256, "requests answered at once (4 more per worker wait)"),
        integer<&sc::web_database_connections>("web_database_connections", "connections", "4", 1, 100,
                                               "the pages' PostgreSQL pool (releases open their own)"),
        text<&sc::digest_sender, address_or_nothing>("digest_sender", "address or nothing", "",
                                                     "the digest's envelope sender (empty: postmaster@hostname)"),
        text<&sc::digest_from, one_line>("digest_from", "header text", "",
                                         "the digest's From: (empty: \"Mail quarantine <digest_sender>\")"),
        integer<&sc::digest_max_listed>("digest_max_listed", "items", "50", 1, 1000, "items listed one by one; the rest are counted"),
        integer<&sc::digest_lease_seconds>("digest_lease_seconds", "seconds", "600", 1, 86400,
                                           "a pass that stopped before sending is taken over after this long"),
        // The policy service (check_policy_service in smtpd_recipient_restrictions; issue 17).
        text<&sc::policy_listen, host_port_or_nothing>("policy_listen", "host:port or nothing", "",
                                                       "the Postfix policy service, refusing storm bounces at RCPT (empty: off)"),
        {"policy_storm_action", "reject|defer_to_data", "", "reject",
         "reject: null senders to a storm mailbox get 550 at RCPT; defer_to_data: DUNNO, the filter decides at DATA", 0, 0,
         apply_storm_action, show_storm_action},
        integer<&sc::policy_null_sender_limit>("policy_null_sender_limit", "RCPTs", "0", 0, 100000000,
                                               "null-sender RCPTs per mailbox within the rate window; past it 550 (0: off)"),
        integer<&sc::policy_null_sender_window_seconds>("policy_null_sender_window_seconds", "seconds", "60", 10, 86400,
                                                        "the window of policy_null_sender_limit"),
        {"policy_exempt_mailboxes", "mailboxes", "", "", "mailboxes the policy service never refuses", 0, 0, apply_mailboxes,
         show_mailboxes},
        {"policy_exempt_networks", "networks", "", "", "clients (client_address) the policy service never refuses", 0, 0,
         apply_networks_to<&sc::policy_exempt_networks>, show_networks_of<&sc::policy_exempt_networks>},
        text<&sc::policy_storm_text, reply_text>("policy_storm_text", "reply text",
                                                 "Bounces to this mailbox are refused: it is in a backscatter storm",
                                                 "after \"550 5.7.1 \" when a storm mailbox is refused"),
        text<&sc::policy_rate_text, reply_text>("policy_rate_text", "reply text",
                                                "Too many bounces to this mailbox: refused as backscatter",
                                                "after \"550 5.7.1 \" when the null-sender rate is passed"),
        integer<&sc::policy_max_state_age_seconds>("policy_max_state_age_seconds", "seconds", "30", 1, 3600,
                                                   "storm state older than this (PostgreSQL away) is not used: DUNNO"),
        integer<&sc::policy_max_connections>("policy_max_connections", "connections", "1000", 1, 100000,
                                             "open at once (beyond: closed, Postfix uses its default_action)"),
        integer<&sc::policy_request_timeout_seconds>("policy_request_timeout_seconds", "seconds", "10", 1, 3600,
                                                     "a request, from its first byte to its empty line"),
        integer<&sc::policy_idle_timeout_seconds>("policy_idle_timeout_seconds", "seconds", "600", 1, 86400,
                                                  "between two requests (Postfix closes its own after 300 s)"),
    };
}

// The other names of a policy row (policy.hpp: dsn and ndr share a row, ...).
std::string_view policy_row_name(std::string_view cls) {
    if (cls == "ndr") return "dsn";
    if (cls == "challenge" || cls == "virus_notice") return "autoreply";
    if (cls == "mdn") return "feedback";
    return cls;
}

// A combination of keys that must hold, whatever source each value came from.
struct config_rule {
    std::string_view key, other;
    std::string_view must;  // "must be at least"
    std::string_view why;   // "" or " (hysteresis)"
    bool (*holds)(const serve_config&);
};

const config_rule rules[] = {
    {"sent_log_retention_days", "bounce_window_days", "must be at least", "",
     [](const serve_config& c) { return c.sent_log_retention_days >= c.bounce_window_days; }},
    {"storm_exit_threshold", "storm_threshold", "must be below", " (hysteresis)",
     [](const serve_config& c) { return c.storm_exit_threshold < c.storm_threshold; }},
};

}  // namespace

const std::vector<config_key>& config_table() {
    static const std::vector<config_key> table = make_table();
    return table;
}

const config_key* find_config_key(std::string_view name) {
    std::string canonical;
    if (name.substr(0, 7) == "policy.") {
        std::string_view rest = name.substr(7);
        std::size_t dot = rest.find('.');
        if (dot != std::string_view::npos)
            canonical = "policy." + std::string(policy_row_name(rest.substr(0, dot))) + std::string(rest.substr(dot));
        name = canonical;
    }
    for (const auto& k : config_table())
        if (k.name == name) return &k;
    return nullptr;
}

serve_config::serve_config() {
    for (const auto& k : config_table()) {
        [[maybe_unused]] std::string error = k.apply(*this, k, k.default_value);
        assert(error.empty());  // config_test checks every default against its own key
    }
}

std::string serve_config::set(std::string_view key, std::string_view value) {
    key = trim(key);
    value = trim(value);
    const config_key* k = find_config_key(key);
    if (!k) {
        if (key.substr(0, 7) == "policy.") return std::string(key) + ": " + std::string(policy_want) + ", got '" + std::string(value) + "'";
        return std::string("unknown key '") + std::string(key) + "'";
    }
    std::string want = k->apply(*this, *k, value);
    if (want.empty()) return {};
    return std::string(key) + ": " + want + ", got '" + std::string(value) + "'";
}

void config_reader::read_text(std::string_view text, std::string_view name) {
    std::size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        if (std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) continue;
        std::string origin = std::string(name) + ":" + std::to_string(line_no);
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) errors_.push_back(origin + ": want key = value");
        else set(line.substr(0, eq), line.substr(eq + 1), std::move(origin));
    }
}

void config_reader::set(std::string_view key, std::string_view value, std::string origin) {
    std::string error = cfg_.set(key, value);
    if (!error.empty()) {
        errors_.push_back(origin + ": " + error);
        return;
    }
    const config_key* k = find_config_key(trim(key));
    for (auto& [name, where] : origins_)
        if (name == k->name) {
            where = std::move(origin);
            return;
        }
    origins_.emplace_back(std::string(k->name), std::move(origin));
}

std::string config_reader::origin_of(std::string_view key) const {
    for (const auto& [name, where] : origins_)
        if (name == key) return where;
    return {};
}

std::vector<std::string> config_reader::finish() {
    for (const auto& rule : rules) {
        if (rule.holds(cfg_)) continue;
        const config_key* key = find_config_key(rule.key);
        const config_key* other = find_config_key(rule.other);
        // Named where the value set last came from (a --set after the file, or the file's line).
        std::string where = origin_of(rule.key);
        if (where.empty()) where = origin_of(rule.other);
        if (where.empty()) where = "defaults";
        auto value = [&](const config_key* k) {
            std::string origin = origin_of(k->name);
            if (origin == where) return k->show(cfg_);
            return k->show(cfg_) + (origin.empty() ? " (the default)" : " (" + origin + ")");
        };
        errors_.push_back(where + ": " + std::string(rule.key) + " = " + value(key) + " " + std::string(rule.must) + " " +
                          std::string(rule.other) + " = " + value(other) + std::string(rule.why));
    }
    return std::move(errors_);
}

std::vector<std::string> apply_config_text(serve_config& cfg, std::string_view text, std::string_view name) {
    config_reader reader(std::move(cfg));
    reader.read_text(text, name);
    auto errors = reader.finish();
    cfg = std::move(reader.config());
    return errors;
}

}  // namespace ndrguard::filter
