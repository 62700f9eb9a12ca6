#include "config_command.hpp"

#include <iostream>

#include "config_args.hpp"
#include "ndrguard/filter/config.hpp"

namespace ndrguard::app {

const char* const config_usage =
    "usage: ndrguard config [-d | -n] [--config FILE] [--set KEY=VALUE]... [--db CONNINFO] [KEY...]\n"
    "\n"
    "Prints the settings as \"key = value\" lines, in the order of deploy/ndrguard.conf, as\n"
    "postconf does: the effective value of every key (read as serve reads them: $NDRGUARD_DB,\n"
    "then --config and --set in order), or of the KEYs named.\n"
    "\n"
    "  -d                the defaults instead\n"
    "  -n                only the keys whose effective value differs from the default\n"
    "  --config FILE     settings file (key = value)\n"
    "  --set KEY=VALUE   one setting, after the file (repeatable)\n"
    "  --db CONNINFO     same as --set database=CONNINFO\n"
    "  -h, --help        show this text\n"
    "\n"
    "Exit status: 0 printed, 2 usage error, unknown key, or an invalid value or combination\n"
    "(the error names the key, and the file and line it came from).\n";

int run_config(const std::vector<std::string>& args) {
    bool defaults = false, differing = false;
    std::vector<std::string> rest;
    for (const auto& a : args) {
        if (a == "-d") defaults = true;
        else if (a == "-n") differing = true;
        else rest.push_back(a);
    }
    // The values as given, without the deadlines parse_config_args adds to the conninfo.
    config_args parsed = read_config_args(rest);
    for (const auto& e : parsed.errors) std::cerr << "ndrguard config: " << e << "\n";
    if (!parsed.errors.empty()) return 2;
    if (defaults && differing) {
        std::cerr << "ndrguard config: -d and -n exclude each other\n\n" << config_usage;
        return 2;
    }
    std::vector<const filter::config_key*> keys;
    for (const auto& name : parsed.rest) {
        if (!name.empty() && name.front() == '-') {
            std::cerr << "ndrguard config: unknown option '" << name << "'\n\n" << config_usage;
            return 2;
        }
        const filter::config_key* k = filter::find_config_key(name);
        if (!k) {
            std::cerr << "ndrguard config: unknown key '" << name << "'\n";
            return 2;
        }
        keys.push_back(k);
    }
    if (keys.empty())
        for (const auto& k : filter::config_table()) keys.push_back(&k);
    const filter::serve_config default_cfg;
    for (const auto* k : keys) {
        const std::string value = defaults ? std::string(k->default_value) : k->show(parsed.cfg);
        if (differing && value == k->show(default_cfg)) continue;
        std::cout << k->name << " =" << (value.empty() ? "" : " ") << value << "\n";
    }
    return 0;
}

}  // namespace ndrguard::app
