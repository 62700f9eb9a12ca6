// ndrguard: the one command. A table of subcommands (name, one line of help, function, usage);
// nothing else lives here. `ndrguard --help` is written from the table, so it lists them all.
#include <iomanip>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "backfill_command.hpp"
#include "config_command.hpp"
#include "digest_command.hpp"
#include "doctor_command.hpp"
#include "migrate_command.hpp"
#include "quarantine_command.hpp"
#include "scan_command.hpp"
#include "serve_command.hpp"

namespace {

namespace app = ndrguard::app;

struct subcommand {
    std::string_view name;
    std::string_view synopsis;  // the name and its main options, as in the usage's list
    std::string_view help;      // one line
    int (*run)(const std::vector<std::string>& args);
    const char* const* usage;  // the command's own --help
};

const subcommand commands[] = {
    {"scan", "scan [--json] [--verdict] PATH... | scan --expect SAMPLE...",
     "classify message files, directories (recursively) and mbox files (--verdict: and what serve would do); write a sample's .expect",
     app::run_scan,
     &app::scan_usage},
    {"migrate", "migrate [--db CONNINFO]", "apply the PostgreSQL schema migrations (sql/)", app::run_migrate, &app::migrate_usage},
    {"serve", "serve [--config FILE]", "run the Postfix content filter (after- or before-queue)", app::run_serve, &app::serve_usage},
    {"config", "config [-d | -n]", "print the effective settings, the defaults, or those not at the default", app::run_config,
     &app::config_usage},
    {"quarantine", "quarantine SUBCOMMAND", "list, show, release, delete and purge held messages; storms", app::run_quarantine,
     &app::quarantine_usage},
    {"digest", "digest [--mailbox M]", "mail each mailbox what was held for it, with release links", app::run_digest,
     &app::digest_usage},
    {"backfill", "backfill [--since 7d] LOGFILE...", "record the outbound Message-IDs of Postfix's mail logs in the sent log", app::run_backfill, &app::backfill_usage},
    {"doctor", "doctor [-c DIR] [--json]", "audit a Postfix configuration: backscatter it can send, mail that misses ndrguard", app::run_doctor,
     &app::doctor_usage},
};

const subcommand* find_command(std::string_view name) {
    for (const auto& c : commands)
        if (c.name == name) return &c;
    return nullptr;
}

void print_usage(std::ostream& out) {
    out << "usage: ndrguard COMMAND [OPTIONS]\n\nBackscatter and NDR-storm detector for Postfix.\n\nCommands:\n";
    auto line = [&](std::string_view left, std::string_view right) {
        out << "  " << std::left << std::setw(24) << left << (left.size() >= 24 ? " " : "") << right << "\n";
    };
    for (const auto& c : commands) line(c.synopsis, c.help);
    line("help [COMMAND]", "show this text, or a command's own help (also: COMMAND --help)");
    out << "\nOptions:\n";
    line("-h, --help", "show this text");
    line("--version", "print the version");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        print_usage(std::cerr);
        return 2;
    }
    const std::string name = args.front();
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (name == "-h" || name == "--help") {
        print_usage(std::cout);
        return 0;
    }
    if (name == "help") {
        const subcommand* c = rest.empty() ? nullptr : find_command(rest.front());
        if (c) std::cout << *c->usage;
        else print_usage(std::cout);
        return 0;
    }
    if (name == "--version" || name == "version") {
        std::cout << "ndrguard " << NDRGUARD_VERSION << "\n";
        return 0;
    }
    if (const subcommand* c = find_command(name)) {
        // COMMAND -h / --help anywhere before "--" (after it, scan's paths may be named so):
        // every command's own usage, printed here once for all of them.
        for (const auto& a : rest) {
            if (a == "--") break;
            if (a == "-h" || a == "--help") {
                std::cout << *c->usage;
                return 0;
            }
        }
        return c->run(rest);
    }
    std::cerr << "ndrguard: unknown command '" << name << "'\n\n";
    print_usage(std::cerr);
    return 2;
}
