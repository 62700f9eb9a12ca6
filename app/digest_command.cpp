#include "digest_command.hpp"

#include <iostream>

#include "config_args.hpp"
#include "ndrguard/digest/pass.hpp"
#include "ndrguard/web/release_token.hpp"

namespace ndrguard::app {

const char* const digest_usage =
    "usage: ndrguard digest [--mailbox M] [--dry-run] [--config FILE] [--set KEY=VALUE] [--db CONNINFO]\n"
    "\n"
    "One pass: each mailbox with held messages not yet reported gets one mail (text and HTML):\n"
    "what may be genuine listed one by one with a release link, each storm as one group with a\n"
    "release-all link, the other forged bounces counted, and a link to the full list. Sent to\n"
    "next_hop (Postfix's reinjection port, which bypasses the filter) from digest_sender.\n"
    "No item is ever in two digests, even with two passes at once or a pass that crashed.\n"
    "Run it once a day (deploy/systemd/ndrguard-digest.timer).\n"
    "\n"
    "  --mailbox M   only this mailbox\n"
    "  --dry-run     print the digest instead of sending it (needs --mailbox; marks nothing)\n"
    "\n"
    "Reads the serve configuration: database, next_hop, hostname, reinject_timeout_seconds,\n"
    "web_base_url, web_secret_file (created if missing), link_ttl_days, digest_sender, digest_from,\n"
    "digest_max_listed, digest_lease_seconds.\n"
    "Logs one key=value line per mailbox on stderr. Exit status: 0 every digest went out (or\n"
    "nothing to do); 1 some could not be sent or recorded (they are tried again next pass,\n"
    "except 'uncertain' ones, which may have been delivered); 2 usage error.\n";

int run_digest(const std::vector<std::string>& args) {
    config_args parsed = parse_config_args(args);
    auto usage_error = [](const std::string& what) {
        std::cerr << "ndrguard digest: " << what << "\n\n" << digest_usage;
        return 2;
    };
    if (!parsed.errors.empty()) {
        for (auto& e : parsed.errors) std::cerr << "ndrguard digest: " << e << "\n";
        return 2;
    }
    if (parsed.bad_usage) return usage_error("an option needs its value");
    const filter::serve_config& cfg = parsed.cfg;
    digest::pass_options o;
    for (std::size_t i = 0; i < parsed.rest.size(); ++i) {
        const std::string& a = parsed.rest[i];
        if (a == "--dry-run") o.dry_run = true;
        else if (a == "--mailbox" && i + 1 < parsed.rest.size()) o.only_mailbox = parsed.rest[++i];
        else return usage_error("unexpected '" + a + "'");
    }
    if (o.dry_run && o.only_mailbox.empty()) return usage_error("--dry-run needs --mailbox");
    o.hop = {cfg.next_hop, cfg.hostname, cfg.reinject_timeout_seconds};
    o.envelope_sender = cfg.digest_sender;
    o.from = cfg.digest_from;
    o.web_base_url = cfg.web_base_url;
    o.link_ttl_days = cfg.link_ttl_days;
    o.max_listed = static_cast<std::size_t>(cfg.digest_max_listed);
    o.lease = std::chrono::seconds(cfg.digest_lease_seconds);
    try {
        o.secret = web::load_or_create_secret(cfg.web_secret_file);
    } catch (const std::exception& e) {
        std::cerr << "ndrguard digest: web_secret_file: " << e.what() << "\n";
        return 1;
    }
    int status = 0;
    try {
        quarantine::database db(cfg.database);
        std::size_t sent = 0, items = 0;
        digest::run_pass(db, o, [&](const digest::mailbox_report& r) {
            using k = digest::mailbox_report::outcome;
            if (r.what == k::dry_run) {
                std::cout << r.message;
                return;
            }
            if (r.what == k::sent) ++sent, items += static_cast<std::size_t>(r.items);
            if (r.what == k::refused || r.what == k::failed || r.what == k::uncertain || r.what == k::taken_over) status = 1;
            std::cerr << "digest mailbox=" << r.mailbox << " result=" << to_string(r.what) << " digest_id=" << r.digest_id
                      << " items=" << r.items;
            if (!r.detail.empty()) std::cerr << " detail=\"" << r.detail << "\"";
            std::cerr << "\n";
        });
        if (!o.dry_run) std::cerr << "digest pass done: digests_sent=" << sent << " items_reported=" << items << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ndrguard digest: " << e.what() << "\n";
        return 1;
    }
    return status;
}

}  // namespace ndrguard::app
