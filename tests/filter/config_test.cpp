// Configuration parsing: every key, defaults, errors with file and line, networks.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

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

TEST_CASE("the table: every key once, documented, its default valid and shown as written") {
    const serve_config defaults;
    std::vector<std::string_view> names;
    for (const auto& k : config_table()) {
        CAPTURE(k.name);
        for (auto n : names) CHECK(n != k.name);
        names.push_back(k.name);
        CHECK(find_config_key(k.name) == &k);
        CHECK_FALSE(k.doc.empty());
        CHECK_FALSE(k.type.empty());
        serve_config c;
        CHECK(c.set(k.name, k.default_value) == "");
        CHECK(k.show(defaults) == k.default_value);  // what `ndrguard config -d` prints is what a default serve_config holds
        if (k.type == "integer") {
            CHECK_FALSE(k.unit.empty());
            CHECK(c.set(k.name, std::to_string(k.min)) == "");
            CHECK(k.show(c) == std::to_string(k.min));
            CHECK(c.set(k.name, std::to_string(k.max)) == "");
            const std::string want = std::string(k.name) + ": want " + std::to_string(k.min) + ".." + std::to_string(k.max);
            CHECK(c.set(k.name, std::to_string(k.min - 1)).rfind(want, 0) == 0);
            CHECK(c.set(k.name, std::to_string(k.max + 1)).rfind(want, 0) == 0);
            CHECK(c.set(k.name, "12x").rfind(want, 0) == 0);
            CHECK(k.show(c) == std::to_string(k.max));  // unchanged by the refused values
        }
    }
    CHECK(find_config_key("bogus") == nullptr);
    CHECK(defaults.our_networks.size() == 2);
}

TEST_CASE("the table's policy defaults are the policy's own (DESIGN.md), the shared rows' other names work") {
    const serve_config defaults;
    const policy design;
    using mc = ndrguard::detector::message_class;
    for (auto c : {mc::dsn, mc::ndr, mc::autoreply, mc::challenge, mc::virus_notice, mc::mdn, mc::feedback})
        for (auto v : {verification::verified, verification::forged, verification::unverifiable})
            CHECK(defaults.verdicts.cell(c, v) == design.cell(c, v));
    serve_config c;
    REQUIRE(find_config_key("policy.ndr.forged"));
    CHECK(find_config_key("policy.ndr.forged")->name == "policy.dsn.forged");
    CHECK(find_config_key("policy.virus_notice.verified")->name == "policy.autoreply.verified");
    CHECK(find_config_key("policy.mdn.unverifiable")->name == "policy.feedback.unverifiable");
    CHECK(c.set("policy.ndr.forged", "quarantine") == "");
    CHECK(c.verdicts.cell(mc::dsn, verification::forged) == action::quarantine);
    CHECK(c.set("policy.challenge.forged", "deliver") == "");
    CHECK(c.verdicts.cell(mc::autoreply, verification::forged) == action::deliver);
    CHECK(c.set("policy.dsn.forged", "maybe").rfind("policy.dsn.forged: want policy.", 0) == 0);
    CHECK(c.set("policy.not_bounce.forged", "reject").rfind("policy.not_bounce.forged: want policy.", 0) == 0);
}

TEST_CASE("values shown as they would be written: networks, switches, a base URL without its trailing slash") {
    serve_config c;
    CHECK(c.set("our_networks", "192.0.2.7 2001:db8::/32") == "");
    CHECK(find_config_key("our_networks")->show(c) == "192.0.2.7/32, 2001:db8::/32");
    CHECK(c.set("shadow", "on") == "");
    CHECK(find_config_key("shadow")->show(c) == "yes");
    CHECK(c.set("warm_up", "off") == "");
    CHECK(find_config_key("warm_up")->show(c) == "off");
    CHECK(c.set("mode", "before_queue") == "");
    CHECK(find_config_key("mode")->show(c) == "before_queue");
    CHECK(c.set("web_base_url", "https://mail.example.org/q//") == "");
    CHECK(find_config_key("web_base_url")->show(c) == "https://mail.example.org/q");
}

