// The configuration: one file of "key = value" lines (deploy/ndrguard.conf lists every key with
// its default and unit), overridden by --set key=value on the command line; config_table() holds
// every key once. Pure: parsing and validation only; errors name the key, and the file and line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ndrguard/filter/policy.hpp"
#include "ndrguard/smtp/address.hpp"
#include "ndrguard/smtp/server.hpp"

namespace ndrguard::filter {

// An IPv4 or IPv6 network, "192.0.2.0/24", "::1/128"; a bare address is a /32 or /128.
struct network {
    std::uint8_t bytes[16] = {};
    bool v6 = false;
    int prefix = 0;
    static std::optional<network> parse(std::string_view text);
    bool contains(std::string_view address) const;  // a textual address, e.g. XFORWARD ADDR
    std::string text() const;                        // "192.0.2.0/24"
};

// The settings of every command that reads the configuration (serve, quarantine, digest,
// config). Each field is a key of config_table() (below), which holds its type, range, unit,
// default and documentation: the defaults are written there only, and a default-constructed
// serve_config has them.
struct serve_config {
    std::string listen;                 // where Postfix hands us mail
    std::string next_hop;               // where accepted mail is reinjected
    std::string outbound_listen;        // every message here is outbound ("" = off)
    filter_mode mode{};
    std::string hostname;               // in our greeting and added Message-IDs
    std::string database;               // libpq conninfo ("" = libpq defaults)
    int database_timeout_ms{};          // every wait on PostgreSQL ends within this: 451 / 503
    std::vector<network> our_networks;  // clients whose mail is outbound
    bool shadow{};
    bool warm_up_auto{};                // warm_up = auto|off
    int bounce_window_days{};
    int sent_log_retention_days{};
    int lookup_gather_microseconds{};
    std::size_t max_sessions{};
    std::size_t max_message_memory_mb{};
    int idle_timeout_seconds{};
    int session_timeout_seconds{};
    int reinject_timeout_seconds{};
    int next_hop_max_idle{};
    int next_hop_idle_seconds{};
    std::string verdict_header;
    smtp::server_limits limits;         // max_line_bytes, max_message_bytes, max_recipients
    policy verdicts;                    // policy.<class>.<verification> = action

    // Evidence of origin beyond the sent log (filter/verdict.hpp). Files are read by serve and
    // scan when they start (evidence_gatherer), not here.
    std::vector<std::string> our_domains;  // lower case; a subdomain is ours too
    std::vector<std::string> our_relays;   // host names (globs) or IPs; empty: hostname
    std::string dkim_keys;                 // DOMAIN:SELECTOR:FILE, ...
    bool dkim_dns{};                       // selectors not in dkim_keys: their TXT record in DNS
    int dkim_dns_timeout_seconds{};
    std::string batv_keys;                 // K:FILE, ... (FILE holds the secret)
    int batv_validity_days{};

    // Storm mode per recipient mailbox (counts shared by every instance through PostgreSQL).
    std::int64_t storm_threshold{};
    std::int64_t storm_exit_threshold{};
    int storm_cool_down_seconds{};
    int storm_window_seconds{};
    int storm_sync_ms{};

    // The quarantine.
    int quarantine_retention_days{};
    std::int64_t quarantine_max_items{};
    std::int64_t quarantine_max_mb{};
    // The release pages (web links in digests), the admin API, the metrics.
    std::string web_listen;
    std::string web_base_url;
    std::string web_secret_file;
    int link_ttl_days{};
    std::string admin_token_file;
    std::string metrics_listen;
    int web_header_timeout_seconds{};
    int web_request_timeout_seconds{};
    int web_keepalive_timeout_seconds{};
    std::size_t web_max_connections{};
    std::size_t web_workers{};
    std::size_t web_database_connections{};
    // The digest (ndrguard digest).
    std::string digest_sender;
    std::string digest_from;
    int digest_max_listed{};
    int digest_lease_seconds{};

    int release_lease_seconds{};

    // The policy service (Postfix's check_policy_service at RCPT; policy/, issue 17).
    std::string policy_listen;                     // "" = off
    bool policy_defer_to_data{};                   // policy_storm_action = reject|defer_to_data
    std::int64_t policy_null_sender_limit{};       // per mailbox and window (0 = off)
    int policy_null_sender_window_seconds{};
    std::vector<std::string> policy_exempt_mailboxes;
    std::vector<network> policy_exempt_networks;
    std::string policy_storm_text;
    std::string policy_rate_text;
    int policy_max_state_age_seconds{};
    std::size_t policy_max_connections{};
    int policy_request_timeout_seconds{};
    int policy_idle_timeout_seconds{};

    serve_config();  // every key at its default of config_table()
    // Applies one setting through the table; returns an error message ("KEY: want ..., got
    // 'VALUE'"), or "" when it was applied. Checks across keys are config_reader's.
    std::string set(std::string_view key, std::string_view value);
};

// One key of the configuration file: the table is the one place where keys, their types,
// ranges, units, defaults and documentation are written.
struct config_key {
    std::string_view name;
    std::string_view type;           // "integer", "host:port", "yes|no", "networks", "text", ...
    std::string_view unit;           // "seconds", "days", "MB", ... ("" = none)
    std::string_view default_value;  // as written in the file
    std::string_view doc;            // one line
    std::int64_t min = 0, max = 0;   // integers: the allowed range
    // Sets the field from a value, or returns what was wanted ("want 1..365"), the field unchanged.
    std::string (*apply)(serve_config&, const config_key&, std::string_view value) = nullptr;
    // The field's value, as it would be written in the file.
    std::string (*show)(const serve_config&) = nullptr;
};

// Every key, in the order of deploy/ndrguard.conf.
const std::vector<config_key>& config_table();
// The key of that name (policy.ndr.forged and the other names of a shared row: the row's
// key, policy.dsn.forged), or nullptr.
const config_key* find_config_key(std::string_view name);

// Reads every source of settings (files, --set, flags) in order into one serve_config, and
// checks the combinations (exit threshold below threshold, ...) once, after all of them: a
// combination is refused the same wherever its values came from. Errors name the key and where
// it was set ("FILE:LINE", "--set KEY=VALUE").
class config_reader {
public:
    config_reader() = default;
    explicit config_reader(serve_config start) : cfg_(std::move(start)) {}
    // A file's content; `name` is its name in errors.
    void read_text(std::string_view text, std::string_view name);
    // One setting; `origin` says where it came from, in errors.
    void set(std::string_view key, std::string_view value, std::string origin);
    // The checks across keys; returns every error of every source.
    std::vector<std::string> finish();

    const serve_config& config() const { return cfg_; }
    serve_config& config() { return cfg_; }

private:
    std::string origin_of(std::string_view key) const;
    serve_config cfg_;
    std::vector<std::pair<std::string, std::string>> origins_;  // key, where it was last set
    std::vector<std::string> errors_;
};

// One text and the checks across keys; errors as "NAME:LINE: message".
std::vector<std::string> apply_config_text(serve_config& cfg, std::string_view text, std::string_view name);

}  // namespace ndrguard::filter
