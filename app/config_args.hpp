// The options every command that reads the serve configuration shares: --config FILE,
// --set KEY=VALUE, --db CONNINFO, --sql-dir DIR. The rest of the arguments are left over.
#pragma once

#include <string>
#include <vector>

#include "ndrguard/filter/config.hpp"

namespace ndrguard::app {

struct config_args {
    filter::serve_config cfg;
    std::string sql_dir = NDRGUARD_DEFAULT_SQL_DIR;
    std::vector<std::string> rest;    // arguments that are not the options above
    std::vector<std::string> errors;  // configuration errors, ready to print
    bool bad_usage = false;           // an option without its value
};

// $NDRGUARD_DB first, then the options in order; then the checks across keys, once.
config_args read_config_args(const std::vector<std::string>& args);
// The same, with the database deadlines added to the conninfo (what commands connect with).
config_args parse_config_args(const std::vector<std::string>& args);

}  // namespace ndrguard::app
