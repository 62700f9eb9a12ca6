// Configuration parsing: every key, defaults, errors with file and line, networks.
#include <doctest/doctest.h>

#include "ndrguard/filter/config.hpp"

using namespace ndrguard::filter;

TEST_CASE("networks: IPv4, IPv6, prefixes, mapped addresses, Postfix's IPv6: form") {
    auto lan = network::parse("192.0.2.0/24");
    REQUIRE(lan);
    CHECK(lan->contains("192.0.2.77"));
    CHECK_FALSE(lan->contains("192.0.3.1"));
    CHECK(lan->contains("::ffff:192.0.2.5"));
    CHECK_FALSE(lan->contains("garbage"));
    auto v6 = network::parse("2001:db8::/32");
    REQUIRE(v6);
    CHECK(v6->contains("IPv6:2001:db8:1::5"));
    CHECK_FALSE(v6->contains("2001:db9::1"));
    CHECK_FALSE(v6->contains("192.0.2.1"));
    auto host = network::parse("198.51.100.7");
    REQUIRE(host);
    CHECK(host->contains("198.51.100.7"));
    CHECK_FALSE(host->contains("198.51.100.8"));
    CHECK(network::parse("0.0.0.0/0")->contains("203.0.113.9"));
    CHECK_FALSE(network::parse("192.0.2.0/33"));
    CHECK_FALSE(network::parse("300.1.1.1"));
}

TEST_CASE("a configuration file: values, comments, errors with line numbers") {
    serve_config cfg;
    CHECK(cfg.our_networks.size() == 2);  // loopback by default
    auto errors = apply_config_text(cfg,
                                    "# ndrguard\n"
                                    "listen = 127.0.0.1:10099\n"
                                    "mode = before_queue   # comment\n"
                                    "our_networks = 192.0.2.0/24, 2001:db8::/32\n"
                                    "shadow = yes\n"
                                    "policy.dsn.forged = quarantine\n"
                                    "max_recipients = 50\n"
                                    "bogus_key = 1\n"
                                    "bounce_window_days = 0\n"
                                    "no equals sign\n",
                                    "test.conf");
    CHECK(cfg.listen == "127.0.0.1:10099");
    CHECK(cfg.mode == filter_mode::before_queue);
    CHECK(cfg.our_networks.size() == 2);
    CHECK(cfg.our_networks[0].contains("192.0.2.9"));
    CHECK(cfg.shadow);
    CHECK(cfg.verdicts.cell(ndrguard::detector::message_class::ndr, verification::forged) == action::quarantine);
    CHECK(cfg.limits.max_recipients == 50);
    REQUIRE(errors.size() == 3);
    CHECK(errors[0] == "test.conf:8: unknown key 'bogus_key'");
    CHECK(errors[1].rfind("test.conf:9: bounce_window_days: want 1..365", 0) == 0);
    CHECK(errors[2] == "test.conf:10: want key = value");
    CHECK(cfg.bounce_window_days == 7);  // unchanged by the bad line
}

TEST_CASE("retention shorter than the bounce window is refused") {
    serve_config cfg;
    auto errors = apply_config_text(cfg, "sent_log_retention_days = 3\n", "x.conf");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("at least bounce_window_days") != std::string::npos);
}

TEST_CASE("storm thresholds must leave room for hysteresis") {
    serve_config cfg;
    auto errors = apply_config_text(cfg, "storm_threshold = 20\nstorm_exit_threshold = 20\n", "t.conf");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("hysteresis") != std::string::npos);
    serve_config ok;
    CHECK(apply_config_text(ok, "storm_threshold = 20\nstorm_exit_threshold = 5\nquarantine_max_mb = 0\n", "t.conf").empty());
    CHECK(ok.storm_threshold == 20);
    CHECK(ok.quarantine_max_mb == 0);
    CHECK_FALSE(cfg.set("storm_window_seconds", "5").empty());
}

TEST_CASE("the HTTP listeners' deadlines and bounds") {
    serve_config cfg;
    CHECK(apply_config_text(cfg,
                            "web_header_timeout_seconds = 2\nweb_request_timeout_seconds = 5\nweb_keepalive_timeout_seconds = 3\n"
                            "web_max_connections = 50\nweb_workers = 2\nweb_database_connections = 1\n",
                            "w.conf")
              .empty());
    CHECK(cfg.web_header_timeout_seconds == 2);
    CHECK(cfg.web_request_timeout_seconds == 5);
    CHECK(cfg.web_keepalive_timeout_seconds == 3);
    CHECK(cfg.web_max_connections == 50);
    CHECK(cfg.web_workers == 2);
    CHECK(cfg.web_database_connections == 1);
    for (const char* key : {"web_header_timeout_seconds", "web_request_timeout_seconds", "web_keepalive_timeout_seconds",
                            "web_max_connections", "web_workers", "web_database_connections"})
        CHECK_MESSAGE(!cfg.set(key, "0").empty(), key);  // 0 would refuse everything or wait for ever
    CHECK_FALSE(cfg.set("web_workers", "1000").empty());
}

#include <fstream>
#include <iterator>

