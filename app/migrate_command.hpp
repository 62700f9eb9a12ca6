// `ndrguard migrate`: bring the PostgreSQL schema up to date.
#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

int run_migrate(const std::vector<std::string>& args);
extern const char* const migrate_usage;

}  // namespace ndrguard::app
