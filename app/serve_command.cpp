#include "serve_command.hpp"

#include <csignal>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <pthread.h>
#include <thread>

#include "config_args.hpp"
#include "ndrguard/filter/metrics_exposition.hpp"
#include "ndrguard/web/quarantine_services.hpp"
#include "ndrguard/web/http_server.hpp"
#include "ndrguard/web/release_token.hpp"
#include "ndrguard/filter/config.hpp"
#include "ndrguard/filter/evidence_gatherer.hpp"
#include "ndrguard/filter/server.hpp"
#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::app {

const char* const serve_usage =
    "usage: ndrguard serve [--config FILE] [--set KEY=VALUE]... [--db CONNINFO] [--sql-dir DIR]\n"
    "\n"
    "Runs the content filter: Postfix hands it every message over SMTP (after-queue\n"
    "content_filter or before-queue smtpd_proxy_filter); it records the Message-ID of outbound\n"
    "mail in the sent log, classifies inbound mail, checks bounces against the sent log and\n"
    "delivers (reinjecting to next_hop), rejects (5xx, only where no backscatter can result) or\n"
    "tempfails (451 on any internal failure, so Postfix keeps the message). The schema is\n"
    "migrated at start. One log line per message on stderr (key=value; written out every 100 ms).\n"
    "\n"
    "  --config FILE     settings file (key = value; every key, default and unit is listed in\n"
    "                    deploy/ndrguard.conf; `ndrguard config -d` prints the defaults)\n"
    "  --set KEY=VALUE   one setting, after the file (repeatable)\n"
    "  --db CONNINFO     same as --set database=CONNINFO (default: $NDRGUARD_DB)\n"
    "  --sql-dir DIR     migrations (default: " NDRGUARD_DEFAULT_SQL_DIR ")\n"
    "  -h, --help        show this text\n"
    "\n"
    "Bounces are counted per recipient mailbox (counts shared with other instances through\n"
    "PostgreSQL); a mailbox past storm_threshold is in storm mode and what cannot be verified is\n"
    "quarantined (held in PostgreSQL, answered 250 after the commit; see ndrguard quarantine).\n"
    "Release pages for the links of digests are served on web_listen (HTTP; GET shows, POST\n"
    "releases; /healthz; the admin API on /api/ when admin_token_file is set). Prometheus\n"
    "metrics are served on metrics_listen (GET /metrics), a listener of its own.\n"
    "Exit status: 0 stopped by SIGTERM/SIGINT, 1 start-up failure, 2 usage or configuration error.\n";

