#include "serve_command.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <pthread.h>
#include <thread>

#include "ndrguard/filter/config.hpp"
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
    "migrated at start. One log line per message on stderr (key=value).\n"
    "\n"
    "  --config FILE     settings file (key = value; every key, default and unit is listed in\n"
    "                    deploy/ndrguard.conf)\n"
    "  --set KEY=VALUE   one setting, after the file (repeatable)\n"
    "  --db CONNINFO     same as --set database=CONNINFO (default: $NDRGUARD_DB)\n"
    "  --sql-dir DIR     migrations (default: " NDRGUARD_DEFAULT_SQL_DIR ")\n"
    "  -h, --help        show this text\n"
    "\n"
    "Not yet (issue 4): the quarantine store and storm counters; a \"quarantine\" verdict is\n"
    "delivered with the verdict header saying so (would=quarantine), never dropped.\n"
    "Exit status: 0 stopped by SIGTERM/SIGINT, 1 start-up failure, 2 usage or configuration error.\n";

int run_serve(const std::vector<std::string>& args) {
    filter::serve_config cfg;
    if (const char* db = std::getenv("NDRGUARD_DB")) cfg.database = db;
    std::string sql_dir = NDRGUARD_DEFAULT_SQL_DIR;
    std::vector<std::string> errors;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") {
            std::cout << serve_usage;
            return 0;
        }
        if (i + 1 >= args.size()) {
            std::cerr << "ndrguard serve: '" << a << "' needs a value\n\n" << serve_usage;
            return 2;
        }
        const std::string& v = args[++i];
        if (a == "--config") {
            std::ifstream in(v, std::ios::binary);
            if (!in) {
                std::cerr << "ndrguard serve: cannot read " << v << "\n";
                return 2;
            }
            std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            for (auto& e : filter::apply_config_text(cfg, text, v)) errors.push_back(e);
        } else if (a == "--set") {
            auto eq = v.find('=');
            std::string e = eq == std::string::npos ? "want KEY=VALUE" : cfg.set(v.substr(0, eq), v.substr(eq + 1));
            if (!e.empty()) errors.push_back("--set " + v + ": " + e);
        } else if (a == "--db") {
            cfg.database = v;
        } else if (a == "--sql-dir") {
            sql_dir = v;
        } else {
            std::cerr << "ndrguard serve: unknown option '" << a << "'\n\n" << serve_usage;
            return 2;
        }
    }
    if (!errors.empty()) {
        for (auto& e : errors) std::cerr << "ndrguard serve: " << e << "\n";
        return 2;
    }

    // Signals go to one thread that stops the server; every other thread blocks them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    try {
        quarantine::database db(cfg.database);
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
    std::cerr << "ndrguard serve: listening on " << cfg.listen << ", next hop " << cfg.next_hop << ", mode "
              << (cfg.mode == filter::filter_mode::after_queue ? "after_queue" : "before_queue")
              << (cfg.shadow ? ", shadow" : "") << "\n";
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&signals, &sig);
        std::cerr << "ndrguard serve: signal " << sig << ", stopping\n";
        server.stop();
    });
    server.run();
    // run() returns only after stop(); the waiter has finished or is about to.
    waiter.join();
    return 0;
}

}  // namespace ndrguard::app