TEST_CASE("the shipped deploy/ndrguard.conf parses and states the defaults") {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/deploy/ndrguard.conf");
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    serve_config from_file;
    auto errors = apply_config_text(from_file, text, "ndrguard.conf");
    CHECK(errors.empty());
    serve_config defaults;
    CHECK(from_file.listen == defaults.listen);
    CHECK(from_file.next_hop == defaults.next_hop);
    CHECK(from_file.outbound_listen == defaults.outbound_listen);
    CHECK(from_file.mode == defaults.mode);
    CHECK(from_file.hostname == defaults.hostname);
    CHECK(from_file.database == defaults.database);
    CHECK(from_file.our_networks.size() == defaults.our_networks.size());
    CHECK(from_file.shadow == defaults.shadow);
    CHECK(from_file.warm_up_auto == defaults.warm_up_auto);
    CHECK(from_file.bounce_window_days == defaults.bounce_window_days);
    CHECK(from_file.sent_log_retention_days == defaults.sent_log_retention_days);
    CHECK(from_file.lookup_gather_microseconds == defaults.lookup_gather_microseconds);
    CHECK(from_file.max_sessions == defaults.max_sessions);
    CHECK(from_file.idle_timeout_seconds == defaults.idle_timeout_seconds);
    CHECK(from_file.session_timeout_seconds == defaults.session_timeout_seconds);
    CHECK(from_file.reinject_timeout_seconds == defaults.reinject_timeout_seconds);
    CHECK(from_file.next_hop_max_idle == defaults.next_hop_max_idle);
    CHECK(from_file.next_hop_idle_seconds == defaults.next_hop_idle_seconds);
    CHECK(from_file.database_timeout_ms == defaults.database_timeout_ms);
    CHECK(from_file.limits.max_line_bytes == defaults.limits.max_line_bytes);
    CHECK(from_file.limits.max_message_bytes == defaults.limits.max_message_bytes);
    CHECK(from_file.limits.max_recipients == defaults.limits.max_recipients);
    CHECK(from_file.max_message_memory_mb == defaults.max_message_memory_mb);
    CHECK(from_file.verdict_header == defaults.verdict_header);
    CHECK(from_file.storm_threshold == defaults.storm_threshold);
    CHECK(from_file.storm_exit_threshold == defaults.storm_exit_threshold);
    CHECK(from_file.storm_window_seconds == defaults.storm_window_seconds);
    CHECK(from_file.storm_cool_down_seconds == defaults.storm_cool_down_seconds);
    CHECK(from_file.storm_sync_ms == defaults.storm_sync_ms);
    CHECK(from_file.quarantine_retention_days == defaults.quarantine_retention_days);
    CHECK(from_file.quarantine_max_items == defaults.quarantine_max_items);
    CHECK(from_file.quarantine_max_mb == defaults.quarantine_max_mb);
    CHECK(from_file.release_lease_seconds == defaults.release_lease_seconds);
    CHECK(from_file.web_listen == defaults.web_listen);
    CHECK(from_file.web_base_url == defaults.web_base_url);
    CHECK(from_file.web_secret_file == defaults.web_secret_file);
    CHECK(from_file.link_ttl_days == defaults.link_ttl_days);
    CHECK(from_file.admin_token_file == defaults.admin_token_file);
    CHECK(from_file.metrics_listen == defaults.metrics_listen);
    CHECK(from_file.web_header_timeout_seconds == defaults.web_header_timeout_seconds);
    CHECK(from_file.web_request_timeout_seconds == defaults.web_request_timeout_seconds);
    CHECK(from_file.web_keepalive_timeout_seconds == defaults.web_keepalive_timeout_seconds);
    CHECK(from_file.web_max_connections == defaults.web_max_connections);
    CHECK(from_file.web_workers == defaults.web_workers);
    CHECK(from_file.web_database_connections == defaults.web_database_connections);
    CHECK(from_file.digest_sender == defaults.digest_sender);
    CHECK(from_file.digest_from == defaults.digest_from);
    CHECK(from_file.digest_max_listed == defaults.digest_max_listed);
    CHECK(from_file.digest_lease_seconds == defaults.digest_lease_seconds);
    // Each of them is written out, not left to the default silently.
    for (const char* key : {"storm_threshold", "storm_exit_threshold", "storm_window_seconds", "storm_cool_down_seconds",
                            "storm_sync_ms", "quarantine_retention_days", "quarantine_max_items", "quarantine_max_mb",
                            "release_lease_seconds", "web_listen", "web_base_url", "web_secret_file", "link_ttl_days", "admin_token_file",
                            "metrics_listen", "digest_sender", "digest_from", "digest_max_listed", "digest_lease_seconds",
                            "database_timeout_ms", "web_header_timeout_seconds", "web_request_timeout_seconds",
                            "web_keepalive_timeout_seconds", "web_max_connections", "web_workers", "web_database_connections"})
        CHECK_MESSAGE(text.find(std::string("\n") + key + " =") != std::string::npos, key);
    using mc = ndrguard::detector::message_class;
    for (auto c : {mc::dsn, mc::autoreply, mc::feedback})
        for (auto v : {verification::verified, verification::forged, verification::unverifiable})
            CHECK(from_file.verdicts.cell(c, v) == defaults.verdicts.cell(c, v));
}

#include <sstream>

// The process limit (maxproc) of master.cf's service listening on `service`, -1 if not found.
static int master_cf_maxproc(const std::string& text, const std::string& service) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string w; fields >> w;) f.push_back(w);
        if (f.size() >= 8 && f[0] == service && f[1] == "inet") return f[6] == "-" ? 100 : std::stoi(f[6]);
    }
    return -1;
}

TEST_CASE("the idle next-hop pool stays below the reinjection smtpd's process limit of deploy/postfix") {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/deploy/postfix/master.cf.snippet");
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    serve_config defaults;
    const int maxproc = master_cf_maxproc(text, defaults.next_hop);  // 127.0.0.1:10026
    CAPTURE(maxproc);
    REQUIRE(maxproc > 0);
    // Releases and digests need a free smtpd while the pool holds its idle connections: at
    // least two left over (one release and one digest at once).
    CHECK(defaults.next_hop_max_idle + 2 <= maxproc);
    // Closed by ndrguard before Postfix's smtpd_timeout (300 s) would close them under it.
    CHECK(defaults.next_hop_idle_seconds < 300);
}
