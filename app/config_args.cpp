#include "config_args.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::app {

config_args read_config_args(const std::vector<std::string>& args) {
    config_args out;
    filter::config_reader reader;
    if (const char* db = std::getenv("NDRGUARD_DB")) reader.set("database", db, "$NDRGUARD_DB");
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
            reader.read_text(text, v);
        } else if (a == "--set") {
            auto eq = v.find('=');
            if (eq == std::string::npos) out.errors.push_back("--set " + v + ": want KEY=VALUE");
            else reader.set(v.substr(0, eq), v.substr(eq + 1), "--set " + v);
        } else if (a == "--db") {
            reader.set("database", v, "--db");
        } else {
            out.sql_dir = v;
        }
    }
    // Every source is read: the checks across keys, whatever source each value came from.
    for (auto& e : reader.finish()) out.errors.push_back(std::move(e));
    out.cfg = std::move(reader.config());
    return out;
}

config_args parse_config_args(const std::vector<std::string>& args) {
    config_args out = read_config_args(args);
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