TEST_CASE("combinations are checked once, after every source, wherever the values came from") {
    // From --set alone: refused as from a file (it used to be accepted).
    config_reader from_set;
    from_set.set("storm_exit_threshold", "100", "--set storm_exit_threshold=100");
    auto errors = from_set.finish();
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] ==
          "--set storm_exit_threshold=100: storm_exit_threshold = 100 must be below storm_threshold = 50 (the default) (hysteresis)");
    // The same line in a file: the file and line are named.
    config_reader from_file;
    from_file.read_text("# storms\nstorm_exit_threshold = 100\n", "x.conf");
    errors = from_file.finish();
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "x.conf:2: storm_exit_threshold = 100 must be below storm_threshold = 50 (the default) (hysteresis)");
    // A file that is wrong alone, made right by a --set after it: only the end result counts.
    config_reader mended;
    mended.read_text("storm_exit_threshold = 100\n", "x.conf");
    mended.set("storm_threshold", "200", "--set storm_threshold=200");
    CHECK(mended.finish().empty());
    CHECK(mended.config().storm_threshold == 200);
    // Both keys from different sources: each is named with its own.
    config_reader both;
    both.read_text("bounce_window_days = 20\n", "y.conf");
    both.set("sent_log_retention_days", "10", "--set sent_log_retention_days=10");
    errors = both.finish();
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] ==
          "--set sent_log_retention_days=10: sent_log_retention_days = 10 must be at least bounce_window_days = 20 (y.conf:1)");
    // A bad value is named with its source and leaves the default in place.
    config_reader bad;
    bad.set("link_ttl_days", "0", "--set link_ttl_days=0");
    errors = bad.finish();
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "--set link_ttl_days=0: link_ttl_days: want 1..365, got '0'");
    CHECK(bad.config().link_ttl_days == 14);
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

// Every key of deploy/ndrguard.conf: "key = value", or "# key = value" for one shown but left
// to its source (database: $NDRGUARD_DB), with the line it is on.
struct shipped_line {
    std::string key, value;
    int line = 0;
    bool commented = false;
    bool documented = false;  // its paragraph (lines up to a blank one) has a comment of prose
};

static std::vector<shipped_line> shipped_settings(const std::string& text) {
    std::vector<shipped_line> out;
    std::istringstream lines(text);
    std::string line;
    std::vector<std::size_t> paragraph_of;  // out[i]'s paragraph
    std::vector<bool> has_prose(1, false);
    for (int n = 1; std::getline(lines, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            has_prose.push_back(false);
            continue;
        }
        std::string body = line;
        bool commented = false;
        if (body.rfind("#", 0) == 0) {
            commented = true;
            body = body.substr(body.find_first_not_of("# ") == std::string::npos ? body.size() : body.find_first_not_of("# "));
        }
        const std::size_t eq = body.find(" =");
        const std::string key = eq == std::string::npos ? "" : body.substr(0, eq);
        if (!key.empty() && find_config_key(key) && find_config_key(key)->name == key) {
            std::string value = body.substr(eq + 2);
            if (std::size_t hash = value.find('#'); hash != std::string::npos) value = value.substr(0, hash);
            value.erase(0, value.find_first_not_of(' '));
            value.erase(value.find_last_not_of(' ') + 1);
            out.push_back({key, value, n, commented, false});
            paragraph_of.push_back(has_prose.size() - 1);
        } else if (commented) {
            has_prose.back() = true;
        }
    }
    for (std::size_t i = 0; i < out.size(); ++i) out[i].documented = has_prose[paragraph_of[i]];
    return out;
}

TEST_CASE("the shipped deploy/ndrguard.conf: every key of the table, documented, at its default") {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/deploy/ndrguard.conf");
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    serve_config from_file;
    CHECK(apply_config_text(from_file, text, "ndrguard.conf").empty());
    const auto lines = shipped_settings(text);
    const serve_config defaults;
    for (const auto& key : config_table()) {
        CAPTURE(key.name);
        int seen = 0;
        for (const auto& l : lines)
            if (l.key == key.name) {
                ++seen;
                CAPTURE(l.line);
                CHECK_MESSAGE(l.documented, "a comment in its paragraph says what it is");
                serve_config shown;
                CHECK(shown.set(key.name, l.value) == "");
                CHECK_MESSAGE(key.show(shown) == key.show(defaults), "the file shows another default");
                CHECK(key.show(from_file) == key.show(defaults));
            }
        CHECK_MESSAGE(seen == 1, "missing from the file, or in it twice");
    }
    for (const auto& l : lines) CHECK_MESSAGE((!l.commented || l.key == "database"), l.key << " is set, not commented out");
}

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

TEST_CASE("the defaults README.md states, \"`key` (N\" or \"`key`, N\", are the table's") {
    std::ifstream in(NDRGUARD_SOURCE_DIR "/README.md");
    REQUIRE(in);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::regex stated("`([a-z_.]+)` ?[(,] ?(default )?([0-9][0-9,]*)( ?(s|ms)\\b)?");
    int checked = 0;
    for (auto m = std::sregex_iterator(text.begin(), text.end(), stated); m != std::sregex_iterator(); ++m) {
        const config_key* key = find_config_key((*m)[1].str());
        if (!key || key->type != "integer") continue;  // not a key, or "(32 random bytes)" of a file
        std::string number = (*m)[3].str();
        number.erase(std::remove(number.begin(), number.end(), ','), number.end());
        std::int64_t value = std::stoll(number);
        if ((*m)[5].str() == "s" && key->unit == "milliseconds") value *= 1000;  // "database_timeout_ms (10 s"
        CAPTURE((*m).str());
        CHECK(std::to_string(value) == key->default_value);
        ++checked;
    }
    CHECK(checked >= 10);
}