namespace {

// The listeners' bounds from the configuration. A handler answers within the database deadline
// (plus a margin for the rest of its work), or its client gets 503 from the listener; a POST
// may also hand a message to the next hop.
web::http_limits listener_limits(const filter::serve_config& cfg) {
    using ms = std::chrono::milliseconds;
    web::http_limits l;
    l.header_timeout = std::chrono::seconds(cfg.web_header_timeout_seconds);
    l.request_timeout = std::chrono::seconds(cfg.web_request_timeout_seconds);
    l.keepalive_timeout = std::chrono::seconds(cfg.web_keepalive_timeout_seconds);
    l.handler_timeout = ms(cfg.database_timeout_ms) + ms(500);
    l.slow_handler_timeout = l.handler_timeout + std::chrono::seconds(cfg.reinject_timeout_seconds);
    l.max_connections = cfg.web_max_connections;
    l.workers = cfg.web_workers;
    l.waiting = 4 * cfg.web_workers;
    return l;
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
    config_args parsed = parse_config_args(args);
    if (!parsed.rest.empty()) {
        std::cerr << "ndrguard serve: unknown option '" << parsed.rest.front() << "'\n\n" << serve_usage;
        return 2;
    }
    if (!parsed.errors.empty()) {
        for (auto& e : parsed.errors) std::cerr << "ndrguard serve: " << e << "\n";
        if (parsed.bad_usage) std::cerr << "\n" << serve_usage;
        return 2;
    }
    filter::serve_config& cfg = parsed.cfg;
    const std::string& sql_dir = parsed.sql_dir;

    // Signals go to one thread that stops the server; every other thread blocks them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    try {  // the key files of dkim_keys and batv_keys, before anything starts
        const filter::evidence_gatherer keys_readable(cfg);
    } catch (const std::exception& e) {
        std::cerr << "ndrguard serve: " << e.what() << "\n";
        return 1;
    }
    try {
        quarantine::database db(cfg.database, quarantine::migration_timeout);
        auto report = quarantine::migrate(db, sql_dir);
        std::cerr << "ndrguard serve: schema_version=" << report.schema_version << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ndrguard serve: " << e.what() << "\n";
        return 1;
    }
    filter::filter_server server(cfg, std::cerr);
    try {
        server.bind();
    } catch (const std::exception& e) {
        std::cerr << "ndrguard serve: cannot listen on " << cfg.listen << ": " << e.what() << "\n";
        return 1;
    }
    std::mutex log_mu;
    auto log_line = [&log_mu](std::string_view line) {
        std::lock_guard lock(log_mu);
        std::cerr << "ndrguard serve: " << line << "\n";
    };
    const web::http_limits limits = listener_limits(cfg);
    // The release pages, when web_listen is set.
    std::unique_ptr<web::http_server> pages;
    std::string secret, admin_token;
    web::database_web_services services(cfg);
    if (!cfg.web_listen.empty()) {
        try {
            secret = web::load_or_create_secret(cfg.web_secret_file);
            if (!cfg.admin_token_file.empty()) admin_token = web::load_or_create_secret(cfg.admin_token_file);
            pages = std::make_unique<web::http_server>(cfg.web_listen, [&](const web::http_request& req) {
                return web::route(req, services, secret, static_cast<std::int64_t>(std::time(nullptr)), admin_token);
            }, limits, log_line);
            pages->bind();
        } catch (const std::exception& e) {
            std::cerr << "ndrguard serve: release pages on " << cfg.web_listen << ": " << e.what()
                      << " (set web_listen= to run without them)\n";
            return 1;
        }
        std::cerr << "ndrguard serve: release pages on http://" << cfg.web_listen << " (links: " << cfg.web_base_url << ")"
                  << (admin_token.empty() ? "" : ", admin API on /api/") << "\n";
    }
    // Prometheus metrics, when metrics_listen is set: a listener of its own.
    std::unique_ptr<web::http_server> metrics_server;
    filter::metrics_endpoint metrics(server.metrics(), cfg.database, NDRGUARD_VERSION, std::chrono::milliseconds(cfg.database_timeout_ms));
    if (!cfg.metrics_listen.empty()) {
        try {
            metrics_server = std::make_unique<web::http_server>(cfg.metrics_listen,
                                                                [&](const web::http_request& req) { return metrics.handle(req); },
                                                                limits, log_line);
            metrics_server->bind();
        } catch (const std::exception& e) {
            std::cerr << "ndrguard serve: metrics on " << cfg.metrics_listen << ": " << e.what()
                      << " (set metrics_listen= to run without them)\n";
            return 1;
        }
        std::cerr << "ndrguard serve: metrics on http://" << cfg.metrics_listen << "/metrics\n";
    }
    std::thread pages_thread, metrics_thread;
    if (pages) pages_thread = std::thread([&] { pages->run(); });
    if (metrics_server) metrics_thread = std::thread([&] { metrics_server->run(); });
    std::cerr << "ndrguard serve: listening on " << cfg.listen << ", next hop " << cfg.next_hop << ", mode "
              << (cfg.mode == filter::filter_mode::after_queue ? "after_queue" : "before_queue")
              << (cfg.shadow ? ", shadow" : "") << "\n";
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&signals, &sig);
        std::cerr << "ndrguard serve: signal " << sig << ", stopping\n";
        server.stop();
        if (pages) pages->stop();
        if (metrics_server) metrics_server->stop();
    });
    server.run();
    // run() returns only after stop(); the waiter has finished or is about to.
    waiter.join();
    if (pages_thread.joinable()) pages_thread.join();
    if (metrics_thread.joinable()) metrics_thread.join();
    return 0;
}

}  // namespace ndrguard::app
