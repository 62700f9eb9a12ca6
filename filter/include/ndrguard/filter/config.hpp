// `ndrguard serve` configuration: one file of "key = value" lines (deploy/ndrguard.conf lists
// every key with its default and unit), overridden by --set key=value on the command line.
// Pure: parsing and validation only; errors name the file, line and key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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
};

struct serve_config {
    std::string listen = "127.0.0.1:10025";     // where Postfix hands us mail
    std::string next_hop = "127.0.0.1:10026";   // where accepted mail is reinjected
    std::string outbound_listen;                // optional: every message here is outbound
                                                // (the content_filter of submission/SASL mail)
    filter_mode mode = filter_mode::after_queue;
    std::string hostname = "localhost";         // in our greeting and added Message-IDs
    std::string database;                       // libpq conninfo ("" = libpq defaults)
    int database_timeout_ms = 10000;            // every wait on PostgreSQL (connect, query,
                                                // commit) ends within this: 451 / 503
    std::vector<network> our_networks;          // clients whose mail is outbound
    bool shadow = false;
    bool warm_up_auto = true;                   // warm_up = auto|off: no rejection until the
                                                // sent log covers bounce_window_days
    int bounce_window_days = 7;                 // how far back a bounce may refer (days)
    int sent_log_retention_days = 30;           // days of the sent log kept (>= window)
    int lookup_gather_microseconds = 300;       // busy: a lookup waits this long for others
                                                // to share its query (0 = never waits)
    std::size_t max_sessions = 64;              // concurrent SMTP sessions
    std::size_t max_message_memory_mb = 512;    // message content all sessions may hold at once (452 beyond)
    int idle_timeout_seconds = 300;             // between two client reads or writes
    int session_timeout_seconds = 3600;         // a whole session, however busy
    int reinject_timeout_seconds = 120;         // each connect, read or write to the next hop
    // Idle reinjection connections kept for the next messages: keep fewer than the next hop's
    // process limit (master.cf: 10), so that releases and digests always find a free smtpd,
    // and close them before the next hop's own idle timeout (Postfix's smtpd: 300 s).
    int next_hop_max_idle = 4;
    int next_hop_idle_seconds = 60;
    std::string verdict_header = "X-NDRGuard";
    smtp::server_limits limits;                       // max_line_bytes, max_message_bytes, max_recipients
    policy verdicts;                            // policy.<class>.<verification> = action

    // Storm mode per recipient mailbox (counts shared by every instance through PostgreSQL).
    std::int64_t storm_threshold = 50;          // bounces in the window that start a storm
    std::int64_t storm_exit_threshold = 10;     // under this the storm goes quiet ...
    int storm_cool_down_seconds = 1800;         // ... and ends after this long quiet
    int storm_window_seconds = 600;             // the sliding window
    int storm_sync_ms = 250;                    // how often counts are written and read back

    // The quarantine.
    int quarantine_retention_days = 14;         // held days kept, then dropped whole
    std::int64_t quarantine_max_items = 20000;  // per mailbox; past either cap, forged bounces
    std::int64_t quarantine_max_mb = 500;       // are dropped (counted), the others still kept
    // The release pages (web links in digests).
    std::string web_listen;                     // "" = off (deploy/run.sh serve turns it on)
    std::string web_base_url = "http://127.0.0.1:8025";  // how users reach web_listen
    std::string web_secret_file = "/var/lib/ndrguard/web.secret";  // created (0600) if missing
    int link_ttl_days = 14;                     // how long a release link works
    std::string admin_token_file;               // bearer token of the admin API ("" = API off)
    std::string metrics_listen;                 // Prometheus /metrics ("" = off; deploy/run.sh: 127.0.0.1:9325)
    // Both HTTP listeners (web_listen, metrics_listen): deadlines and bounds.
    int web_header_timeout_seconds = 10;        // a request's header, from the connection or its first byte
    int web_request_timeout_seconds = 30;       // a whole request (body too); writing the answer again
    int web_keepalive_timeout_seconds = 15;     // idle between two requests of a connection
    std::size_t web_max_connections = 256;      // open at once; beyond: 503, closed at once
    std::size_t web_workers = 8;                // requests answered at once (4 more per worker wait; beyond: 503 busy)
    std::size_t web_database_connections = 4;   // the pages' PostgreSQL pool (releases open their own)
    // The digest (ndrguard digest).
    std::string digest_sender;                  // envelope sender ("" = postmaster@hostname)
    std::string digest_from;                    // From: ("" = "Mail quarantine <digest_sender>")
    int digest_max_listed = 50;                 // items listed one by one; the rest are counted
    int digest_lease_seconds = 600;             // a pass that stopped before sending is taken over after this long

    int release_lease_seconds = 300;            // a release that stopped before handing the
                                                // message over may be retried after this long

    serve_config();
    // Applies one setting; returns an error message, or "" when it was applied.
    std::string set(std::string_view key, std::string_view value);
};

// Reads a configuration text (the file's content); errors as "NAME:LINE: message".
std::vector<std::string> apply_config_text(serve_config& cfg, std::string_view text, std::string_view name);

// Splits "host:port" and "[v6]:port"; nullopt on a malformed value.

}  // namespace ndrguard::filter
