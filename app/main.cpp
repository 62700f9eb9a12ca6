// ndrguard: the one command. Dispatches to a subcommand; nothing else lives here.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "digest_command.hpp"
#include "migrate_command.hpp"
#include "quarantine_command.hpp"
#include "scan_command.hpp"
#include "serve_command.hpp"

namespace {

const char* const usage =
    "usage: ndrguard COMMAND [OPTIONS]\n"
    "\n"
    "Backscatter and NDR-storm detector for Postfix.\n"
    "\n"
    "Commands:\n"
    "  scan [--json] PATH...   classify message files, directories (recursively) and mbox files\n"
    "  migrate [--db CONNINFO] apply the PostgreSQL schema migrations (sql/)\n"
    "  serve [--config FILE]   run the Postfix content filter (after- or before-queue)\n"
    "  quarantine SUBCOMMAND   list, show, release, delete and purge held messages; storms\n"
    "  digest [--mailbox M]    mail each mailbox what was held for it, with release links\n"
    "  help [COMMAND]          show this text, or a command's own help\n"
    "\n"
    "Options:\n"
    "  -h, --help              show this text\n"
    "  --version               print the version\n";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << usage;
        return 2;
    }
    const std::string command = args.front();
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (command == "-h" || command == "--help") {
        std::cout << usage;
        return 0;
    }
    if (command == "help") {
        if (!rest.empty() && rest.front() == "scan") std::cout << ndrguard::app::scan_usage;
        else if (!rest.empty() && rest.front() == "migrate") std::cout << ndrguard::app::migrate_usage;
        else if (!rest.empty() && rest.front() == "serve") std::cout << ndrguard::app::serve_usage;
        else if (!rest.empty() && rest.front() == "quarantine") std::cout << ndrguard::app::quarantine_usage;
        else if (!rest.empty() && rest.front() == "digest") std::cout << ndrguard::app::digest_usage;
        else std::cout << usage;
        return 0;
    }
    if (command == "--version" || command == "version") {
        std::cout << "ndrguard " << NDRGUARD_VERSION << "\n";
        return 0;
    }
    if (command == "scan") return ndrguard::app::run_scan(rest);
    if (command == "migrate") return ndrguard::app::run_migrate(rest);
    if (command == "serve") return ndrguard::app::run_serve(rest);
    if (command == "digest") return ndrguard::app::run_digest(rest);
    if (command == "quarantine") return ndrguard::app::run_quarantine(rest);
    std::cerr << "ndrguard: unknown command '" << command << "'\n\n" << usage;
    return 2;
}
