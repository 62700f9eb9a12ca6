#include "ndrguard/filter/config.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

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

serve_config::serve_config() {
    our_networks.push_back(*network::parse("127.0.0.0/8"));
    our_networks.push_back(*network::parse("::1/128"));
}

std::string serve_config::set(std::string_view key, std::string_view value) {
    key = trim(key);
    value = trim(value);
    auto bad = [&](std::string_view what) { return std::string(key) + ": " + std::string(what) + ", got '" + std::string(value) + "'"; };
    if (key == "listen" || key == "next_hop") {
        if (!smtp::split_host_port(value)) return bad("want host:port");
        (key == "listen" ? listen : next_hop) = std::string(value);
    } else if (key == "outbound_listen") {
        if (!value.empty() && !smtp::split_host_port(value)) return bad("want host:port, or nothing");
        outbound_listen = std::string(value);
    } else if (key == "mode") {
        if (value == "after_queue") mode = filter_mode::after_queue;
        else if (value == "before_queue") mode = filter_mode::before_queue;
        else return bad("want after_queue or before_queue");
    } else if (key == "hostname") {
        if (value.empty() || value.find_first_of(" \t<>@") != std::string_view::npos) return bad("want a host name");
        hostname = std::string(value);
    } else if (key == "database") {
        database = std::string(value);
    } else if (key == "our_networks") {
        std::vector<network> nets;
        std::size_t pos = 0;
        while (pos <= value.size()) {
            std::size_t end = value.find_first_of(", ", pos);
            std::string_view item = trim(value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
            if (!item.empty()) {
                auto n = network::parse(item);
                if (!n) return bad("want networks like 192.0.2.0/24, ::1");
                nets.push_back(*n);
            }
            if (end == std::string_view::npos) break;
            pos = end + 1;
        }
        our_networks = std::move(nets);
    } else if (key == "warm_up") {
        if (value == "auto") warm_up_auto = true;
        else if (value == "off") warm_up_auto = false;
        else return bad("want auto or off");
    } else if (key == "shadow") {
        if (!parse_bool(value, shadow)) return bad("want yes or no");
    } else if (key == "bounce_window_days") {
        if (!parse_number(value, bounce_window_days, 1, 365)) return bad("want 1..365");
    } else if (key == "sent_log_retention_days") {
        if (!parse_number(value, sent_log_retention_days, 1, 3650)) return bad("want 1..3650");
    } else if (key == "lookup_gather_microseconds") {
        if (!parse_number(value, lookup_gather_microseconds, 0, 100000)) return bad("want 0..100000");
    } else if (key == "max_sessions") {
        if (!parse_number<std::size_t>(value, max_sessions, 1, 10000)) return bad("want 1..10000");
    } else if (key == "idle_timeout_seconds") {
        if (!parse_number(value, idle_timeout_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "session_timeout_seconds") {
        if (!parse_number(value, session_timeout_seconds, 1, 86400)) return bad("want 1..86400");
    } else if (key == "database_timeout_ms") {
        if (!parse_number(value, database_timeout_ms, 100, 600000)) return bad("want 100..600000");
    } else if (key == "reinject_timeout_seconds") {
        if (!parse_number(value, reinject_timeout_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "next_hop_max_idle") {
        if (!parse_number(value, next_hop_max_idle, 0, 1000)) return bad("want 0..1000");
    } else if (key == "next_hop_idle_seconds") {
        if (!parse_number(value, next_hop_idle_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "verdict_header") {
        if (value.empty() || value.find_first_of(" \t:\r\n") != std::string_view::npos) return bad("want a header name");
        verdict_header = std::string(value);
    } else if (key == "max_message_bytes") {
        if (!parse_number<std::size_t>(value, limits.max_message_bytes, 1024, std::size_t(1) << 31)) return bad("want 1024..2147483648");
    } else if (key == "max_message_memory_mb") {
        if (!parse_number<std::size_t>(value, max_message_memory_mb, 1, 1u << 20)) return bad("want 1..1048576");
    } else if (key == "max_recipients") {
        if (!parse_number<std::size_t>(value, limits.max_recipients, 1, 100000)) return bad("want 1..100000");
    } else if (key == "max_line_bytes") {
        if (!parse_number<std::size_t>(value, limits.max_line_bytes, 512, 65536)) return bad("want 512..65536");
    } else if (key == "storm_threshold") {
        if (!parse_number<std::int64_t>(value, storm_threshold, 1, 100000000)) return bad("want 1..100000000");
    } else if (key == "storm_exit_threshold") {
        if (!parse_number<std::int64_t>(value, storm_exit_threshold, 0, 100000000)) return bad("want 0..100000000");
    } else if (key == "storm_window_seconds") {
        if (!parse_number(value, storm_window_seconds, 10, 86400)) return bad("want 10..86400");
    } else if (key == "storm_cool_down_seconds") {
        if (!parse_number(value, storm_cool_down_seconds, 0, 604800)) return bad("want 0..604800");
    } else if (key == "storm_sync_ms") {
        if (!parse_number(value, storm_sync_ms, 10, 60000)) return bad("want 10..60000");
    } else if (key == "quarantine_retention_days") {
        if (!parse_number(value, quarantine_retention_days, 1, 3650)) return bad("want 1..3650");
    } else if (key == "quarantine_max_items") {
        if (!parse_number<std::int64_t>(value, quarantine_max_items, 0, 100000000)) return bad("want 0..100000000");
    } else if (key == "quarantine_max_mb") {
        if (!parse_number<std::int64_t>(value, quarantine_max_mb, 0, 10000000)) return bad("want 0..10000000");
    } else if (key == "web_listen") {
        if (!value.empty() && !smtp::split_host_port(value)) return bad("want host:port, or nothing");
        web_listen = std::string(value);
    } else if (key == "web_base_url") {
        if (value.substr(0, 7) != "http://" && value.substr(0, 8) != "https://") return bad("want http://... or https://...");
        web_base_url = std::string(value);
        while (!web_base_url.empty() && web_base_url.back() == '/') web_base_url.pop_back();
    } else if (key == "web_secret_file") {
        if (value.empty()) return bad("want a file name");
        web_secret_file = std::string(value);
    } else if (key == "admin_token_file") {
        admin_token_file = std::string(value);
    } else if (key == "metrics_listen") {
        if (!value.empty() && !smtp::split_host_port(value)) return bad("want host:port, or nothing");
        metrics_listen = std::string(value);
    } else if (key == "web_header_timeout_seconds") {
        if (!parse_number(value, web_header_timeout_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "web_request_timeout_seconds") {
        if (!parse_number(value, web_request_timeout_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "web_keepalive_timeout_seconds") {
        if (!parse_number(value, web_keepalive_timeout_seconds, 1, 3600)) return bad("want 1..3600");
    } else if (key == "web_max_connections") {
        if (!parse_number<std::size_t>(value, web_max_connections, 1, 100000)) return bad("want 1..100000");
    } else if (key == "web_workers") {
        if (!parse_number<std::size_t>(value, web_workers, 1, 256)) return bad("want 1..256");
    } else if (key == "web_database_connections") {
        if (!parse_number<std::size_t>(value, web_database_connections, 1, 100)) return bad("want 1..100");
    } else if (key == "digest_sender") {
        if (value.find_first_of(" \t<>\r\n") != std::string_view::npos || (!value.empty() && value.find('@') == std::string_view::npos))
            return bad("want an address like postmaster@example.org, or nothing");
        digest_sender = std::string(value);
    } else if (key == "digest_from") {
        if (value.find_first_of("\r\n") != std::string_view::npos) return bad("want one line");
        digest_from = std::string(value);
    } else if (key == "digest_max_listed") {
        if (!parse_number(value, digest_max_listed, 1, 1000)) return bad("want 1..1000");
    } else if (key == "digest_lease_seconds") {
        if (!parse_number(value, digest_lease_seconds, 1, 86400)) return bad("want 1..86400");
    } else if (key == "link_ttl_days") {
        if (!parse_number(value, link_ttl_days, 1, 365)) return bad("want 1..365");
    } else if (key == "release_lease_seconds") {
        if (!parse_number(value, release_lease_seconds, 1, 86400)) return bad("want 1..86400");
    } else if (key.substr(0, 7) == "policy.") {
        if (!verdicts.set_from_text(key.substr(7), value))
            return bad("want policy.<class>.<verified|forged|unverifiable> = deliver|reject|quarantine");
    } else {
        return std::string("unknown key '") + std::string(key) + "'";
    }
    return {};
}

std::vector<std::string> apply_config_text(serve_config& cfg, std::string_view text, std::string_view name) {
    std::vector<std::string> errors;
    std::size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        if (std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) continue;
        std::size_t eq = line.find('=');
        std::string error = eq == std::string_view::npos ? "want key = value" : cfg.set(line.substr(0, eq), line.substr(eq + 1));
        if (!error.empty()) errors.push_back(std::string(name) + ":" + std::to_string(line_no) + ": " + error);
    }
    if (cfg.sent_log_retention_days < cfg.bounce_window_days)
        errors.push_back(std::string(name) + ": sent_log_retention_days must be at least bounce_window_days");
    if (cfg.storm_exit_threshold >= cfg.storm_threshold)
        errors.push_back(std::string(name) + ": storm_exit_threshold must be below storm_threshold (hysteresis)");
    return errors;
}

}  // namespace ndrguard::filter
