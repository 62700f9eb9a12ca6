#pragma once

#include <string>
#include <vector>

namespace ndrguard::app {

extern const char* const backfill_usage;
int run_backfill(const std::vector<std::string>& args);

}  // namespace ndrguard::app
