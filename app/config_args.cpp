#include "config_args.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::app {

config_args parse_config_args(const std::vector<std::string>& args) {
    config_args out;
    if (const char* db = std::getenv("NDRGUARD_DB")) out.cfg.database = db;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        const bool ours = a == "--config" || a == "--set" || a == "--db" || a == "--sql-dir";
        if (!ours) {
            out.rest.push_back(a);
            continue;
        }
        if (i + 1 >= args.size()) {
            out.errors.push_back("'" + a + "' needs a value");
            out.bad_usage = true;
            break;
        }
        const std::string& v = args[++i];
        if (a == "--config") {
            std::ifstream in(v, std::ios::binary);
            if (!in) {
                out.errors.push_back("cannot read " + v);
                continue;
            }
            std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            for (auto& e : filter::apply_config_text(out.cfg, text, v)) out.errors.push_back(e);
        } else if (a == "--set") {
            auto eq = v.find('=');
            std::string e = eq == std::string::npos ? "want KEY=VALUE" : out.cfg.set(v.substr(0, eq), v.substr(eq + 1));
            if (!e.empty()) out.errors.push_back("--set " + v + ": " + e);
        } else if (a == "--db") {
            out.cfg.database = v;
        } else {
            out.sql_dir = v;
        }
    }
    // Every connection any command makes carries the deadlines (database_timeout_ms).
    if (out.errors.empty()) {
        try {
            out.cfg.database = quarantine::conninfo_with_deadlines(out.cfg.database, out.cfg.database_timeout_ms);
        } catch (const std::exception& e) {
            out.errors.push_back(e.what());
        }
    }
    return out;
}

}  // namespace ndrguard::app
